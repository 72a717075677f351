import { Kernel, loadConfig, redactUrl, type Plugin, type WanllmdbConfig } from '@wanllmdb/core';
import { defaultPlugins } from './default-plugins.js';

export interface ServeOptions {
  flags?: Partial<Record<keyof WanllmdbConfig, unknown>>;
  configFile?: string;
  plugins?: readonly Plugin[];
  env?: NodeJS.ProcessEnv;
}

/** Starts a kernel that serves gRPC and HTTP; resolves once it is listening. */
export async function serve(opts: ServeOptions = {}): Promise<{ kernel: Kernel; grpcPort: number; httpPort: number }> {
  const config = loadConfig({ flags: opts.flags, file: opts.configFile, env: opts.env });
  const kernel = new Kernel({ plugins: opts.plugins ?? defaultPlugins, config, listen: true });
  const listening = await kernel.start();
  kernel.logger.info({ db: redactUrl(config.db), blobs: redactUrl(config.blobs), bus: redactUrl(config.bus) }, 'storage');
  return { kernel, grpcPort: listening!.grpcPort, httpPort: listening!.httpPort };
}
