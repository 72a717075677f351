import { LIVE_FIELDS, ROW_FIELDS, Row, STAT_FIELDS, Stat, Live, type AggregationResult, type AggregationTask } from './aggregation-task.js';
import { downsamplePoints } from './downsample.js';
import { ChunkKind, RAW_PLAIN, TILE_PLAIN, allocTiles, decodeChunk, planChunk, tileColumnList, type DecodedChunk, type TileColumns } from './metric-chunk.js';
import { LIVE_POINTS_PER_KEY } from './metric-store.js';
import { MAX_LEVELS, RAW_CHUNK_POINTS, TILE_CHUNK_BUCKETS, chunkCapacity, groupSize, itemsAt, lastChunkIndex, levelExists } from './tile-levels.js';

/**
 * The CPU half of aggregation, a pure function run in a piscina worker:
 * splits the batches' points by key and, per key, extends the raw chunks and
 * every tile level, starting from the last chunk of each level that the main
 * thread read from the database. It returns the chunk rows to write (only the
 * chunks these batches changed) and the keys' new statistics; the main thread
 * writes them in one transaction.
 *
 * Per level the work is O(new items + one chunk): level k is recomputed from
 * level k-1's tail (its last stored chunk plus the new items) — every tile
 * bucket whose inputs changed is rebuilt from those inputs, the buckets before
 * them are copied from the stored chunk — so a partial bucket simply grows.
 * A level is built from scratch the first time level k-1 outgrows one chunk,
 * and then level k-1's tail is its whole history.
 */

/** One level's items from chunk boundary `start` on: raw points or tile buckets. */
type Tail = { start: number; len: number; raw: { step: Float64Array; value: Float64Array; time: Float64Array } | undefined; tiles: TileColumns | undefined };

interface PendingRow {
  entry: number;
  level: number;
  chunk: number;
  kind: ChunkKind;
  columns: Float64Array[];
  from: number;
  to: number;
  firstStep: number;
  lastStep: number;
  firstTime: number;
  lastTime: number;
}

/** Start of the message of errors about stored state that does not fit together (see BatchAggregator). */
export const INCONSISTENT = 'metric history is inconsistent';

function corrupt(message: string): Error {
  return new Error(`${INCONSISTENT}: ${message}`);
}

/** Folds raw points [from, to) into tile bucket `o`. */
function foldPoints(t: TileColumns, o: number, raw: NonNullable<Tail['raw']>, from: number, to: number): void {
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let nan = 0;
  for (let i = from; i < to; i++) {
    const v = raw.value[i]!;
    if (v !== v) nan++;
    else {
      sum += v;
      if (v < min) min = v;
      if (v > max) max = v;
    }
  }
  t.firstStep[o] = raw.step[from]!;
  t.lastStep[o] = raw.step[to - 1]!;
  t.firstTime[o] = raw.time[from]!;
  t.lastTime[o] = raw.time[to - 1]!;
  t.min[o] = min;
  t.max[o] = max;
  t.sum[o] = sum;
  t.count[o] = to - from;
  t.nanCount[o] = nan;
}

/** Folds tile buckets [from, to) of `src` into bucket `o` of `t`. */
function foldTiles(t: TileColumns, o: number, src: TileColumns, from: number, to: number): void {
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let count = 0;
  let nan = 0;
  for (let i = from; i < to; i++) {
    if (src.min[i]! < min) min = src.min[i]!;
    if (src.max[i]! > max) max = src.max[i]!;
    sum += src.sum[i]!;
    count += src.count[i]!;
    nan += src.nanCount[i]!;
  }
  t.firstStep[o] = src.firstStep[from]!;
  t.lastStep[o] = src.lastStep[to - 1]!;
  t.firstTime[o] = src.firstTime[from]!;
  t.lastTime[o] = src.lastTime[to - 1]!;
  t.min[o] = min;
  t.max[o] = max;
  t.sum[o] = sum;
  t.count[o] = count;
  t.nanCount[o] = nan;
}

function copyTiles(dst: TileColumns, src: TileColumns, count: number): void {
  const to = tileColumnList(dst);
  tileColumnList(src).forEach((column, c) => to[c]!.set(column.subarray(0, count)));
}

/**
 * Extends one key's history, queueing the chunk rows that change. `raw` is
 * the key's level-0 tail: its last stored raw chunk (chunk `c0`, which the
 * caller copied in first) followed by the new points.
 */
function aggregateKey(
  entry: number,
  oldCount: number,
  newCount: number,
  raw: { step: Float64Array; value: Float64Array; time: Float64Array },
  lastChunk: (level: number) => DecodedChunk | undefined,
  rows: PendingRow[],
): void {
  const c0 = oldCount > 0 ? lastChunkIndex(0, oldCount) : 0;
  const tailLen = raw.step.length;
  let tail: Tail = { start: c0 * RAW_CHUNK_POINTS, len: tailLen, raw, tiles: undefined };
  let firstChanged = oldCount;
  emitRows(entry, 0, tail, firstChanged, newCount, rows);

  for (let level = 1; level <= MAX_LEVELS && levelExists(level, newCount); level++) {
    const existed = levelExists(level, oldCount);
    const group = groupSize(level - 1);
    const recomputeFrom = tail.start / group;
    const items = itemsAt(level, newCount);
    const start = existed ? lastChunkIndex(level, oldCount) * TILE_CHUNK_BUCKETS : 0;
    if (recomputeFrom < start) throw corrupt(`level ${level} would be rebuilt from bucket ${recomputeFrom}, before its last chunk at ${start}`);
    const tiles = allocTiles(items - start);
    if (existed) {
      const stored = lastChunk(level);
      const storedItems = itemsAt(level, oldCount) - start;
      if (stored?.kind !== ChunkKind.Tiles || stored.tiles.n !== storedItems) {
        throw corrupt(`level ${level} chunk should hold ${storedItems} buckets but holds ${stored?.kind === ChunkKind.Tiles ? stored.tiles.n : 'none'}`);
      }
      copyTiles(tiles, stored.tiles, recomputeFrom - start);
    } else if (recomputeFrom !== 0) {
      throw corrupt(`level ${level} is new but level ${level - 1} has more than one chunk`);
    }
    for (let j = recomputeFrom; j < items; j++) {
      const from = j * group - tail.start;
      const to = Math.min(from + group, tail.len);
      if (tail.raw) foldPoints(tiles, j - start, tail.raw, from, to);
      else foldTiles(tiles, j - start, tail.tiles!, from, to);
    }
    tiles.n = items - start;
    firstChanged = existed ? Math.floor(firstChanged / group) : 0;
    tail = { start, len: tiles.n, raw: undefined, tiles };
    emitRows(entry, level, tail, firstChanged, items, rows);
  }
}

/** Queues the chunks of `level` from the one holding item `firstChanged` to the last. */
function emitRows(entry: number, level: number, tail: Tail, firstChanged: number, items: number, rows: PendingRow[]): void {
  const capacity = chunkCapacity(level);
  for (let chunk = Math.floor(firstChanged / capacity); chunk * capacity < items; chunk++) {
    const from = chunk * capacity - tail.start;
    const to = Math.min(from + capacity, tail.len);
    if (tail.raw) {
      const r = tail.raw;
      rows.push({ entry, level, chunk, kind: ChunkKind.Raw, columns: [r.step, r.value, r.time], from, to, firstStep: r.step[from]!, lastStep: r.step[to - 1]!, firstTime: r.time[from]!, lastTime: r.time[to - 1]! });
    } else {
      const t = tail.tiles!;
      rows.push({ entry, level, chunk, kind: ChunkKind.Tiles, columns: tileColumnList(t), from, to, firstStep: t.firstStep[from]!, lastStep: t.lastStep[to - 1]!, firstTime: t.firstTime[from]!, lastTime: t.lastTime[to - 1]! });
    }
  }
}

/**
 * Each key's level-0 tail: its last stored raw chunk, then its new points
 * from the task's batches in order (a stable scatter, so each key's points
 * keep their order). Its own function so the loops are optimised on their own.
 */
function buildTails(task: AggregationTask, stored: (entry: number) => DecodedChunk | undefined, oldCounts: Float64Array) {
  const entries = task.keyCount;
  const added = new Int32Array(entries);
  for (const b of task.batches) {
    const keyIndex = new Int32Array(b.buffer, b.keyIndexOffset, b.length);
    const map = b.keyMap;
    for (let i = 0; i < b.length; i++) {
      const e = map[keyIndex[i]!]!;
      if (e >= 0) added[e]!++;
    }
  }
  const tails: { step: Float64Array; value: Float64Array; time: Float64Array }[] = [];
  const at = new Int32Array(entries);
  for (let e = 0; e < entries; e++) {
    const oldCount = oldCounts[e]!;
    const kept = oldCount > 0 ? oldCount - lastChunkIndex(0, oldCount) * RAW_CHUNK_POINTS : 0;
    const len = added[e]! > 0 ? kept + added[e]! : 0;
    const tail = { step: new Float64Array(len), value: new Float64Array(len), time: new Float64Array(len) };
    if (len > 0 && kept > 0) {
      const chunk = stored(e);
      if (chunk?.kind !== ChunkKind.Raw || chunk.raw.n !== kept) {
        throw corrupt(`the last raw chunk should hold ${kept} points but holds ${chunk?.kind === ChunkKind.Raw ? chunk.raw.n : 'none'}`);
      }
      tail.step.set(chunk.raw.step);
      tail.value.set(chunk.raw.value);
      tail.time.set(chunk.raw.time);
    }
    at[e] = kept;
    tails.push(tail);
  }
  for (const b of task.batches) {
    const step = new Float64Array(b.buffer, b.stepOffset, b.length);
    const value = new Float64Array(b.buffer, b.valueOffset, b.length);
    const time = new Float64Array(b.buffer, b.timeOffset, b.length);
    const keyIndex = new Int32Array(b.buffer, b.keyIndexOffset, b.length);
    const map = b.keyMap;
    for (let i = 0; i < b.length; i++) {
      const e = map[keyIndex[i]!]!;
      if (e < 0) continue;
      const p = at[e]!;
      at[e] = p + 1;
      const tail = tails[e]!;
      tail.step[p] = step[i]!;
      tail.value[p] = value[i]!;
      tail.time[p] = time[i]!;
    }
  }
  return { tails, added };
}

/** Min, max and NaN count of values (NaN excluded from min/max). */
function extremes(v: Float64Array, min: number, max: number): { min: number; max: number; nan: number } {
  let nan = 0;
  for (let i = 0; i < v.length; i++) {
    const x = v[i]!;
    if (x !== x) nan++;
    else {
      if (x < min) min = x;
      if (x > max) max = x;
    }
  }
  return { min, max, nan };
}

export function aggregateBatch(task: AggregationTask): AggregationResult {
  const entries = task.keyCount;
  const refs = new Map<number, { offset: number; length: number }>();
  for (let r = 0; r + 3 < task.chunkRefs.length; r += 4) {
    refs.set(task.chunkRefs[r]! * (MAX_LEVELS + 1) + task.chunkRefs[r + 1]!, { offset: task.chunkRefs[r + 2]!, length: task.chunkRefs[r + 3]! });
  }
  const lastChunk = (entry: number, level: number) => {
    const ref = refs.get(entry * (MAX_LEVELS + 1) + level);
    return ref && decodeChunk(new Uint8Array(task.chunks, ref.offset, ref.length));
  };
  const stats = Float64Array.from(task.stats);
  const oldCounts = new Float64Array(entries);
  for (let e = 0; e < entries; e++) oldCounts[e] = stats[e * STAT_FIELDS + Stat.count]!;
  const { tails, added } = buildTails(task, (e) => lastChunk(e, 0), oldCounts);

  const points = new Float64Array(entries);
  const rows: PendingRow[] = [];
  const live: number[] = [];
  const liveParts: { x: Float64Array; value: Float64Array; min: Float64Array; max: Float64Array; count: Float64Array }[] = [];
  let liveTotal = 0;

  for (let e = 0; e < entries; e++) {
    const n = added[e]!;
    points[e] = n;
    if (n === 0) continue;
    const tail = tails[e]!;
    const from = tail.step.length - n;
    const s = tail.step.subarray(from);
    const v = tail.value.subarray(from);
    const t = tail.time.subarray(from);
    const base = e * STAT_FIELDS;
    const oldCount = oldCounts[e]!;
    aggregateKey(e, oldCount, oldCount + n, tail, (level) => lastChunk(e, level), rows);

    // Statistics of the key after this batch.
    const { min, max, nan } = extremes(v, stats[base + Stat.min]!, stats[base + Stat.max]!);
    if (oldCount === 0) {
      stats[base + Stat.firstStep] = s[0]!;
      stats[base + Stat.firstTime] = t[0]!;
    }
    stats[base + Stat.count] = oldCount + n;
    stats[base + Stat.lastStep] = s[n - 1]!;
    stats[base + Stat.lastValue] = v[n - 1]!;
    stats[base + Stat.lastTime] = t[n - 1]!;
    stats[base + Stat.min] = min;
    stats[base + Stat.max] = max;
    stats[base + Stat.nanCount] = stats[base + Stat.nanCount]! + nan;

    if (task.live) {
      const sampled = n > LIVE_POINTS_PER_KEY;
      const part = sampled
        ? downsamplePoints(s, v, 0, n, s[0]!, s[n - 1]!, LIVE_POINTS_PER_KEY)
        : { n, x: s, value: v, min: v, max: v, count: new Float64Array(n).fill(1) };
      live.push(e, liveTotal, part.n, sampled ? 1 : 0);
      liveParts.push({ x: part.x.subarray(0, part.n), value: part.value.subarray(0, part.n), min: part.min.subarray(0, part.n), max: part.max.subarray(0, part.n), count: part.count.subarray(0, part.n) });
      liveTotal += part.n;
    }
  }

  // Pack every chunk row into one buffer (8-byte aligned entries, so readers can view them in place).
  const plans = rows.map((row) => planChunk(row.kind, row.columns, row.from, row.to, row.kind === ChunkKind.Raw ? RAW_PLAIN : TILE_PLAIN));
  const rowBytes = new ArrayBuffer(plans.reduce((sum, plan) => sum + plan.bytes, 0));
  const rowMeta = new Float64Array(rows.length * ROW_FIELDS);
  let offset = 0;
  rows.forEach((row, r) => {
    const plan = plans[r]!;
    plan.write(rowBytes, offset);
    const m = r * ROW_FIELDS;
    rowMeta[m + Row.key] = row.entry;
    rowMeta[m + Row.level] = row.level;
    rowMeta[m + Row.chunk] = row.chunk;
    rowMeta[m + Row.firstStep] = row.firstStep;
    rowMeta[m + Row.lastStep] = row.lastStep;
    rowMeta[m + Row.firstTime] = row.firstTime;
    rowMeta[m + Row.lastTime] = row.lastTime;
    rowMeta[m + Row.n] = row.to - row.from;
    rowMeta[m + Row.byteOffset] = offset;
    rowMeta[m + Row.byteLength] = plan.bytes;
    offset += plan.bytes;
  });

  const liveData = new Float64Array(liveTotal * 5);
  let p = 0;
  for (const part of liveParts) {
    liveData.set(part.x, p);
    liveData.set(part.value, liveTotal + p);
    liveData.set(part.min, 2 * liveTotal + p);
    liveData.set(part.max, 3 * liveTotal + p);
    liveData.set(part.count, 4 * liveTotal + p);
    p += part.x.length;
  }
  const liveMeta = Float64Array.from(live);
  if (liveMeta.length % LIVE_FIELDS !== 0) throw corrupt('live index misaligned');
  return { batches: task.batches.map((b) => b.buffer), stats, points, rows: rowMeta, rowBytes, live: liveMeta, liveData, liveTotal };
}
