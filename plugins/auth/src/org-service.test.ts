import { metadataBackends } from '@wanllmdb/core/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { rejection, useAuthKernel } from './fixtures/auth-kernel.js';

const O = 'auth.v1.OrgService/';
const P = 'projects.v1.ProjectService/';

describe.each(metadataBackends())('OrgService on $name', (backend) => {
  const t = useAuthKernel(backend);
  const u: Record<string, { user: any; access: string }> = {};
  let acme: any;

  beforeAll(async () => {
    for (const name of ['alice', 'bob', 'carol', 'dave', 'erin', 'frank']) u[name] = await t.signUp(`${name}@example.org`);
    acme = (await t.call(`${O}CreateOrg`, { name: 'Acme Labs', slug: '', description: 'robots' }, { token: u.alice!.access })).data;
  });

  const as = (who: string) => ({ token: u[who]!.access });
  const code = async (p: Promise<unknown>) => (await rejection(p)).code;

  it('creates an organisation with the caller as owner; hides it from non-members; lists only the caller\'s', async () => {
    expect(acme).toMatchObject({ name: 'Acme Labs', slug: 'acme-labs', personal: false });
    expect((await t.call(`${O}GetOrg`, { orgId: 'acme-labs' }, as('alice'))).data.id).toBe(acme.id);
    const hidden = await rejection(t.call(`${O}GetOrg`, { orgId: acme.id }, as('bob')));
    const missing = await rejection(t.call(`${O}GetOrg`, { orgId: '00000000-0000-4000-8000-000000000000' }, as('bob')));
    expect(hidden.code).toBe('WLDB_ERR_NOT_FOUND');
    expect(missing.code).toBe('WLDB_ERR_NOT_FOUND');
    expect(hidden.message.replace(acme.id, 'X')).toBe(missing.message.replace('00000000-0000-4000-8000-000000000000', 'X'));
    expect(await code(t.call(`${O}CreateOrg`, { name: 'Other', slug: 'acme-labs', description: '' }, as('bob')))).toBe('WLDB_ERR_ALREADY_EXISTS');
    const bobs = (await t.call(`${O}ListOrgs`, { page: 1, pageSize: 20 }, as('bob'))).data;
    expect(bobs.map((o: any) => o.id)).toEqual([u.bob!.user.defaultOrganizationId]);
    expect((await t.call(`${O}ListOrgs`, { page: 1, pageSize: 20 }, as('alice'))).meta.total).toBe(2);
    expect(await code(t.call(`${O}ListOrgs`, { page: 0, pageSize: 1000 }, as('alice')))).toBe('WLDB_ERR_VALIDATION');
  });

  it('adds members by email or id; roles decide who may change what; the last owner stays', async () => {
    const bob = (await t.call(`${O}AddMember`, { orgId: acme.id, userId: '', email: 'BOB@example.org', role: 'member' }, as('alice'))).data;
    expect(bob).toMatchObject({ userId: u.bob!.user.id, role: 'member', username: 'bob' });
    expect(await code(t.call(`${O}AddMember`, { orgId: acme.id, userId: u.bob!.user.id, email: '', role: 'member' }, as('alice')))).toBe('WLDB_ERR_ALREADY_EXISTS');
    expect(await code(t.call(`${O}AddMember`, { orgId: acme.id, userId: '', email: 'ghost@example.org', role: 'member' }, as('alice')))).toBe('WLDB_ERR_NOT_FOUND');
    expect(await code(t.call(`${O}AddMember`, { orgId: acme.id, userId: u.carol!.user.id, email: '', role: 'emperor' }, as('alice')))).toBe('WLDB_ERR_VALIDATION');
    // A member reads but does not manage.
    expect((await t.call(`${O}ListMembers`, { orgId: acme.id }, as('bob'))).data).toHaveLength(2);
    const denied = await rejection(t.call(`${O}AddMember`, { orgId: acme.id, userId: u.carol!.user.id, email: '', role: 'member' }, as('bob')));
    expect(denied.code).toBe('WLDB_ERR_PERMISSION_DENIED');
    expect(denied.message).toMatch(/You need members:write on org .*; ask an owner or admin/);
    expect(await code(t.call(`${O}UpdateOrg`, { orgId: acme.id, name: 'Bob Co' }, as('bob')))).toBe('WLDB_ERR_PERMISSION_DENIED');
    // The last owner can be neither demoted nor removed.
    const demote = await rejection(t.call(`${O}UpdateMember`, { orgId: acme.id, userId: u.alice!.user.id, role: 'admin' }, as('alice')));
    expect(demote.code).toBe('WLDB_ERR_VALIDATION');
    expect(demote.message).toMatch(/last owner/);
    expect(await code(t.call(`${O}RemoveMember`, { orgId: acme.id, userId: u.alice!.user.id }, as('alice')))).toBe('WLDB_ERR_VALIDATION');
    // An admin manages members but cannot make owners, nor delete the organisation.
    await t.call(`${O}UpdateMember`, { orgId: acme.id, userId: u.bob!.user.id, role: 'admin' }, as('alice'));
    await t.call(`${O}AddMember`, { orgId: acme.id, userId: u.carol!.user.id, email: '', role: 'viewer' }, as('bob'));
    expect(await code(t.call(`${O}UpdateMember`, { orgId: acme.id, userId: u.carol!.user.id, role: 'owner' }, as('bob')))).toBe('WLDB_ERR_PERMISSION_DENIED');
    expect(await code(t.call(`${O}DeleteOrg`, { orgId: acme.id }, as('bob')))).toBe('WLDB_ERR_PERMISSION_DENIED');
    const updated = (await t.call(`${O}UpdateOrg`, { orgId: acme.id, description: 'robots and more' }, as('bob'))).data;
    expect(updated.description).toBe('robots and more');
    // With a second owner, the first may step down.
    await t.call(`${O}UpdateMember`, { orgId: acme.id, userId: u.bob!.user.id, role: 'owner' }, as('alice'));
    await t.call(`${O}UpdateMember`, { orgId: acme.id, userId: u.bob!.user.id, role: 'admin' }, as('alice'));
    // A personal organisation cannot be deleted; a shared one can, by an owner.
    expect(await code(t.call(`${O}DeleteOrg`, { orgId: u.alice!.user.defaultOrganizationId }, as('alice')))).toBe('WLDB_ERR_VALIDATION');
    const tmp = (await t.call(`${O}CreateOrg`, { name: 'Temp', slug: 'temp-org', description: '' }, as('alice'))).data;
    await t.call(`${O}DeleteOrg`, { orgId: tmp.id }, as('alice'));
    expect(await code(t.call(`${O}GetOrg`, { orgId: tmp.id }, as('alice')))).toBe('WLDB_ERR_NOT_FOUND');
  });

  it('manages teams and their members', async () => {
    const team = (await t.call(`${O}CreateTeam`, { orgId: acme.id, name: 'ML', description: '' }, as('alice'))).data;
    expect(team).toMatchObject({ organizationId: acme.id, name: 'ML' });
    expect(await code(t.call(`${O}CreateTeam`, { orgId: acme.id, name: 'ML', description: '' }, as('alice')))).toBe('WLDB_ERR_ALREADY_EXISTS');
    expect(await code(t.call(`${O}AddTeamMember`, { teamId: team.id, userId: u.dave!.user.id, role: 'member' }, as('alice')))).toBe('WLDB_ERR_VALIDATION');
    await t.call(`${O}AddTeamMember`, { teamId: team.id, userId: u.carol!.user.id, role: 'admin' }, as('alice'));
    expect(await code(t.call(`${O}AddTeamMember`, { teamId: team.id, userId: u.carol!.user.id, role: 'boss' }, as('alice')))).toBe('WLDB_ERR_VALIDATION');
    expect((await t.call(`${O}ListTeamMembers`, { teamId: team.id }, as('carol'))).data).toEqual([expect.objectContaining({ userId: u.carol!.user.id, role: 'admin' })]);
    expect((await t.call(`${O}ListTeams`, { orgId: acme.id }, as('carol'))).data.map((x: any) => x.name)).toContain('ML');
    // Outsiders do not see the team.
    expect(await code(t.call(`${O}ListTeamMembers`, { teamId: team.id }, as('dave')))).toBe('WLDB_ERR_NOT_FOUND');
    await t.call(`${O}RemoveTeamMember`, { teamId: team.id, userId: u.carol!.user.id, role: '' }, as('alice'));
    expect(await code(t.call(`${O}RemoveTeamMember`, { teamId: team.id, userId: u.carol!.user.id, role: '' }, as('alice')))).toBe('WLDB_ERR_NOT_FOUND');
    const gone = (await t.call(`${O}CreateTeam`, { orgId: acme.id, name: 'Gone', description: '' }, as('alice'))).data;
    await t.call(`${O}DeleteTeam`, { teamId: gone.id }, as('alice'));
    expect(await code(t.call(`${O}ListTeamMembers`, { teamId: gone.id }, as('alice')))).toBe('WLDB_ERR_NOT_FOUND');
  });

  it('custom roles: validated, usable as member roles, not deletable while in use; built-ins are fixed', async () => {
    const bad = await rejection(t.call(`${O}CreateRole`, { orgId: acme.id, name: 'x', permissions: ['site:admin', 'RUNS:*', 'runs'] }, as('alice')));
    expect(bad.details.map((d) => d.field)).toEqual(['permissions[0]', 'permissions[1]', 'permissions[2]']);
    expect(await code(t.call(`${O}CreateRole`, { orgId: acme.id, name: 'owner', permissions: ['runs:read'] }, as('alice')))).toBe('WLDB_ERR_VALIDATION');
    const role = (await t.call(`${O}CreateRole`, { orgId: acme.id, name: 'reporter', permissions: ['reports:read', 'reports:write'] }, as('alice'))).data;
    expect(role).toMatchObject({ name: 'reporter', builtin: false, permissions: ['reports:read', 'reports:write'] });
    expect(await code(t.call(`${O}CreateRole`, { orgId: acme.id, name: 'reporter', permissions: ['runs:read'] }, as('alice')))).toBe('WLDB_ERR_ALREADY_EXISTS');
    const roles = (await t.call(`${O}ListRoles`, { orgId: acme.id }, as('alice'))).data;
    expect(roles.map((r: any) => r.name)).toEqual(['owner', 'admin', 'member', 'viewer', 'reporter']);
    await t.call(`${O}AddMember`, { orgId: acme.id, userId: u.erin!.user.id, email: '', role: 'reporter' }, as('alice'));
    expect((await rejection(t.call(`${O}DeleteRole`, { orgId: acme.id, roleId: role.id }, as('alice')))).message).toMatch(/still held/);
    expect(await code(t.call(`${O}DeleteRole`, { orgId: acme.id, roleId: 'admin' }, as('alice')))).toBe('WLDB_ERR_VALIDATION');
    // A member cannot manage roles.
    expect(await code(t.call(`${O}CreateRole`, { orgId: acme.id, name: 'mine', permissions: ['*:*'] }, as('erin')))).toBe('WLDB_ERR_PERMISSION_DENIED');
  });

  it('project grants (to users and teams) and public projects decide project access', async () => {
    const project = (await t.call(`${P}CreateProject`, { name: 'Vision', slug: '', description: '', visibility: 'private', organizationId: acme.id }, as('alice'))).data;
    expect(project.organizationId).toBe(acme.id);
    // erin holds only "reporter" in acme: she is known there, so she is told what she lacks.
    expect(await code(t.call(`${P}GetProject`, { id: project.id }, as('erin')))).toBe('WLDB_ERR_PERMISSION_DENIED');
    // dave is no member at all: the project does not exist for him.
    expect(await code(t.call(`${P}GetProject`, { id: project.id }, as('dave')))).toBe('WLDB_ERR_NOT_FOUND');
    expect(await code(t.call(`${O}SetProjectGrant`, { projectId: project.id, subjectType: 'user', subjectId: u.dave!.user.id, role: 'viewer' }, as('alice')))).toBe('WLDB_ERR_VALIDATION');

    const g = (await t.call(`${O}SetProjectGrant`, { projectId: project.id, subjectType: 'user', subjectId: u.erin!.user.id, role: 'viewer' }, as('alice'))).data;
    expect(g).toMatchObject({ subjectType: 'user', subjectName: 'erin', role: 'viewer' });
    expect((await t.call(`${P}GetProject`, { id: project.id }, as('erin'))).data.id).toBe(project.id);
    expect(await code(t.call(`${P}UpdateProject`, { id: project.id, description: 'x' }, as('erin')))).toBe('WLDB_ERR_PERMISSION_DENIED');

    const team = (await t.call(`${O}CreateTeam`, { orgId: acme.id, name: 'Writers', description: '' }, as('alice'))).data;
    await t.call(`${O}AddTeamMember`, { teamId: team.id, userId: u.erin!.user.id, role: 'member' }, as('alice'));
    await t.call(`${O}SetProjectGrant`, { projectId: project.id, subjectType: 'team', subjectId: team.id, role: 'member' }, as('alice'));
    await t.call(`${P}UpdateProject`, { id: project.id, description: 'by erin' }, as('erin'));
    expect((await t.call(`${O}ListProjectGrants`, { projectId: project.id }, as('erin'))).data.map((x: any) => x.subjectName).sort()).toEqual(['Writers', 'erin']);
    // A member may not hand out grants (projects:admin).
    expect(await code(t.call(`${O}SetProjectGrant`, { projectId: project.id, subjectType: 'user', subjectId: u.erin!.user.id, role: 'admin' }, as('erin')))).toBe('WLDB_ERR_PERMISSION_DENIED');
    await t.call(`${O}RemoveProjectGrant`, { projectId: project.id, subjectType: 'team', subjectId: team.id }, as('alice'));
    expect(await code(t.call(`${P}UpdateProject`, { id: project.id, description: 'x' }, as('erin')))).toBe('WLDB_ERR_PERMISSION_DENIED');
    expect(await code(t.call(`${O}RemoveProjectGrant`, { projectId: project.id, subjectType: 'team', subjectId: team.id }, as('alice')))).toBe('WLDB_ERR_NOT_FOUND');

    // A public project is readable by any signed-in user, but not writable.
    const open = (await t.call(`${P}CreateProject`, { name: 'Open', slug: '', description: '', visibility: 'public', organizationId: acme.id }, as('alice'))).data;
    expect((await t.call(`${P}GetProject`, { id: open.id }, as('frank'))).data.id).toBe(open.id);
    expect(await code(t.call(`${P}UpdateProject`, { id: open.id, description: 'x' }, as('frank')))).toBe('WLDB_ERR_PERMISSION_DENIED'); // it is known to exist
    expect(await code(t.call(`${P}GetProject`, { id: open.id }))).toBe('WLDB_ERR_UNAUTHENTICATED');
  });

  it('service accounts: members with an API key shown once, no password sign-in', async () => {
    const sa = (await t.call(`${O}CreateServiceAccount`, { orgId: acme.id, name: 'CI bot', role: 'member', scopes: ['projects:*', 'runs:*', 'self:read'] }, as('alice'))).data;
    expect(sa.account).toMatchObject({ kind: 'service', email: '', defaultOrganizationId: acme.id });
    expect(sa.apiKey.key).toMatch(/^wldb_/);
    expect(sa.apiKey.apiKey.scopes).toEqual(['projects:*', 'runs:*', 'self:read']);
    const me = (await t.call('auth.v1.AuthService/GetMe', {}, { token: sa.apiKey.key })).data;
    expect(me.memberships).toEqual([expect.objectContaining({ organizationId: acme.id, role: 'member' })]);
    const made = (await t.call(`${P}CreateProject`, { name: 'From CI', slug: '', description: '', visibility: 'private', organizationId: acme.id }, { token: sa.apiKey.key })).data;
    expect(made.organizationId).toBe(acme.id);
    // Scopes narrow: no orgs:* scope.
    expect(await code(t.call(`${O}ListMembers`, { orgId: acme.id }, { token: sa.apiKey.key }))).toBe('WLDB_ERR_PERMISSION_DENIED');
    expect(await code(t.call(`${O}CreateServiceAccount`, { orgId: acme.id, name: 'Boss bot', role: 'owner', scopes: [] }, as('bob')))).toBe('WLDB_ERR_PERMISSION_DENIED');
  });
});
