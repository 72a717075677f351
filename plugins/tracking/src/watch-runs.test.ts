import { metadataBackends } from '@wanllmdb/core/testing';
import type { tracking } from '@wanllmdb/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTrackingKernel, type TrackingKernel } from './fixtures/tracking-kernel.js';

type Run = tracking.v1.Run;
type RunEvent = tracking.v1.RunEvent;

describe.each(metadataBackends())('WatchRuns on $name', (backend) => {
  let t: TrackingKernel;
  beforeAll(async () => {
    t = await startTrackingKernel(backend);
  });
  afterAll(() => t?.close());

  /** Watches until `stop` aborts; resolves with everything received once the stream has ended. */
  function watch(request: Record<string, unknown>) {
    const events: RunEvent[] = [];
    const abort = new AbortController();
    const done = t.stream<RunEvent>('RunService/WatchRuns', request, (e) => void events.push(e), abort.signal);
    return { events, stop: async () => (abort.abort(), await done), done };
  }

  it('streams created, updated, state, metrics and deleted events, filtered by run and key, until aborted', async () => {
    const project = (await t.call<{ data: Run }>('RunService/CreateRun', { projectId: 'watched' })).data.projectId;
    const all = watch({ projectId: 'watched', keys: ['loss'] });
    const everyKey = watch({ projectId: project, keys: ['*'] });
    const noMetrics = watch({ projectId: project });
    await new Promise((r) => setTimeout(r, 50)); // subscriptions are in place

    const run = (await t.call<{ data: Run }>('RunService/CreateRun', { projectId: 'watched', name: 'w' })).data;
    const onlyThis = watch({ projectId: project, runIds: [run.id], keys: ['acc'] });
    await new Promise((r) => setTimeout(r, 50));
    const other = (await t.call<{ data: Run }>('RunService/CreateRun', { projectId: 'watched', name: 'other' })).data;
    await t.call('RunService/UpdateRun', { id: run.id, notes: 'hello' });
    await t.call('MetricService/LogMetrics', { runId: run.id, metrics: [{ name: 'loss', step: 1, value: NaN }, { name: 'acc', step: 1, value: 0.5 }] });
    await t.kernel.get((await import('./tracking-api.js')).trackingApiRef).metricsSettled();
    // New points are announced after their aggregation commits, on a subject of their own: wait for them before
    // finishing the run, or the state event (another subject) may overtake them.
    await expect.poll(() => all.events.some((e) => e.kind === 'metrics'), { timeout: 5000 }).toBe(true);
    await t.call('RunService/FinishRun', { id: run.id });
    await t.call('RunService/DeleteRun', { id: other.id });

    await expect.poll(() => all.events.filter((e) => e.kind === 'deleted').length, { timeout: 5000 }).toBe(1);
    await expect.poll(() => onlyThis.events.filter((e) => e.kind === 'state').length, { timeout: 5000 }).toBe(1);
    await Promise.all([all.stop(), everyKey.stop(), noMetrics.stop(), onlyThis.stop()]);

    const kinds = (events: RunEvent[], id: string) => events.filter((e) => e.runId === id && e.kind !== 'updated').map((e) => e.kind);
    expect(kinds(all.events, run.id)).toEqual(['created', 'metrics', 'state']);
    expect(kinds(all.events, other.id)).toEqual(['created', 'deleted']);
    expect(all.events.find((e) => e.kind === 'created' && e.runId === run.id)!.run).toMatchObject({ id: run.id, name: 'w' });
    expect(all.events.some((e) => e.kind === 'updated' && e.run?.notes === 'hello')).toBe(true);
    const lossEvent = all.events.find((e) => e.kind === 'metrics')!;
    expect(lossEvent.series.map((s) => s.key)).toEqual(['loss']);
    expect(Number.isNaN(lossEvent.series[0]!.value[0])).toBe(true);
    expect(everyKey.events.find((e) => e.kind === 'metrics')!.series.map((s) => s.key).sort()).toEqual(['acc', 'loss']);
    expect(noMetrics.events.some((e) => e.kind === 'metrics')).toBe(false);
    expect(new Set(onlyThis.events.map((e) => e.runId))).toEqual(new Set([run.id]));
    expect(onlyThis.events.find((e) => e.kind === 'metrics')!.series.map((s) => s.key)).toEqual(['acc']);
    expect(onlyThis.events.find((e) => e.kind === 'state')!.run!.state).toBe('finished');
  });

  it('refuses an unknown project and bad run ids', async () => {
    await expect(t.stream('RunService/WatchRuns', { projectId: 'nobody-made-this' }, () => undefined)).rejects.toMatchObject({ code: 'WLDB_ERR_NOT_FOUND' });
    await expect(t.stream('RunService/WatchRuns', { projectId: 'watched', runIds: ['x'] }, () => undefined)).rejects.toMatchObject({ code: 'WLDB_ERR_INVALID_ID' });
  });
});
