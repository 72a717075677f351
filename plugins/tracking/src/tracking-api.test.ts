import { coreServices, localCallContext, type Principal } from '@wanllmdb/core';
import { metadataBackends } from '@wanllmdb/core/testing';
import { tracking } from '@wanllmdb/proto';
import { beforeAll, describe, expect, it } from 'vitest';
// The auth plugin's kernel fixture (projects + auth), with tracking added: real principals in two organisations.
import { useAuthKernel } from '../../auth/src/fixtures/auth-kernel.js';
import { rejection } from './fixtures/rejection.js';
import { encodeMetricBatch } from './metrics/metric-batch.js';
import { trackingApiRef } from './tracking-api.js';
import { createTrackingPlugin } from './tracking-plugin.js';

const batch = (step: number) =>
  encodeMetricBatch({ length: 1, step: Float64Array.of(step), value: Float64Array.of(step / 10), time: Float64Array.of(0), keyIndex: Int32Array.of(0), keys: ['loss'] });

/** The in-process API acts for a caller: what that caller may not do over gRPC, it may not do in process either. */
describe.each(metadataBackends())('TrackingApi in process, as its caller, on $name', (backend) => {
  const t = useAuthKernel(backend, { plugins: [createTrackingPlugin()] });
  const who: Record<string, Principal> = {};
  let run: tracking.v1.Run;

  beforeAll(async () => {
    const tokens: Record<string, string> = {};
    for (const name of ['owner', 'outsider']) {
      tokens[name] = (await t.signUp(`${name}@api.test`)).access;
      who[name] = await t.kernel.auth.authenticate({ headers: { authorization: `Bearer ${tokens[name]}` }, address: '', permission: 'runs:read', method: 'test' });
    }
    const project = (await t.call('projects.v1.ProjectService/CreateProject', { name: 'in process', slug: '', description: '', visibility: 'private', organizationId: '' }, { token: tokens.owner })).data;
    run = (await t.call('tracking.v1.RunService/CreateRun', { projectId: project.id, name: 'r1' }, { token: tokens.owner })).data;
  });

  it('reads and writes for a caller with access', async () => {
    const api = t.kernel.get(trackingApiRef);
    expect((await api.getRun(who.owner!, run.id))?.name).toBe('r1');
    expect((await api.listRuns(who.owner!, { projectId: run.projectId })).data.map((r) => r.id)).toEqual([run.id]);
    expect(await api.appendMetricBatch(who.owner!, run.id, 'b1', batch(1))).toMatchObject({ accepted: 1, duplicate: false });
    await api.metricsSettled();
    expect((await api.listMetricKeys(who.owner!, run.id)).map((k) => [k.key, k.count])).toEqual([['loss', 1]]);
  });

  it('refuses a caller without access exactly as over the network, and audits the refusal', async () => {
    const api = t.kernel.get(trackingApiRef);
    expect(await api.getRun(who.outsider!, run.id)).toBeUndefined();
    expect((await rejection(api.listRuns(who.outsider!, { projectId: run.projectId }))).code).toBe('WLDB_ERR_NOT_FOUND');
    expect((await rejection(api.appendMetricBatch(who.outsider!, run.id, 'b2', batch(2)))).code).toBe('WLDB_ERR_NOT_FOUND');
    expect((await rejection(api.listMetricKeys(who.outsider!, run.id))).code).toBe('WLDB_ERR_NOT_FOUND');
    const audited = await t.db.query<{ action: string; result: string; transport: string }>(
      'SELECT action, result, transport FROM audit_log WHERE actor_id = ? ORDER BY at',
      [who.outsider!.id],
    );
    expect(audited).toContainEqual({ action: 'wanllmdb.tracking.v1.MetricService/AppendMetricBatch', result: 'WLDB_ERR_NOT_FOUND', transport: 'local' });
  });

  it('lets work nobody asked for act as a named service principal (the kernel\'s here), audited under that name', async () => {
    const rpc = t.kernel.get(coreServices.rpc);
    expect(rpc.service).toMatchObject({ id: 'plugin:kernel', kind: 'service' });
    expect((await t.kernel.get(trackingApiRef).getRun(rpc.service, run.id))?.id).toBe(run.id);
    // The typed client from the generated ref is the same call.
    const updated = await rpc.client(tracking.v1.RunService, rpc.service).updateSummary({ id: run.id, summary: { checked: 1 } });
    expect(updated.data).toMatchObject({ checked: 1 });
    expect('watchRuns' in rpc.client(tracking.v1.RunService, rpc.service)).toBe(false); // streams are not in-process calls
    const audited = await t.db.query<{ action: string; actor_name: string; result: string }>('SELECT action, actor_name, result FROM audit_log WHERE actor_id = ?', ['plugin:kernel']);
    expect(audited).toEqual([{ action: 'wanllmdb.tracking.v1.RunService/UpdateSummary', actor_name: 'plugin kernel', result: 'ok' }]);
  });

  it("acts for a handler's CallContext (its request id reaches the audit), and refuses streaming methods", async () => {
    const rpc = t.kernel.get(coreServices.rpc);
    const ctx = localCallContext('wanllmdb.test.v1.Test/Call', t.kernel.logger, who.owner!);
    await rpc.call(ctx, 'wanllmdb.tracking.v1.RunService/UpdateSummary', { id: run.id, summary: { via: 'context' } });
    const [row] = await t.db.query<{ actor_id: string; request_id: string }>('SELECT actor_id, request_id FROM audit_log WHERE request_id = ?', [ctx.requestId]);
    expect(row).toEqual({ actor_id: who.owner!.id, request_id: ctx.requestId });
    const refused = await rejection(rpc.call(rpc.service, 'wanllmdb.tracking.v1.RunService/WatchRuns', { projectId: run.projectId }));
    expect(refused).toMatchObject({ code: 'WLDB_ERR_VALIDATION', message: expect.stringMatching(/is a stream; rpc.call takes unary methods/) });
  });
});
