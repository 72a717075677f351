import { decodeMetricBatch, encodeMetricBatch } from '@wanllmdb/plugin-tracking';
import { describe, expect, it } from 'vitest';
import { keyProblem, MetricBuffer, type Chunk } from './metric-buffer.js';

function setup(chunkPoints = 1024, startStep?: number) {
  const chunks: Chunk[] = [];
  const warnings: string[] = [];
  let t = 1_000;
  const buf = new MetricBuffer({ chunkPoints, ship: (c) => chunks.push(c), warn: (m) => warnings.push(m), now: () => t++, startStep });
  const keys: string[] = [];
  /** Every point shipped so far, decoded through the wire format. */
  const points = () => {
    buf.shipPartial();
    const out: { key: string; step: number; value: number; time: number }[] = [];
    for (const c of chunks.splice(0)) {
      keys.push(...c.newKeys);
      const cols = decodeMetricBatch(encodeMetricBatch({ length: c.length, step: c.step, value: c.value, time: c.time, keyIndex: c.keyIndex, keys }));
      for (let i = 0; i < cols.length; i++) out.push({ key: cols.keys[cols.keyIndex[i]!]!, step: cols.step[i]!, value: cols.value[i]!, time: cols.time[i]! });
    }
    return out;
  };
  return { buf, chunks, warnings, points };
}

describe('MetricBuffer', () => {
  it('stores points in columns and round-trips them through the wire format', () => {
    const { buf, points } = setup();
    buf.log({ loss: 0.5, acc: 0.1 });
    buf.log({ loss: 0.4, acc: 0.2 });
    expect(points()).toEqual([
      { key: 'loss', step: 0, value: 0.5, time: 1000 },
      { key: 'acc', step: 0, value: 0.1, time: 1000 },
      { key: 'loss', step: 1, value: 0.4, time: 1001 },
      { key: 'acc', step: 1, value: 0.2, time: 1001 },
    ]);
  });

  it('keeps NaN and ±Infinity, logs booleans as 0/1 and bigints as numbers, flattens nested objects with "/"', () => {
    const { buf, points, warnings } = setup();
    buf.log({ a: NaN, b: Infinity, c: -Infinity, ok: true, no: false, big: 7n, train: { loss: 1, deep: { x: 2 } } });
    expect(points().map((p) => [p.key, p.value])).toEqual([
      ['a', NaN],
      ['b', Infinity],
      ['c', -Infinity],
      ['ok', 1],
      ['no', 0],
      ['big', 7],
      ['train/loss', 1],
      ['train/deep/x', 2],
    ]);
    expect(warnings).toEqual([]);
  });

  it('skips non-numbers with one warning per key, and keeps the other keys', () => {
    const { buf, points, warnings } = setup();
    buf.log({ loss: 1, name: 'x' as never, list: [1] as never, nothing: null, missing: undefined });
    buf.log({ loss: 2, name: 'y' as never });
    expect(points().map((p) => p.value)).toEqual([1, 2]);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(/"name" is a string; only numbers/);
    expect(warnings[1]).toMatch(/"list" is an array/);
  });

  it('refuses empty, too long and reserved keys with a warning, once', () => {
    const { buf, points, warnings } = setup();
    const long = 'k'.repeat(257);
    buf.log({ '': 1, [long]: 2, step: 3, _time: 4, ok: 5 });
    buf.log({ '': 1, [long]: 2 });
    expect(points().map((p) => p.key)).toEqual(['ok']);
    expect(warnings).toHaveLength(4);
    expect(warnings.join('\n')).toMatch(/is empty/);
    expect(warnings.join('\n')).toMatch(/257 characters long; keys are at most 256/);
    expect(keyProblem('k'.repeat(256))).toBe('');
    expect(keyProblem('a\nb')).toMatch(/control/);
  });

  it('counts steps as W&B does: each log() commits a step unless commit is false; an explicit step holds until a later one', () => {
    const { buf, points } = setup();
    buf.log({ a: 1 }); // step 0
    buf.log({ a: 2 }, { commit: false }); // step 1, not committed
    buf.log({ b: 3 }); // step 1, committed
    buf.log({ a: 4 }, { step: 10 }); // step 10
    buf.log({ b: 5 }, { step: 10 }); // step 10 again
    buf.log({ c: 6 }); // still step 10, then commits
    buf.log({ c: 7 }); // step 11
    expect(points().map((p) => [p.key, p.step])).toEqual([
      ['a', 0],
      ['a', 1],
      ['b', 1],
      ['a', 10],
      ['b', 10],
      ['c', 10],
      ['c', 11],
    ]);
    expect(buf.step).toBe(12);
  });

  it('refuses a step that goes backwards (or is not finite) with a warning, and keeps going', () => {
    const { buf, points, warnings } = setup();
    buf.log({ a: 1 }, { step: 5 });
    buf.log({ a: 2 }, { step: 3 });
    buf.log({ a: 3 }, { step: NaN });
    buf.log({ a: 4 }, { step: 6 });
    expect(points().map((p) => p.step)).toEqual([5, 6]);
    expect(warnings.join('\n')).toMatch(/step 3 is below the current step 5/);
    expect(warnings.join('\n')).toMatch(/step NaN is not a finite number/);
  });

  it('a custom x axis is just another key', () => {
    const { buf, points } = setup();
    for (let epoch = 0; epoch < 3; epoch++) buf.log({ epoch, val_acc: epoch / 10 });
    expect(points().filter((p) => p.key === 'epoch').map((p) => [p.step, p.value])).toEqual([
      [0, 0],
      [1, 1],
      [2, 2],
    ]);
  });

  it('resumes the step counter where it is told', () => {
    const { buf, points } = setup(16, 42);
    buf.log({ a: 1 });
    expect(points()[0]!.step).toBe(42);
  });

  it('ships a full chunk as soon as it fills, handing over its arrays and new keys only once', () => {
    const { buf, chunks } = setup(4);
    buf.log({ a: 1, b: 2 });
    expect(chunks).toHaveLength(0);
    buf.log({ a: 3, b: 4 });
    expect(chunks).toHaveLength(1);
    const first = chunks[0]!;
    expect(first.length).toBe(4);
    expect(first.newKeys).toEqual(['a', 'b']);
    expect(first.bytes).toBe(4 * 28);
    buf.log({ a: 5, c: 6 });
    buf.shipPartial();
    expect(chunks[1]!.newKeys).toEqual(['c']);
    expect(chunks[1]!.length).toBe(2);
    // The shipped arrays are not reused by the buffer.
    expect(Array.from(first.value)).toEqual([1, 2, 3, 4]);
    // Partial chunks are exact-size copies.
    expect(chunks[1]!.value.length).toBe(2);
    buf.shipPartial();
    expect(chunks).toHaveLength(2);
  });

  it('system points carry their own step and time and do not move the step counter', () => {
    const { buf, points } = setup();
    buf.log({ a: 1 });
    buf.logAt('system/cpu.percent', 12.5, 40, 99);
    expect(buf.step).toBe(1);
    expect(points()[1]).toEqual({ key: 'system/cpu.percent', step: 12.5, value: 40, time: 99 });
  });

  it('costs a few hundred nanoseconds per call with 2 keys', () => {
    const { buf } = setup(32_768);
    const n = 200_000;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) buf.log({ loss: i, acc: i });
    const perCall = Number(process.hrtime.bigint() - t0) / n;
    expect(perCall).toBeLessThan(5_000);
  });
});
