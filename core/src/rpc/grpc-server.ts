import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { PROTO_DIR, protoFiles } from '@wanllmdb/proto';
import { HealthImplementation, protoPath as healthProtoPath } from 'grpc-health-check';
import { retryAfterSeconds, type WldbError } from '../errors.js';
import type { Logger } from '../kernel/logger.js';
import { decodeMessage, encodeMessage } from './codec.js';
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

function toServiceError(e: WldbError): Partial<grpc.StatusObject> {
  const metadata = new grpc.Metadata();
  metadata.set('wldb-error-code', e.code);
  metadata.set('wldb-error-details-bin', Buffer.from(JSON.stringify(e.details)));
  const retryAfter = retryAfterSeconds(e);
  if (retryAfter) metadata.set('retry-after', retryAfter);
  return { code: e.grpcStatus, details: e.message, metadata };
}

/**
 * The gRPC face: one grpc-js server for every mounted service, plus
 * grpc.health.v1.Health and server reflection (so generic clients such as
 * grpcurl can list and call services).
 */
export class GrpcServer {
  private readonly server = new grpc.Server({ 'grpc.max_receive_message_length': 64 * 1024 * 1024 });
  readonly health = new HealthImplementation({ '': 'NOT_SERVING' });

  constructor(
    private readonly host: RpcHost,
    private readonly logger: Logger,
  ) {}

  private origin(call: { metadata: grpc.Metadata; getPeer(): string }, signal: AbortSignal): CallOrigin {
    const headers = headersOf(call.metadata);
    return { transport: 'grpc', headers, requestId: headers['x-request-id'], address: peerAddress(call.getPeer()), signal };
  }

  private definition(methods: MountedMethod[]): grpc.ServiceDefinition {
    const def: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
    for (const m of methods) {
      def[m.name] = {
        path: m.path,
        requestStream: m.requestStream,
        responseStream: m.responseStream,
        requestSerialize: (o: unknown) => Buffer.from(encodeMessage(m.requestType, o)),
        requestDeserialize: (b: Buffer) => decodeMessage(m.requestType, b),
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
          this.host.invoke(m, call, this.origin(call, gone.signal)).then(
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

  /** Binds and serves. Resolves to the port (useful with port 0). */
  async listen(host: string, port: number): Promise<number> {
    const byService = new Map<string, MountedMethod[]>();
    for (const m of this.host.mounted()) byService.set(m.service, [...(byService.get(m.service) ?? []), m]);
    for (const [, methods] of byService) this.server.addService(this.definition(methods), this.implementation(methods));
    this.health.addToServer(this.server);
    const pkg = protoLoader.loadSync([...protoFiles(), healthProtoPath], { includeDirs: [PROTO_DIR], keepCase: true });
    new ReflectionService(pkg).addToServer(this.server);
    const bound = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync(`${host.includes(':') ? `[${host}]` : host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    this.health.setStatus('', 'SERVING');
    for (const s of byService.keys()) this.health.setStatus(s, 'SERVING');
    this.logger.debug({ port: bound }, 'gRPC listening');
    return bound;
  }

  setNotServing(): void {
    this.health.setStatus('', 'NOT_SERVING');
    for (const s of this.host.serviceNames()) this.health.setStatus(s, 'NOT_SERVING');
  }

  /** Stops accepting calls and waits for running ones, cutting them after `timeoutMs`. */
  async close(timeoutMs: number): Promise<void> {
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
