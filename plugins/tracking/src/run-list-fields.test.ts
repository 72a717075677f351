import { metadataBackends } from '@wanllmdb/core/testing';
import type { JsonObject, tracking } from '@wanllmdb/proto';
import { beforeAll, describe, expect, it } from 'vitest';
import { rejection } from './fixtures/rejection.js';
import { useTrackingKernel } from './fixtures/tracking-kernel.js';

type Run = tracking.v1.Run;
type ListRunsResponse = tracking.v1.ListRunsResponse;

const RUNS = 12;

/** ListRuns with `fields`: runs carry only the selected keys of config and summary. */
describe.each(metadataBackends())('ListRuns field selection on $name', (backend) => {
  const t = useTrackingKernel(backend, { listen: true });
  let projectId = '';
  const whole = new Map<string, Run>();

  const list = (req: Record<string, unknown>) => t.call<ListRunsResponse>('RunService/ListRuns', { projectId, limit: 100, ...req });

  beforeAll(async () => {
    for (let i = 0; i < RUNS; i++) {
      const config: JsonObject = { lr: 0.01 * (i + 1), opt: i % 2 ? 'adam' : 'sgd', model: { layers: i, head: { dim: 64 * i } }, tags: ['x', i], big: 'y'.repeat(1000) };
      if (i % 4 === 0) delete config.lr;
      const run = (await t.call<{ data: Run }>('RunService/CreateRun', { projectId: 'fields', name: `run-${i}`, tags: [`t${i % 3}`], config })).data;
      projectId = run.projectId;
      const summary: JsonObject = { loss: 1 / (i + 1), acc: i / RUNS, 'train/loss': i % 3 === 0 ? 'NaN' : i, note: `run ${i}` };
      for (let k = 0; k < 50; k++) summary[`extra_${k}`] = k;
      await t.call('RunService/UpdateSummary', { id: run.id, summary });
      whole.set(run.id, (await t.call<{ data: Run }>('RunService/GetRun', { id: run.id })).data);
    }
  });

  it('sends whole runs without a selection, as before', async () => {
    const page = await list({});
    expect(page.data).toHaveLength(RUNS);
    for (const run of page.data) expect(run).toEqual(whole.get(run.id));
  });

  it('sends only the selected keys, and every other run field', async () => {
    const page = await list({ fields: ['summary.loss', 'summary.train/loss', 'config.lr'] });
    expect(page.data).toHaveLength(RUNS);
    for (const run of page.data) {
      const full = whole.get(run.id)!;
      const { config, summary, ...rest } = run;
      const { config: fullConfig, summary: fullSummary, ...fullRest } = full;
      expect(rest).toEqual(fullRest); // name, state, tags, times, url …
      expect(summary).toEqual({ loss: fullSummary!.loss, 'train/loss': fullSummary!['train/loss'] });
      // A run without the key has none in its config (not a null).
      expect(config).toEqual('lr' in fullConfig! ? { lr: fullConfig!.lr } : {});
    }
    expect(page.data.some((r) => r.summary!['train/loss'] === 'NaN')).toBe(true);
  });

  it('rebuilds nested paths, and a path under a selected one comes with it', async () => {
    const page = await list({ fields: ['config.model.head.dim', 'config.tags', 'config.nope.deeper'] });
    for (const run of page.data) {
      const full = whole.get(run.id)!.config as { model: { head: { dim: number } }; tags: unknown[] };
      expect(run.config).toEqual({ model: { head: { dim: full.model.head.dim } }, tags: full.tags });
      expect(run.summary).toEqual({});
    }
    const covered = await list({ fields: ['config.model.layers', 'config.model'] });
    for (const run of covered.data) expect(run.config).toEqual({ model: (whole.get(run.id)!.config as JsonObject).model });
  });

  it('sends a document whole when it is named bare, and none for column names alone', async () => {
    const page = await list({ fields: ['summary', 'config.opt'] });
    for (const run of page.data) {
      expect(run.summary).toEqual(whole.get(run.id)!.summary);
      expect(run.config).toEqual({ opt: (whole.get(run.id)!.config as JsonObject).opt });
    }
    const columns = await list({ fields: ['name', 'state', 'createdAt'] });
    for (const run of columns.data) {
      expect(run.name).toBe(whole.get(run.id)!.name);
      expect(run.config).toEqual({});
      expect(run.summary).toEqual({});
    }
  });

  it('keeps filters, sorts and cursors as they are', async () => {
    const ids: string[] = [];
    let cursor = '';
    do {
      const page = await list({ filter: 'summary.loss < 0.5', sort: '-summary.acc', limit: 3, cursor, fields: ['summary.acc'] });
      expect(page.meta!.total).toBe(RUNS - 2); // loss = 1 and 0.5 are not below 0.5
      for (const run of page.data) expect(Object.keys(run.summary!)).toEqual(['acc']);
      ids.push(...page.data.map((r) => r.id));
      cursor = page.meta!.nextCursor;
    } while (cursor);
    const expected = [...whole.values()].filter((r) => (r.summary!.loss as number) < 0.5).sort((a, b) => (b.summary!.acc as number) - (a.summary!.acc as number));
    expect(ids).toEqual(expected.map((r) => r.id));
  });

  it('refuses names that are not fields, and too many of them, saying which', async () => {
    const err = await rejection(list({ fields: ['summary.loss', 'bogus', 'summary.', 'config.a b'] }));
    expect(err.code).toBe('WLDB_ERR_VALIDATION');
    expect(err.details.map((d) => d.field)).toEqual(['fields[1]', 'fields[2]', 'fields[3]']);
    expect(err.message).toMatch(/unknown field "bogus"/);
    const many = await rejection(list({ fields: Array.from({ length: 101 }, (_, i) => `summary.k${i}`) }));
    expect(many.details).toContainEqual({ field: 'fields', message: 'has more than 100 entries' });
  });

  it('takes a comma-separated list over HTTP', async () => {
    const res = await fetch(`http://127.0.0.1:${t.ports!.httpPort}/api/v1/projects/${projectId}/runs?fields=summary.loss,config.opt&limit=2`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as ListRunsResponse;
    expect(body.data).toHaveLength(2);
    for (const run of body.data) {
      expect(Object.keys(run.summary!)).toEqual(['loss']);
      expect(Object.keys(run.config!)).toEqual(['opt']);
    }
  });
});
