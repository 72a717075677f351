import { metadataBackends } from '@wanllmdb/core/testing';
import { trackingPlugin } from '@wanllmdb/plugin-tracking';
import { beforeAll, describe, expect, it } from 'vitest';
import { authAdminRef } from './auth-admin.js';
import { rejection, useAuthKernel } from './fixtures/auth-kernel.js';

const T = 'tracking.v1.';

/**
 * Run ingest (methods marked `(wanllmdb.auth.v1.ingest)`) is a run logging,
 * thousands of times an hour: a successful batch is not an audit event, a
 * refused or failed one is — as is the run's creation and finish.
 */
describe.each(metadataBackends())('audit of run ingest on $name', (backend) => {
  const t = useAuthKernel(backend, { plugins: [trackingPlugin] });
  let root: string;
  let owner: { user: any; access: string };
  let stranger: { user: any; access: string };

  beforeAll(async () => {
    await t.kernel.get(authAdminRef).createUser({ email: 'root@example.org', password: 'root password 1', username: 'root', superuser: true });
    root = (await t.call('auth.v1.AuthService/Login', { email: 'root@example.org', password: 'root password 1' })).data.accessToken;
    owner = await t.signUp('owner@example.org');
    stranger = await t.signUp('stranger@example.org');
  });

  it('records a run created and finished and a refused batch, not the batches that were stored', async () => {
    const run = (await t.call(`${T}RunService/CreateRun`, { projectId: 'ingest-audit', name: 'r' }, { token: owner.access })).data;
    for (let step = 0; step < 5; step++) {
      await t.call(`${T}MetricService/LogMetrics`, { runId: run.id, metrics: [{ name: 'loss', step, value: 1 / (step + 1) }] }, { token: owner.access });
    }
    await t.call(`${T}RunLogService/AppendLogs`, { runId: run.id, lines: [{ stream: 'stdout', text: 'hello' }] }, { token: owner.access });
    await t.call(`${T}RunService/Heartbeat`, { id: run.id }, { token: owner.access });
    const refused = await rejection(t.call(`${T}MetricService/LogMetrics`, { runId: run.id, metrics: [{ name: 'loss', step: 9, value: 0 }] }, { token: stranger.access }));
    expect(refused.code).toBe('WLDB_ERR_NOT_FOUND');
    await t.call(`${T}RunService/FinishRun`, { id: run.id, exitCode: 0 }, { token: owner.access });

    const events = (await t.call('auth.v1.AuditService/ListAudit', { limit: 1000 }, { token: root })).data as any[];
    const of = (m: string) => events.filter((e) => e.action === `wanllmdb.${T}${m}`);
    expect(of('RunService/CreateRun')).toHaveLength(1);
    expect(of('RunService/FinishRun')).toHaveLength(1);
    expect(of('MetricService/LogMetrics')).toEqual([expect.objectContaining({ result: 'WLDB_ERR_NOT_FOUND', actorId: stranger.user.id })]);
    expect(of('RunLogService/AppendLogs')).toEqual([]);
    expect(of('RunService/Heartbeat')).toEqual([]);
  });
});
