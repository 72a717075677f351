import { randomUUID } from 'node:crypto';
import { coreServices, LOCAL_PRINCIPAL } from '@wanllmdb/core';
import { metadataBackends } from '@wanllmdb/core/testing';
import { projectsApiRef } from '@wanllmdb/plugin-projects';
import type { tracking } from '@wanllmdb/proto';
import { describe, expect, it } from 'vitest';
import { rejection } from './fixtures/rejection.js';
import { useTrackingKernel } from './fixtures/tracking-kernel.js';
import { trackingApiRef } from './tracking-api.js';

type Run = tracking.v1.Run;

describe.each(metadataBackends())('RunService on $name', (backend) => {
  const t = useTrackingKernel(backend, { plugin: { sweepIntervalMs: 50, heartbeatTimeoutMs: 60_000 } });
  const create = (req: Record<string, unknown>) => t.call<{ data: Run }>('RunService/CreateRun', { projectId: 'run-service', ...req }).then((r) => r.data);

  it('creates a run in a project named by name (creating the project) with a generated name', async () => {
    const run = await create({
      projectId: 'My New Project',
      tags: ['baseline', 'baseline', 'lr-sweep'],
      notes: 'first try',
      group: 'exp-1',
      jobType: 'train',
      config: { lr: 0.001, model: { layers: 4 } },
      git: { commit: 'abc123', branch: 'main', remote: 'git@example.com:x/y.git', dirty: true },
      environment: { host: 'gpu-1', os: 'linux', runtime: 'node 20', command: 'train.js --lr 0.001', pid: 4242 },
    });
    expect(run).toMatchObject({
      state: 'running',
      tags: ['baseline', 'lr-sweep'],
      notes: 'first try',
      group: 'exp-1',
      jobType: 'train',
      config: { lr: 0.001, model: { layers: 4 } },
      summary: {},
      git: { commit: 'abc123', dirty: true },
      environment: { host: 'gpu-1', pid: 4242 },
      url: `/runs/${run.id}`,
      createdBy: 'local',
      finishedAt: '',
    });
    expect(run.exitCode).toBeUndefined();
    expect(run.name).toMatch(/^[a-z]+-[a-z]+-1$/);
    const project = await t.kernel.get(projectsApiRef).find('my-new-project', LOCAL_PRINCIPAL);
    expect(run.projectId).toBe(project?.id);
    // The project's UUID names it too; the second run is number 2.
    const second = await create({ projectId: project!.id });
    expect(second.name).toMatch(/-2$/);
    expect((await t.call('RunService/GetRun', { id: run.id })).data).toEqual(run);
  });

  it('refuses bad input with every problem listed', async () => {
    const err = await rejection(create({ name: 'x'.repeat(300), tags: [''], notes: 'a\u0000b', config: { a: 'nul\u0000' } }));
    expect(err.code).toBe('WLDB_ERR_VALIDATION');
    expect(err.details.map((d) => d.field).sort()).toEqual(['config', 'name', 'notes', 'tags[0]']);
    // A closed set (visibility, resume, scope, stream …) is part of the contract, checked with the types before the handler (ADR 0020).
    expect((await rejection(create({ resume: 'sometimes' }))).details).toEqual([{ field: 'resume', message: 'must be one of "never", "allow", "must"' }]);
    expect((await rejection(create({ projectId: '' }))).details[0]!.field).toBe('projectId');
    expect((await rejection(create({ id: 'not-a-uuid' }))).code).toBe('WLDB_ERR_INVALID_ID');
    expect((await rejection(create({ projectId: randomUUID() }))).code).toBe('WLDB_ERR_NOT_FOUND');
    expect((await rejection(t.call('RunService/GetRun', { id: "1' OR '1'='1" }))).code).toBe('WLDB_ERR_INVALID_ID');
    expect((await rejection(t.call('RunService/GetRun', { id: randomUUID() }))).code).toBe('WLDB_ERR_NOT_FOUND');
  });

  it('takes injection strings in names as plain text', async () => {
    const name = `x'); DROP TABLE runs; --`;
    const run = await create({ name, tags: ['"; DELETE FROM runs; --'] });
    expect((await t.call<{ data: Run }>('RunService/GetRun', { id: run.id })).data.name).toBe(name);
  });

  it('follows W&B resume semantics', async () => {
    const id = randomUUID();
    expect((await rejection(create({ id, resume: 'must' }))).code).toBe('WLDB_ERR_NOT_FOUND');
    expect((await rejection(create({ resume: 'must' }))).details[0]!.field).toBe('id');
    const made = await create({ id, name: 'resumable', config: { a: 1 } });
    expect(made.id).toBe(id);
    expect((await rejection(create({ id }))).code).toBe('WLDB_ERR_ALREADY_EXISTS');
    expect((await rejection(create({ id, resume: 'never' }))).code).toBe('WLDB_ERR_ALREADY_EXISTS');
    await t.call('RunService/FinishRun', { id, exitCode: 1 });
    const resumed = await create({ id, resume: 'allow', config: { b: 2 }, environment: { host: 'h2', pid: 7 } });
    expect(resumed).toMatchObject({ id, name: 'resumable', state: 'running', finishedAt: '', config: { a: 1, b: 2 }, environment: { host: 'h2', pid: 7 } });
    expect(resumed.exitCode).toBeUndefined();
    expect((await create({ id, resume: 'must' })).state).toBe('running');
    // "allow" with a new id creates the run.
    const fresh = randomUUID();
    expect((await create({ id: fresh, resume: 'allow' })).id).toBe(fresh);
    // A run of another project is not resumed here.
    expect((await rejection(create({ id, resume: 'allow', projectId: 'other-project' }))).code).toBe('WLDB_ERR_ALREADY_EXISTS');
  });

  it('updates with PATCH semantics', async () => {
    const run = await create({ name: 'before', tags: ['a'], notes: 'n', group: 'g' });
    const renamed = (await t.call<{ data: Run }>('RunService/UpdateRun', { id: run.id, name: 'after' })).data;
    expect(renamed).toMatchObject({ name: 'after', tags: ['a'], notes: 'n', group: 'g' });
    const retagged = (await t.call<{ data: Run }>('RunService/UpdateRun', { id: run.id, tags: ['b', 'c'], notes: '' })).data;
    expect(retagged).toMatchObject({ name: 'after', tags: ['b', 'c'], notes: '' });
    expect((await t.call<{ data: Run }>('RunService/UpdateRun', { id: run.id, clearTags: true })).data.tags).toEqual([]);
    expect((await rejection(t.call('RunService/UpdateRun', { id: run.id, name: '  ' }))).details[0]).toMatchObject({ field: 'name', message: 'is required' });
    expect((await rejection(t.call('RunService/UpdateRun', { id: run.id, tags: ['x'], clearTags: true }))).details[0]!.field).toBe('clearTags');
    expect((await rejection(t.call('RunService/UpdateRun', { id: randomUUID(), name: 'x' }))).code).toBe('WLDB_ERR_NOT_FOUND');
  });

  it('finishes runs: exit code → state, explicit state, summary values', async () => {
    const a = await create({});
    const finished = (await t.call<{ data: Run }>('RunService/FinishRun', { id: a.id, summary: { best: 0.9 } })).data;
    expect(finished).toMatchObject({ state: 'finished', summary: { best: 0.9 } });
    expect(finished.finishedAt).not.toBe('');
    const b = await create({});
    expect((await t.call<{ data: Run }>('RunService/FinishRun', { id: b.id, exitCode: 0 })).data).toMatchObject({ state: 'finished', exitCode: 0 });
    const c = await create({});
    expect((await t.call<{ data: Run }>('RunService/FinishRun', { id: c.id, exitCode: 137 })).data).toMatchObject({ state: 'crashed', exitCode: 137 });
    const d = await create({});
    expect((await t.call<{ data: Run }>('RunService/FinishRun', { id: d.id, state: 'killed' })).data.state).toBe('killed');
    expect((await rejection(t.call('RunService/FinishRun', { id: d.id, state: 'running' }))).details[0]!.field).toBe('state');
    expect((await rejection(t.call('RunService/FinishRun', { id: randomUUID() }))).code).toBe('WLDB_ERR_NOT_FOUND');
  });

  it('answers heartbeats with the state', async () => {
    const run = await create({});
    expect(await t.call('RunService/Heartbeat', { id: run.id })).toEqual({ state: 'running' });
    await t.call('RunService/FinishRun', { id: run.id, state: 'killed' });
    expect(await t.call('RunService/Heartbeat', { id: run.id })).toEqual({ state: 'killed' });
    expect((await rejection(t.call('RunService/Heartbeat', { id: randomUUID() }))).code).toBe('WLDB_ERR_NOT_FOUND');
  });

  it('keeps every config change as a version and diffs configs by dotted path', async () => {
    const run = await create({ config: { lr: 0.1, model: { layers: 4, act: 'relu' }, tags: ['x'] } });
    const v2 = (await t.call<{ data: tracking.v1.ConfigVersion }>('RunService/UpdateConfig', { id: run.id, config: { model: { layers: 8, dropout: null }, epochs: 3 } })).data;
    expect(v2).toMatchObject({ version: 2, config: { lr: 0.1, model: { layers: 8, act: 'relu' }, tags: ['x'], epochs: 3 } });
    // No change, no version.
    expect((await t.call<{ data: tracking.v1.ConfigVersion }>('RunService/UpdateConfig', { id: run.id, config: { epochs: 3 } })).data.version).toBe(2);
    const v3 = (await t.call<{ data: tracking.v1.ConfigVersion }>('RunService/UpdateConfig', { id: run.id, config: { only: true, gone: null }, replace: true })).data;
    expect(v3).toMatchObject({ version: 3, config: { only: true } });
    const history = (await t.call<{ data: tracking.v1.ConfigVersion[] }>('RunService/GetConfigHistory', { id: run.id })).data;
    expect(history.map((h) => h.version)).toEqual([1, 2, 3]);
    expect(history[0]!.config).toEqual({ lr: 0.1, model: { layers: 4, act: 'relu' }, tags: ['x'] });
    expect((await t.call<{ data: Run }>('RunService/GetRun', { id: run.id })).data.config).toEqual({ only: true });

    const a = await create({ config: { lr: 0.1, model: { layers: 4, act: 'relu' }, opt: 'adam', aug: [1, 2] } });
    const b = await create({ config: { lr: 0.2, model: { layers: 4, norm: 'bn' }, aug: [1, 2], seed: 7 } });
    const diff = (await t.call<{ data: tracking.v1.ConfigDiffEntry[] }>('RunService/DiffConfigs', { runId: a.id, otherRunId: b.id })).data;
    expect(diff).toEqual([
      { path: 'lr', kind: 'changed', value: 0.1, otherValue: 0.2 },
      { path: 'model.act', kind: 'removed', value: 'relu' },
      { path: 'model.norm', kind: 'added', otherValue: 'bn' },
      { path: 'opt', kind: 'removed', value: 'adam' },
      { path: 'seed', kind: 'added', otherValue: 7 },
    ]);
    expect((await rejection(t.call('RunService/DiffConfigs', { runId: a.id, otherRunId: randomUUID() }))).details[0]!.field).toBe('otherRunId');
    expect((await rejection(t.call('RunService/UpdateConfig', { id: run.id }))).details[0]!.field).toBe('config');
    expect((await rejection(t.call('RunService/GetConfigHistory', { id: randomUUID() }))).code).toBe('WLDB_ERR_NOT_FOUND');
  });

  it('overlays user summary values on the automatic last values, keeping NaN and ±Infinity', async () => {
    const run = await create({});
    const api = t.kernel.get(trackingApiRef);
    await t.call('MetricService/LogMetrics', {
      runId: run.id,
      metrics: [
        { name: 'loss', step: 1, value: 0.5 },
        { name: 'loss', step: 2, value: 0.25 },
        { name: 'acc', step: 2, value: 0.75 },
        { name: 'bad', step: 2, value: NaN },
        { name: 'big', step: 2, value: Infinity },
        { name: 'small', step: 2, value: -Infinity },
      ],
    });
    await api.metricsSettled();
    let summary: Record<string, unknown> | undefined = (await t.call<{ data: Run }>('RunService/GetRun', { id: run.id })).data.summary;
    expect(summary).toEqual({ loss: 0.25, acc: 0.75, bad: 'NaN', big: 'Infinity', small: '-Infinity' });
    summary = (await t.call<{ data: Record<string, unknown> }>('RunService/UpdateSummary', { id: run.id, summary: { loss: 0.1, best: { epoch: 3 }, nan: NaN } })).data;
    expect(summary).toMatchObject({ loss: 0.1, best: { epoch: 3 }, nan: 'NaN', acc: 0.75 });
    // New metric values do not hide what the user set; null goes back to the automatic value.
    await t.call('MetricService/LogMetrics', { runId: run.id, metrics: [{ name: 'loss', step: 3, value: 0.05 }] });
    await api.metricsSettled();
    expect((await t.call<{ data: Run }>('RunService/GetRun', { id: run.id })).data.summary!.loss).toBe(0.1);
    summary = (await t.call<{ data: Record<string, unknown> }>('RunService/UpdateSummary', { id: run.id, summary: { loss: null } })).data;
    expect(summary!.loss).toBe(0.05);
    expect((await rejection(t.call('RunService/UpdateSummary', { id: run.id }))).details[0]!.field).toBe('summary');
    expect((await rejection(t.call('RunService/UpdateSummary', { id: randomUUID(), summary: { a: 1 } }))).code).toBe('WLDB_ERR_NOT_FOUND');
  });

  it('offers the same runs in process through TrackingApi', async () => {
    const api = t.kernel.get(trackingApiRef);
    const run = await create({ name: 'in-process' });
    expect((await api.getRun(LOCAL_PRINCIPAL, run.id))?.name).toBe('in-process');
    expect(await api.getRun(LOCAL_PRINCIPAL, randomUUID())).toBeUndefined();
    const page = await api.listRuns(LOCAL_PRINCIPAL, { projectId: 'run-service', filter: 'name = "in-process"' });
    expect(page.data.map((r) => r.id)).toEqual([run.id]);
    await expect(api.appendMetricBatch(LOCAL_PRINCIPAL, randomUUID(), 'b', new Uint8Array([1]))).rejects.toMatchObject({ code: 'WLDB_ERR_NOT_FOUND' });
  });

  it("deletes a project's runs when the project is deleted", async () => {
    const run = await create({ projectId: 'short-lived' });
    await t.kernel.call('wanllmdb.projects.v1.ProjectService/DeleteProject', { id: run.projectId });
    await expect.poll(async () => (await rejection(t.call('RunService/GetRun', { id: run.id })).catch(() => ({ code: 'still there' }))).code, { timeout: 5000 }).toBe('WLDB_ERR_NOT_FOUND');
  });

  it('deletes a run with its metric history', async () => {
    const run = await create({});
    await t.call('MetricService/LogMetrics', { runId: run.id, metrics: [{ name: 'loss', step: 1, value: 1 }] });
    await t.kernel.get(trackingApiRef).metricsSettled();
    await t.call('RunService/DeleteRun', { id: run.id });
    expect((await rejection(t.call('RunService/GetRun', { id: run.id }))).code).toBe('WLDB_ERR_NOT_FOUND');
    expect((await rejection(t.call('MetricService/ListMetricKeys', { runId: run.id }))).code).toBe('WLDB_ERR_NOT_FOUND');
    // The metrics engine dropped the run's history, not only the run row.
    const left = await t.kernel.get(coreServices.db).query<{ n: number }>('SELECT COUNT(*) AS n FROM metric_keys WHERE run_id = ?', [run.id]);
    expect(Number(left[0]!.n)).toBe(0);
    expect((await rejection(t.call('RunService/DeleteRun', { id: run.id }))).code).toBe('WLDB_ERR_NOT_FOUND');
  });
});

describe.each(metadataBackends())('the heartbeat sweeper on $name', (backend) => {
  const t = useTrackingKernel(backend, { plugin: { sweepIntervalMs: 40, heartbeatTimeoutMs: 300 } });

  it('marks silent running runs crashed, and a late heartbeat revives them', async () => {
    const silent = (await t.call<{ data: Run }>('RunService/CreateRun', { projectId: 'sweeper' })).data;
    const alive = (await t.call<{ data: Run }>('RunService/CreateRun', { projectId: 'sweeper' })).data;
    const done = (await t.call<{ data: Run }>('RunService/CreateRun', { projectId: 'sweeper' })).data;
    await t.call('RunService/FinishRun', { id: done.id });
    const beat = setInterval(() => void t.call('RunService/Heartbeat', { id: alive.id }), 50);
    try {
      await expect.poll(async () => (await t.call<{ data: Run }>('RunService/GetRun', { id: silent.id })).data.state, { timeout: 5000, interval: 50 }).toBe('crashed');
      expect((await t.call<{ data: Run }>('RunService/GetRun', { id: alive.id })).data.state).toBe('running');
    } finally {
      clearInterval(beat);
    }
    const crashed = (await t.call<{ data: Run }>('RunService/GetRun', { id: silent.id })).data;
    expect(crashed.finishedAt).toBe(crashed.heartbeatAt);
    expect((await t.call<{ data: Run }>('RunService/GetRun', { id: done.id })).data.state).toBe('finished');
    expect(await t.call('RunService/Heartbeat', { id: silent.id })).toEqual({ state: 'running' });
    expect((await t.call<{ data: Run }>('RunService/GetRun', { id: silent.id })).data.finishedAt).toBe('');
  });
});
