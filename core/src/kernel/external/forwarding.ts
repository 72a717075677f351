import * as grpc from '@grpc/grpc-js';
import type { StreamSender } from '@wanllmdb/proto';
import { Errors, WldbError, type ErrorDetail } from '../../errors.js';
import type { CallContext } from '../../rpc/call-context.js';
import { decodeMessage, encodeMessage } from '../../rpc/codec.js';
import type { MethodInfo } from '../../rpc/contract.js';
import { codedError } from '../../rpc/grpc-client.js';
import type { Logger } from '../logger.js';
import { CALL_TOKEN_HEADER, type PluginHost } from './plugin-host.js';
import type { PluginProcess } from './plugin-process.js';

type Handler = (request: unknown, ctx: CallContext, send?: StreamSender<unknown>) => Promise<unknown>;

/** One handler per method: forwards the call, with who is calling, to the program. */
export function forwarders(methods: MethodInfo[], program: PluginProcess, host: PluginHost, pluginId: string, logger: Logger): Record<string, Handler> {
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
            // The program's status is its error; anything else (the caller's transport failed) is passed on as it is.
            throw isServiceError(e) ? fail(e) : e;
          } finally {
            ctx.signal.removeEventListener('abort', cancel);
            call.cancel(); // a no-op once the stream ended; otherwise the program stops working on it
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

const isServiceError = (e: unknown): e is grpc.ServiceError => e instanceof Error && typeof (e as grpc.ServiceError).code === 'number' && 'metadata' in e;

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
  const coded = codedError(err);
  // A program's own code passes on, with its words — except an internal error, whose words are for the log only.
  if (coded && coded.code !== Errors.INTERNAL.code && err.code !== grpc.status.INTERNAL && err.code !== grpc.status.UNKNOWN) return coded;
  const message = err.details || err.message;
  const plain = BY_STATUS[err.code];
  if (plain) return plain(message);
  if (err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.CANCELLED) return program.unavailable();
  logger.error({ method, status: grpc.status[err.code], details: message }, 'the plugin program failed a call');
  return Errors.INTERNAL(`Plugin call ${method} failed inside the plugin. It has been logged; retry, and report it if it persists.`);
}
