import * as grpc from '@grpc/grpc-js';
import { methodsOf, type CallOptions, type ClientOf, type ServiceRef } from '@wanllmdb/proto';
import { Errors, errorFromWire, type ErrorDetail, type WldbError } from '../errors.js';

export { retryAfterSeconds } from '../errors.js';
import { decodeMessage, encodeMessage } from './codec.js';
import { Contract, type MethodInfo } from './contract.js';

export interface GrpcClientOptions {
  /** `host:port`, or `unix:/path/to.sock`. */
  address: string;
  /** Sent with every call, e.g. `{ authorization: 'Bearer <key>' }`. */
  metadata?: Record<string, string>;
  /** A unary call's deadline (default 60 s). */
  deadlineMs?: number;
  /** The contract that holds the service (a plugin's own protos: `new Contract(loadContractRoot([{ dir }]))`); default core's. */
  contract?: Contract;
}

/** The coded error another process answered with (`wldb-error-code` and `wldb-error-details-bin` trailers), or undefined when it sent none. */
export function codedError(err: grpc.ServiceError): WldbError | undefined {
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
  return errorFromWire(code, err.code, err.details || err.message, details);
}

/** A server's answer as a WldbError: its own code when it sent one, else what the status alone says. */
export function errorFromStatus(err: grpc.ServiceError): WldbError {
  return codedError(err) ?? Errors.SERVER_UNAVAILABLE(`No answer from the server (${grpc.status[err.code] ?? err.code}: ${err.details || err.message}).`);
}

/**
 * A typed gRPC client of one service of the contract, from its generated ref
 * (`grpcClient(projects.v1.ProjectService, { address }).getProject({ id })`):
 * unary calls and server streams, encoded with the contract's own types,
 * failing with the server's coded errors. Client streams (uploads) are the
 * SDK's. `close()` closes the connection.
 */
export function grpcClient<H>(ref: ServiceRef<H>, opts: GrpcClientOptions): ClientOf<H> & { close(): void } {
  const contract = opts.contract ?? new Contract();
  const byName = new Map<string, MethodInfo>(contract.methods(ref.fullName).map((m) => [m.name, m]));
  const channel = new grpc.Client(opts.address, grpc.credentials.createInsecure());
  const metadata = () => {
    const md = new grpc.Metadata();
    for (const [k, v] of Object.entries(opts.metadata ?? {})) md.set(k, v);
    return md;
  };
  const client: Record<string, unknown> = { close: () => channel.close() };
  for (const [handler, ref_] of Object.entries(methodsOf(ref))) {
    const m = byName.get(ref_.name);
    if (!m || m.requestStream) continue;
    const serialize = (o: unknown) => Buffer.from(encodeMessage(m.requestType, o ?? {}));
    const deserialize = (b: Buffer) => decodeMessage(m.responseType, b);
    if (m.responseStream) {
      client[handler] = (request: unknown, options?: CallOptions) =>
        (async function* () {
          const call = channel.makeServerStreamRequest(m.path, serialize, deserialize, request ?? {}, metadata(), {});
          options?.signal?.addEventListener('abort', () => call.cancel(), { once: true });
          try {
            for await (const message of call) yield message;
          } catch (e) {
            throw errorFromStatus(e as grpc.ServiceError);
          }
        })();
    } else {
      client[handler] = (request: unknown, options?: CallOptions) =>
        new Promise((resolve, reject) => {
          const call = channel.makeUnaryRequest(m.path, serialize, deserialize, request ?? {}, metadata(), { deadline: Date.now() + (opts.deadlineMs ?? 60_000) }, (err, res) =>
            err ? reject(errorFromStatus(err)) : resolve(res),
          );
          options?.signal?.addEventListener('abort', () => call.cancel(), { once: true });
        });
    }
  }
  return client as ClientOf<H> & { close(): void };
}
