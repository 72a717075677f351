import { EpochCache } from '@wanllmdb/core';
import { metadataBackends, type MetadataBackend } from '@wanllmdb/core/testing';
import { trackingPlugin } from '@wanllmdb/plugin-tracking';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rejection, startAuthKernel, type AuthKernel } from './fixtures/auth-kernel.js';

describe('EpochCache', () => {
  it('reuses a value while callers see its epoch, and starts over when one sees a newer epoch', async () => {
    const cache = new EpochCache<string>();
    let loads = 0;
    const load = (v: string | undefined) => async () => (loads++, v);
    expect(await cache.get(3, 'k', load('a'))).toBe('a');
    expect(await cache.get(3, 'k', load('b'))).toBe('a');
    expect(loads).toBe(1);
    // A newer epoch: everything read before is gone.
    expect(await cache.get(4, 'k', load('c'))).toBe('c');
    // A caller that saw an older epoch (it started before a change) neither reads nor fills the cache.
    expect(await cache.get(3, 'k', load('old'))).toBe('old');
    expect(await cache.get(4, 'k', load('d'))).toBe('c');
    // No epoch (a caller without one): always asked.
    expect(await cache.get(undefined, 'k', load('e'))).toBe('e');
    // "Not found" is never kept.
    expect(await cache.get(4, 'gone', load(undefined))).toBeUndefined();
    expect(await cache.get(4, 'gone', load('back'))).toBe('back');
  });

  it('does not keep a value read under an epoch that moved on while it was read', async () => {
    const cache = new EpochCache<string>();
    let release!: () => void;
    const slow = cache.get(1, 'k', () => new Promise<string>((resolve) => (release = () => resolve('stale'))));
    expect(await cache.get(2, 'other', async () => 'x')).toBe('x');
    release();
    expect(await slow).toBe('stale');
    expect(await cache.get(2, 'k', async () => 'fresh')).toBe('fresh');
  });
});

/**
 * ADR 0015: a server process reuses where a resource sits and a user's roles
 * on it only while the access epoch stands. Two kernels on one database play
 * two server processes: every change made through one is in force on the
 * other's very next call, with nothing but the database between them.
 */
describe.each(metadataBackends())('authorisation reused across processes on $name', (backend) => {
  let shared: Awaited<ReturnType<MetadataBackend['fresh']>>;
  let a: AuthKernel; // serves the API-key caller (and caches)
  let b: AuthKernel; // where owners change things
  let owner: { user: any; access: string };
  let member: { user: any; access: string; key: string };
  let stranger: { user: any; access: string; key: string };
  let orgId = '';
  let projectId = '';
  let runId = '';
  const T = 'tracking.v1.';

  beforeAll(async () => {
    shared = await backend.fresh();
    const one: MetadataBackend = { ...backend, fresh: async () => ({ url: shared.url, drop: async () => undefined }) };
    a = await startAuthKernel(one, { plugins: [trackingPlugin] });
    b = await startAuthKernel(one, { plugins: [trackingPlugin] });
    const withKey = async (email: string) => {
      const signed = await b.signUp(email);
      const key = (await b.call('auth.v1.AuthService/CreateApiKey', { name: 'k' }, { token: signed.access })).data.key as string;
      return { ...signed, key };
    };
    owner = await b.signUp('owner@example.org');
    member = await withKey('member@example.org');
    stranger = await withKey('stranger@example.org');
    orgId = (await b.call('auth.v1.OrgService/CreateOrg', { name: 'Epoch Org' }, { token: owner.access })).data.id;
    await b.call('auth.v1.OrgService/AddMember', { orgId, userId: member.user.id, role: 'member' }, { token: owner.access });
    projectId = (await b.call('projects.v1.ProjectService/CreateProject', { name: 'epoch', organizationId: orgId }, { token: owner.access })).data.id;
    runId = (await b.call(`${T}RunService/CreateRun`, { projectId }, { token: owner.access })).data.id;
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await shared?.drop();
  });

  const list = (who: { key: string }) => a.call(`${T}RunService/ListRuns`, { projectId }, { token: who.key });
  const log = (who: { key: string }, step: number) => a.call(`${T}MetricService/LogMetrics`, { runId, metrics: [{ name: 'loss', step, value: 1 }] }, { token: who.key });
  const asOwner = (method: string, request: unknown) => b.call(method, request, { token: owner.access });

  it('a role changed or a member removed on one process is in force on the next call to the other', async () => {
    expect((await list(member)).data).toHaveLength(1);
    await log(member, 1);
    await asOwner('auth.v1.OrgService/UpdateMember', { orgId, userId: member.user.id, role: 'viewer' });
    expect((await rejection(log(member, 2))).code).toBe('WLDB_ERR_PERMISSION_DENIED');
    expect((await list(member)).data).toHaveLength(1);
    await asOwner('auth.v1.OrgService/RemoveMember', { orgId, userId: member.user.id });
    expect((await rejection(list(member))).code).toBe('WLDB_ERR_NOT_FOUND');
    await asOwner('auth.v1.OrgService/AddMember', { orgId, userId: member.user.id, role: 'member' });
    await log(member, 3);
  });

  it('a custom role made again with fewer permissions, and a team losing a member, take effect at once', async () => {
    const role = (await asOwner('auth.v1.OrgService/CreateRole', { orgId, name: 'logger', permissions: ['runs:read', 'runs:write'] })).data;
    await asOwner('auth.v1.OrgService/UpdateMember', { orgId, userId: member.user.id, role: 'logger' });
    await log(member, 4);
    await asOwner('auth.v1.OrgService/UpdateMember', { orgId, userId: member.user.id, role: 'viewer' });
    await asOwner('auth.v1.OrgService/DeleteRole', { orgId, roleId: role.id });
    await asOwner('auth.v1.OrgService/CreateRole', { orgId, name: 'logger', permissions: ['runs:read'] });
    await asOwner('auth.v1.OrgService/UpdateMember', { orgId, userId: member.user.id, role: 'logger' });
    expect((await rejection(log(member, 5))).code).toBe('WLDB_ERR_PERMISSION_DENIED');
    expect((await list(member)).data).toHaveLength(1);
    await asOwner('auth.v1.OrgService/UpdateMember', { orgId, userId: member.user.id, role: 'member' });

    // Runs reached only through a team's grant on the project.
    await asOwner('auth.v1.OrgService/CreateRole', { orgId, name: 'outsider', permissions: ['orgs:read'] });
    await asOwner('auth.v1.OrgService/UpdateMember', { orgId, userId: member.user.id, role: 'outsider' });
    const refused = /WLDB_ERR_(PERMISSION_DENIED|NOT_FOUND)/;
    expect((await rejection(list(member))).code).toMatch(refused);
    const team = (await asOwner('auth.v1.OrgService/CreateTeam', { orgId, name: 'readers' })).data;
    await asOwner('auth.v1.OrgService/AddTeamMember', { teamId: team.id, userId: member.user.id, role: 'member' });
    await asOwner('auth.v1.OrgService/SetProjectGrant', { projectId, subjectType: 'team', subjectId: team.id, role: 'viewer' });
    expect((await list(member)).data).toHaveLength(1);
    await asOwner('auth.v1.OrgService/RemoveTeamMember', { teamId: team.id, userId: member.user.id });
    expect((await rejection(list(member))).code).toMatch(refused);
    await asOwner('auth.v1.OrgService/RemoveProjectGrant', { projectId, subjectType: 'team', subjectId: team.id });
    await asOwner('auth.v1.OrgService/UpdateMember', { orgId, userId: member.user.id, role: 'member' });
  });

  it('a public project made private is hidden from the next call of an outsider', async () => {
    expect((await rejection(list(stranger))).code).toBe('WLDB_ERR_NOT_FOUND');
    await asOwner('projects.v1.ProjectService/UpdateProject', { id: projectId, visibility: 'public' });
    expect((await list(stranger)).data).toHaveLength(1);
    await asOwner('projects.v1.ProjectService/UpdateProject', { id: projectId, visibility: 'private' });
    expect((await rejection(list(stranger))).code).toBe('WLDB_ERR_NOT_FOUND');
  });

  it('a run or project removed on one process is gone for the other', async () => {
    await log(member, 10);
    await asOwner(`${T}RunService/DeleteRun`, { id: runId });
    expect((await rejection(log(member, 11))).code).toBe('WLDB_ERR_NOT_FOUND');
    expect((await list(member)).data).toHaveLength(0);
    await asOwner('projects.v1.ProjectService/DeleteProject', { id: projectId });
    expect((await rejection(list(member))).code).toBe('WLDB_ERR_NOT_FOUND');
  });
});
