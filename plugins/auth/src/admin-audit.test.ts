import { metadataBackends } from '@wanllmdb/core/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { authAdminRef } from './auth-admin.js';
import { rejection, useAuthKernel } from './fixtures/auth-kernel.js';

const A = 'auth.v1.AuthService/';
const AD = 'auth.v1.AdminService/';
const AU = 'auth.v1.AuditService/';
const O = 'auth.v1.OrgService/';

describe.each(metadataBackends())('AdminService and AuditService on $name', (backend) => {
  const t = useAuthKernel(backend);
  let root: string;
  let rootId: string;
  let user: { user: any; access: string; refresh: string };

  beforeAll(async () => {
    const created = await t.kernel.get(authAdminRef).createUser({ email: 'root@example.org', password: 'root password 1', username: 'root', superuser: true });
    rootId = created.id;
    root = (await t.call(`${A}Login`, { email: 'root@example.org', password: 'root password 1' })).data.accessToken;
    user = await t.signUp('plain@example.org', 'plain user password');
  });

  it('is for site administrators only', async () => {
    const e = await rejection(t.call(`${AD}ListUsers`, { page: 1, pageSize: 10, search: '' }, { token: user.access }));
    expect(e.code).toBe('WLDB_ERR_PERMISSION_DENIED');
    expect((await rejection(t.call(`${AD}GetSettings`, {}))).code).toBe('WLDB_ERR_UNAUTHENTICATED');
  });

  it('creates, lists, searches and updates users; the last superuser stays; a disabled user is signed out', async () => {
    const made = (await t.call(`${AD}CreateUser`, { email: 'made@example.org', password: 'made password 1', username: 'made', fullName: 'Made User', isSuperuser: false }, { token: root })).data;
    expect(made).toMatchObject({ username: 'made', fullName: 'Made User', isSuperuser: false });
    const found = await t.call(`${AD}ListUsers`, { page: 1, pageSize: 10, search: 'MADE@' }, { token: root });
    expect(found.data.map((x: any) => x.id)).toEqual([made.id]);
    expect((await t.call(`${AD}ListUsers`, { page: 1, pageSize: 10, search: '%' }, { token: root })).data).toEqual([]);
    expect((await t.call(`${AD}ListUsers`, { page: 1, pageSize: 2, search: '' }, { token: root })).meta).toMatchObject({ total: 3, totalPages: 2 });
    const last = await rejection(t.call(`${AD}UpdateUser`, { userId: rootId, isSuperuser: false }, { token: root }));
    expect(last.code).toBe('WLDB_ERR_VALIDATION');
    expect(last.message).toMatch(/last active site administrator/);
    expect((await rejection(t.call(`${AD}UpdateUser`, { userId: rootId, isActive: false }, { token: root }))).code).toBe('WLDB_ERR_VALIDATION');
    const session = (await t.call(`${A}Login`, { email: 'made@example.org', password: 'made password 1' })).data;
    await t.call(`${A}GetMe`, {}, { token: session.accessToken });
    expect((await t.call(`${AD}UpdateUser`, { userId: made.id, isActive: false }, { token: root })).data.isActive).toBe(false);
    expect((await rejection(t.call(`${A}GetMe`, {}, { token: session.accessToken }))).code).toBe('WLDB_ERR_UNAUTHENTICATED');
    expect((await rejection(t.call(`${A}Login`, { email: 'made@example.org', password: 'made password 1' }))).message).toMatch(/disabled/);
    expect((await rejection(t.call(`${A}Refresh`, { refreshToken: session.refreshToken }))).code).toBe('WLDB_ERR_UNAUTHENTICATED');
    expect((await rejection(t.call(`${AD}UpdateUser`, { userId: '00000000-0000-4000-8000-000000000000', isActive: true }, { token: root }))).code).toBe('WLDB_ERR_NOT_FOUND');
  });

  it('reads and changes server settings', async () => {
    expect((await t.call(`${AD}GetSettings`, {}, { token: root })).data).toEqual({ allowRegistration: true });
    expect((await t.call(`${AD}UpdateSettings`, { allowRegistration: false }, { token: root })).data).toEqual({ allowRegistration: false });
    expect((await rejection(t.call(`${A}Register`, { email: 'late@example.org', password: 'long enough 1', username: '', fullName: '' }))).code).toBe('WLDB_ERR_PERMISSION_DENIED');
    await t.call(`${AD}UpdateSettings`, { allowRegistration: true }, { token: root });
  });

  it('audits every non-read call, pages newest first, narrows to the caller\'s organisations, keeps no secrets', async () => {
    const org = (await t.call(`${O}CreateOrg`, { name: 'Audited', slug: 'audited', description: '' }, { token: user.access })).data;
    await t.call(`${O}CreateTeam`, { orgId: org.id, name: 'A', description: '' }, { token: user.access });
    await t.call(`${O}CreateTeam`, { orgId: org.id, name: 'B', description: '' }, { token: user.access });
    await rejection(t.call(`${O}CreateTeam`, { orgId: org.id, name: 'A', description: '' }, { token: user.access }));
    const key = (await t.call(`${A}CreateApiKey`, { name: 'secret key', scopes: [], expiresAt: '' }, { token: user.access })).data.key;

    const all = (await t.call(`${AU}ListAudit`, { limit: 1000 }, { token: root })).data;
    const actions = all.map((e: any) => e.action);
    expect(actions).toContain('wanllmdb.auth.v1.AuthService/Login');
    expect(actions).toContain('wanllmdb.auth.v1.OrgService/CreateTeam');
    expect(actions).not.toContain('wanllmdb.auth.v1.AuthService/GetMe');
    const failed = all.find((e: any) => e.result === 'WLDB_ERR_ALREADY_EXISTS');
    expect(failed).toMatchObject({ actorId: user.user.id, actorName: 'plain', organizationId: org.id, target: `org:${org.id}`, transport: 'local' });
    const times = all.map((e: any) => Date.parse(e.at));
    expect([...times].sort((a, b) => b - a)).toEqual(times);

    // Keyset paging returns every event once.
    const seen: string[] = [];
    let cursor = '';
    for (let i = 0; i < 100; i++) {
      const page = await t.call(`${AU}ListAudit`, { limit: 3, cursor }, { token: root });
      seen.push(...page.data.map((e: any) => e.id));
      cursor = page.meta.nextCursor;
      if (!cursor) break;
    }
    expect(seen).toEqual(all.map((e: any) => e.id));
    expect((await rejection(t.call(`${AU}ListAudit`, { cursor: 'bm90IGEgY3Vyc29y' }, { token: root }))).code).toBe('WLDB_ERR_VALIDATION');

    // The owner of "Audited" sees its events only; another user sees none of them.
    const mine = (await t.call(`${AU}ListAudit`, { limit: 100 }, { token: user.access })).data;
    expect(mine.length).toBeGreaterThan(0);
    expect(new Set(mine.map((e: any) => e.organizationId))).toEqual(new Set([org.id]));
    const other = await t.signUp('other@example.org');
    expect((await t.call(`${AU}ListAudit`, { organizationId: org.id }, { token: other.access })).data).toEqual([]);
    expect((await t.call(`${AU}ListAudit`, { result: 'WLDB_ERR_ALREADY_EXISTS', actorId: user.user.id }, { token: root })).data).toHaveLength(1);
    expect((await t.call(`${AU}ListAudit`, { target: `org:${org.id}` }, { token: root })).data.length).toBeGreaterThanOrEqual(3);

    // No password, access token, refresh token or API key anywhere in the audit table or the logs.
    const table = JSON.stringify(await t.db.query('SELECT * FROM audit_log'));
    const logs = t.logs.join('\n');
    for (const secret of ['plain user password', 'root password 1', user.access, user.refresh, root, key]) {
      expect(table).not.toContain(secret);
      expect(logs).not.toContain(secret);
    }
  });

  it('exports the audit log as JSON lines or CSV', async () => {
    const chunks: { contentType: string; data: Uint8Array }[] = [];
    await t.stream(`${AU}ExportAudit`, { format: 'jsonl' }, { token: root }, (m) => chunks.push(m));
    expect(chunks[0]!.contentType).toBe('application/x-ndjson');
    const lines = Buffer.concat(chunks.map((c) => c.data)).toString().trim().split('\n');
    const listed = (await t.call(`${AU}ListAudit`, { limit: 1000 }, { token: root })).data;
    // The export call itself is a read: not audited, so both see the same events.
    expect(lines.map((l) => JSON.parse(l).id)).toEqual(listed.map((e: any) => e.id));

    const csv: Uint8Array[] = [];
    let type = '';
    await t.stream(`${AU}ExportAudit`, { format: 'csv', action: 'wanllmdb.auth.v1.AuthService/Login' }, { token: root }, (m) => {
      type = m.contentType;
      csv.push(m.data);
    });
    expect(type).toMatch(/^text\/csv/);
    const rows = Buffer.concat(csv).toString().trim().split('\n');
    expect(rows[0]).toBe('id,at,actor_id,actor_name,actor_kind,action,permission,target,organization_id,address,transport,result,request_id');
    expect(rows.length).toBeGreaterThan(1);
    expect(rows.slice(1).every((r) => r.includes('wanllmdb.auth.v1.AuthService/Login'))).toBe(true);
    expect((await rejection(t.stream(`${AU}ExportAudit`, { format: 'xml' }, { token: root }, () => undefined))).code).toBe('WLDB_ERR_VALIDATION');
  });
});
