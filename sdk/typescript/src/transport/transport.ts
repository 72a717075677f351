import { methodsOf, tracking, type ServiceRef } from '@wanllmdb/proto';
import type { CallMethod } from '../protocol.js';

/** One encoded metric batch: Arrow IPC bytes under a batch id that makes retries idempotent. */
export interface EncodedBatch {
  batchId: string;
  bytes: Uint8Array;
  /** Points in the batch (progress, statistics). */
  points: number;
}

/** What `uploadFile` is asked: a local file to store under a name in the run. */
export interface UploadRequest {
  runId: string;
  /** Name in the run, e.g. "model.pt" or "checkpoints/last.ckpt". */
  path: string;
  /** Absolute path of the local file. */
  source: string;
}

/**
 * How the sink reaches the store. The sink worker drives one; `wanllmdb sync`
 * drives one from its own thread. Every method resolves only when the store
 * has durably taken the data.
 */
export interface Transport {
  /** For messages: "server at grpc://…", "embedded store in …". */
  readonly name: string;
  /** Identifies the store a sync writes to (its progress is recorded per target). */
  readonly target: string;
  /** Appends batches of one run in order; resolves once every one is durable. Returns the store's warnings. */
  appendBatches(runId: string, batches: readonly EncodedBatch[]): Promise<tracking.v1.MetricWarning[]>;
  call(method: CallMethod, request: unknown): Promise<unknown>;
  /** Releases the store; `idleMs` bounds how long background work of the store (aggregation) may still take. */
  close(idleMs?: number): Promise<void>;
}

/**
 * Calls by full method name, for services beyond the run's (artifacts): the
 * embedded store and the remote server both offer them, with the same object
 * forms as handlers see. Streams stream: nothing is held whole.
 */
export interface MethodCalls {
  unary<T>(fullMethod: string, request: unknown): Promise<T>;
  clientStream<T>(fullMethod: string, messages: AsyncIterable<unknown>): Promise<T>;
  /** Calls `onMessage` for each message, in order, waiting for it before the next. */
  serverStream<T>(fullMethod: string, request: unknown, onMessage: (message: T) => Promise<void> | void): Promise<void>;
}

/** The service of each call the SDK makes (the method is the generated ref's, by the same handler name). */
const SERVICE_OF: Record<CallMethod, ServiceRef<unknown>> = {
  createRun: tracking.v1.RunService,
  finishRun: tracking.v1.RunService,
  getRun: tracking.v1.RunService,
  updateConfig: tracking.v1.RunService,
  updateSummary: tracking.v1.RunService,
  heartbeat: tracking.v1.RunService,
  appendLogs: tracking.v1.RunLogService,
  uploadFile: tracking.v1.RunFileService,
  listMetricKeys: tracking.v1.MetricService,
};

/** `wanllmdb.tracking.v1.RunService/CreateRun` for `createRun`. */
export const fullMethod = (m: CallMethod) => `${SERVICE_OF[m].fullName}/${methodsOf(SERVICE_OF[m])[m]!.name}`;
export const APPEND_METRIC_BATCH = `${tracking.v1.MetricService.fullName}/${tracking.v1.MetricService.methods!.appendMetricBatch!.name}`;
export const STREAM_METRICS = `${tracking.v1.MetricService.fullName}/${tracking.v1.MetricService.methods!.streamMetrics!.name}`;

/** Chunks of a local file for UploadFile (the first names run and path, as the contract wants). */
export async function* fileChunks(req: UploadRequest, chunkBytes = 1 << 20): AsyncGenerator<tracking.v1.UploadFileChunk> {
  const { createReadStream } = await import('node:fs');
  let first = true;
  for await (const data of createReadStream(req.source, { highWaterMark: chunkBytes })) {
    yield { runId: req.runId, path: req.path, data: data as Buffer };
    first = false;
  }
  if (first) yield { runId: req.runId, path: req.path, data: new Uint8Array(0) };
}
