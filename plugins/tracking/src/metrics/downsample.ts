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

/** The output being filled: its open (last) bucket and that bucket's running sums. */
class Filling {
  readonly out: Downsampled;
  /** The input bucket the open output bucket stands for (-1: none open yet). */
  private current = -1;
  /** Index of the open output bucket in `out`. */
  o = -1;
  sum = 0;
  nan = 0;
  min = Infinity;
  max = -Infinity;

  constructor(buckets: number) {
    this.out = output(buckets);
  }

  /** Opens a new output bucket at position `x` when input bucket `b` is right of the open one (closing it); returns the open bucket. */
  enter(b: number, x: number): number {
    // Only ever move right, so unsorted x can never make more than `buckets` outputs.
    if (b > this.current) {
      if (this.o >= 0) this.close();
      this.current = b;
      const o = (this.o = this.out.n++);
      this.out.x[o] = x;
      this.out.count[o] = 0;
      this.sum = 0;
      this.nan = 0;
      this.min = Infinity;
      this.max = -Infinity;
    }
    return this.o;
  }

  /** Closes the open bucket and returns the output. */
  done(): Downsampled {
    if (this.o >= 0) this.close();
    return this.out;
  }

  /** Closes the open output bucket from its running sums. */
  private close(): void {
    const { out, o, nan } = this;
    const real = out.count[o]! - nan;
    out.value[o] = real > 0 ? this.sum / real : NaN;
    out.min[o] = real > 0 ? this.min : NaN;
    out.max[o] = real > 0 ? this.max : NaN;
  }
}

/** Raw points [from, to) with positions `x` and values `value`. */
export function downsamplePoints(x: Float64Array, value: Float64Array, from: number, to: number, lo: number, hi: number, buckets: number): Downsampled {
  const f = new Filling(Math.min(buckets, Math.max(0, to - from)));
  const count = f.out.count;
  const width = (hi - lo) / buckets;
  const scale = width > 0 ? 1 / width : 0;
  for (let i = from; i < to; i++) {
    // The bucket of x[i], clamped (bucketOf, inlined: this loop runs over every point).
    let b = Math.floor((x[i]! - lo) * scale);
    b = b < 0 ? 0 : b >= buckets ? buckets - 1 : b;
    const o = f.enter(b, x[i]!);
    const v = value[i]!;
    count[o]!++;
    if (v !== v) f.nan++;
    else {
      f.sum += v;
      if (v < f.min) f.min = v;
      if (v > f.max) f.max = v;
    }
  }
  return f.done();
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
  const f = new Filling(Math.min(buckets, inputs));
  const count = f.out.count;
  const width = (hi - lo) / buckets;
  for (const { tiles, from, to } of segments) {
    const x = by === 'step' ? tiles.firstStep : tiles.firstTime;
    const tMin = tiles.min;
    const tMax = tiles.max;
    const tSum = tiles.sum;
    const tCount = tiles.count;
    const tNan = tiles.nanCount;
    for (let i = from; i < to; i++) {
      const o = f.enter(bucketOf(x[i]!, lo, width, buckets), x[i]!);
      count[o]! += tCount[i]!;
      f.nan += tNan[i]!;
      f.sum += tSum[i]!;
      if (tMin[i]! < f.min) f.min = tMin[i]!;
      if (tMax[i]! > f.max) f.max = tMax[i]!;
    }
  }
  return f.done();
}
