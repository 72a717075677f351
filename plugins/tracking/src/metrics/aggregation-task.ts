import { transferableSymbol, valueSymbol } from 'piscina';

/**
 * What the main thread and an aggregation worker exchange. Everything bulky
 * travels as ArrayBuffers that are transferred (moved), never copied: each
 * batch's Arrow IPC buffer goes to the worker (which reads the columns in
 * place, at the byte offsets given) and comes back with the result, so a
 * batch split into several key groups is moved back and forth, not cloned.
 * Key names stay on the main thread; the worker works with key entries.
 */

/** Per-key statistics, STAT_FIELDS numbers per key at these offsets. */
export const Stat = {
  count: 0,
  firstStep: 1,
  lastStep: 2,
  lastValue: 3,
  firstTime: 4,
  lastTime: 5,
  /** Of the non-NaN values; +Infinity while there are none. */
  min: 6,
  /** Of the non-NaN values; -Infinity while there are none. */
  max: 7,
  nanCount: 8,
} as const;
export const STAT_FIELDS = 9;

/** One chunk row to write, ROW_FIELDS numbers per row at these offsets. */
export const Row = {
  /** Index of the key in the task's key list. */
  key: 0,
  level: 1,
  chunk: 2,
  firstStep: 3,
  lastStep: 4,
  firstTime: 5,
  lastTime: 6,
  n: 7,
  /** Where the chunk's bytes are in the result's `rowBytes`. */
  byteOffset: 8,
  byteLength: 9,
} as const;
export const ROW_FIELDS = 10;

/** One key's live points, LIVE_FIELDS numbers per key at these offsets. */
export const Live = { key: 0, offset: 1, n: 2, sampled: 3 } as const;
export const LIVE_FIELDS = 4;

/** Where a batch's columns are, as byte offsets into its buffer. */
export interface BatchLayout {
  length: number;
  stepOffset: number;
  valueOffset: number;
  timeOffset: number;
  keyIndexOffset: number;
}

/** One batch of a task: its buffer (moved to the worker and back) and how its keys map to the task's. */
export interface TaskBatch extends BatchLayout {
  buffer: ArrayBuffer;
  /** For each entry of the batch's key dictionary, the task's key entry, or -1 (points not aggregated by this task). */
  keyMap: Int32Array;
}

export interface AggregationTask {
  /** Consecutive batches of one run, in seq order: each key's points are taken from them in this order. */
  batches: TaskBatch[];
  /** Number of keys the task aggregates (entries 0 … keyCount-1). */
  keyCount: number;
  /** STAT_FIELDS per key entry: the key's statistics before these batches (count 0 for a new key). */
  stats: Float64Array;
  /**
   * The last chunk of every existing level of every key, as (key entry,
   * level, byte offset, byte length) quadruples into `chunks`.
   */
  chunkRefs: Int32Array;
  chunks: ArrayBuffer;
  /** Also return each key's new points downsampled for live charts. */
  live: boolean;
}

export interface AggregationResult {
  /** The task's batch buffers, handed back in order. */
  batches: ArrayBuffer[];
  /** STAT_FIELDS per key entry: statistics after these batches. */
  stats: Float64Array;
  /** Points aggregated per key entry. */
  points: Float64Array;
  /** ROW_FIELDS per chunk row to write. */
  rows: Float64Array;
  rowBytes: ArrayBuffer;
  /** LIVE_FIELDS per key with live points, indexing `liveData`. */
  live: Float64Array;
  /** Five columns (x, value, min, max, count) of `liveTotal` entries each. */
  liveData: Float64Array;
  liveTotal: number;
}

/**
 * Wraps `value` so piscina transfers `buffers` instead of cloning them: pass
 * the result to `Piscina.move()` (or return it from the worker through `move`).
 */
export function transferable<T extends object>(value: T, buffers: ArrayBuffer[]): T {
  // A buffer listed twice makes postMessage throw; one of length 0 may be detached already.
  const unique = [...new Set(buffers)].filter((b) => b.byteLength > 0);
  return { [transferableSymbol]: unique, [valueSymbol]: value } as unknown as T;
}
