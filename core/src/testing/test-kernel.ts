import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { WanllmdbConfig } from '../config/config.js';
import { Kernel, type KernelOptions, type Listening } from '../kernel/kernel.js';
import type { MetadataBackend } from './metadata-backends.js';

export interface TestKernel {
  kernel: Kernel;
  /** The ports when started with `listen`. */
  ports?: Listening;
  /** Stops the kernel, then drops its database and removes its blob folder. */
  close(): Promise<void>;
}

/**
 * A real kernel with `plugins` on a fresh database of `backend`, a temporary
 * blob folder and the memory bus (servers on free loopback ports with
 * `listen`). A failed start cleans up before it throws.
 */
export async function startTestKernel(
  backend: MetadataBackend,
  opts: { plugins: KernelOptions['plugins']; listen?: boolean; services?: KernelOptions['services']; config?: Partial<WanllmdbConfig>; env?: KernelOptions['env'] },
): Promise<TestKernel> {
  const db = await backend.fresh();
  const blobs = await mkdtemp(join(tmpdir(), 'wldb-test-blobs-'));
  const cleanUp = async () => {
    await db.drop().catch(() => undefined);
    await rm(blobs, { recursive: true, force: true });
  };
  const kernel = new Kernel({
    plugins: opts.plugins,
    config: { db: db.url, blobs: `file://${blobs}`, bus: 'memory', logLevel: 'silent', host: '127.0.0.1', grpcPort: 0, httpPort: 0, ...opts.config },
    listen: opts.listen ?? false,
    services: opts.services,
    env: opts.env,
  });
  let ports: Listening | undefined;
  try {
    ports = await kernel.start();
  } catch (err) {
    await cleanUp();
    throw err;
  }
  return {
    kernel,
    ports,
    async close() {
      try {
        await kernel.stop();
      } finally {
        await cleanUp();
      }
    },
  };
}
