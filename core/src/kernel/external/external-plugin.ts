import { relative } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadContractRoot, type StreamSender } from '@wanllmdb/proto';
import protobuf from 'protobufjs';
import { Errors, errorFromWire, WldbError, type ErrorDetail } from '../../errors.js';
import type { CallContext } from '../../rpc/call-context.js';
import { decodeMessage, encodeMessage } from '../../rpc/codec.js';
import { Contract, type MethodInfo } from '../../rpc/contract.js';
import { definePlugin, type Plugin } from '../define-plugin.js';
import type { Logger } from '../logger.js';
import { coreServices } from '../refs.js';
import { readManifest, type PluginManifest } from './manifest.js';
import { CALL_TOKEN_HEADER, type PluginHost } from './plugin-host.js';
import { PluginProcess } from './plugin-process.js';

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
    init(ctx) {
      const { host, logger } = ctx.deps;
      const settingsEnv: Record<string, string> = {};
      for (const [name, spec] of Object.entries(manifest.settings)) {
        const value = (ctx.settings as Record<string, unknown>)[name];
        if (value !== undefined) settingsEnv[spec.env] = String(value);
      }
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

type Handler = (request: unknown, ctx: CallContext, send?: StreamSender<unknown>) => Promise<unknown>;

/** One handler per method: forwards the call, with who is calling, to the program. */
function forwarders(methods: MethodInfo[], program: PluginProcess, host: PluginHost, pluginId: string, logger: Logger): Record<string, Handler> {
  const handlers: Record<string, Handler> = {};
  for (const m of methods) {
    const serialize = (o: unknown) => Buffer.from(encodeMessage(m.requestType, o));
    const deserialize = (b: Buffer) => decodeMessage(m.responseType, b);
    handlers[m.handlerName] = async (request, ctx, send) => {
      const client = await program.client(ctx.signal);
      const delegation = host.delegate(pluginId, ctx.principal);
      const md = new grpc.Metadata();
      md.set('x-request-id', ctx.requestId);
      md.set('x-wanllmdb-caller-id', ctx.principal.id);
      md.set('x-wanllmdb-caller-kind', ctx.principal.kind);
      md.set('x-wanllmdb-caller-name', ctx.principal.name);
      md.set(CALL_TOKEN_HEADER, delegation.token);
      const fail = (err: grpc.ServiceError) => wireError(err, ctx, program, logger, m.fullName);
      try {
        if (m.responseStream) {
          const call = client.makeServerStreamRequest(m.path, serialize, deserialize, request, md, {});
          const cancel = () => call.cancel();
          ctx.signal.addEventListener('abort', cancel, { once: true });
          try {
            for await (const message of call) await send!(message);
          } catch (e) {
            throw fail(e as grpc.ServiceError);
          } finally {
            ctx.signal.removeEventListener('abort', cancel);
          }
          return undefined;
        }
        return await new Promise((resolve, reject) => {
          const done = (err: grpc.ServiceError | null, res?: unknown) => (err ? reject(fail(err)) : resolve(res));
          const call = m.requestStream
            ? client.makeClientStreamRequest(m.path, serialize, deserialize, md, {}, done)
            : client.makeUnaryRequest(m.path, serialize, deserialize, request, md, {}, done);
          ctx.signal.addEventListener('abort', () => call.cancel(), { once: true });
          if (m.requestStream) {
            const writer = call as grpc.ClientWritableStream<unknown>;
            void (async () => {
              try {
                for await (const message of request as AsyncIterable<unknown>) {
                  if (!writer.write(message)) await new Promise((r) => writer.once('drain', r));
                }
                writer.end();
              } catch (e) {
                writer.cancel();
                reject(e);
              }
            })();
          }
        });
      } finally {
        delegation.end();
      }
    };
  }
  return handlers;
}

const BY_STATUS: Partial<Record<number, (message: string, details?: ErrorDetail[]) => WldbError>> = {
  [grpc.status.INVALID_ARGUMENT]: Errors.VALIDATION,
  [grpc.status.NOT_FOUND]: Errors.NOT_FOUND,
  [grpc.status.ALREADY_EXISTS]: Errors.ALREADY_EXISTS,
  [grpc.status.PERMISSION_DENIED]: Errors.PERMISSION_DENIED,
};

/**
 * The program's answer as the caller's error: its own `wldb-error-code`
 * when it set one, a generic code for a plain status; a crash or an
 * unexpected status is logged and shown as WLDB_ERR_INTERNAL.
 */
function wireError(err: grpc.ServiceError, ctx: CallContext, program: PluginProcess, logger: Logger, method: string): WldbError {
  if (ctx.signal.aborted) return ctx.signal.reason instanceof WldbError ? ctx.signal.reason : Errors.SHUTTING_DOWN('The call was cancelled: its caller went away or the server is stopping.');
  const message = err.details || err.message;
  const code = String(err.metadata?.get('wldb-error-code')[0] ?? '');
  let details: ErrorDetail[] = [];
  const raw = err.metadata?.get('wldb-error-details-bin')[0];
  if (raw) {
    try {
      const parsed = JSON.parse(Buffer.from(raw as Buffer).toString('utf8')) as unknown;
      if (Array.isArray(parsed)) details = parsed.filter((d): d is ErrorDetail => !!d && typeof d === 'object' && typeof (d as ErrorDetail).message === 'string');
    } catch {
      /* details are optional */
    }
  }
  const coded = errorFromWire(code, err.code, message, details);
  if (coded) return coded;
  const plain = BY_STATUS[err.code];
  if (plain) return plain(message, details);
  if (err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.CANCELLED) return program.unavailable();
  logger.error({ method, status: grpc.status[err.code], details: message }, 'the plugin program failed a call');
  return Errors.INTERNAL(`Plugin call ${method} failed inside the plugin. It has been logged; retry, and report it if it persists.`);
}
