import type { tracking } from '@wanllmdb/proto';

/**
 * The metrics engine's port, between the tracking service (runs, HTTP/gRPC
 * handlers) and the storage of metric history. One implementation
 * (`SqlMetricStore`) keeps history in the MetadataStore:
 *
 *   append(batch) ──► metric_batches row (durable, idempotent by batch id) ──► ack
 *                └──► piscina worker: Arrow IPC → per-key raw chunks + min/max/mean
 *                     tile levels + per-key stats ──► written in one transaction
 *
 * History per key is append-only and ordered by step; a chart query reads
 * O(maxPoints) tile buckets, never every point.
 */
export type MetricWarning = tracking.v1.MetricWarning;
export type MetricSeries = tracking.v1.MetricSeries;
export type MetricKeyStats = tracking.v1.MetricKeyStats;

/** Live updates carry at most this many points per key per batch (downsampled beyond, min/max kept). */
export const LIVE_POINTS_PER_KEY = 1000;

export interface AppendResult {
  batchId: string;
  /** Points stored by this call (0 for a duplicate). */
  accepted: number;
  /** The batch id was stored before: nothing new was written. */
  duplicate: boolean;
  /** Keys/points refused while the rest was kept (non-finite steps, keys too long, steps going backwards …). */
  warnings: MetricWarning[];
}

/** One point in the JSON API's shape. */
export interface PointInput {
  key: string;
  step: number;
  value: number;
  /** Epoch ms; 0 or absent means "now". */
  time?: number;
}

export interface MetricQuery {
  runIds: string[];
  /** Keys to return (empty: every key of each run). */
  keys: string[];
  /**
   * "step", "_time" (epoch ms), "_relative" (seconds since the run's first
   * point, over all its keys) or a logged key such as "epoch" (each point's x
   * is the last value of that key logged at or before its step; points before
   * the first such value are left out).
   */
  xKey: string;
  /** Range of x, in the units of `xKey`; open-ended when absent. */
  xMin?: number;
  xMax?: number;
  /**
   * Buckets per series (1 … 10000). When more points fall in the range, each
   * series comes back as at most this many buckets of equal x width.
   */
  maxPoints: number;
}

/** What subscribers of live updates receive after a batch is aggregated. */
export interface MetricsAppendedEvent {
  runId: string;
  batchId: string;
  /** New points of each key in the batch, at most `LIVE_POINTS_PER_KEY` per key (downsampled, min/max kept). */
  series: MetricSeries[];
}

export interface MetricStore {
  /**
   * Appends one Arrow IPC batch (schema: step Float64, key Dictionary<Int32,
   * Utf8>, value Float64, time Float64). Resolves once the batch is durable
   * (committed); it is aggregated into history and charts shortly after.
   * A batch id seen before for this run resolves with `duplicate: true` and
   * writes nothing. Bad bytes or schema → WLDB_ERR_VALIDATION; more than
   * 4,000,000 points or 64 MiB → WLDB_ERR_BODY_TOO_LARGE. Points with an empty
   * key or one over 256 characters, a step that is negative or not finite, or
   * a step below the key's last step are dropped and reported in `warnings`;
   * a time of 0 or not finite becomes the server's time.
   *
   * The store takes ownership of `arrowIpc`: when it is the whole of its
   * ArrayBuffer, that buffer may be transferred to a worker thread (and so be
   * detached) after the call. Pass a copy if you need the bytes afterwards.
   */
  append(runId: string, batchId: string, arrowIpc: Uint8Array): Promise<AppendResult>;
  /** The JSON routes' path: same checks and durability as `append`. */
  appendPoints(runId: string, points: PointInput[], batchId?: string): Promise<AppendResult>;
  query(q: MetricQuery): Promise<MetricSeries[]>;
  /** Statistics of every key of a run, by key. */
  keys(runId: string): Promise<MetricKeyStats[]>;
  /** Streams the full history of a run (all or some keys) as CSV or Arrow IPC bytes. */
  export(runId: string, keys: string[], format: 'csv' | 'arrow', send: (chunk: Uint8Array) => Promise<void>): Promise<void>;
  /** Removes every point, batch and statistic of a run. */
  deleteRun(runId: string): Promise<void>;
  /** Resolves when every batch appended so far has been aggregated (tests, shutdown). */
  idle(): Promise<void>;
  /**
   * Aggregates batches that were stored but not aggregated (a crash between
   * the two): all of them, or those stored at least `olderThanMs` ago (so a
   * live writer's own batches are left to it). Exactly once, whoever runs it.
   */
  recover(olderThanMs?: number): Promise<number>;
  close(): Promise<void>;
}
