import { randomUUID } from 'node:crypto';
import { normalize } from '@wanllmdb/core';
import { metadataBackends } from '@wanllmdb/core/testing';
import type { tracking } from '@wanllmdb/proto';
import { beforeAll, describe, expect, it } from 'vitest';
// The auth plugin's kernel fixture (projects + auth), with tracking added: real principals in two organisations.
import { useAuthKernel } from '../../auth/src/fixtures/auth-kernel.js';
import { rejection } from './fixtures/rejection.js';
import { createTrackingPlugin } from './tracking-plugin.js';

type Run = tracking.v1.Run;

/** What a caller sees of an error, with the id it named replaced (so answers for two ids compare). */
const seen = (e: { code: string; message: string; details: unknown }, id: string) => ({ code: e.code, message: e.message.replaceAll(id, '<id>'), details: e.details });

/** Creating a run with a client-chosen id tells a caller nothing about a run it may not see (see createRun). */
describe.each(metadataBackends())('client-chosen run ids across organisations on $name', (backend) => {
  const kernel = useAuthKernel(backend, { plugins: [createTrackingPlugin()] });
  const token: Record<string, string> = {};
  const call = <T = any,>(method: string, req: Record<string, unknown>, who: string) =>
    kernel.call<T>(`tracking.v1.RunService/${method}`, normalize(kernel.kernel.rpcHost.method(`wanllmdb.tracking.v1.RunService/${method}`)!.requestType, req), { token: token[who]! });
  let secret: Run;

  beforeAll(async () => {
    for (const name of ['victor', 'mallory']) token[name] = (await kernel.signUp(`${name}@ids.test`)).access;
    const org = (await kernel.call('auth.v1.OrgService/CreateOrg', { name: 'Victor Labs', slug: '', description: '' }, { token: token.victor })).data;
    const project = (await kernel.call('projects.v1.ProjectService/CreateProject', { name: 'secret work', slug: '', description: '', visibility: 'private', organizationId: org.id }, { token: token.victor })).data;
    secret = (await call<{ data: Run }>('CreateRun', { projectId: project.id, id: randomUUID(), name: 'classified', config: { lr: 0.1 } }, 'victor')).data;
  });

  it('answers resume "must" exactly as for a free id', async () => {
    const free = randomUUID();
    for (const projectId of ['mallory-work', secret.projectId]) {
      const hidden = await rejection(call('CreateRun', { projectId, id: secret.id, resume: 'must' }, 'mallory'));
      const missing = await rejection(call('CreateRun', { projectId, id: free, resume: 'must' }, 'mallory'));
      expect(seen(hidden, secret.id)).toEqual(seen(missing, free));
      expect(hidden.code).toBe('WLDB_ERR_NOT_FOUND');
    }
  });

  it('answers "never" and "allow" with the one 409 a taken id gets, saying nothing of the run and changing nothing', async () => {
    // Mallory's own run, to compare with: a taken id she can see.
    const own = (await call<{ data: Run }>('CreateRun', { projectId: 'mallory-work', id: randomUUID() }, 'mallory')).data;
    const ownTaken = seen(await rejection(call('CreateRun', { projectId: 'mallory-work', id: own.id, resume: 'never' }, 'mallory')), own.id);
    for (const resume of ['never', 'allow', '']) {
      const hidden = await rejection(call('CreateRun', { projectId: 'mallory-work', id: secret.id, resume, name: 'mine now', config: { lr: 9 } }, 'mallory'));
      expect(seen(hidden, secret.id)).toEqual(ownTaken);
      expect(hidden.message).not.toMatch(new RegExp(`${secret.projectId}|classified|secret|victor`, 'i'));
    }
    const after = (await call<{ data: Run }>('GetRun', { id: secret.id }, 'victor')).data;
    expect(after).toMatchObject({ name: 'classified', projectId: secret.projectId, config: { lr: 0.1 }, state: 'running' });
    expect(after.updatedAt).toBe(secret.updatedAt);
    // The owner still resumes it.
    expect((await call<{ data: Run }>('CreateRun', { projectId: secret.projectId, id: secret.id, resume: 'allow' }, 'victor')).data.id).toBe(secret.id);
  });
});
