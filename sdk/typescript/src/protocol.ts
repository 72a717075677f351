/**
 * What the run (main thread) and its sink worker say to each other.
 *
 * Metric points never travel as objects: a chunk is four typed arrays whose
 * buffers are *transferred* (moved, not copied) to the worker. Everything the
 * main thread must know synchronously — how many bytes are still in flight,
 * which chunks are durable, whether the worker is alive — lives in one small
 * SharedArrayBuffer, so `log()` can block with `Atomics.wait` when the sink is
 * slow, even inside a loop that never yields to the event loop.
 */
import type { tracking } from '@wanllmdb/proto';
import type { Chunk } from './metric-buffer.js';

/** Slots of the shared Int32Array. */
export const Slot = {
  /** Bytes of chunks posted to the worker and not yet durably acknowledged. */
  BYTES_IN_FLIGHT: 0,
  /** Highest chunk sequence number such that it and every earlier one are acknowledged. */
  ACKED_SEQ: 1,
  /** Bumped on every acknowledgement (the word `log()` waits on). */
  PROGRESS: 2,
  /** 0 while the worker runs; 1 once it has stopped or failed for good. */
  WORKER_DOWN: 3,
  /** Bumped when a call posted with `sync: true` has completed (the word exit handlers wait on). */
  SYNC_DONE: 4,
  /** Chunks posted and not yet acknowledged. */
  CHUNKS_IN_FLIGHT: 5,
  /** Column sets the worker has handed back for reuse and the main thread has not taken yet. */
  RECYCLED: 6,
} as const;
/** At most this many column sets wait to be reused. */
export const MAX_RECYCLED = 4;
export const SHARED_SLOTS = 8;

export type Mode = 'embedded' | 'remote' | 'offline';

/** How the worker reaches the store; resolved by the main thread from options and environment. */
export interface SinkConfig {
  mode: Mode;
  /** embedded: the data folder (same default as `wanllmdb serve`). */
  dataDir?: string;
  /** remote: `host:port` (already stripped of `grpc://`). */
  address?: string;
  /** remote: sent as `authorization: Bearer …`. */
  apiKey?: string;
  /** offline: the spool folder of this run. */
  spoolDir?: string;
  /** How long to keep retrying a transient failure of CreateRun before init() gives up (ms). */
  connectTimeoutMs: number;
  /** How long the queue waits out rate limits (WLDB_ERR_RATE_LIMITED) while the server takes nothing of it, before what waits is given up (ms). */
  rateLimitWaitMs: number;
  heartbeatMs: number;
  /** Worker-side: close a remote metrics stream after this many bytes (to get acknowledgements). */
  streamBytes: number;
  logLevel: string;
  /** Points per full chunk. */
  chunkPoints: number;
  /** Tests and benchmarks: wait this long before each metric batch is appended (a deliberately slow sink). */
  delayMs?: number;
}

/** One chunk of points: only the first `length` entries count. Buffers are transferred. */
export interface ChunkMessage extends Chunk {
  type: 'chunk';
  seq: number;
}

export type CallMethod =
  | 'createRun'
  | 'finishRun'
  | 'updateConfig'
  | 'updateSummary'
  | 'appendLogs'
  | 'uploadFile'
  | 'heartbeat'
  | 'getRun'
  | 'listMetricKeys';

export interface CallMessage {
  type: 'call';
  id: number;
  method: CallMethod;
  request: unknown;
  /** Bump SHARED SYNC_DONE when done (the caller is blocked in Atomics.wait). */
  sync?: boolean;
  /** Bytes counted in BYTES_IN_FLIGHT for this call (console logs), released when done. */
  bytes?: number;
}

export interface InitMessage {
  type: 'init';
  config: SinkConfig;
  shared: SharedArrayBuffer;
  /** Where the worker hands full-size column sets back once encoded (read synchronously by the main thread). */
  recycle: import('node:worker_threads').MessagePort;
  /** Size of a full chunk (only sets of this size are recycled). */
  chunkPoints: number;
}

/** A column set handed back for reuse (buffers transferred). */
export interface RecycledColumns {
  step: Float64Array;
  value: Float64Array;
  time: Float64Array;
  keyIndex: Int32Array;
}

/** Resolve once every chunk up to `seq` is acknowledged (and every call queued before). */
export interface FlushMessage {
  type: 'flush';
  id: number;
  seq: number;
  sync?: boolean;
}

export interface StopMessage {
  type: 'stop';
  id: number;
  sync?: boolean;
  /** How long the store's background work may still take before it is closed. */
  idleMs?: number;
}

export type ToWorker = InitMessage | ChunkMessage | CallMessage | FlushMessage | StopMessage;

/** An error as it crosses the thread boundary (rebuilt as a WldbError on the other side). */
export interface ErrorPayload {
  code: string;
  message: string;
  grpcStatus: number;
  httpStatus: number;
  details: { field?: string; message: string }[];
}

export type FromWorker =
  | { type: 'ready' }
  | { type: 'result'; id: number; ok: true; value: unknown }
  | { type: 'result'; id: number; ok: false; error: ErrorPayload }
  /** With `error` when something queued before the flush was not stored (reported once, by the first flush after it). */
  | { type: 'flushed'; id: number; error?: ErrorPayload }
  | { type: 'stopped'; id: number }
  | { type: 'warning'; message: string }
  | { type: 'fatal'; error: ErrorPayload };

export type Run = tracking.v1.Run;
export type RunFile = tracking.v1.RunFile;
export type LogLine = tracking.v1.LogLine;
