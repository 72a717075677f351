import { Errors, newId, pageMeta, slugify, type CallContext, type ResolvedResource } from '@wanllmdb/core';
import type { auth } from '@wanllmdb/proto';
import { checkScopes } from './auth-service.js';
import type { AuthDeps } from './deps.js';
import { toRole } from './repository.js';
import { BUILTIN_PERMISSIONS, BUILTIN_ROLES, checkRolePattern, isBuiltinRole } from './roles.js';
import { hidden, seesEverything } from './token-auth.js';
import { AuthProblems, MAX_NAME, ROLE_NAME, SLUG } from './validate.js';

type Handlers = auth.v1.OrgServiceHandlers<CallContext>;
const MAX_ROLE_PERMISSIONS = 100;

/**
 * The resource a method names, as the host authorised it; resolved and
 * checked here when the host did not (a handler must never act on an
 * unchecked id).
 */
async function target(ctx: CallContext, type: string, id: string): Promise<ResolvedResource> {
  const had = ctx.resources?.find((r) => r.type === type);
  if (had) return had;
  const [r] = await ctx.authorize(ctx.permission, [{ type, id }]);
  if (!r) throw hidden(type, id);
  return r;
}

const required = (what: string, field: string, value: unknown): string => {
  if (typeof value !== 'string' || !value.trim()) throw Errors.VALIDATION(`${what} is invalid: ${field} is required.`, [{ field, message: 'is required' }]);
  if (value.length > 255) throw Errors.VALIDATION(`${what} is invalid: ${field} is too long.`, [{ field, message: 'is longer than 255 characters' }]);
  return value.trim();
};

export function orgHandlers(d: AuthDeps): Handlers {
  const { repo, accounts, clock } = d;

  const orgOf = async (ctx: CallContext, ref: string) => {
    const r = await target(ctx, 'org', required('The request', 'orgId', ref));
    const org = await repo.org(r.orgId ?? r.id);
    if (!org) throw hidden('org', ref);
    return org;
  };

  const teamOf = async (ctx: CallContext, ref: string) => {
    const r = await target(ctx, 'team', required('The request', 'teamId', ref));
    const team = await repo.team(r.teamId ?? r.id);
    if (!team) throw hidden('team', ref);
    return team;
  };

  /** Whether the caller is an owner of the organisation (or a site admin): only owners hand out or take away ownership. */
  const isOwner = async (ctx: CallContext, orgId: string) =>
    seesEverything(ctx.principal) || (await repo.memberRole(orgId, ctx.principal.id)) === 'owner';

  const ownerOnly = async (ctx: CallContext, orgId: string, role: string) => {
    if (role === 'owner' && !(await isOwner(ctx, orgId))) throw Errors.PERMISSION_DENIED('Only an owner of the organisation may make or unmake owners.');
  };

  const checkRole = async (p: AuthProblems, field: string, orgId: string, value: unknown, fallback: string) => {
    const role = typeof value === 'string' && value ? value : fallback;
    if (!role) return role;
    if (role.length > 63 || !ROLE_NAME.test(role)) p.add(field, 'is not a role name (owner, admin, member, viewer, or a custom role)');
    else if (!isBuiltinRole(role) && !(await repo.role(orgId, role))) p.add(field, `is not a role of this organisation (owner, admin, member, viewer, or a custom role; list them with GET /api/v1/orgs/${orgId}/roles)`);
    return role;
  };

  const lastOwner = () => Errors.VALIDATION('This is the last owner of the organisation. Make another member an owner first.', [{ field: 'userId', message: 'last owner' }]);

  return {
    async createOrg(req, ctx) {
      const p = new AuthProblems('The organisation');
      const name = p.line('name', req.name, MAX_NAME, { required: true });
      let slug = typeof req.slug === 'string' ? req.slug.trim() : '';
      if (slug) {
        if (slug.length > 100 || !SLUG.test(slug)) p.add('slug', 'must be lower-case letters, digits and single dashes');
      } else {
        slug = slugify(name, 60);
        if (name && !slug) p.add('name', 'needs at least one letter or digit (or give a slug)');
      }
      const description = p.text('description', req.description);
      p.throwIfAny();
      const taken = () => Errors.ALREADY_EXISTS(`An organisation with slug "${slug}" already exists. Choose another name or slug.`, [{ field: 'slug', message: 'taken' }]);
      if (await repo.orgSlugTaken(slug)) throw taken();
      const id = newId();
      const now = clock.now();
      await repo.db
        .transaction(async (tx) => {
          await repo.insertOrg(tx, { id, name, slug, description, personal: false, now });
          if (ctx.principal.id && ctx.principal.kind !== 'local') await repo.addMember(tx, id, ctx.principal.id, 'owner', now);
        })
        .catch(async (e) => {
          if (await repo.orgSlugTaken(slug)) throw taken();
          throw e;
        });
      return { data: (await repo.org(id))! };
    },

    async listOrgs(req, ctx) {
      const p = new AuthProblems('The list request');
      const { page, pageSize, offset } = p.page(req.page, req.pageSize);
      p.throwIfAny();
      const all = seesEverything(ctx.principal);
      const { items, total } = await repo.listOrgs({ ...(all ? {} : { userId: ctx.principal.id }), offset, limit: pageSize });
      return { data: items, meta: pageMeta(total, page, pageSize) };
    },

    async getOrg(req, ctx) {
      return { data: await orgOf(ctx, req.orgId) };
    },

    async updateOrg(req, ctx) {
      const org = await orgOf(ctx, req.orgId);
      const p = new AuthProblems('The organisation');
      const changes: { name?: string; description?: string } = {};
      if (req.name !== undefined) changes.name = p.line('name', req.name, MAX_NAME, { required: true });
      if (req.description !== undefined) changes.description = p.text('description', req.description);
      p.throwIfAny();
      return { data: (await repo.updateOrg(org.id, changes, clock.now()))! };
    },

    async deleteOrg(req, ctx) {
      const org = await orgOf(ctx, req.orgId);
      if (org.personal) throw Errors.VALIDATION('A personal organisation cannot be deleted; it goes with its user.', [{ field: 'orgId', message: 'personal organisation' }]);
      await repo.deleteOrg(org.id, clock.now());
      return {};
    },

    async listMembers(req, ctx) {
      const org = await orgOf(ctx, req.orgId);
      return { data: await repo.listMembers(org.id) };
    },

    async addMember(req, ctx) {
      const org = await orgOf(ctx, req.orgId);
      const p = new AuthProblems('The member');
      const userId = p.id('userId', req.userId, { required: false });
      const email = p.email('email', req.email, { required: false });
      if (!userId && !email && !p.list.length) p.add('userId', 'or email is required');
      const role = await checkRole(p, 'role', org.id, req.role, 'member');
      p.throwIfAny();
      await ownerOnly(ctx, org.id, role);
      const user = userId ? await repo.user(userId) : await repo.userByEmail(email);
      if (!user) throw Errors.NOT_FOUND('There is no user with this id or email. They must register (or be created by an administrator) first.', [{ field: userId ? 'userId' : 'email', message: 'no such user' }]);
      if (await repo.memberRole(org.id, user.id)) throw Errors.ALREADY_EXISTS('This user is already a member; change their role with PATCH instead.', [{ field: 'userId', message: 'already a member' }]);
      await repo.addMember(repo.db, org.id, user.id, role, clock.now()).catch(async (e) => {
        if (await repo.memberRole(org.id, user.id)) throw Errors.ALREADY_EXISTS('This user is already a member.', [{ field: 'userId', message: 'already a member' }]);
        throw e;
      });
      return { data: (await repo.member(org.id, user.id))! };
    },

    async updateMember(req, ctx) {
      const org = await orgOf(ctx, req.orgId);
      const p = new AuthProblems('The member');
      const userId = p.id('userId', req.userId);
      const role = await checkRole(p, 'role', org.id, req.role, '');
      if (!req.role) p.add('role', 'is required');
      p.throwIfAny();
      const current = await repo.memberRole(org.id, userId);
      if (!current) throw Errors.NOT_FOUND('This user is not a member of the organisation.', [{ field: 'userId', message: 'not a member' }]);
      if (current === 'owner' || role === 'owner') await ownerOnly(ctx, org.id, 'owner');
      await repo.db.transaction(async (tx) => {
        if (current === 'owner' && role !== 'owner' && (await repo.ownerCount(org.id, tx)) <= 1) throw lastOwner();
        await repo.setMemberRole(tx, org.id, userId, role);
      });
      return { data: (await repo.member(org.id, userId))! };
    },

    async removeMember(req, ctx) {
      const org = await orgOf(ctx, req.orgId);
      const p = new AuthProblems('The request');
      const userId = p.id('userId', req.userId);
      p.throwIfAny();
      const current = await repo.memberRole(org.id, userId);
      if (!current) throw Errors.NOT_FOUND('This user is not a member of the organisation.', [{ field: 'userId', message: 'not a member' }]);
      if (current === 'owner') await ownerOnly(ctx, org.id, 'owner');
      await repo.db.transaction(async (tx) => {
        if (current === 'owner' && (await repo.ownerCount(org.id, tx)) <= 1) throw lastOwner();
        await repo.removeMember(tx, org.id, userId);
      });
      return {};
    },

    async createTeam(req, ctx) {
      const org = await orgOf(ctx, req.orgId);
      const p = new AuthProblems('The team');
      const name = p.line('name', req.name, MAX_NAME, { required: true });
      const description = p.text('description', req.description);
      p.throwIfAny();
      const taken = () => Errors.ALREADY_EXISTS(`The organisation already has a team named "${name}".`, [{ field: 'name', message: 'taken' }]);
      if (await repo.teamNameTaken(org.id, name)) throw taken();
      const team = await repo.insertTeam({ id: newId(), orgId: org.id, name, description, now: clock.now() }).catch(async (e) => {
        if (await repo.teamNameTaken(org.id, name)) throw taken();
        throw e;
      });
      return { data: team };
    },

    async listTeams(req, ctx) {
      const org = await orgOf(ctx, req.orgId);
      return { data: await repo.listTeams(org.id) };
    },

    async deleteTeam(req, ctx) {
      const team = await teamOf(ctx, req.teamId);
      await repo.deleteTeam(team.id);
      return {};
    },

    async listTeamMembers(req, ctx) {
      const team = await teamOf(ctx, req.teamId);
      return { data: await repo.teamMembers(team.id) };
    },

    async addTeamMember(req, ctx) {
      const team = await teamOf(ctx, req.teamId);
      const p = new AuthProblems('The team member');
      const userId = p.id('userId', req.userId);
      const role = req.role || 'member';
      p.throwIfAny();
      if (!(await repo.memberRole(team.organizationId, userId))) {
        throw Errors.VALIDATION('This user is not a member of the team\'s organisation. Add them to the organisation first.', [{ field: 'userId', message: 'not a member of the organisation' }]);
      }
      await repo.putTeamMember(team.id, userId, role, clock.now());
      return { data: (await repo.teamMember(team.id, userId))! };
    },

    async removeTeamMember(req, ctx) {
      const team = await teamOf(ctx, req.teamId);
      const p = new AuthProblems('The request');
      const userId = p.id('userId', req.userId);
      p.throwIfAny();
      if (!(await repo.removeTeamMember(team.id, userId))) throw Errors.NOT_FOUND('This user is not a member of the team.', [{ field: 'userId', message: 'not a member' }]);
      return {};
    },

    async createRole(req, ctx) {
      const org = await orgOf(ctx, req.orgId);
      const p = new AuthProblems('The role');
      const name = p.match('name', req.name, ROLE_NAME, 'must be a lower-case letter then up to 62 lower-case letters, digits, "_" or "-"', { required: true, max: 63 });
      if (name && isBuiltinRole(name)) p.add('name', 'is the name of a built-in role');
      const perms: string[] = [];
      if (!Array.isArray(req.permissions) || req.permissions.length === 0) p.add('permissions', 'must list at least one permission such as "runs:write"');
      else if (req.permissions.length > MAX_ROLE_PERMISSIONS) p.add('permissions', `has more than ${MAX_ROLE_PERMISSIONS} entries`);
      else
        req.permissions.forEach((x, i) => {
          const problem = checkRolePattern(x);
          if (problem) p.add(`permissions[${i}]`, problem);
          else if (!perms.includes(x)) perms.push(x);
        });
      p.throwIfAny();
      const taken = () => Errors.ALREADY_EXISTS(`The organisation already has a role named "${name}".`, [{ field: 'name', message: 'taken' }]);
      if (await repo.role(org.id, name)) throw taken();
      const id = newId();
      await repo.insertRole({ id, orgId: org.id, name, permissions: perms, now: clock.now() }).catch(async (e) => {
        if (await repo.role(org.id, name)) throw taken();
        throw e;
      });
      return { data: toRole((await repo.roleById(org.id, id))!) };
    },

    async listRoles(req, ctx) {
      const org = await orgOf(ctx, req.orgId);
      const builtins: auth.v1.Role[] = BUILTIN_ROLES.map((name) => ({
        id: name,
        organizationId: org.id,
        name,
        permissions: [...BUILTIN_PERMISSIONS[name].allow, ...BUILTIN_PERMISSIONS[name].deny.map((x) => `!${x}`)],
        builtin: true,
      }));
      return { data: [...builtins, ...(await repo.listRoles(org.id)).map(toRole)] };
    },

    async deleteRole(req, ctx) {
      const org = await orgOf(ctx, req.orgId);
      if (typeof req.roleId === 'string' && isBuiltinRole(req.roleId)) throw Errors.VALIDATION('Built-in roles cannot be deleted.', [{ field: 'roleId', message: 'built-in role' }]);
      const p = new AuthProblems('The request');
      const id = p.id('roleId', req.roleId);
      p.throwIfAny();
      const role = await repo.roleById(org.id, id);
      if (!role) throw Errors.NOT_FOUND('The organisation has no custom role with this id.', [{ field: 'roleId', message: 'no such role' }]);
      if (await repo.roleInUse(org.id, role.name)) {
        throw Errors.VALIDATION(`The role "${role.name}" is still held by members or project grants. Give them another role first.`, [{ field: 'roleId', message: 'in use' }]);
      }
      await repo.deleteRole(role.id);
      return {};
    },

    async createServiceAccount(req, ctx) {
      const org = await orgOf(ctx, req.orgId);
      const p = new AuthProblems('The service account');
      const name = p.line('name', req.name, MAX_NAME, { required: true });
      const role = await checkRole(p, 'role', org.id, req.role, 'member');
      const scopes = checkScopes(p, 'scopes', req.scopes);
      p.throwIfAny();
      await ownerOnly(ctx, org.id, role);
      return { data: await accounts.createServiceAccount(org.id, name, role, scopes) };
    },

    async setProjectGrant(req, ctx) {
      const p = new AuthProblems('The project grant');
      const projectRef = required('The project grant', 'projectId', req.projectId);
      const subjectType = req.subjectType || (p.add('subjectType', 'is required: "user" or "team"'), 'user');
      const subjectId = p.id('subjectId', req.subjectId);
      p.throwIfAny();
      const project = await target(ctx, 'project', projectRef);
      const orgId = project.orgId ?? '';
      if (!orgId) throw Errors.VALIDATION('This project belongs to no organisation, so it cannot have grants.', [{ field: 'projectId', message: 'no organisation' }]);
      const role = await checkRole(p, 'role', orgId, req.role, '');
      if (!req.role) p.add('role', 'is required');
      p.throwIfAny();
      await ownerOnly(ctx, orgId, role);
      if (subjectType === 'user' && !(await repo.memberRole(orgId, subjectId))) {
        throw Errors.VALIDATION("The user is not a member of the project's organisation. Add them to it first.", [{ field: 'subjectId', message: 'not a member of the organisation' }]);
      }
      if (subjectType === 'team' && (await repo.team(subjectId))?.organizationId !== orgId) {
        throw Errors.VALIDATION("The team is not a team of the project's organisation.", [{ field: 'subjectId', message: 'not a team of the organisation' }]);
      }
      await repo.putGrant({ projectId: project.id, subjectType, subjectId, role, orgId, now: clock.now() });
      const grant = (await repo.listGrants(project.id)).find((g) => g.subjectType === subjectType && g.subjectId === subjectId)!;
      return { data: grant };
    },

    async listProjectGrants(req, ctx) {
      const project = await target(ctx, 'project', required('The request', 'projectId', req.projectId));
      return { data: await repo.listGrants(project.id) };
    },

    async removeProjectGrant(req, ctx) {
      const p = new AuthProblems('The request');
      const projectRef = required('The request', 'projectId', req.projectId);
      const subjectType = req.subjectType || (p.add('subjectType', 'is required: "user" or "team"'), 'user');
      const subjectId = p.id('subjectId', req.subjectId);
      p.throwIfAny();
      const project = await target(ctx, 'project', projectRef);
      const existing = (await repo.listGrants(project.id)).find((g) => g.subjectType === subjectType && g.subjectId === subjectId);
      if (!existing) throw Errors.NOT_FOUND('The project has no grant to this subject.', [{ field: 'subjectId', message: 'no such grant' }]);
      if (existing.role === 'owner') await ownerOnly(ctx, project.orgId ?? '', 'owner');
      await repo.removeGrant(project.id, subjectType, subjectId);
      return {};
    },
  };
}
