import { relative } from 'node:path';
import { loadContractRoot } from '@wanllmdb/proto';
import protobuf from 'protobufjs';
import { Contract, type MethodInfo } from '../../rpc/contract.js';
import { definePlugin, type Plugin } from '../define-plugin.js';
import { coreServices } from '../refs.js';
import { Errors } from '../../errors.js';
import { readManifest, type PluginManifest } from './manifest.js';

/**
 * An out-of-process plugin (ADR 0019): a program in any language, described
 * by the `wanllmdb-plugin.json` in `path` (the folder, or the file itself).
 * Its services come from its own .proto files and are served over gRPC,
 * HTTP/JSON and in process like any plugin's, behind the same
 * authentication, permissions and audit; each call is forwarded to the
 * program over its unix socket. The kernel starts the program when it
 * starts, restarts it with back-off when it dies, and stops it when it stops.
 */
export function externalPlugin(path: string, env: NodeJS.ProcessEnv = process.env): Plugin {
  const manifest = readManifest(path);
  return definePlugin({
    id: manifest.id,
    version: manifest.version,
    proto: manifest.proto,
    settings: manifest.settings,
    deps: { host: coreServices.pluginHost, logger: coreServices.logger },
    async init(ctx) {
      const { host, logger } = ctx.deps;
      const settingsEnv: Record<string, string> = {};
      for (const [name, spec] of Object.entries(manifest.settings)) {
        const value = (ctx.settings as Record<string, unknown>)[name];
        if (value !== undefined) settingsEnv[spec.env] = String(value);
      }
      // gRPC loads only when an out-of-process plugin does, not with every import of core.
      const [{ PluginProcess }, { forwarders }] = await Promise.all([import('./plugin-process.js'), import('./forwarding.js')]);
      const program = new PluginProcess(manifest, settingsEnv, host, logger, env);
      for (const [service, methods] of ownServices(manifest)) {
        ctx.service({ fullName: service }, forwarders(methods, program, host, manifest.id, logger));
      }
      ctx.onStart(() => program.start());
      ctx.onStop(() => program.stop());
    },
  });
}

/** The services declared in the plugin's own .proto files, with their methods. */
function ownServices(manifest: PluginManifest): Map<string, MethodInfo[]> {
  const root = loadContractRoot([{ dir: manifest.proto }]);
  const contract = new Contract(root);
  const out = new Map<string, MethodInfo[]>();
  const walk = (ns: protobuf.NamespaceBase) => {
    for (const n of ns.nestedArray) {
      if (n instanceof protobuf.Service && n.filename && !relative(manifest.proto, n.filename).startsWith('..')) {
        const name = n.fullName.slice(1);
        out.set(name, contract.methods(name));
      } else if (n instanceof protobuf.Namespace) walk(n);
    }
  };
  walk(root);
  if (!out.size) throw Errors.PLUGIN_INVALID(`Plugin "${manifest.id}" declares no service in ${manifest.proto}. Add a service to its .proto files.`);
  return out;
}
