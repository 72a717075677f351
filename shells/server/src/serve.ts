import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { definePlugin, describeSettings, Errors, externalPlugin, isManifestPath, Kernel, loadConfig, redactUrl, setting, type IpcEndpoint, type Plugin, type WanllmdbConfig } from '@wanllmdb/core';
import { authAdminRef } from '@wanllmdb/plugin-auth';
import { defaultPlugins } from './default-plugins.js';

export interface ServeOptions {
  flags?: Partial<Record<keyof WanllmdbConfig, unknown>>;
  configFile?: string;
  plugins?: readonly Plugin[];
  env?: NodeJS.ProcessEnv;
  /**
   * `single` (the default) migrates, bootstraps and serves; with several
   * processes (cluster.ts) the primary runs `prepare` once (migrations, the
   * first administrator, no ports) and each worker runs `worker` (serves,
   * relaying in-process events over `ipc`).
   */
  role?: 'single' | 'prepare' | 'worker';
  ipc?: IpcEndpoint;
}

/** The built web UI (`npm run build` makes it), or undefined when it was not built. */
export function webUiDir(): string | undefined {
  try {
    const dir = join(dirname(createRequire(import.meta.url).resolve('@wanllmdb/web/package.json')), 'dist');
    return existsSync(join(dir, 'index.html')) ? dir : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Loads third-party plugins (`--plugins` / WANLLMDB_PLUGINS): a folder with a
 * wanllmdb-plugin.json is an out-of-process plugin (ADR 0019); otherwise the
 * module's default export, or its `plugin` export, must be a value made by
 * definePlugin.
 */
export async function loadPlugins(specs: readonly string[], cwd = process.cwd(), env: NodeJS.ProcessEnv = process.env): Promise<Plugin[]> {
  const out: Plugin[] = [];
  for (const spec of specs) {
    // A folder (or file) with a wanllmdb-plugin.json is a program of its own (any language), not a module.
    const local = /^[./]/.test(spec) || isAbsolute(spec) ? resolve(cwd, spec) : undefined;
    if (local && isManifestPath(local)) {
      out.push(externalPlugin(local, env));
      continue;
    }
    const target = /^[./]/.test(spec) || isAbsolute(spec) ? pathToFileURL(resolve(cwd, spec)).href : spec;
    let mod: Record<string, unknown>;
    try {
      mod = (await import(target)) as Record<string, unknown>;
    } catch (e) {
      throw Errors.CONFIG_INVALID(`Plugin module ${JSON.stringify(spec)} (--plugins / WANLLMDB_PLUGINS) cannot be loaded: ${e instanceof Error ? e.message : String(e)}. Give a path or an installed package name.`, [
        { field: 'WANLLMDB_PLUGINS', message: spec },
      ]);
    }
    const p = [mod.default, mod.plugin].find((x): x is Plugin => !!x && (x as Plugin).kind === 'wanllmdb.plugin');
    if (!p) {
      throw Errors.CONFIG_INVALID(`Plugin module ${JSON.stringify(spec)} exports no plugin: export the value of definePlugin({...}) as default or as "plugin".`, [
        { field: 'WANLLMDB_PLUGINS', message: spec },
      ]);
    }
    out.push(p);
  }
  return out;
}

/** Addresses that only this machine can reach. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}

/**
 * First start of a server that requires sign-in: with no account yet, make
 * the administrator named by WANLLMDB_BOOTSTRAP_ADMIN=email:password, or say
 * how to make one. Runs before the server listens, so nobody can sign up first.
 */
function bootstrapPlugin(made: { setupToken?: string }): Plugin {
  return definePlugin({
    id: 'bootstrap',
    version: '0.1.0',
    deps: { admin: authAdminRef },
    settings: {
      admin: setting.string({ env: 'WANLLMDB_BOOTSTRAP_ADMIN', secret: true, doc: 'email:password of the first administrator, made at the first start (no account yet)' }),
    },
    init(ctx) {
      const { admin } = ctx.deps;
      const spec = ctx.settings.admin;
      ctx.onStart(async () => {
        if ((await admin.userCount()) > 0) return;
        if (spec) {
          const colon = spec.indexOf(':');
          if (colon < 1) {
            throw Errors.CONFIG_INVALID('WANLLMDB_BOOTSTRAP_ADMIN must be email:password, e.g. admin@example.com:a-long-password.', [
              { field: 'WANLLMDB_BOOTSTRAP_ADMIN', message: 'expected email:password' },
            ]);
          }
          const user = await admin.createUser({ email: spec.slice(0, colon), password: spec.slice(colon + 1), superuser: true });
          ctx.logger.info({ email: user.email }, 'created the first administrator from WANLLMDB_BOOTSTRAP_ADMIN');
          return;
        }
        made.setupToken = await admin.createSetupToken(); // announced with its link once the server listens
      });
    },
  });
}

/** The settings of the built-in plugins, for `wanllmdb serve --help`. */
export function builtInSettingsHelp(): string {
  const lines = describeSettings([...defaultPlugins, bootstrapPlugin({})]);
  return ['', 'Plugin settings (environment variables; --plugins modules may add their own):', ...lines.map((l) => `  ${l}`)].join('\n');
}

/** Starts a kernel that serves gRPC and HTTP; resolves once it is listening (`prepare`: once it has started, with ports 0). */
export async function serve(opts: ServeOptions = {}): Promise<{ kernel: Kernel; grpcPort: number; httpPort: number; setupToken?: string }> {
  const env = opts.env ?? process.env;
  const role = opts.role ?? 'single';
  const config = loadConfig({ flags: opts.flags, file: opts.configFile, env });
  let plugins = [...(opts.plugins ?? defaultPlugins), ...(await loadPlugins(config.plugins, process.cwd(), env))];
  if (config.auth === 'off') {
    if (!isLoopback(config.host)) {
      throw Errors.CONFIG_INVALID(
        `--no-auth is refused because the server would bind ${config.host}, which other machines can reach. Bind 127.0.0.1 (--host 127.0.0.1) or leave authentication on.`,
        [{ field: '--no-auth', message: 'only with a loopback --host' }],
      );
    }
    plugins = plugins.filter((p) => p.id !== 'auth');
  }
  const bootstrap: { setupToken?: string } = {};
  // A worker finds the first administrator (or the setup token) made by the primary's `prepare`.
  if (role !== 'worker' && config.auth !== 'off' && plugins.some((p) => p.id === 'auth')) plugins = [...plugins, bootstrapPlugin(bootstrap)];
  const uiDir = webUiDir();
  const kernel = new Kernel({ plugins, config, env, listen: role !== 'prepare', uiDir, ipc: opts.ipc });
  const listening = await kernel.start();
  // Said once per server: by the single process, or by the primary's prepare run (not by each worker).
  if (role === 'worker') return { kernel, grpcPort: listening!.grpcPort, httpPort: listening!.httpPort };
  kernel.logger.info({ db: redactUrl(config.db), blobs: redactUrl(config.blobs), bus: redactUrl(config.bus) }, 'storage');
  if (!uiDir) kernel.logger.warn('the web UI is not built (run `npm run build`): the API is served, / is not');
  if (config.auth === 'off') {
    kernel.logger.warn('authentication is OFF (--no-auth): every caller on this machine acts as the local administrator');
  }
  if (role === 'prepare') return { kernel, grpcPort: 0, httpPort: 0, setupToken: bootstrap.setupToken };
  if (bootstrap.setupToken) announceSetupToken(kernel.logger, config.host, listening!.httpPort, bootstrap.setupToken);
  return { kernel, grpcPort: listening!.grpcPort, httpPort: listening!.httpPort };
}

/** Logs the one-time link that creates the first administrator. */
export function announceSetupToken(logger: Kernel['logger'], bindHost: string, httpPort: number, setupToken: string): void {
  const host = bindHost.includes(':') ? `[${bindHost}]` : bindHost;
  const setupUrl = `http://${host}:${httpPort}/setup#token=${setupToken}`;
  logger.warn(
    { setupToken, setupUrl },
    `no account exists yet: open ${setupUrl} to create the first administrator (one time), or POST /api/v1/auth/register {"email","password","setupToken"}, ` +
      'or run `npx wanllmdb admin create-user --email you@example.com --admin --password-stdin`, or start with WANLLMDB_BOOTSTRAP_ADMIN=email:password',
  );
}
