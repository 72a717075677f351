import { definePlugin, coreServices, type Auth, type Principal, type ResolvedResource } from '@wanllmdb/core';
import { metadataBackends } from '@wanllmdb/core/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { rejection, useAuthKernel } from './fixtures/auth-kernel.js';
import { patternGrants, setGrants, BUILTIN_PERMISSIONS } from './roles.js';

/** Fake `project` and `run` types, so authorize() is tested without the projects and tracking plugins. */
const projects = new Map<string, ResolvedResource>();
const runs = new Map<string, ResolvedResource>();
const fakeResources = definePlugin({
  id: 'fake-resources',
  version: '0.1.0',
  deps: { dir: coreServices.resources },
  init(ctx) {
    const { dir } = ctx.deps;
    dir.define('fake-resources', 'project', async (id) => projects.get(id));
    dir.define('fake-resources', 'run', async (id) => runs.get(id));
  },
});

describe('built-in roles', () => {
  it('grant what the design says', () => {
    const { owner, admin, member, viewer } = BUILTIN_PERMISSIONS;
    expect(setGrants(owner, 'orgs:delete')).toBe(true);
    expect(setGrants(admin, 'orgs:delete')).toBe(false);
    expect(setGrants(admin, 'members:write')).toBe(true);
    expect(setGrants(admin, 'audit:read')).toBe(true);
    for (const p of ['runs:read', 'projects:create', 'projects:write', 'runs:write', 'runs:delete', 'artifacts:write', 'models:write']) expect(setGrants(member, p)).toBe(true);
    for (const p of ['members:write', 'teams:write', 'roles:write', 'orgs:write', 'projects:admin', 'projects:delete', 'audit:read']) expect(setGrants(member, p)).toBe(false);
    expect(setGrants(viewer, 'runs:read')).toBe(true);
    expect(setGrants(viewer, 'runs:write')).toBe(false);
    expect(setGrants(viewer, 'audit:read')).toBe(false);
    expect(patternGrants('audit:*', 'audit:read')).toBe(true);
  });
});

describe.each(metadataBackends())('TokenAuth.authorize on $name', (backend) => {
  const t = useAuthKernel(backend, { withProjects: false, plugins: [fakeResources] });
  let auth: Auth;
  let owner: Principal;
  let outsider: Principal;
  let member: Principal;
  let orgId: string;

  const principal = async (token: string, permission = 'self:read') => auth.authenticate({ headers: { authorization: `Bearer ${token}` }, address: '', permission, method: 'test' });

  beforeAll(async () => {
    auth = t.kernel.auth;
    const o = await t.signUp('owner@example.org');
    const x = await t.signUp('outsider@example.org');
    const m = await t.signUp('member@example.org');
    owner = await principal(o.access);
    outsider = await principal(x.access);
    member = await principal(m.access);
    orgId = o.user.defaultOrganizationId;
    await t.call('auth.v1.OrgService/AddMember', { orgId, userId: m.user.id, email: '', role: 'viewer' }, { token: o.access });
    projects.set('p-private', { type: 'project', id: 'p-private', projectId: 'p-private', orgId, visibility: 'private' });
    projects.set('p-public', { type: 'project', id: 'p-public', projectId: 'p-public', orgId, visibility: 'public' });
    runs.set('r1', { type: 'run', id: 'r1', projectId: 'p-private', orgId, visibility: 'private' });
  });

  const authorize = (p: Principal, permission: string, resources: { type: string; id: string }[] = []) =>
    auth.authorize({ principal: p, permission, method: 'test', resources });

  it('allows an owner, resolves the resources, and hides them from outsiders with one message', async () => {
    expect(await authorize(owner, 'runs:delete', [{ type: 'run', id: 'r1' }])).toEqual([runs.get('r1')]);
    const hidden = await rejection(authorize(outsider, 'runs:read', [{ type: 'run', id: 'r1' }]));
    const missing = await rejection(authorize(outsider, 'runs:read', [{ type: 'run', id: 'nope' }]));
    expect(hidden.code).toBe('WLDB_ERR_NOT_FOUND');
    expect(missing.code).toBe('WLDB_ERR_NOT_FOUND');
    expect(hidden.message.replace('r1', 'X')).toBe(missing.message.replace('nope', 'X'));
    // Even an owner gets NOT_FOUND for what does not exist.
    expect((await rejection(authorize(owner, 'runs:read', [{ type: 'run', id: 'nope' }]))).code).toBe('WLDB_ERR_NOT_FOUND');
  });

  it('a viewer reads but is told it lacks a write', async () => {
    await authorize(member, 'runs:read', [{ type: 'run', id: 'r1' }]);
    const denied = await rejection(authorize(member, 'runs:write', [{ type: 'run', id: 'r1' }]));
    expect(denied.code).toBe('WLDB_ERR_PERMISSION_DENIED');
    expect(denied.message).toMatch(/You need runs:write on run r1; ask an owner or admin of the organisation\./);
  });

  it('public projects are readable by any signed-in user, not by anonymous callers', async () => {
    await authorize(outsider, 'projects:read', [{ type: 'project', id: 'p-public' }]);
    expect((await rejection(authorize(outsider, 'projects:write', [{ type: 'project', id: 'p-public' }]))).code).toBe('WLDB_ERR_PERMISSION_DENIED');
    const anonymous = await auth.authenticate({ headers: {}, address: '', permission: 'public', method: 'test' });
    expect(anonymous).toMatchObject({ kind: 'anonymous', id: '', method: 'none' });
    expect((await rejection(authorize(anonymous, 'projects:read', [{ type: 'project', id: 'p-public' }]))).code).toBe('WLDB_ERR_UNAUTHENTICATED');
    expect((await rejection(auth.authenticate({ headers: {}, address: '', permission: 'projects:read', method: 'test' }))).message).toMatch(/Sign in: send `?Authorization: Bearer/);
  });

  it('special permissions: public, self:*, site:admin; no resources = any signed-in caller', async () => {
    await authorize(outsider, 'self:write');
    await authorize(outsider, 'projects:create');
    expect((await rejection(authorize(outsider, 'site:admin'))).code).toBe('WLDB_ERR_PERMISSION_DENIED');
    expect((await rejection(authorize(owner, ''))).code).toBe('WLDB_ERR_PERMISSION_DENIED');
    const root: Principal = { ...outsider, superuser: true };
    await authorize(root, 'site:admin');
    await authorize(root, 'runs:delete', [{ type: 'run', id: 'r1' }]);
  });

  it('grants on a project reach its runs; API-key scopes narrow everything', async () => {
    await t.db.run(`INSERT INTO project_grants (project_id, subject_type, subject_id, role, org_id, created_at) VALUES ('p-private', 'user', ?, 'member', ?, 0)`, [outsider.id, orgId]);
    await authorize(outsider, 'runs:write', [{ type: 'run', id: 'r1' }]);
    expect((await rejection(authorize(outsider, 'projects:admin', [{ type: 'project', id: 'p-private' }]))).code).toBe('WLDB_ERR_PERMISSION_DENIED');
    const keyed: Principal = { ...owner, method: 'api_key', scopes: ['runs:read'] };
    await authorize(keyed, 'runs:read', [{ type: 'run', id: 'r1' }]);
    expect((await rejection(authorize(keyed, 'runs:write', [{ type: 'run', id: 'r1' }]))).code).toBe('WLDB_ERR_PERMISSION_DENIED');
    expect((await rejection(authorize(keyed, 'self:write'))).code).toBe('WLDB_ERR_PERMISSION_DENIED');
    const scope = await auth.access(outsider, 'runs:write');
    expect(scope).toMatchObject({ all: false, projectIds: ['p-private'] });
    expect(await auth.access({ ...owner, superuser: true }, 'runs:read')).toMatchObject({ all: true });
    expect((await auth.access(owner, 'audit:read')).orgIds).toEqual([orgId]);
    // The viewer owns only their personal organisation's audit log.
    expect((await auth.access(member, 'audit:read')).orgIds).toEqual([member.orgId]);
    expect([...(await auth.access(member, 'runs:read')).orgIds].sort()).toEqual([orgId, member.orgId].sort());
    expect(await auth.access(keyed, 'runs:write')).toMatchObject({ all: false, orgIds: [], projectIds: [], publicProjects: false });
  });
});
