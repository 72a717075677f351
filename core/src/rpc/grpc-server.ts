import { constants as h2, type ServerHttp2Stream } from 'node:http2';
import { createServer, type AddressInfo, type Server as NetServer } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { PROTO_DIR, protoFiles, sourceFiles, type ContractSource } from '@wanllmdb/proto';
import { HealthImplementation, protoPath as healthProtoPath } from 'grpc-health-check';
import { Errors, retryAfterSeconds, type WldbError } from '../errors.js';
import type { Logger } from '../kernel/logger.js';
import { decodeMessage, decodeRequest, encodeMessage, UndecodableRequest } from './codec.js';
import type { ConnectionLimits } from './connection-limits.js';
import type { CallOrigin, MountedMethod, RpcHost } from './rpc-host.js';

function headersOf(md: grpc.Metadata): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(md.getMap())) out[k] = typeof v === 'string' ? v : undefined;
  return out;
}

/** `ipv4:127.0.0.1:50312` / `ipv6:[::1]:50312` / `127.0.0.1:50312` → the IP alone. */
export function peerAddress(peer: string): string {
  const p = peer.replace(/^ipv[46]:/, '');
  const v6 = /^\[([^\]]+)\](:\d+)?$/.exec(p);
  if (v6) return v6[1]!;
  return p.replace(/:\d+$/, '');
}

function toServiceError(e: WldbError): Pick<grpc.StatusObject, 'code' | 'details' | 'metadata'> {
  const metadata = new grpc.Metadata();
  metadata.set('wldb-error-code', e.code);
  metadata.set('wldb-error-details-bin', Buffer.from(JSON.stringify(e.details)));
  const retryAfter = retryAfterSeconds(e);
  if (retryAfter) metadata.set('retry-after', retryAfter);
  return { code: e.grpcStatus, details: e.message, metadata };
}

/** A call that says when the handler asks for the next request message (grpc-js reads on demand). */
class ReadWatchingCall extends grpc.ServerInterceptingCall {
  constructor(
    next: grpc.ServerInterceptingCallInterface,
    responder: grpc.Responder,
    private readonly onStartRead: () => void,
  ) {
    super(next, responder);
  }

  override startRead(): void {
    this.onStartRead();
    super.startRead();
  }
}

/**
 * The HTTP/2 stream under a call. grpc-js keeps it private (the innermost
 * call's `stream`), so it is found by its shape; a grpc-js that changes this
 * finds none, and a cut call then ends with its status alone.
 */
function http2StreamOf(call: unknown): ServerHttp2Stream | undefined {
  let c = call as { nextCall?: unknown; stream?: unknown } | undefined;
  for (let depth = 0; c && depth < 16; depth++, c = c.nextCall as typeof c) {
    const s = c.stream as ServerHttp2Stream | undefined;
    if (s && typeof s.close === 'function' && 'rstCode' in s) return s;
  }
  return undefined;
}

/**
 * Cuts a call whose next request message (or the end of its messages) takes
 * longer than `ms` to arrive once the handler waits for it: the gRPC side of
 * the HTTP request timeout, so a client trickling a message cannot hold a
 * stream, and its share of the connection's memory, for ever. Time the
 * handler spends working is not counted (grpc-js reads only when asked).
 */
export function requestTimeoutInterceptor(ms: number): grpc.ServerInterceptor {
  return (_method, next) => {
    let timer: NodeJS.Timeout | undefined;
    const disarm = () => {
      clearTimeout(timer);
      timer = undefined;
    };
    const call: ReadWatchingCall = new ReadWatchingCall(
      next,
      new grpc.ResponderBuilder()
        .withStart((start) =>
          start(
            new grpc.ServerListenerBuilder()
              .withOnReceiveMessage((message, pass) => {
                disarm();
                pass(message);
              })
              .withOnReceiveHalfClose((pass) => {
                disarm();
                pass();
              })
              .withOnCancel(disarm)
              .build(),
          ),
        )
        .withSendStatus((status, pass) => {
          disarm();
          pass(status);
        })
        .build(),
      () => {
        timer ??= setTimeout(() => {
          call.sendStatus(
            toServiceError(
              Errors.REQUEST_TIMEOUT(
                `The request message did not arrive whole within ${ms} ms (the server's --request-timeout / WANLLMDB_REQUEST_TIMEOUT_MS). Send each message at once; on a slow link send smaller messages.`,
              ),
            ),
          );
          // The status alone leaves the stream open while the client goes on sending (and its connection never idle):
          // after the answer, ask the client to stop (RST_STREAM NO_ERROR, as RFC 9113 §8.1 allows).
          const stream = http2StreamOf(next);
          if (stream && !stream.closed) setImmediate(() => stream.closed || stream.close(h2.NGHTTP2_NO_ERROR));
        }, ms);
        timer.unref();
      },
    );
    return call;
  };
}

export interface GrpcServerOptions {
  /** The longest wait for each request message (see requestTimeoutInterceptor). */
  requestTimeoutMs: number;
  /** A connection without a call for this long is closed (and an open one is pinged this often). */
  idleTimeoutMs: number;
  /** Admits each accepted connection (shared with the HTTP port); absent on the plugins' unix socket. */
  connections?: ConnectionLimits;
  /** Plugins' own .proto folders, for reflection beside core's. */
  contractSources?: readonly ContractSource[];
}

/**
 * The gRPC face: one grpc-js server for every mounted service, plus
 * grpc.health.v1.Health and server reflection (so generic clients such as
 * grpcurl can list and call services).
 */
/** A client stream's messages; reading one that could not be decoded throws its coded error (the handler's call fails with it). */
async function* readable(call: AsyncIterable<unknown>): AsyncGenerator<unknown> {
  for await (const message of call) {
    if (message instanceof UndecodableRequest) throw message.error;
    yield message;
  }
}

export class GrpcServer {
  private readonly server: grpc.Server;
  private listener?: NetServer;
  private socketPath?: string;
  readonly health = new HealthImplementation({ '': 'NOT_SERVING' });

  constructor(
    private readonly host: RpcHost,
    private readonly logger: Logger,
    private readonly opts: GrpcServerOptions,
  ) {
    this.server = new grpc.Server({
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
      'grpc.max_connection_idle_ms': opts.idleTimeoutMs,
      // Finds peers that vanished mid-call (no FIN ever comes): unanswered pings close the connection after 20 s.
      'grpc.keepalive_time_ms': opts.idleTimeoutMs,
      'grpc.keepalive_timeout_ms': 20_000,
      // One connection cannot hold an unbounded number of half-sent calls (100: HTTP/2's recommended minimum).
      'grpc.max_concurrent_streams': 100,
      // grpc-node.max_session_memory stays grpc-js's default (off): Node degrades badly at that limit, and a
      // session's memory is bounded here by the stream cap, the message size and the request timeout.
      interceptors: [requestTimeoutInterceptor(opts.requestTimeoutMs)],
    });
  }

  private origin(call: { metadata: grpc.Metadata; getPeer(): string }, signal: AbortSignal): CallOrigin {
    const headers = headersOf(call.metadata);
    // A unix socket's peer has no IP address: `unix:<socket path>` says which socket it came through (plugin credentials are taken there only).
    const address = this.socketPath ? `unix:${this.socketPath}` : peerAddress(call.getPeer());
    return { transport: 'grpc', headers, requestId: headers['x-request-id'], address, signal };
  }

  private definition(methods: MountedMethod[]): grpc.ServiceDefinition {
    const def: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
    for (const m of methods) {
      def[m.name] = {
        path: m.path,
        requestStream: m.requestStream,
        responseStream: m.responseStream,
        requestSerialize: (o: unknown) => Buffer.from(encodeMessage(m.requestType, o)),
        // A bad message becomes an UndecodableRequest, answered with its code (grpc-js would answer a throw with INTERNAL):
        // by RpcHost.invoke for a unary request, by the handler's read of a client stream (readable() below).
        requestDeserialize: (b: Buffer) => decodeRequest(m.requestType, b),
        responseSerialize: (o: unknown) => Buffer.from(encodeMessage(m.responseType, o)),
        responseDeserialize: (b: Buffer) => decodeMessage(m.responseType, b),
        originalName: m.handlerName,
      };
    }
    return def as grpc.ServiceDefinition;
  }

  private implementation(methods: MountedMethod[]): grpc.UntypedServiceImplementation {
    const impl: grpc.UntypedServiceImplementation = {};
    for (const m of methods) {
      if (m.responseStream) {
        impl[m.name] = (call: grpc.ServerWritableStream<unknown, unknown>) => {
          const gone = new AbortController();
          call.on('cancelled', () => gone.abort());
          const send = (msg: unknown) =>
            new Promise<void>((resolve) => {
              if (call.write(msg)) resolve();
              else call.once('drain', () => resolve());
            });
          this.host.invoke(m, call.request, this.origin(call, gone.signal), send).then(
            () => call.end(),
            (e: WldbError) => call.destroy(Object.assign(new Error(e.message), toServiceError(e))),
          );
        };
      } else if (m.requestStream) {
        impl[m.name] = (call: grpc.ServerReadableStream<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
          const gone = new AbortController();
          call.on('cancelled', () => gone.abort());
          this.host.invoke(m, readable(call), this.origin(call, gone.signal)).then(
            (res) => callback(null, res),
            (e: WldbError) => callback(toServiceError(e)),
          );
        };
      } else {
        impl[m.name] = (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
          const gone = new AbortController();
          call.on('cancelled', () => gone.abort());
          this.host.invoke(m, call.request, this.origin(call, gone.signal)).then(
            (res) => callback(null, res),
            (e: WldbError) => callback(toServiceError(e)),
          );
        };
      }
    }
    return impl;
  }

  /** Binds and serves on TCP. Resolves to the port (useful with port 0). */
  async listen(host: string, port: number): Promise<number> {
    const listener = await this.serve({ host, port });
    const bound = (listener.address() as AddressInfo).port;
    this.logger.debug({ port: bound }, 'gRPC listening');
    return bound;
  }

  /** Binds and serves on a unix socket (the out-of-process plugins' way back into the kernel). */
  async listenUnix(path: string): Promise<void> {
    this.socketPath = path;
    await this.serve({ path });
    this.logger.debug({ path }, 'gRPC listening on a unix socket');
  }

  private async serve(at: { host: string; port: number } | { path: string }): Promise<NetServer> {
    const byService = new Map<string, MountedMethod[]>();
    for (const m of this.host.mounted()) byService.set(m.service, [...(byService.get(m.service) ?? []), m]);
    for (const [, methods] of byService) this.server.addService(this.definition(methods), this.implementation(methods));
    this.health.addToServer(this.server);
    const sources = this.opts.contractSources ?? [];
    const pkg = protoLoader.loadSync([...protoFiles(), ...sourceFiles(sources), healthProtoPath], { includeDirs: [...sources.map((s) => s.dir), PROTO_DIR], keepCase: true });
    new ReflectionService(pkg).addToServer(this.server);
    // Our own listener hands grpc-js only the connections the limits admit (grpc-js has no hook at accept).
    const injector = this.server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
    const listener = createServer({ noDelay: true }, (socket) => {
      if (!this.opts.connections || this.opts.connections.admit(socket, 'grpc')) injector.injectConnection(socket);
    });
    await new Promise<void>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen(at, () => {
        listener.off('error', reject);
        resolve();
      });
    });
    listener.on('error', (err) => this.logger.error({ err }, 'the gRPC listener failed'));
    this.listener = listener;
    this.health.setStatus('', 'SERVING');
    for (const s of byService.keys()) this.health.setStatus(s, 'SERVING');
    return listener;
  }

  setNotServing(): void {
    this.health.setStatus('', 'NOT_SERVING');
    for (const s of this.host.serviceNames()) this.health.setStatus(s, 'NOT_SERVING');
  }

  /** Stops accepting calls and waits for running ones, cutting them after `timeoutMs`. */
  async close(timeoutMs: number): Promise<void> {
    this.listener?.close();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, timeoutMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
