import * as grpc from '@grpc/grpc-js';
import type { MethodInfo } from '@wanllmdb/core';
import { codedError, retryAfterSeconds } from '@wanllmdb/core/grpc';
import type { tracking } from '@wanllmdb/proto';
import type { CallMethod } from '../protocol.js';
import { RemoteCallError } from './remote-error.js';
import { fileChunks, fullMethod, type EncodedBatch, type MethodCalls, type Transport, type UploadRequest } from './transport.js';

/** How handlers' object form is read off the wire (the server's codec uses the same options). */
const OBJECT_FORM = { longs: Number, enums: String, defaults: true, arrays: true, objects: true, oneofs: false } as const;

function fromServiceError(err: grpc.ServiceError, address: string): RemoteCallError {
  // The server's coded error, read the one way core reads it (its details carry retryAfter for a rate limit).
  const coded = codedError(err);
  if (coded) {
    const retryAfter = retryAfterSeconds(coded);
    return new RemoteCallError(coded.message, coded.code, err.code, coded.details, retryAfter ? Number(retryAfter) * 1000 : undefined);
  }
  const why = (err.details || err.message).replace(/\s*Resolution note:\s*$/, '');
  return new RemoteCallError(`no answer from ${address} (${grpc.status[err.code] ?? err.code}: ${why})`, '', err.code, []);
}

export interface RemoteOptions {
  /** host:port */
  address: string;
  apiKey?: string;
  /** Per-call deadline for unary calls (ms). */
  callTimeoutMs?: number;
}

/**
 * A gRPC client of the tracking services. Messages are encoded with the
 * contract's own protobuf types (the kernel's `Contract`, with Struct/Value as
 * plain JSON), so requests have exactly the object form handlers see.
 * Metric batches go up a `StreamMetrics` client stream; everything else is a
 * unary call. The API key travels as `authorization: Bearer …` metadata.
 */
export class RemoteTransport implements Transport, MethodCalls {
  readonly name: string;
  readonly target: string;
  private readonly client: grpc.Client;
  private readonly methods = new Map<string, MethodInfo>();
  private readonly callTimeoutMs: number;

  private constructor(
    private readonly opts: RemoteOptions,
    methods: MethodInfo[],
  ) {
    this.name = `server at grpc://${opts.address}`;
    this.target = `grpc://${opts.address}`;
    this.callTimeoutMs = opts.callTimeoutMs ?? 60_000;
    for (const m of methods) this.methods.set(m.fullName, m);
    this.client = new grpc.Client(opts.address, grpc.credentials.createInsecure(), {
      'grpc.max_send_message_length': 256 * 1024 * 1024,
      'grpc.max_receive_message_length': 256 * 1024 * 1024,
      // A restarted server is found again within a couple of seconds, not grpc's default two minutes.
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 2_000,
      'grpc.keepalive_time_ms': 30_000,
      // A 16 MiB receive window: a download streams at the disk's pace, not one 64 KiB HTTP/2 window per round trip.
      'grpc-node.flow_control_window': 16 * 1024 * 1024,
      'grpc.keepalive_timeout_ms': 10_000,
    });
  }

  static async open(opts: RemoteOptions): Promise<RemoteTransport> {
    const [{ Contract }, { loadContractRoot }, { ARTIFACTS_PROTO_DIR }] = await Promise.all([import('@wanllmdb/core'), import('@wanllmdb/proto'), import('@wanllmdb/plugin-artifacts')]);
    const contract = new Contract(loadContractRoot([{ dir: ARTIFACTS_PROTO_DIR }]));
    const methods = [
      ...['RunService', 'MetricService', 'RunLogService', 'RunFileService'].map((s) => `wanllmdb.tracking.v1.${s}`),
      'wanllmdb.artifacts.v1.ArtifactService',
      'wanllmdb.projects.v1.ProjectService',
    ].flatMap((s) => contract.methods(s));
    return new RemoteTransport(opts, methods);
  }

  private metadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    if (this.opts.apiKey) md.set('authorization', `Bearer ${this.opts.apiKey}`);
    return md;
  }

  private method(fullName: string): MethodInfo {
    const m = this.methods.get(fullName);
    if (!m) throw new Error(`${fullName} is not in the contract`);
    return m;
  }

  private codec(m: MethodInfo) {
    return {
      serialize: (o: unknown) => {
        const bytes = m.requestType.encode(m.requestType.fromObject((o ?? {}) as Record<string, unknown>)).finish();
        return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      },
      deserialize: (b: Buffer) => m.responseType.toObject(m.responseType.decode(b), OBJECT_FORM),
    };
  }

  unary<T>(fullName: string, request: unknown): Promise<T> {
    const m = this.method(fullName);
    const { serialize, deserialize } = this.codec(m);
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(m.path, serialize, deserialize, request, this.metadata(), { deadline: Date.now() + this.callTimeoutMs }, (err, res) =>
        err ? reject(fromServiceError(err, this.opts.address)) : resolve(res as T),
      );
    });
  }

  serverStream<T>(fullName: string, request: unknown, onMessage: (message: T) => Promise<void> | void): Promise<void> {
    const m = this.method(fullName);
    const { serialize, deserialize } = this.codec(m);
    return new Promise<void>((resolve, reject) => {
      const call = this.client.makeServerStreamRequest(m.path, serialize, deserialize, request, this.metadata(), {});
      let failed = false;
      let chain = Promise.resolve();
      let pending = 0;
      let paused = false;
      call.on('data', (msg: T) => {
        // In order, one at a time; the stream pauses only while the consumer (a disk write) is well behind.
        pending++;
        if (pending >= 16 && !paused) {
          paused = true;
          call.pause();
        }
        chain = chain
          .then(() => (failed ? undefined : onMessage(msg)))
          .then(
            () => {
              pending--;
              if (paused && pending <= 4) {
                paused = false;
                call.resume();
              }
            },
            (err: unknown) => {
              failed = true;
              call.cancel();
              reject(err);
            },
          );
      });
      call.on('error', (err: grpc.ServiceError) => {
        if (!failed) reject(fromServiceError(err, this.opts.address));
      });
      call.on('end', () => void chain.then(() => !failed && resolve()));
    });
  }

  /** A client stream: writes every message (honouring flow control), then resolves with the single answer. */
  clientStream<T>(fullName: string, messages: AsyncIterable<unknown> | Iterable<unknown>): Promise<T> {
    const m = this.method(fullName);
    const { serialize, deserialize } = this.codec(m);
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const call = this.client.makeClientStreamRequest(m.path, serialize, deserialize, this.metadata(), {}, (err, res) => {
        settled = true;
        if (err) reject(fromServiceError(err, this.opts.address));
        else resolve(res as T);
      });
      void (async () => {
        try {
          for await (const msg of messages as AsyncIterable<unknown>) {
            if (settled) return;
            if (!call.write(msg)) {
              // Wait for room, or for the call to end (a failed call never drains: do not hold the batches).
              await new Promise<void>((r) => {
                const done = () => {
                  call.off('drain', done);
                  call.off('status', done);
                  r();
                };
                call.once('drain', done);
                call.once('status', done);
              });
            }
          }
          call.end();
        } catch (err) {
          call.cancel();
          if (!settled) {
            settled = true;
            reject(err);
          }
        }
      })();
    });
  }

  async appendBatches(runId: string, batches: readonly EncodedBatch[]): Promise<tracking.v1.MetricWarning[]> {
    if (batches.length === 0) return [];
    const res = await this.clientStream<tracking.v1.StreamMetricsResponse>(
      'wanllmdb.tracking.v1.MetricService/StreamMetrics',
      batches.map((b) => ({ runId, batchId: b.batchId, arrowIpc: b.bytes })),
    );
    const stored = new Set(res.batchIds ?? []);
    const missing = batches.filter((b) => !stored.has(b.batchId));
    if (missing.length) {
      // Not acknowledged means not known to be durable: the worker sends them again (the server skips duplicates).
      throw new RemoteCallError(`The server acknowledged ${stored.size} of ${batches.length} metric batches; resending the rest.`, '', 14, []);
    }
    return res.warnings ?? [];
  }

  call(method: CallMethod, request: unknown): Promise<unknown> {
    const full = fullMethod(method);
    if (method === 'uploadFile') return this.clientStream(full, fileChunks(request as UploadRequest));
    return this.unary(full, request);
  }

  async close(): Promise<void> {
    this.client.close();
  }
}
