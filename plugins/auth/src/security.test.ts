import { metadataBackends } from '@wanllmdb/core/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { authAdminRef } from './auth-admin.js';
import { useAuthKernel } from './fixtures/auth-kernel.js';
import { hashPassword, verifyPassword } from './secrets.js';

const HOSTILE = ["' OR 1=1 --", '"; DROP TABLE users; --', '../../etc/passwd', '%', '_', '\\', 'a\u0000b', 'x'.repeat(5000)];

describe('password hashes', () => {
  it('verify, refuse a wrong password, and read the cost from the stored string', async () => {
    const h = await hashPassword('pässwörd one', 5);
    expect(h).toMatch(/^\$scrypt\$ln=5,r=8,p=1\$/);
    expect(await verifyPassword('pässwörd one', h)).toBe(true);
    expect(await verifyPassword('pässwörd two', h)).toBe(false);
    expect(await hashPassword('pässwörd one', 5)).not.toBe(h); // salted
    expect(await verifyPassword('x', 'not a hash')).toBe(false);
    expect(await verifyPassword('x', '$scrypt$ln=40,r=8,p=1$AAAA$AAAAAAAAAAAAAAAAAAAAAA==')).toBe(false);
  });
});

describe.each(metadataBackends())('hostile input on $name', (backend) => {
  const t = useAuthKernel(backend);
  let root: string;
  let owner: string;
  let orgId: string;
  let teamId: string;
  let projectId: string;

  beforeAll(async () => {
    await t.kernel.get(authAdminRef).createUser({ email: 'root@example.org', password: 'root password 1', superuser: true });
    root = (await t.call('auth.v1.AuthService/Login', { email: 'root@example.org', password: 'root password 1' })).data.accessToken;
    owner = (await t.signUp('owner@example.org')).access;
    orgId = (await t.call('auth.v1.OrgService/CreateOrg', { name: 'Org', slug: 'org', description: '' }, { token: owner })).data.id;
    teamId = (await t.call('auth.v1.OrgService/CreateTeam', { orgId, name: 'T', description: '' }, { token: owner })).data.id;
    projectId = (await t.call('projects.v1.ProjectService/CreateProject', { name: 'P', slug: '', description: '', visibility: 'private', organizationId: orgId }, { token: owner })).data.id;
  });

  it('every string field of every method answers with a clean error or no match, never a crash; tables stay intact', async () => {
    const uid = '00000000-0000-4000-8000-000000000000';
    const cases: [string, Record<string, unknown>, string][] = [
      ['AuthService/Register', { email: 'new@example.org', password: 'long enough 1', username: '', fullName: '' }, ''],
      ['AuthService/Login', { email: 'owner@example.org', password: 'wrong wrong' }, ''],
      ['AuthService/Refresh', { refreshToken: 'x' }, ''],
      ['AuthService/CreateApiKey', { name: 'k', scopes: [], expiresAt: '' }, 'owner'],
      ['AuthService/RevokeApiKey', { id: uid }, 'owner'],
      ['AuthService/ChangePassword', { currentPassword: 'wrong wrong', newPassword: 'long enough 2' }, 'owner'],
      ['OrgService/CreateOrg', { name: 'n', slug: '', description: '' }, 'owner'],
      ['OrgService/GetOrg', { orgId }, 'owner'],
      ['OrgService/UpdateOrg', { orgId, name: 'n', description: 'd' }, 'owner'],
      ['OrgService/AddMember', { orgId, userId: '', email: 'nobody@example.org', role: 'member' }, 'owner'],
      ['OrgService/UpdateMember', { orgId, userId: uid, role: 'member' }, 'owner'],
      ['OrgService/RemoveMember', { orgId, userId: uid }, 'owner'],
      ['OrgService/CreateTeam', { orgId, name: 'n', description: '' }, 'owner'],
      ['OrgService/ListTeamMembers', { teamId }, 'owner'],
      ['OrgService/AddTeamMember', { teamId, userId: uid, role: 'member' }, 'owner'],
      ['OrgService/CreateRole', { orgId, name: 'r', permissions: ['runs:read'] }, 'owner'],
      ['OrgService/DeleteRole', { orgId, roleId: uid }, 'owner'],
      ['OrgService/CreateServiceAccount', { orgId, name: 's', role: 'member', scopes: [] }, 'owner'],
      ['OrgService/SetProjectGrant', { projectId, subjectType: 'user', subjectId: uid, role: 'viewer' }, 'owner'],
      ['OrgService/RemoveProjectGrant', { projectId, subjectType: 'user', subjectId: uid }, 'owner'],
      ['AdminService/ListUsers', { page: 1, pageSize: 10, search: '' }, 'root'],
      ['AdminService/CreateUser', { email: 'made@example.org', password: 'long enough 1', username: '', fullName: '', isSuperuser: false }, 'root'],
      ['AdminService/UpdateUser', { userId: uid, isActive: true }, 'root'],
      ['AuditService/ListAudit', { actorId: '', action: '', target: '', organizationId: '', result: '', since: '', until: '', cursor: '', limit: 10 }, 'root'],
    ];
    const [{ n: usersBefore }] = await t.db.query<{ n: number }>('SELECT COUNT(*) AS n FROM users');
    let calls = 0;
    for (const [method, base, who] of cases) {
      const token = who === 'root' ? root : who === 'owner' ? owner : undefined;
      // In-process callers may leave fields out entirely.
      for (const partial of [{}, ...Object.keys(base).map((k) => Object.fromEntries(Object.entries(base).filter(([f]) => f !== k)))]) {
        const outcome = await t.call(`auth.v1.${method}`, partial, token ? { token } : {}).then(
          () => 'ok',
          (e: { code?: string }) => e.code ?? 'no code',
        );
        expect(outcome, `${method} ${JSON.stringify(partial)}`).not.toMatch(/INTERNAL|no code/);
      }
      for (const [field, value] of Object.entries(base)) {
        if (typeof value !== 'string') continue;
        for (const bad of HOSTILE) {
          calls++;
          const outcome = await t.call(`auth.v1.${method}`, { ...base, [field]: bad }, token ? { token } : {}).then(
            () => 'ok',
            (e: { code?: string }) => e.code ?? 'no code',
          );
          expect(outcome, `${method} ${field}=${JSON.stringify(bad.slice(0, 30))}`).not.toMatch(/INTERNAL|no code/);
          // Only names and descriptions may hold such text; nothing that identifies takes it.
          if (outcome === 'ok') expect(['name', 'description', 'fullName', 'search', 'action', 'target', 'result', 'password', 'newPassword', 'currentPassword']).toContain(field);
        }
      }
    }
    expect(calls).toBeGreaterThan(300);
    const [{ n: usersAfter }] = await t.db.query<{ n: number }>('SELECT COUNT(*) AS n FROM users');
    expect(Number(usersAfter)).toBeGreaterThanOrEqual(Number(usersBefore));
    for (const table of ['users', 'organizations', 'org_members', 'teams', 'api_keys', 'sessions', 'audit_log']) {
      await t.db.query(`SELECT COUNT(*) AS n FROM ${table}`);
    }
    // The search text is matched literally: '%' finds nothing, not everyone.
    expect((await t.call('auth.v1.AdminService/ListUsers', { page: 1, pageSize: 10, search: "' OR 1=1 --" }, { token: root })).data).toEqual([]);
    expect((await t.call('auth.v1.AdminService/ListUsers', { page: 1, pageSize: 10, search: '%' }, { token: root })).data).toEqual([]);
  });
});
