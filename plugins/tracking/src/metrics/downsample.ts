import type { TileColumns } from './metric-chunk.js';

/**
 * Merges points or tile buckets, sorted by x, into at most `buckets` output
 * buckets of equal x width over [lo, hi]: each output keeps the x of its first
 * input, the mean of the values, the extremes and the point count. Extremes
 * survive any zoom (a single spike stays the max of its bucket); NaN values
 * are counted but do not poison mean/min/max; an input left of `lo` or right
 * of `hi` (a tile bucket overlapping the range edge) joins the first or last
 * bucket. Cost O(inputs), allocation O(buckets).
 *
 * No imports at run time: the aggregation worker loads this file.
 */
export interface Downsampled {
  n: number;
  x: Float64Array;
  value: Float64Array;
  min: Float64Array;
  max: Float64Array;
  count: Float64Array;
  /** Wall time of each raw point (absent for buckets). */
  time?: Float64Array;
}

function output(buckets: number): Downsampled {
  return {
    n: 0,
    x: new Float64Array(buckets),
    value: new Float64Array(buckets),
    min: new Float64Array(buckets),
    max: new Float64Array(buckets),
    count: new Float64Array(buckets),
  };
}

/** The output bucket of `x`, clamped to [0, buckets). */
function bucketOf(x: number, lo: number, width: number, buckets: number): number {
  if (!(width > 0)) return 0;
  const b = Math.floor((x - lo) / width);
  return b < 0 ? 0 : b >= buckets ? buckets - 1 : b;
}

/** Closes the output bucket `o` from its running sums. */
function finish(out: Downsampled, o: number, sum: number, nan: number, min: number, max: number): void {
  const real = out.count[o]! - nan;
  out.value[o] = real > 0 ? sum / real : NaN;
  out.min[o] = real > 0 ? min : NaN;
  out.max[o] = real > 0 ? max : NaN;
}

/** Raw points [from, to) with positions `x` and values `value`. */
export function downsamplePoints(x: Float64Array, value: Float64Array, from: number, to: number, lo: number, hi: number, buckets: number): Downsampled {
  const out = output(Math.min(buckets, Math.max(0, to - from)));
  const width = (hi - lo) / buckets;
  let current = -1;
  let o = -1;
  let sum = 0;
  let nan = 0;
  let min = Infinity;
  let max = -Infinity;
  const scale = width > 0 ? 1 / width : 0;
  for (let i = from; i < to; i++) {
    // The bucket of x[i], clamped (bucketOf, inlined: this loop runs over every point).
    let b = Math.floor((x[i]! - lo) * scale);
    b = b < 0 ? 0 : b >= buckets ? buckets - 1 : b;
    // Only ever move right, so unsorted x can never make more than `buckets` outputs.
    if (b > current) {
      if (o >= 0) finish(out, o, sum, nan, min, max);
      current = b;
      o = out.n++;
      out.x[o] = x[i]!;
      out.count[o] = 0;
      sum = 0;
      nan = 0;
      min = Infinity;
      max = -Infinity;
    }
    const v = value[i]!;
    out.count[o]!++;
    if (v !== v) nan++;
    else {
      sum += v;
      if (v < min) min = v;
      if (v > max) max = v;
    }
  }
  if (o >= 0) finish(out, o, sum, nan, min, max);
  return out;
}

/** Tile buckets [from, to) of one decoded chunk. */
export interface TileSegment {
  tiles: TileColumns;
  from: number;
  to: number;
}

/**
 * Tile buckets, in x order across `segments` (chunks read in order, each
 * trimmed to the range), positioned by their first step or first time.
 */
export function downsampleTiles(segments: readonly TileSegment[], by: 'step' | 'time', lo: number, hi: number, buckets: number): Downsampled {
  const inputs = segments.reduce((sum, s) => sum + s.to - s.from, 0);
  const out = output(Math.min(buckets, inputs));
  const width = (hi - lo) / buckets;
  let current = -1;
  let o = -1;
  let sum = 0;
  let nan = 0;
  let min = Infinity;
  let max = -Infinity;
  for (const { tiles, from, to } of segments) {
    const x = by === 'step' ? tiles.firstStep : tiles.firstTime;
    const tMin = tiles.min;
    const tMax = tiles.max;
    const tSum = tiles.sum;
    const tCount = tiles.count;
    const tNan = tiles.nanCount;
    for (let i = from; i < to; i++) {
      const b = bucketOf(x[i]!, lo, width, buckets);
      if (b > current) {
        if (o >= 0) finish(out, o, sum, nan, min, max);
        current = b;
        o = out.n++;
        out.x[o] = x[i]!;
        out.count[o] = 0;
        sum = 0;
        nan = 0;
        min = Infinity;
        max = -Infinity;
      }
      out.count[o]! += tCount[i]!;
      nan += tNan[i]!;
      sum += tSum[i]!;
      if (tMin[i]! < min) min = tMin[i]!;
      if (tMax[i]! > max) max = tMax[i]!;
    }
  }
  if (o >= 0) finish(out, o, sum, nan, min, max);
  return out;
}
