import { randomUUID } from 'node:crypto';
import { Errors, createMetadataStore, type MetadataStore } from '@wanllmdb/core';
import { metadataBackends } from '@wanllmdb/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeMetricBatch, encodeMetricBatch, type MetricColumns } from './metric-batch.js';
import type { MetricKeyStats, MetricsAppendedEvent } from './metric-store.js';
import { SqlMetricStore, type SqlMetricStoreOptions } from './sql-metric-store.js';

interface Point {
  key: string;
  step: number;
  value: number;
  time?: number;
}

function batch(points: Point[]): Uint8Array {
  const keys: string[] = [];
  const slots = new Map<string, number>();
  const n = points.length;
  const cols: MetricColumns = { length: n, step: new Float64Array(n), value: new Float64Array(n), time: new Float64Array(n), keyIndex: new Int32Array(n), keys };
  points.forEach((p, i) => {
    let slot = slots.get(p.key);
    if (slot === undefined) slots.set(p.key, (slot = keys.push(p.key) - 1));
    cols.step[i] = p.step;
    cols.value[i] = p.value;
    cols.time[i] = p.time ?? 1_700_000_000_000 + p.step;
    cols.keyIndex[i] = slot;
  });
  return encodeMetricBatch(cols);
}

/** `n` points of one key from step `from`, value f(step), built as columns (no per-point objects). */
function series(key: string, from: number, n: number, f: (step: number) => number): Uint8Array {
  const step = Float64Array.from({ length: n }, (_, i) => from + i);
  return encodeMetricBatch({
    length: n,
    step,
    value: step.map(f),
    time: step.map((s) => 1_700_000_000_000 + s * 10),
    keyIndex: new Int32Array(n),
    keys: [key],
  });
}

const quiet = { warn: () => {}, error: (details: Record<string, unknown>, message: string) => console.error(message, details) };

/** `real` with some calls replaced (to count or break them); closing it leaves `real` open. */
function wrapStore(real: MetadataStore, replace: Partial<Pick<MetadataStore, 'query' | 'run' | 'transaction'>>): MetadataStore {
  return {
    ...real,
    dialect: real.dialect,
    query: (sql, params) => real.query(sql, params),
    run: (sql, params) => real.run(sql, params),
    insertMany: (t, c, r) => real.insertMany(t, c, r),
    migrate: (p, m) => real.migrate(p, m),
    appliedMigrations: (p) => real.appliedMigrations(p),
    close: async () => {},
    transaction: (fn, options) => real.transaction(fn, options),
    ...replace,
  };
}

describe.each(metadataBackends())('SqlMetricStore on $name', (backend) => {
  let db: MetadataStore;
  let store: SqlMetricStore;
  const aggregated: { runId: string; changed: MetricKeyStats[] }[] = [];
  const appended: MetricsAppendedEvent[] = [];

  beforeAll(async () => {
    db = await backend.create();
    store = await SqlMetricStore.open(db, {
      logger: quiet,
      onAggregated: async (runId, changed) => void aggregated.push({ runId, changed }),
      onAppended: (e) => void appended.push(e),
    });
  });
  afterAll(async () => {
    await store?.close();
    await db?.close();
  });

  it('stores a batch, aggregates it and answers keys and raw queries', async () => {
    const runId = randomUUID();
    const result = await store.append(runId, 'b1', batch([
      { key: 'loss', step: 0, value: 2 },
      { key: 'acc', step: 0, value: 0.1 },
      { key: 'loss', step: 1, value: 1.5 },
      { key: 'acc', step: 1, value: 0.3 },
    ]));
    expect(result).toEqual({ batchId: 'b1', accepted: 4, duplicate: false, warnings: [] });
    await store.idle();
    expect(await store.keys(runId)).toEqual([
      { key: 'acc', count: 2, last: 0.3, lastStep: 1, min: 0.1, max: 0.3, firstStep: 0 },
      { key: 'loss', count: 2, last: 1.5, lastStep: 1, min: 1.5, max: 2, firstStep: 0 },
    ]);
    const [loss] = await store.query({ runIds: [runId], keys: ['loss'], xKey: 'step', maxPoints: 100 });
    expect(loss).toEqual({ runId, key: 'loss', sampled: false, x: [0, 1], value: [2, 1.5], min: [2, 1.5], max: [2, 1.5], count: [1, 1], time: [1_700_000_000_000, 1_700_000_000_001] });
    expect(aggregated.find((a) => a.runId === runId)?.changed.map((c) => c.key).sort()).toEqual(['acc', 'loss']);
    const live = appended.find((e) => e.runId === runId);
    expect(live?.series.find((s) => s.key === 'loss')).toMatchObject({ sampled: false, x: [0, 1], value: [2, 1.5] });
  });

  it('ignores dictionary keys without points (the SDK sends its whole key list)', async () => {
    const runId = randomUUID();
    const cols: MetricColumns = {
      length: 2,
      step: Float64Array.of(0, 1),
      value: Float64Array.of(5, 6),
      time: Float64Array.of(1, 2),
      keyIndex: Int32Array.of(1, 1),
      keys: ['unused', 'used', 'also unused'],
    };
    expect(await store.append(runId, 'a', encodeMetricBatch(cols))).toMatchObject({ accepted: 2, warnings: [] });
    cols.keyIndex.set([2, 2]);
    expect(await store.append(runId, 'b', encodeMetricBatch(cols))).toMatchObject({ accepted: 2, warnings: [] });
    await store.idle();
    expect((await store.keys(runId)).map((k) => [k.key, k.count])).toEqual([
      ['also unused', 2],
      ['used', 2],
    ]);
  });

  it('stores a retried batch id once, also when the retries race', async () => {
    const runId = randomUUID();
    const bytes = () => batch([{ key: 'x', step: 1, value: 1 }, { key: 'x', step: 2, value: 2 }]);
    expect((await store.append(runId, 'same', bytes())).duplicate).toBe(false);
    expect(await store.append(runId, 'same', bytes())).toEqual({ batchId: 'same', accepted: 0, duplicate: true, warnings: [] });
    const racing = await Promise.all(Array.from({ length: 6 }, () => store.append(runId, 'race', batch([{ key: 'x', step: 3, value: 3 }]))));
    expect(racing.filter((r) => !r.duplicate)).toHaveLength(1);
    await store.idle();
    expect((await store.keys(runId))[0]).toMatchObject({ key: 'x', count: 3, last: 3 });
  });

  it('drops backwards steps (against stored history and within a batch) with a warning and keeps the rest', async () => {
    const runId = randomUUID();
    await store.append(runId, 'a', batch([{ key: 'loss', step: 10, value: 1 }]));
    const result = await store.append(runId, 'b', batch([
      { key: 'loss', step: 5, value: 9 },
      { key: 'loss', step: 11, value: 2 },
      { key: 'loss', step: 7, value: 9 },
      { key: 'loss', step: 12, value: 3 },
      { key: 'other', step: 0, value: 4 },
    ]));
    expect(result.accepted).toBe(3);
    expect(result.warnings).toEqual([{ key: 'loss', message: expect.stringMatching(/2 point\(s\) had a step below .*last step was 10/), dropped: 2 }]);
    await store.idle();
    const [loss] = await store.query({ runIds: [runId], keys: ['loss'], xKey: 'step', maxPoints: 10 });
    expect(loss!.x).toEqual([10, 11, 12]);
    expect(loss!.value).toEqual([1, 2, 3]);
  });

  it('drops points with empty or over-long keys and bad steps, with warnings', async () => {
    const runId = randomUUID();
    const long = 'k'.repeat(257);
    const result = await store.append(runId, 'b', batch([
      { key: '', step: 1, value: 1 },
      { key: long, step: 1, value: 1 },
      { key: long, step: 2, value: 1 },
      { key: 'k'.repeat(256), step: 1, value: 1 },
      { key: 'ok', step: -1, value: 1 },
      { key: 'ok', step: NaN, value: 1 },
      { key: 'ok', step: Infinity, value: 1 },
      { key: 'ok', step: 3, value: 5 },
    ]));
    expect(result.accepted).toBe(2);
    expect(result.warnings).toEqual([
      { key: '', message: expect.stringMatching(/empty/), dropped: 1 },
      { key: `${'k'.repeat(256)}…`, message: expect.stringMatching(/257 characters long; keys may have at most 256/), dropped: 2 },
      { key: 'ok', message: expect.stringMatching(/negative, NaN or infinite/), dropped: 3 },
    ]);
    await store.idle();
    expect((await store.keys(runId)).map((k) => [k.key.length, k.count])).toEqual([[256, 1], [2, 1]]);
  });

  it('refuses garbage with WLDB_ERR_VALIDATION and oversized batches with WLDB_ERR_BODY_TOO_LARGE', async () => {
    const runId = randomUUID();
    await expect(store.append(runId, 'g', new Uint8Array(512).fill(3))).rejects.toMatchObject({ code: Errors.VALIDATION.code });
    await expect(store.append(runId, 'big', new Uint8Array(64 * 1024 * 1024 + 1))).rejects.toMatchObject({ code: Errors.BODY_TOO_LARGE.code });
    await expect(store.appendPoints(runId, new Array(4_000_001))).rejects.toMatchObject({ code: Errors.BODY_TOO_LARGE.code });
    await expect(store.appendPoints(runId, [{ key: 'a', step: '1' as unknown as number, value: 1 }])).rejects.toMatchObject({
      code: Errors.VALIDATION.code,
      details: [{ field: 'points[0].step', message: 'must be a number' }],
    });
    expect(await store.keys(runId)).toEqual([]);
  });

  it('keeps NaN and ±Infinity, raw and in tile buckets, without NaN poisoning mean/min/max', async () => {
    const runId = randomUUID();
    const special = (s: number) => (s === 3 ? NaN : s === 5 ? Infinity : s === 20_001 ? -Infinity : s % 100 === 7 ? NaN : 1);
    await store.append(runId, 'a', series('v', 0, 40_000, special));
    await store.idle();
    const [raw] = await store.query({ runIds: [runId], keys: ['v'], xKey: 'step', xMin: 0, xMax: 9, maxPoints: 100 });
    expect(raw!.sampled).toBe(false);
    expect(raw!.value).toEqual([1, 1, 1, NaN, 1, Infinity, 1, NaN, 1, 1]);
    const [sampled] = await store.query({ runIds: [runId], keys: ['v'], xKey: 'step', maxPoints: 100 });
    expect(sampled!.sampled).toBe(true);
    expect(sampled!.max[0]).toBe(Infinity);
    expect(sampled!.min).toContain(-Infinity);
    expect(sampled!.value[sampled!.value.length - 1]).toBe(1);
    expect(sampled!.count.reduce((a, b) => a + b, 0)).toBe(40_000);
    const [stats] = await store.keys(runId);
    expect(stats).toMatchObject({ count: 40_000, min: -Infinity, max: Infinity, last: 1 });
  });

  it('keeps a single spike visible in a 1,000-bucket query over 1,000,000 points, and returns raw points when zoomed in', async () => {
    const runId = randomUUID();
    const spikeAt = 654_321;
    for (let b = 0; b < 10; b++) {
      await store.append(runId, `b${b}`, series('loss', b * 100_000, 100_000, (s) => (s === spikeAt ? 1e6 : Math.sin(s / 1000))));
    }
    await store.idle();
    const [chart] = await store.query({ runIds: [runId], keys: ['loss'], xKey: 'step', maxPoints: 1000 });
    expect(chart!.sampled).toBe(true);
    expect(chart!.x.length).toBeLessThanOrEqual(1000);
    expect(chart!.x.length).toBeGreaterThan(900);
    expect(Math.max(...chart!.max)).toBe(1e6);
    expect(chart!.count.reduce((a, b) => a + b, 0)).toBe(1_000_000);
    const spikeBucket = chart!.max.indexOf(1e6);
    expect(chart!.x[spikeBucket]).toBeLessThanOrEqual(spikeAt);
    expect(chart!.x[spikeBucket + 1]).toBeGreaterThan(spikeAt);

    const [zoomed] = await store.query({ runIds: [runId], keys: ['loss'], xKey: 'step', xMin: spikeAt - 200, xMax: spikeAt + 200, maxPoints: 1000 });
    expect(zoomed!.sampled).toBe(false);
    expect(zoomed!.x).toHaveLength(401);
    expect(zoomed!.x[0]).toBe(spikeAt - 200);
    expect(zoomed!.value[200]).toBe(1e6);

    const [mid] = await store.query({ runIds: [runId], keys: ['loss'], xKey: 'step', xMin: 600_000, xMax: 700_000, maxPoints: 500 });
    expect(mid!.sampled).toBe(true);
    expect(mid!.x.length).toBeLessThanOrEqual(500);
    expect(Math.max(...mid!.max)).toBe(1e6);
    expect(mid!.x[0]).toBeGreaterThanOrEqual(600_000 - 1024);
  });

  it('answers "_time", "_relative" and a logged key such as "epoch" as the x axis', async () => {
    const runId = randomUUID();
    const points: Point[] = [];
    for (let s = 0; s < 100; s++) {
      points.push({ key: 'loss', step: s, value: 100 - s, time: 1_000_000 + s * 500 });
      if (s % 10 === 0) points.push({ key: 'epoch', step: s, value: s / 10, time: 1_000_000 + s * 500 });
    }
    await store.append(runId, 'a', batch(points));
    await store.idle();
    const [byTime] = await store.query({ runIds: [runId], keys: ['loss'], xKey: '_time', xMin: 1_000_000 + 10 * 500, xMax: 1_000_000 + 12 * 500, maxPoints: 50 });
    expect(byTime).toMatchObject({ sampled: false, x: [1_005_000, 1_005_500, 1_006_000], value: [90, 89, 88] });
    const [relative] = await store.query({ runIds: [runId], keys: ['loss'], xKey: '_relative', xMax: 1, maxPoints: 50 });
    expect(relative).toMatchObject({ x: [0, 0.5, 1], value: [100, 99, 98] });
    const [byEpoch] = await store.query({ runIds: [runId], keys: ['loss'], xKey: 'epoch', maxPoints: 1000 });
    expect(byEpoch!.x).toHaveLength(100);
    expect(byEpoch!.x.slice(8, 12)).toEqual([0, 0, 1, 1]);
    expect(byEpoch!.x[99]).toBe(9);
    const [epochRange] = await store.query({ runIds: [runId], keys: ['loss'], xKey: 'epoch', xMin: 3, xMax: 4, maxPoints: 1000 });
    expect(epochRange!.x).toEqual([...new Array<number>(10).fill(3), ...new Array<number>(10).fill(4)]);
    expect(epochRange!.value[0]).toBe(70);
  });

  it('answers several runs in one query, in the order asked', async () => {
    const runs = [randomUUID(), randomUUID(), randomUUID()];
    await Promise.all(runs.map((runId, r) => store.append(runId, 'a', series('loss', 0, 20_000 * (r + 1), (s) => r + s / 1e6))));
    await store.idle();
    const result = await store.query({ runIds: [runs[2]!, runs[0]!, runs[1]!, randomUUID()], keys: ['loss'], xKey: 'step', maxPoints: 200 });
    expect(result.map((s) => s.runId)).toEqual([runs[2], runs[0], runs[1]]);
    expect(result.map((s) => s.count.reduce((a, b) => a + b, 0))).toEqual([60_000, 20_000, 40_000]);
    for (const s of result) expect(s.x.length).toBeLessThanOrEqual(200);
  });

  it('handles 10,000 keys in one run', async () => {
    const runId = randomUUID();
    const n = 20_000;
    const keys = Array.from({ length: 10_000 }, (_, i) => `layer.${String(i).padStart(5, '0')}/grad_norm`);
    const cols: MetricColumns = {
      length: n,
      step: Float64Array.from({ length: n }, (_, i) => Math.floor(i / 10_000)),
      value: Float64Array.from({ length: n }, (_, i) => i),
      time: new Float64Array(n).fill(1_700_000_000_000),
      keyIndex: Int32Array.from({ length: n }, (_, i) => i % 10_000),
      keys,
    };
    expect((await store.append(runId, 'a', encodeMetricBatch(cols))).accepted).toBe(n);
    await store.idle();
    const stats = await store.keys(runId);
    expect(stats).toHaveLength(10_000);
    expect(stats[9_999]).toEqual({ key: keys[9_999], count: 2, last: 19_999, lastStep: 1, min: 9_999, max: 19_999, firstStep: 0 });
    const all = await store.query({ runIds: [runId], keys: [], xKey: 'step', maxPoints: 10 });
    expect(all).toHaveLength(10_000);
    expect(all[1]).toMatchObject({ key: keys[1], x: [0, 1], value: [1, 10_001] });
  });

  it('exports CSV and Arrow equal to what was logged', async () => {
    const runId = randomUUID();
    const special = (s: number) => (s % 1000 === 1 ? NaN : s % 1000 === 2 ? Infinity : s % 1000 === 3 ? -Infinity : s * 0.5);
    await store.append(runId, 'a', series('b,"quoted"', 0, 10_000, special));
    await store.append(runId, 'b', series('a', 0, 20_000, (s) => -s));
    const chunks: Uint8Array[] = [];
    await store.export(runId, [], 'arrow', async (c) => void chunks.push(c.slice()));
    const all = new Uint8Array(chunks.reduce((a, c) => a + c.byteLength, 0));
    chunks.reduce((at, c) => (all.set(c, at), at + c.byteLength), 0);
    const decoded = decodeMetricBatch(all);
    expect(decoded.length).toBe(30_000);
    expect(decoded.keys).toEqual(['a', 'b,"quoted"']);
    for (const i of [0, 19_999, 20_000, 20_001, 20_002, 20_003, 29_999]) {
      const key = i < 20_000 ? 'a' : 'b,"quoted"';
      const step = i < 20_000 ? i : i - 20_000;
      expect(decoded.keys[decoded.keyIndex[i]!]).toBe(key);
      expect(decoded.step[i]).toBe(step);
      expect(decoded.value[i]).toBe(key === 'a' ? -step : special(step));
      expect(decoded.time[i]).toBe(1_700_000_000_000 + step * 10);
    }

    let csv = '';
    await store.export(runId, ['b,"quoted"'], 'csv', async (c) => void (csv += new TextDecoder().decode(c)));
    const lines = csv.trimEnd().split('\n');
    expect(lines[0]).toBe('step,key,value,time');
    expect(lines).toHaveLength(10_001);
    expect(lines.slice(1, 5)).toEqual([
      '0,"b,""quoted""",0,1700000000000',
      '1,"b,""quoted""",NaN,1700000000010',
      '2,"b,""quoted""",Infinity,1700000000020',
      '3,"b,""quoted""",-Infinity,1700000000030',
    ]);
    expect(lines[10_000]).toBe('9999,"b,""quoted""",4999.5,1700000099990');
  });

  it('deletes a run: points, keys and batch ids', async () => {
    const runId = randomUUID();
    await store.append(runId, 'a', series('loss', 0, 10_000, (s) => s));
    await store.idle();
    await store.deleteRun(runId);
    expect(await store.keys(runId)).toEqual([]);
    expect(await store.query({ runIds: [runId], keys: [], xKey: 'step', maxPoints: 10 })).toEqual([]);
    // The batch id is free again, and steps start over.
    expect(await store.append(runId, 'a', series('loss', 0, 5, (s) => s))).toMatchObject({ accepted: 5, duplicate: false, warnings: [] });
    await store.idle();
    expect((await store.keys(runId))[0]).toMatchObject({ count: 5 });
  });
});

describe.each(metadataBackends())('SqlMetricStore durability and recovery on $name', (backend) => {
  const manual: SqlMetricStoreOptions = { logger: quiet, autoAggregate: false };

  it('keeps an acknowledged batch through a close before aggregation; recover() aggregates it', async () => {
    const fresh = await backend.fresh();
    try {
      const runId = randomUUID();
      const db1 = await createMetadataStore(fresh.url);
      const writer = await SqlMetricStore.open(db1, manual);
      await writer.append(runId, 'a', series('loss', 0, 30_000, (s) => s));
      await writer.append(runId, 'b', series('loss', 30_000, 5, (s) => s));
      // Points given as objects, and an Arrow batch that screening changed, are stored packed (stored-batch.ts).
      await writer.appendPoints(runId, [{ key: 'acc', step: 10, value: 0.5, time: 1 }], 'p');
      expect((await writer.append(runId, 'q', series('acc', 5, 10, (s) => s / 100))).accepted).toBe(5);
      // Nothing aggregated: the "crash" comes before aggregation.
      expect(await writer.keys(runId)).toEqual([]);
      await writer.close();
      await db1.close();

      const db2 = await createMetadataStore(fresh.url);
      const reader = await SqlMetricStore.open(db2, { logger: quiet });
      try {
        expect((await reader.append(runId, 'b', series('loss', 30_000, 5, (s) => s))).duplicate).toBe(true);
        // Batches younger than the threshold are left to the writer that stored them.
        expect(await reader.recover(60_000)).toBe(0);
        expect(await reader.recover()).toBe(4);
        expect(await reader.recover()).toBe(0);
        const keys = await reader.keys(runId);
        expect(keys.find((k) => k.key === 'loss')).toMatchObject({ count: 30_005, last: 30_004 });
        expect(keys.find((k) => k.key === 'acc')).toMatchObject({ count: 6, firstStep: 10, lastStep: 14, last: 0.14 });
        // Appends after recovery continue the same history.
        expect((await reader.append(runId, 'c', series('loss', 30_005, 10, (s) => s))).accepted).toBe(10);
        await reader.idle();
        const [all] = await reader.query({ runIds: [runId], keys: ['loss'], xKey: 'step', xMin: 29_990, maxPoints: 100 });
        expect(all!.x).toEqual(Array.from({ length: 25 }, (_, i) => 29_990 + i));
      } finally {
        await reader.close();
        await db2.close();
      }
    } finally {
      await fresh.drop();
    }
  });

  it('finishes a batch aggregated in key groups after a crash between groups, without counting any key twice', async () => {
    const fresh = await backend.fresh();
    const real = await createMetadataStore(fresh.url);
    try {
      const runId = randomUUID();
      const writer = await SqlMetricStore.open(real, manual);
      await writer.append(runId, 'a', batch(['k1', 'k2', 'k3', 'k4'].flatMap((key) => [0, 1, 2].map((step) => ({ key, step, value: step })))));
      // A database that fails the third transaction: the first two key groups commit, then the "crash".
      let transactions = 0;
      const failing = wrapStore(real, {
        transaction: (fn, options) => (++transactions === 3 ? Promise.reject(new Error('simulated crash')) : real.transaction(fn, options)),
      });
      const errors: string[] = [];
      const crashing = await SqlMetricStore.open(failing, { ...manual, aggregationGroupBytes: 1, logger: { warn: () => {}, error: (_d, m) => void errors.push(m) } });
      expect(await crashing.recover()).toBe(0);
      expect((await crashing.keys(runId)).map((k) => k.key)).toEqual(['k1', 'k2']);
      expect(errors).toEqual([expect.stringMatching(/stay stored and pending/)]);
      await crashing.close();
      const finisher = await SqlMetricStore.open(real, { ...manual, aggregationGroupBytes: 1 });
      expect(await finisher.recover()).toBe(1);
      expect((await finisher.keys(runId)).map((k) => [k.key, k.count, k.last])).toEqual([
        ['k1', 3, 2],
        ['k2', 3, 2],
        ['k3', 3, 2],
        ['k4', 3, 2],
      ]);
      await finisher.close();
      await writer.close();
    } finally {
      await real.close();
      await fresh.drop();
    }
  });

  it('aggregates each batch exactly once when two stores race on recover()', async () => {
    const fresh = await backend.fresh();
    const dbs: MetadataStore[] = [];
    const stores: SqlMetricStore[] = [];
    try {
      for (let i = 0; i < 3; i++) dbs.push(await createMetadataStore(fresh.url));
      const writer = await SqlMetricStore.open(dbs[0]!, manual);
      stores.push(writer);
      const runs = [randomUUID(), randomUUID(), randomUUID()];
      let batches = 0;
      for (let b = 0; b < 8; b++) {
        for (const [r, runId] of runs.entries()) {
          await writer.append(runId, `b${b}`, series('loss', b * 3000, 3000, (s) => s * (r + 1)));
          batches++;
        }
      }
      const a = await SqlMetricStore.open(dbs[1]!, { logger: quiet });
      const b = await SqlMetricStore.open(dbs[2]!, { logger: quiet });
      stores.push(a, b);
      const [byA, byB] = await Promise.all([a.recover(), b.recover()]);
      expect(byA + byB).toBe(batches);
      for (const [r, runId] of runs.entries()) {
        expect((await a.keys(runId))[0]).toMatchObject({ count: 24_000, last: 23_999 * (r + 1), min: 0 });
        const [chart] = await b.query({ runIds: [runId], keys: ['loss'], xKey: 'step', maxPoints: 100 });
        expect(chart!.count.reduce((x, y) => x + y, 0)).toBe(24_000);
      }
    } finally {
      for (const s of stores) await s.close();
      for (const d of dbs) await d.close();
      await fresh.drop();
    }
  });
});

describe.each(metadataBackends())('SqlMetricStore appends from several writers on $name', (backend) => {
  // Two stores on one database stand for two server processes; each keeps its own cache of the runs it wrote.
  const withTwoWriters = async (test: (w: { dbs: MetadataStore[]; a: SqlMetricStore; b: SqlMetricStore }) => Promise<void>) => {
    const fresh = await backend.fresh();
    const dbs = [await createMetadataStore(fresh.url), await createMetadataStore(fresh.url)];
    const stores = [await SqlMetricStore.open(dbs[0]!, { logger: quiet }), await SqlMetricStore.open(dbs[1]!, { logger: quiet })];
    try {
      await test({ dbs, a: stores[0]!, b: stores[1]! });
    } finally {
      for (const s of stores) await s.close();
      for (const d of dbs) await d.close();
      await fresh.drop();
    }
  };

  const seqsOf = async (db: MetadataStore, runId: string) =>
    (await db.query<{ seq: number }>('SELECT seq FROM metric_batches WHERE run_id = ? ORDER BY seq', [runId])).map((r) => Number(r.seq));

  it("screens each writer's batch against the other's: seqs without gaps, backwards steps dropped, every batch once", async () => {
    await withTwoWriters(async ({ dbs, a, b }) => {
      const runId = randomUUID();
      expect((await a.append(runId, 'a1', series('loss', 0, 2, (s) => s))).accepted).toBe(2);
      expect((await a.append(runId, 'a2', series('loss', 2, 2, (s) => s))).accepted).toBe(2);
      // b writes steps 4..5; a's cache still says step 3 is the last.
      expect((await b.append(runId, 'b1', series('loss', 4, 2, (s) => s))).accepted).toBe(2);
      const stale = await a.append(runId, 'a3', series('loss', 4, 1, () => 99));
      expect(stale).toMatchObject({ accepted: 0, duplicate: false, warnings: [expect.objectContaining({ key: 'loss', dropped: 1, message: expect.stringMatching(/last step was 5/) })] });
      expect(await a.append(runId, 'a4', series('loss', 6, 2, (s) => s))).toMatchObject({ accepted: 2, duplicate: false });
      // A retry through the other writer is the same batch.
      expect(await b.append(runId, 'a4', series('loss', 6, 2, (s) => s))).toMatchObject({ accepted: 0, duplicate: true });
      expect(await a.append(runId, 'a4', series('loss', 6, 2, (s) => s))).toMatchObject({ accepted: 0, duplicate: true });
      await Promise.all([a.idle(), b.idle()]);
      expect((await a.keys(runId))[0]).toMatchObject({ key: 'loss', count: 8, last: 7, firstStep: 0, lastStep: 7 });
      expect(await seqsOf(dbs[0]!, runId)).toEqual([1, 2, 3, 4, 5]);
    });
  });

  it("keeps the last steps a writer's own appends stored, for the other writer to screen against", async () => {
    await withTwoWriters(async ({ a, b }) => {
      const runId = randomUUID();
      await a.append(runId, 'a1', series('loss', 0, 2, (s) => s));
      await a.append(runId, 'a2', series('loss', 2, 2, (s) => s)); // known keys: PostgreSQL's one-statement append
      const late = await b.append(runId, 'b1', series('loss', 2, 1, () => 9));
      expect(late).toMatchObject({ accepted: 0, warnings: [expect.objectContaining({ message: expect.stringMatching(/last step was 3/) })] });
    });
  });

  it('takes a run deleted and created again under the same id as new, whichever writer deleted it', async () => {
    await withTwoWriters(async ({ a, b }) => {
      const runId = randomUUID();
      await a.append(runId, 'old1', series('loss', 0, 10, () => 1));
      await a.append(runId, 'old2', series('loss', 10, 10, () => 1));
      await a.idle();
      await b.deleteRun(runId);
      // a still caches the old run (its last step 19): the new run's step 0 must be taken, and its first batch id is new.
      expect(await a.append(runId, 'old1', series('loss', 0, 3, () => 2))).toMatchObject({ accepted: 3, duplicate: false });
      await a.idle();
      expect((await a.keys(runId))[0]).toMatchObject({ count: 3, last: 2, firstStep: 0, lastStep: 2 });
    });
  });

  it('lets concurrent appends of two writers to one run race: each batch stored once, seqs in order', async () => {
    await withTwoWriters(async ({ dbs, a, b }) => {
      const runId = randomUUID();
      // Each writer its own key (a key's steps only go forward per writer), eight batches each, all at once.
      const results = await Promise.all(
        [a, b].flatMap((store, w) => Array.from({ length: 8 }, (_, i) => store.append(runId, `w${w}-${i}`, series(`k${w}`, i * 10, 10, (s) => s)))),
      );
      expect(results.map((r) => r.duplicate)).toEqual(new Array(16).fill(false));
      await Promise.all([a.idle(), b.idle()]);
      // Steps a later batch of the same writer made backwards (it raced ahead) are dropped with a warning, never stored twice.
      const accepted = results.reduce((n, r) => n + r.accepted, 0);
      const keys = await a.keys(runId);
      expect(keys.reduce((n, k) => n + k.count, 0)).toBe(accepted);
      expect(accepted).toBeGreaterThan(0);
      expect(await seqsOf(dbs[0]!, runId)).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
    });
  });

  it.runIf(backend.name === 'postgres')('appends a batch of known keys as ONE statement on PostgreSQL', async () => {
    const fresh = await backend.fresh();
    const real = await createMetadataStore(fresh.url);
    const calls: string[] = [];
    const counting = wrapStore(real, {
      query: (sql, params) => (calls.push(`query ${sql.trim().slice(0, 20)}`), real.query(sql, params)),
      run: (sql, params) => (calls.push(`run ${sql.trim().slice(0, 20)}`), real.run(sql, params)),
      transaction: (fn, options) => (calls.push('transaction'), real.transaction(fn, options)),
    });
    const store = await SqlMetricStore.open(counting, { logger: quiet, autoAggregate: false });
    try {
      const runId = randomUUID();
      await store.append(runId, 'first', batch([{ key: 'loss', step: 0, value: 1 }, { key: 'acc', step: 0, value: 0 }]));
      calls.length = 0;
      const second = await store.append(runId, 'second', batch([{ key: 'loss', step: 1, value: 0.5 }, { key: 'acc', step: 1, value: 0.5 }]));
      expect(second).toMatchObject({ accepted: 2, duplicate: false });
      expect(calls).toEqual([expect.stringMatching(/^query WITH held/)]);
      // A new key needs the key count: the locked transaction.
      calls.length = 0;
      await store.append(runId, 'third', batch([{ key: 'lr', step: 2, value: 0.1 }]));
      expect(calls[0]).toBe('transaction');
      // Another writer appends: one guess misses, then the run goes the locked way until this store is its only writer again.
      const other = await SqlMetricStore.open(real, { logger: quiet, autoAggregate: false });
      await other.append(runId, 'other', batch([{ key: 'loss', step: 3, value: 0.4 }]));
      await other.close();
      calls.length = 0;
      await store.append(runId, 'fourth', batch([{ key: 'loss', step: 4, value: 0.3 }]));
      expect(calls.map((c) => c.split(' ')[0])).toEqual(['query', 'transaction']);
      calls.length = 0;
      await store.append(runId, 'fifth', batch([{ key: 'loss', step: 5, value: 0.2 }]));
      expect(calls).toEqual(['transaction']);
      calls.length = 0;
      await store.append(runId, 'sixth', batch([{ key: 'loss', step: 6, value: 0.1 }]));
      expect(calls).toEqual([expect.stringMatching(/^query WITH held/)]);
    } finally {
      await store.close();
      await real.close();
      await fresh.drop();
    }
  });
});
