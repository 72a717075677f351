import { resolveSettings, type Plugin } from '@wanllmdb/core';
import { metadataBackends, startTestKernel } from '@wanllmdb/core/testing';
import { projectsPlugin } from '@wanllmdb/plugin-projects';
import type { tracking } from '@wanllmdb/proto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { rejection } from './fixtures/rejection.js';
import { startTrackingKernel, useTrackingKernel } from './fixtures/tracking-kernel.js';
import { DEFAULT_MAX_KEYS_PER_RUN, KEY_LIMIT_SETTING } from './metrics/key-limit.js';
import { encodeMetricBatch } from './metrics/metric-batch.js';
import { METRIC_MIGRATIONS_NAMESPACE, metricMigrations } from './metrics/metric-migrations.js';
import { trackingApiRef } from './tracking-api.js';
import { createTrackingPlugin } from './tracking-plugin.js';

type Run = tracking.v1.Run;
type AppendMetricsResponse = tracking.v1.AppendMetricsResponse;

const LIMIT = 5;

/** An Arrow batch with one point at `step` for each of `used` keys; `unused` keys are in its dictionary without points (as the SDK sends). */
function arrowBatch(used: string[], step: number, unused: string[] = []): Uint8Array {
  const n = used.length;
  return encodeMetricBatch({
    length: n,
    step: new Float64Array(n).fill(step),
    value: Float64Array.from(used, (_, i) => step + i / 10),
    time: new Float64Array(n).fill(1_700_000_000_000),
    keyIndex: Int32Array.from(used, (_, i) => i),
    keys: [...used, ...unused],
  });
}

const keys = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

describe.each(metadataBackends())('the per-run metric key limit on $name', (backend) => {
  const t = useTrackingKernel(backend, { plugin: { maxMetricKeysPerRun: LIMIT } });
  const idle = () => t.kernel.get(trackingApiRef).metricsSettled();
  const newRun = async () => (await t.call<{ data: Run }>('RunService/CreateRun', { projectId: 'key-limit' })).data.id;
  const keysOf = async (runId: string) =>
    (await t.call<tracking.v1.ListMetricKeysResponse>('MetricService/ListMetricKeys', { runId })).data.map((k) => [k.key, k.count]);
  const append = (runId: string, batchId: string, arrowIpc: Uint8Array) => t.call<AppendMetricsResponse>('MetricService/AppendMetricBatch', { runId, batchId, arrowIpc });

  it('refuses a batch that would pass the limit whole, naming the limit and the setting', async () => {
    const runId = await newRun();
    expect((await append(runId, 'b1', arrowBatch(keys('k', 3), 1))).accepted).toBe(3);
    // Two existing keys and three new ones: 3 + 3 > 5.
    const err = await rejection(append(runId, 'b2', arrowBatch([...keys('k', 2), ...keys('new', 3)], 2)));
    expect(err).toMatchObject({ code: 'WLDB_ERR_LIMIT_EXCEEDED', httpStatus: 422 });
    expect(err.message).toMatch(/has 3 distinct metric keys and this batch would add 3 more, past the limit of 5 per run \(WANLLMDB_MAX_METRIC_KEYS_PER_RUN\); none of it was stored/);
    expect(err.details).toEqual([{ field: KEY_LIMIT_SETTING, message: 'at most 5 distinct metric keys per run; the run has 3, this batch adds 3' }]);
    await idle();
    // Nothing of it is stored: no points of the existing keys either, and its batch id is free.
    expect(await keysOf(runId)).toEqual([['k0', 1], ['k1', 1], ['k2', 1]]);
    expect((await t.call<{ data: Run }>('RunService/GetRun', { id: runId })).data.summary).toEqual({ k0: 1, k1: 1.1, k2: 1.2 });
    const retried = await append(runId, 'b2', arrowBatch([...keys('k', 2), ...keys('new', 2)], 2));
    expect(retried).toMatchObject({ accepted: 4, duplicate: false });
    await idle();
    expect(await keysOf(runId)).toEqual([['k0', 2], ['k1', 2], ['k2', 1], ['new0', 1], ['new1', 1]]);
  });

  it('keeps taking points of the keys a run has once it is at the limit', async () => {
    const runId = await newRun();
    await append(runId, 'b1', arrowBatch(keys('k', LIMIT), 1));
    for (let step = 2; step < 5; step++) expect((await append(runId, `b${step}`, arrowBatch(keys('k', LIMIT), step))).accepted).toBe(LIMIT);
    // Dictionary entries without points, and keys the batch screening drops, are not new keys of the run.
    const padded = await append(runId, 'b5', arrowBatch([...keys('k', 2), 'x'.repeat(300)], 5, ['unused1', 'unused2']));
    expect(padded.accepted).toBe(2);
    expect(padded.warnings).toHaveLength(1);
    expect((await rejection(t.call('MetricService/LogMetrics', { runId, metrics: [{ name: 'one-more', step: 6, value: 1 }] }))).code).toBe('WLDB_ERR_LIMIT_EXCEEDED');
    expect((await rejection(t.call('MetricService/BatchMetrics', { runId, metrics: { 'one-more': [{ step: 6, value: 1 }] } }))).code).toBe('WLDB_ERR_LIMIT_EXCEEDED');
    // Each run has its own count.
    const other = await newRun();
    expect((await append(other, 'b1', arrowBatch(keys('k', LIMIT), 1))).accepted).toBe(LIMIT);
    await idle();
    expect((await keysOf(runId)).map(([k]) => k)).toEqual(keys('k', LIMIT));
  });

  it('counts a stream batch by batch: the batches before the refused one stay', async () => {
    const runId = await newRun();
    const stream = (async function* () {
      yield { runId, batchId: 's1', arrowIpc: arrowBatch(keys('a', 3), 1) };
      yield { runId, batchId: 's2', arrowIpc: arrowBatch(keys('b', 2), 1) };
      yield { runId, batchId: 's3', arrowIpc: arrowBatch(keys('c', 1), 1) };
    })();
    expect((await rejection(t.call('MetricService/StreamMetrics', stream))).code).toBe('WLDB_ERR_LIMIT_EXCEEDED');
    await idle();
    expect((await keysOf(runId)).map(([k]) => k)).toEqual([...keys('a', 3), ...keys('b', 2)]);
  });

  it('caps the keys a user sets in the summary the same way, refusing the update whole', async () => {
    const runId = await newRun();
    const summaryOf = async () => (await t.call<{ data: Run }>('RunService/GetRun', { id: runId })).data.summary;
    await t.call('RunService/UpdateSummary', { id: runId, summary: { a: 1, b: 2, c: 3, d: 4 } });
    const err = await rejection(t.call('RunService/UpdateSummary', { id: runId, summary: { a: 10, e: 5, f: 6 } }));
    expect(err.code).toBe('WLDB_ERR_LIMIT_EXCEEDED');
    expect(err.message).toMatch(/has 4 summary keys and this summary update would add 2 more, past the limit of 5 per run \(WANLLMDB_MAX_METRIC_KEYS_PER_RUN\)/);
    expect(await summaryOf()).toEqual({ a: 1, b: 2, c: 3, d: 4 });
    // Up to the limit, and replacing a key by another, are fine.
    await t.call('RunService/UpdateSummary', { id: runId, summary: { e: 5 } });
    await t.call('RunService/UpdateSummary', { id: runId, summary: { a: null, f: 6 } });
    expect(await summaryOf()).toEqual({ b: 2, c: 3, d: 4, e: 5, f: 6 });
    // Finishing with a summary that passes the limit is refused as a whole: the run keeps running.
    expect((await rejection(t.call('RunService/FinishRun', { id: runId, summary: { g: 7 } }))).code).toBe('WLDB_ERR_LIMIT_EXCEEDED');
    expect((await t.call<{ data: Run }>('RunService/GetRun', { id: runId })).data.state).toBe('running');
  });
});

describe('the metric key limit setting', () => {
  const saved = process.env[KEY_LIMIT_SETTING];
  beforeEach(() => {
    delete process.env[KEY_LIMIT_SETTING];
  });
  afterEach(() => {
    if (saved === undefined) delete process.env[KEY_LIMIT_SETTING];
    else process.env[KEY_LIMIT_SETTING] = saved;
  });

  it('defaults to 10,000, reads the environment, and lets the plugin option win', () => {
    const setting = (plugin: Plugin) => plugin.settings.maxKeysPerRun!;
    const from = (env: NodeJS.ProcessEnv, plugin = createTrackingPlugin()) => resolveSettings('tracking', plugin.settings, env).maxKeysPerRun;
    expect(from({})).toBe(DEFAULT_MAX_KEYS_PER_RUN);
    expect(DEFAULT_MAX_KEYS_PER_RUN).toBe(10_000);
    expect(from({ [KEY_LIMIT_SETTING]: ' 250 ' })).toBe(250);
    expect(from({ [KEY_LIMIT_SETTING]: '250' }, createTrackingPlugin({ maxMetricKeysPerRun: 7 }))).toBe(7);
    expect(setting(createTrackingPlugin()).env).toBe(KEY_LIMIT_SETTING);
    for (const bad of ['0', '-1', '1.5', 'lots', '99999999999']) {
      expect(() => from({ [KEY_LIMIT_SETTING]: bad }), bad).toThrow(/Setting WANLLMDB_MAX_METRIC_KEYS_PER_RUN has an invalid value .*: expected a whole number from 1 to 10,000,000/);
    }
  });

  it('is applied from WANLLMDB_MAX_METRIC_KEYS_PER_RUN when the server starts, and a bad value stops the start', async () => {
    const [sqlite] = metadataBackends();
    process.env[KEY_LIMIT_SETTING] = '2';
    const t = await startTrackingKernel(sqlite!);
    try {
      const runId = (await t.call<{ data: Run }>('RunService/CreateRun', { projectId: 'env-limit' })).data.id;
      await t.call('MetricService/AppendMetricBatch', { runId, batchId: 'b1', arrowIpc: arrowBatch(keys('k', 2), 1) });
      expect((await rejection(t.call('MetricService/AppendMetricBatch', { runId, batchId: 'b2', arrowIpc: arrowBatch(['k9'], 2) }))).message).toMatch(/limit of 2 per run/);
    } finally {
      await t.close();
    }
    process.env[KEY_LIMIT_SETTING] = 'lots';
    const failed = await rejection(startTestKernel(sqlite!, { plugins: [projectsPlugin, createTrackingPlugin()] }));
    expect(failed.code).toBe('WLDB_ERR_CONFIG_INVALID');
    expect(failed.message).toMatch(/Setting WANLLMDB_MAX_METRIC_KEYS_PER_RUN has an invalid value "lots"/);
  });
});

describe.each(metadataBackends())('the key count migration on $name', (backend) => {
  it('counts the keys runs had before the limit existed', async () => {
    const db = await backend.create();
    try {
      await db.migrate(METRIC_MIGRATIONS_NAMESPACE, metricMigrations.slice(0, 1));
      for (const [run, n] of [['run-a', 3], ['run-b', 1]] as const) {
        for (let i = 0; i < n; i++) await db.run('INSERT INTO metric_keys (run_id, key, append_step) VALUES (?, ?, 0)', [run, `k${i}`]);
      }
      await db.migrate(METRIC_MIGRATIONS_NAMESPACE, metricMigrations);
      const rows = await db.query<{ run_id: string; key_count: number }>('SELECT run_id, key_count FROM metric_run_keys ORDER BY run_id');
      expect(rows.map((r) => [r.run_id, Number(r.key_count)])).toEqual([['run-a', 3], ['run-b', 1]]);
    } finally {
      await db.close();
    }
  });
});
