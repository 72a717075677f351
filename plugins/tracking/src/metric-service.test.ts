import { randomUUID } from 'node:crypto';
import { metadataBackends } from '@wanllmdb/core/testing';
import type { tracking } from '@wanllmdb/proto';
import { beforeAll, describe, expect, it } from 'vitest';
import { rejection } from './fixtures/rejection.js';
import { useTrackingKernel } from './fixtures/tracking-kernel.js';
import { encodeMetricBatch } from './metrics/metric-batch.js';
import { trackingApiRef } from './tracking-api.js';

type AppendMetricsResponse = tracking.v1.AppendMetricsResponse;
type MetricBatch = tracking.v1.MetricBatch;

/** An Arrow IPC batch of `n` points of `keys`, steps from `from`. */
function arrowBatch(keys: string[], from: number, n: number): Uint8Array {
  const total = n * keys.length;
  const step = new Float64Array(total);
  const value = new Float64Array(total);
  const time = new Float64Array(total);
  const keyIndex = new Int32Array(total);
  for (let i = 0; i < n; i++) {
    keys.forEach((_, k) => {
      const j = i * keys.length + k;
      step[j] = from + i;
      value[j] = (from + i) * (k + 1);
      time[j] = 1_700_000_000_000 + (from + i) * 1000;
      keyIndex[j] = k;
    });
  }
  return encodeMetricBatch({ length: total, step, value, time, keyIndex, keys });
}

describe.each(metadataBackends())('MetricService on $name', (backend) => {
  const t = useTrackingKernel(backend);
  let runId = '';
  const idle = () => t.kernel.get(trackingApiRef).metricsSettled();

  beforeAll(async () => {
    runId = (await t.call<{ data: tracking.v1.Run }>('RunService/CreateRun', { projectId: 'metrics' })).data.id;
  });

  it('logs points in the design JSON shape and reads them back', async () => {
    const res = await t.call<AppendMetricsResponse>('MetricService/LogMetrics', {
      runId,
      metrics: [
        { name: 'loss', step: 1, value: 0.9, time: 0 },
        { name: 'loss', step: 2, value: 0.7, time: 0 },
        { name: 'acc', step: 2, value: 0.5, time: 0 },
      ],
    });
    expect(res).toMatchObject({ accepted: 3, duplicate: false });
    await idle();
    const got = await t.call<tracking.v1.GetMetricsResponse>('MetricService/GetMetrics', { runId, names: 'loss, acc' });
    expect(got.sampled).toBe(false);
    expect(got.data.loss).toEqual([expect.objectContaining({ step: 1, value: 0.9 }), expect.objectContaining({ step: 2, value: 0.7 })]);
    expect(got.data.acc).toEqual([expect.objectContaining({ step: 2, value: 0.5 })]);
    const keys = (await t.call<tracking.v1.ListMetricKeysResponse>('MetricService/ListMetricKeys', { runId })).data;
    expect(keys.map((k) => [k.key, k.count, k.last])).toEqual([
      ['acc', 1, 0.5],
      ['loss', 2, 0.7],
    ]);
    // The summary follows the last values.
    expect((await t.call<{ data: tracking.v1.Run }>('RunService/GetRun', { id: runId })).data.summary).toMatchObject({ loss: 0.7, acc: 0.5 });
  });

  it('takes the batch JSON shape, with "NaN"/"Infinity" strings, and validates every item', async () => {
    const res = await t.call<AppendMetricsResponse>('MetricService/BatchMetrics', {
      runId,
      metrics: { val: [{ step: 3, value: 'NaN' }, { step: 4, value: 'Infinity' }, { step: 5, value: 0.25, time: 1_700_000_000_000 }] },
    });
    expect(res.accepted).toBe(3);
    await idle();
    expect((await t.call<{ data: tracking.v1.Run }>('RunService/GetRun', { id: runId })).data.summary!.val).toBe(0.25);
    const bad = await rejection(
      t.call('MetricService/BatchMetrics', { runId, metrics: { loss: [{ step: 'x', value: 1 }, { value: 1 }, 5, { step: 1, value: 'nan', extra: 1 }], k: 'nope' } }),
    );
    expect(bad.code).toBe('WLDB_ERR_VALIDATION');
    expect(bad.details.map((d) => d.field)).toEqual(['metrics.loss[0].step', 'metrics.loss[1].step', 'metrics.loss[2]', 'metrics.loss[3]', 'metrics.loss[3].value', 'metrics.k']);
    expect((await rejection(t.call('MetricService/LogMetrics', { runId, metrics: [{ name: '', step: 1, value: 1 }] }))).details[0]!.field).toBe('metrics[0].name');
  });

  it('appends Arrow batches idempotently by batch id, alone and as a stream', async () => {
    // In process, the engine may take over (transfer) the bytes it is given: each call gets its own.
    const batch = () => arrowBatch(['loss', 'lr'], 10, 50);
    const first = await t.call<AppendMetricsResponse>('MetricService/AppendMetricBatch', { runId, batchId: 'b-1', arrowIpc: batch() });
    expect(first).toMatchObject({ accepted: 100, duplicate: false, batchId: 'b-1' });
    const again = await t.call<AppendMetricsResponse>('MetricService/AppendMetricBatch', { runId, batchId: 'b-1', arrowIpc: batch() });
    expect(again).toMatchObject({ accepted: 0, duplicate: true });
    const stream = (async function* (): AsyncGenerator<MetricBatch> {
      yield { runId, batchId: 's-1', arrowIpc: arrowBatch(['loss'], 100, 10) };
      yield { runId, batchId: 's-2', arrowIpc: arrowBatch(['loss'], 110, 10) };
      yield { runId, batchId: 's-1', arrowIpc: arrowBatch(['loss'], 100, 10) };
    })();
    const streamed = await t.call<tracking.v1.StreamMetricsResponse>('MetricService/StreamMetrics', stream);
    expect(streamed).toMatchObject({ batchIds: ['s-1', 's-2', 's-1'], accepted: 20, duplicates: 1 });
    await idle();
    const keys = (await t.call<tracking.v1.ListMetricKeysResponse>('MetricService/ListMetricKeys', { runId })).data;
    expect(keys.find((k) => k.key === 'lr')).toMatchObject({ count: 50, lastStep: 59 });
    expect((await rejection(t.call('MetricService/AppendMetricBatch', { runId, batchId: 'bad id!', arrowIpc: batch() }))).details[0]!.field).toBe('batchId');
    expect((await rejection(t.call('MetricService/AppendMetricBatch', { runId, batchId: 'b-2', arrowIpc: new Uint8Array(0) }))).details[0]!.field).toBe('arrowIpc');
    expect((await rejection(t.call('MetricService/AppendMetricBatch', { runId: randomUUID(), batchId: 'b-3', arrowIpc: batch() }))).code).toBe('WLDB_ERR_NOT_FOUND');
    const toMissing = (async function* (): AsyncGenerator<MetricBatch> {
      yield { runId: randomUUID(), batchId: 'x', arrowIpc: batch() };
    })();
    expect((await rejection(t.call('MetricService/StreamMetrics', toMissing))).code).toBe('WLDB_ERR_NOT_FOUND');
  });

  it('downsamples long series keeping min and max, and queries several runs', async () => {
    const other = (await t.call<{ data: tracking.v1.Run }>('RunService/CreateRun', { projectId: 'metrics' })).data.id;
    await t.call('MetricService/AppendMetricBatch', { runId: other, batchId: 'long', arrowIpc: arrowBatch(['wave'], 0, 5000) });
    await idle();
    const got = await t.call<tracking.v1.GetMetricsResponse>('MetricService/GetMetrics', { runId: other, names: 'wave', maxPoints: 100 });
    expect(got.sampled).toBe(true);
    const points = got.data.wave as { step: number; value: number; min: number; max: number; count: number }[];
    expect(points.length).toBeLessThanOrEqual(100);
    expect(points[0]).toEqual(expect.objectContaining({ min: expect.any(Number), max: expect.any(Number), count: expect.any(Number) }));
    expect(Math.max(...points.map((p) => p.max))).toBe(4999);
    expect(points.reduce((a, p) => a + p.count, 0)).toBe(5000);
    const ranged = await t.call<tracking.v1.GetMetricsResponse>('MetricService/GetMetrics', { runId: other, names: 'wave', minStep: 10, maxStep: 19 });
    expect((ranged.data.wave as { step: number }[]).map((p) => p.step)).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);

    const q = await t.call<tracking.v1.QueryMetricsResponse>('MetricService/QueryMetrics', { runIds: [runId, other], keys: ['loss', 'wave'], maxPoints: 50 });
    expect(q.data.map((s) => `${s.runId === runId ? 'a' : 'b'}:${s.key}`).sort()).toEqual(['a:loss', 'b:wave']);
    expect((await rejection(t.call('MetricService/QueryMetrics', { runIds: [] }))).details[0]!.field).toBe('runIds');
    expect((await rejection(t.call('MetricService/QueryMetrics', { runIds: [runId, randomUUID()] }))).code).toBe('WLDB_ERR_NOT_FOUND');
    expect((await rejection(t.call('MetricService/GetMetrics', { runId, maxPoints: 10_001 }))).details[0]!.field).toBe('maxPoints');
    expect((await rejection(t.call('MetricService/GetMetrics', { runId, minStep: 5, maxStep: 1 }))).details[0]!.field).toBe('minStep');
  });

  it('exports the history as CSV and Arrow bytes', async () => {
    const csv: Buffer[] = [];
    let type = '';
    await t.stream<{ contentType: string; data: Uint8Array }>('MetricService/ExportMetrics', { runId, format: 'csv', names: 'loss' }, (m) => {
      type = m.contentType;
      csv.push(Buffer.from(m.data));
    });
    expect(type).toBe('text/csv');
    const text = Buffer.concat(csv).toString();
    expect(text.split('\n')[0]).toMatch(/step/);
    expect(text).toMatch(/loss/);
    const arrow: Buffer[] = [];
    await t.stream<{ contentType: string; data: Uint8Array }>('MetricService/ExportMetrics', { runId, format: 'arrow' }, (m) => {
      type = m.contentType;
      arrow.push(Buffer.from(m.data));
    });
    expect(type).toBe('application/vnd.apache.arrow.stream');
    expect(Buffer.concat(arrow).length).toBeGreaterThan(0);
    expect((await rejection(t.stream('MetricService/ExportMetrics', { runId, format: 'xlsx' }, () => undefined))).details[0]!.field).toBe('format');
    expect((await rejection(t.stream('MetricService/ExportMetrics', { runId: randomUUID() }, () => undefined))).code).toBe('WLDB_ERR_NOT_FOUND');
  });
});
