import { describe, expect, it } from 'vitest';
import { aggregateBatch } from './aggregate-batch.js';
import { ROW_FIELDS, Row, STAT_FIELDS, Stat, type AggregationTask } from './aggregation-task.js';
import { ChunkKind, decodeChunk } from './metric-chunk.js';
import { downsamplePoints } from './downsample.js';
import { MAX_LEVELS, chunkCapacity, itemsAt, lastChunkIndex, pointsPerItem, tileLevels } from './tile-levels.js';

/** One key's history kept the way the database keeps it: chunk bytes by (level, chunk). */
class KeyHistory {
  count = 0;
  stats: Float64Array = new Float64Array(STAT_FIELDS);
  chunks = new Map<string, Uint8Array>();
  constructor() {
    this.stats[Stat.min] = Infinity;
    this.stats[Stat.max] = -Infinity;
  }

  append(step: number[], value: number[], time: number[]): void {
    const n = step.length;
    const buffer = new ArrayBuffer(n * 28);
    new Float64Array(buffer, 0, n).set(step);
    new Float64Array(buffer, n * 8, n).set(value);
    new Float64Array(buffer, n * 16, n).set(time);
    new Int32Array(buffer, n * 24, n).fill(0);
    const refs: number[] = [];
    const parts: Uint8Array[] = [];
    let offset = 0;
    for (let level = 0; level <= tileLevels(this.count) && this.count > 0; level++) {
      const bytes = this.chunks.get(`${level}/${lastChunkIndex(level, this.count)}`)!;
      refs.push(0, level, offset, bytes.byteLength);
      parts.push(bytes);
      offset += bytes.byteLength;
    }
    const chunks = new Uint8Array(offset);
    let at = 0;
    for (const part of parts) (chunks.set(part, at), (at += part.byteLength));
    const task: AggregationTask = {
      batches: [{ buffer, length: n, stepOffset: 0, valueOffset: n * 8, timeOffset: n * 16, keyIndexOffset: n * 24, keyMap: Int32Array.of(0) }],
      keyCount: 1,
      stats: this.stats,
      chunkRefs: Int32Array.from(refs),
      chunks: chunks.buffer,
      live: true,
    };
    const result = aggregateBatch(task);
    for (let r = 0; r < result.rows.length / ROW_FIELDS; r++) {
      const m = r * ROW_FIELDS;
      const bytes = new Uint8Array(result.rowBytes, result.rows[m + Row.byteOffset]!, result.rows[m + Row.byteLength]!).slice();
      this.chunks.set(`${result.rows[m + Row.level]}/${result.rows[m + Row.chunk]}`, bytes);
    }
    this.stats = result.stats;
    this.count += n;
  }

  /** Every item of a level, in order, read from the chunks. */
  level(level: number) {
    const items: { firstStep: number; lastStep: number; min: number; max: number; sum: number; count: number; nan: number; value?: number }[] = [];
    for (let chunk = 0; chunk <= lastChunkIndex(level, this.count); chunk++) {
      const decoded = decodeChunk(this.chunks.get(`${level}/${chunk}`)!);
      if (decoded.kind === ChunkKind.Raw) {
        for (let i = 0; i < decoded.raw.n; i++) {
          items.push({ firstStep: decoded.raw.step[i]!, lastStep: decoded.raw.step[i]!, min: 0, max: 0, sum: 0, count: 1, nan: 0, value: decoded.raw.value[i]! });
        }
      } else {
        const t = decoded.tiles;
        for (let i = 0; i < t.n; i++) {
          items.push({ firstStep: t.firstStep[i]!, lastStep: t.lastStep[i]!, min: t.min[i]!, max: t.max[i]!, sum: t.sum[i]!, count: t.count[i]!, nan: t.nanCount[i]! });
        }
      }
    }
    return items;
  }
}

/** Level-k buckets computed directly from all points, for comparison. */
function expectedBuckets(values: number[], level: number) {
  const size = pointsPerItem(level);
  const out = [];
  for (let from = 0; from < values.length; from += size) {
    const part = values.slice(from, from + size);
    const real = part.filter((v) => !Number.isNaN(v));
    out.push({
      firstStep: from,
      lastStep: from + part.length - 1,
      min: real.length ? Math.min(...real) : Infinity,
      max: real.length ? Math.max(...real) : -Infinity,
      sum: real.reduce((a, b) => a + b, 0),
      count: part.length,
      nan: part.length - real.length,
    });
  }
  return out;
}

describe('aggregateBatch', () => {
  it('builds raw chunks and every tile level incrementally, equal to computing them from scratch', () => {
    const history = new KeyHistory();
    const values: number[] = [];
    // Irregular batch sizes cross chunk and bucket boundaries at odd places, and create levels mid-batch.
    const sizes = [1, 15, 8176, 1, 7000, 20_000, 3, 65_536, 100_001, 5, 70_000, 17];
    let step = 0;
    for (const size of sizes) {
      const s: number[] = [];
      const v: number[] = [];
      for (let i = 0; i < size; i++, step++) {
        s.push(step);
        const x = step % 9973 === 5 ? NaN : step % 7919 === 3 ? Infinity : Math.sin(step) * (step % 1000);
        v.push(x);
        values.push(x);
      }
      history.append(s, v, s.map((x) => 1e12 + x));
    }
    expect(history.count).toBe(values.length);
    expect(tileLevels(values.length)).toBe(4);

    const raw = history.level(0);
    expect(raw.map((p) => p.value)).toEqual(values);
    for (let level = 1; level <= tileLevels(values.length); level++) {
      const items = history.level(level);
      expect(items.length).toBe(itemsAt(level, values.length));
      const expected = expectedBuckets(values, level);
      // Sums are compared approximately: folding order differs from the direct sum.
      expect(items.map(({ sum, ...rest }) => rest)).toEqual(expected.map(({ sum, ...rest }) => rest));
      items.forEach((item, i) => expect(item.sum).toBeCloseTo(expected[i]!.sum, 6));
    }
    // Chunks of every level but the last are full.
    for (let level = 0; level <= tileLevels(values.length); level++) {
      for (let chunk = 0; chunk < lastChunkIndex(level, values.length); chunk++) {
        const decoded = decodeChunk(history.chunks.get(`${level}/${chunk}`)!);
        expect(decoded.kind === ChunkKind.Raw ? decoded.raw.n : decoded.tiles.n).toBe(chunkCapacity(level));
      }
    }
    const real = values.filter((v) => !Number.isNaN(v));
    expect(history.stats[Stat.count]).toBe(values.length);
    expect(history.stats[Stat.nanCount]).toBe(values.length - real.length);
    expect(history.stats[Stat.max]).toBe(Infinity);
    expect(history.stats[Stat.min]).toBe(real.reduce((a, b) => Math.min(a, b), Infinity));
    expect(history.stats[Stat.lastStep]).toBe(values.length - 1);
    expect(MAX_LEVELS).toBeGreaterThan(tileLevels(2 ** 53));
  });

  it('keeps a small key to one raw chunk and no tiles', () => {
    const history = new KeyHistory();
    history.append([0, 1, 2], [1, 2, 3], [5, 6, 7]);
    expect([...history.chunks.keys()]).toEqual(['0/0']);
  });
});

describe('downsamplePoints', () => {
  it('keeps a single spike and ignores NaN in mean/min/max', () => {
    const n = 100_000;
    const x = Float64Array.from({ length: n }, (_, i) => i);
    const v = Float64Array.from({ length: n }, (_, i) => (i === 54_321 ? 1e9 : i === 7 ? NaN : 1));
    const out = downsamplePoints(x, v, 0, n, 0, n - 1, 1000);
    expect(out.n).toBe(1000);
    expect(Math.max(...out.max.subarray(0, out.n))).toBe(1e9);
    expect(out.value[0]).toBe(1);
    expect(out.count.subarray(0, out.n).reduce((a, b) => a + b, 0)).toBe(n);
  });
});
