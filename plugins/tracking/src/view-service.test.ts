import { randomUUID } from 'node:crypto';
import { normalize } from '@wanllmdb/core';
import { metadataBackends } from '@wanllmdb/core/testing';
import type { tracking } from '@wanllmdb/proto';
import { beforeAll, describe, expect, it } from 'vitest';
// The auth plugin's kernel fixture (projects + auth), with tracking added: several real principals.
import { useAuthKernel } from '../../auth/src/fixtures/auth-kernel.js';
import { rejection } from './fixtures/rejection.js';
import { useTrackingKernel } from './fixtures/tracking-kernel.js';
import { createTrackingPlugin } from './tracking-plugin.js';

type View = tracking.v1.View;
const V = 'ViewService/';
const layout = { panels: [{ id: 'p1', type: 'tracking.line-chart', x: 0, y: 0, w: 6, h: 4, config: { keys: ['loss'] } }] };

describe.each(metadataBackends())('ViewService on $name', (backend) => {
  const t = useTrackingKernel(backend);
  let projectId = '';

  beforeAll(async () => {
    projectId = (await t.call('RunService/CreateRun', { projectId: 'views project' })).data.projectId;
  });
  const create = (req: Record<string, unknown>) => t.call<{ data: View }>(`${V}CreateView`, { projectId, name: 'main', scope: 'shared', spec: layout, ...req }).then((r) => r.data);

  it('creates, reads, lists, updates and deletes a view; the spec round-trips', async () => {
    const view = await create({ name: '  loss curves ' });
    expect(view).toMatchObject({ projectId, name: 'loss curves', scope: 'shared', ownerId: 'local', spec: layout });
    expect(view.createdAt).toBe(view.updatedAt);
    expect((await t.call(`${V}GetView`, { id: view.id })).data).toEqual(view);
    // A project named by its name works as well as by id; personal is the default scope.
    const mine = await create({ projectId: 'views-project', name: 'a personal one', scope: '' });
    expect(mine).toMatchObject({ projectId, scope: 'personal' });
    const listed = (await t.call(`${V}ListViews`, { projectId })).data as View[];
    expect(listed.map((v) => v.name)).toEqual(['a personal one', 'loss curves']);

    const spec = { panels: [], fullscreen: null, nested: { deep: [1, 2.5, 'x', true] } };
    const renamed = (await t.call(`${V}UpdateView`, { id: view.id, name: 'renamed', spec })).data as View;
    expect(renamed).toMatchObject({ name: 'renamed', scope: 'shared', spec });
    // Absent fields stay as they are.
    const same = (await t.call(`${V}UpdateView`, { id: view.id, scope: 'personal' })).data as View;
    expect(same).toMatchObject({ name: 'renamed', scope: 'personal', spec });

    await t.call(`${V}DeleteView`, { id: view.id });
    expect((await rejection(t.call(`${V}GetView`, { id: view.id }))).code).toBe('WLDB_ERR_NOT_FOUND');
    expect((await rejection(t.call(`${V}DeleteView`, { id: view.id }))).code).toBe('WLDB_ERR_NOT_FOUND');
    expect((await t.call(`${V}ListViews`, { projectId })).data.map((v: View) => v.id)).toEqual([mine.id]);
  });

  it('refuses bad names, scopes, specs and ids with every problem listed', async () => {
    const err = await rejection(create({ name: 'x'.repeat(256), spec: { s: 'y'.repeat(256 * 1024) } }));
    expect(err.code).toBe('WLDB_ERR_VALIDATION');
    expect(err.details.map((d) => d.field).sort()).toEqual(['name', 'spec']);
    // A closed set (visibility, resume, scope, stream …) is part of the contract, checked with the types before the handler (ADR 0020).
    expect((await rejection(create({ scope: 'public' }))).details.map((d) => d.field)).toEqual(['scope']);
    expect((await rejection(create({ name: '' }))).details[0]!.field).toBe('name');
    expect((await rejection(create({ name: 'tab\there' }))).details[0]!.field).toBe('name');
    expect((await rejection(create({ projectId: randomUUID() }))).code).toBe('WLDB_ERR_NOT_FOUND');
    expect((await rejection(t.call(`${V}GetView`, { id: 'nope' }))).code).toBe('WLDB_ERR_INVALID_ID');
    expect((await rejection(t.call(`${V}GetView`, { id: randomUUID() }))).code).toBe('WLDB_ERR_NOT_FOUND');
    const view = await create({});
    expect((await rejection(t.call(`${V}UpdateView`, { id: view.id, name: '' }))).details.map((d) => d.field)).toEqual(['name']);
    expect((await rejection(t.call(`${V}UpdateView`, { id: view.id, scope: 'everyone' }))).details.map((d) => d.field)).toEqual(['scope']);
  });

  it('is served over HTTP under /api/v1 (201 on create)', async () => {
    const http = await startHttp();
    try {
      const res = await fetch(`${http}/api/v1/projects/${projectId}/views`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'over http', scope: 'shared', spec: layout }),
      });
      expect(res.status).toBe(201);
      const { data } = (await res.json()) as { data: View };
      const patched = await fetch(`${http}/api/v1/views/${data.id}`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'patched' }) });
      expect(((await patched.json()) as { data: View }).data).toMatchObject({ name: 'patched', spec: layout });
      const list = (await (await fetch(`${http}/api/v1/projects/${projectId}/views`)).json()) as { data: View[] };
      expect(list.data.map((v) => v.name)).toContain('patched');
      expect((await fetch(`${http}/api/v1/views/${data.id}`, { method: "DELETE" })).status).toBe(204);
    } finally {
      await stopHttp();
    }
  });

  // The suite's kernel does not listen; a second one on the same backend does, for the HTTP check.
  let stopHttp = async () => undefined as void;
  async function startHttp(): Promise<string> {
    const { startTrackingKernel } = await import('./fixtures/tracking-kernel.js');
    const k = await startTrackingKernel(backend, { listen: true });
    stopHttp = () => k.close();
    const url = `http://127.0.0.1:${k.ports!.httpPort}`;
    const { data } = await (await fetch(`${url}/api/v1/projects/${'http views'}/runs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).json() as { data: { projectId: string } };
    projectId = data.projectId;
    return url;
  }
});

describe.each(metadataBackends())('ViewService with several users on $name', (backend) => {
  const kernel = useAuthKernel(backend, { plugins: [createTrackingPlugin()] });
  // Requests filled in as the wire would (defaults for absent fields).
  const t = {
    get db() {
      return kernel.db;
    },
    signUp: (email: string) => kernel.signUp(email),
    call: <T = any,>(method: string, req: Record<string, unknown>, who: { token: string }) =>
      kernel.call<T>(method, normalize(kernel.kernel.rpcHost.method(`wanllmdb.${method}`)!.requestType, req), who),
  };
  const u: Record<string, { user: { id: string }; access: string }> = {};
  let projectId = '';
  const as = (who: string) => ({ token: u[who]!.access });
  const call = (method: string, req: Record<string, unknown>, who: string) => t.call<any>(`tracking.v1.${V}${method}`, req, as(who));
  const code = async (p: Promise<unknown>) => (await rejection(p)).code;

  beforeAll(async () => {
    // alice owns the organisation; bob is a member, carol a viewer, erin an admin; dave is outside.
    for (const name of ['alice', 'bob', 'carol', 'dave', 'erin']) u[name] = await t.signUp(`${name}@views.test`);
    const org = (await t.call('auth.v1.OrgService/CreateOrg', { name: 'View Labs', slug: '', description: '' }, as('alice'))).data;
    for (const [who, role] of [['bob', 'member'], ['carol', 'viewer'], ['erin', 'admin']] as const) {
      await t.call('auth.v1.OrgService/AddMember', { orgId: org.id, userId: u[who]!.user.id, email: '', role }, as('alice'));
    }
    projectId = (await t.call('projects.v1.ProjectService/CreateProject', { name: 'shared work', organizationId: org.id }, as('alice'))).data.id;
  });

  it('hides personal views from everyone but their owner; shows shared ones to every reader', async () => {
    const personal = (await call('CreateView', { projectId, name: 'alice only', scope: 'personal', spec: layout }, 'alice')).data as View;
    const shared = (await call('CreateView', { projectId, name: 'team board', scope: 'shared', spec: layout }, 'alice')).data as View;
    expect(personal.ownerId).toBe(u.alice!.user.id);
    const bobs = (await call('CreateView', { projectId, name: 'bob only', scope: 'personal', spec: {} }, 'bob')).data as View;

    const names = async (who: string) => ((await call('ListViews', { projectId }, who)).data as View[]).map((v) => v.name);
    expect(await names('alice')).toEqual(['alice only', 'team board']);
    expect(await names('bob')).toEqual(['bob only', 'team board']);
    expect(await names('carol')).toEqual(['team board']);
    expect(await code(call('ListViews', { projectId }, 'dave'))).toBe('WLDB_ERR_NOT_FOUND');

    // Someone else's personal view looks exactly like a missing one.
    const ghost = randomUUID();
    for (const method of ['GetView', 'UpdateView', 'DeleteView']) {
      const hidden = await rejection(call(method, { id: personal.id, name: 'mine now' }, 'bob'));
      const missing = await rejection(call(method, { id: ghost, name: 'mine now' }, 'bob'));
      expect(hidden.code).toBe('WLDB_ERR_NOT_FOUND');
      expect(hidden.message.replace(personal.id, 'X')).toBe(missing.message.replace(ghost, 'X'));
    }
    expect(await code(call('GetView', { id: personal.id }, 'erin'))).toBe('WLDB_ERR_NOT_FOUND'); // admins too
    expect(await code(call('GetView', { id: shared.id }, 'dave'))).toBe('WLDB_ERR_NOT_FOUND');
    expect((await call('GetView', { id: shared.id }, 'carol')).data.name).toBe('team board');
    expect((await call('GetView', { id: bobs.id }, 'bob')).data.name).toBe('bob only');
  });

  it('lets project writers edit a shared view, its owner change its scope, owner or admin delete it', async () => {
    const shared = (await call('CreateView', { projectId, name: 'board', scope: 'shared', spec: layout }, 'alice')).data as View;
    const edited = (await call('UpdateView', { id: shared.id, name: 'board v2', spec: { panels: [] } }, 'bob')).data as View;
    expect(edited).toMatchObject({ name: 'board v2', spec: { panels: [] }, ownerId: u.alice!.user.id });
    expect(await code(call('UpdateView', { id: shared.id, scope: 'personal' }, 'bob'))).toBe('WLDB_ERR_PERMISSION_DENIED');
    expect(await code(call('UpdateView', { id: shared.id, name: 'viewer edit' }, 'carol'))).toBe('WLDB_ERR_PERMISSION_DENIED');
    expect(await code(call('CreateView', { projectId, name: 'viewer view', spec: {} }, 'carol'))).toBe('WLDB_ERR_PERMISSION_DENIED');
    expect(await code(call('DeleteView', { id: shared.id }, 'bob'))).toBe('WLDB_ERR_PERMISSION_DENIED');
    expect(await code(call('DeleteView', { id: shared.id }, 'carol'))).toBe('WLDB_ERR_PERMISSION_DENIED');
    await call('DeleteView', { id: shared.id }, 'erin'); // a project administrator
    expect(await code(call('GetView', { id: shared.id }, 'alice'))).toBe('WLDB_ERR_NOT_FOUND');

    // The owner deletes their own (a member's shared view, too).
    const bobs = (await call('CreateView', { projectId, name: 'bob shares', scope: 'shared', spec: {} }, 'bob')).data as View;
    const made = (await call('UpdateView', { id: bobs.id, scope: 'personal' }, 'bob')).data as View;
    expect(made.scope).toBe('personal');
    expect(await code(call('GetView', { id: bobs.id }, 'alice'))).toBe('WLDB_ERR_NOT_FOUND');
    await call('DeleteView', { id: bobs.id }, 'bob');
  });

  it('deletes the views of a deleted project', async () => {
    const doomed = (await t.call('projects.v1.ProjectService/CreateProject', { name: 'doomed views' }, as('alice'))).data.id;
    const view = (await call('CreateView', { projectId: doomed, name: 'gone soon', scope: 'shared', spec: {} }, 'alice')).data as View;
    await t.call('projects.v1.ProjectService/DeleteProject', { id: doomed }, as('alice'));
    await expect.poll(async () => (await t.db.query('SELECT id FROM views WHERE id = ?', [view.id])).length).toBe(0);
  });
});
