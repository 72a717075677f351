import { ACCESS_EPOCH_SQL, assignments, isoTime, containsPattern, selectPage, sql, whereAll, type MetadataStore, type Row, type SqlExecutor } from '@wanllmdb/core';
import type { auth } from '@wanllmdb/proto';

/**
 * SQL for accounts, organisations and credentials: the only code that knows
 * these tables. Every value is a bound parameter; LIKE patterns are escaped.
 */

type User = auth.v1.User;
type Organization = auth.v1.Organization;

const bool = (v: unknown): boolean => Number(v) === 1;
/** `%` and `_` match themselves in a user's search text. */

export interface UserRow {
  [k: string]: unknown;
  id: string;
  username: string;
  email: string | null;
  password_hash: string | null;
  full_name: string;
  kind: 'user' | 'service';
  is_active: number;
  is_superuser: number;
  default_org_id: string;
  created_at: number;
  updated_at: number;
}

export const toUser = (r: UserRow): User => ({
  id: r.id,
  username: r.username,
  email: r.email ?? '',
  fullName: r.full_name,
  kind: r.kind,
  isActive: bool(r.is_active),
  isSuperuser: bool(r.is_superuser),
  defaultOrganizationId: r.default_org_id,
  createdAt: isoTime(r.created_at),
  updatedAt: isoTime(r.updated_at),
});

interface OrgRow {
  [k: string]: unknown;
  id: string;
  name: string;
  slug: string;
  description: string;
  personal: number;
  created_at: number;
  updated_at: number;
}

const toOrg = (r: OrgRow): Organization => ({
  id: r.id,
  name: r.name,
  slug: r.slug,
  description: r.description,
  personal: bool(r.personal),
  createdAt: isoTime(r.created_at),
  updatedAt: isoTime(r.updated_at),
});

interface MemberRow {
  [k: string]: unknown;
  user_id: string;
  username: string;
  email: string | null;
  role: string;
  kind: auth.v1.Member['kind'];
  joined_at: number;
}

const toMember = (r: MemberRow): auth.v1.Member => ({
  userId: r.user_id,
  username: r.username,
  email: r.email ?? '',
  role: r.role,
  kind: r.kind,
  joinedAt: isoTime(r.joined_at),
});

interface TeamRow {
  [k: string]: unknown;
  id: string;
  org_id: string;
  name: string;
  description: string;
  created_at: number;
}

const toTeam = (r: TeamRow): auth.v1.Team => ({ id: r.id, organizationId: r.org_id, name: r.name, description: r.description, createdAt: isoTime(r.created_at) });

export interface RoleRow {
  [k: string]: unknown;
  id: string;
  org_id: string;
  name: string;
  permissions: string;
}

export const toRole = (r: RoleRow): auth.v1.Role => ({ id: r.id, organizationId: r.org_id, name: r.name, permissions: JSON.parse(r.permissions) as string[], builtin: false });

export interface SessionRow {
  [k: string]: unknown;
  id: string;
  user_id: string;
  created_at: number;
  expires_at: number;
  revoked_at: number | null;
}

export interface RefreshRow {
  [k: string]: unknown;
  id: string;
  session_id: string;
  expires_at: number;
  used_at: number | null;
}

export interface ApiKeyRow {
  [k: string]: unknown;
  id: string;
  user_id: string;
  name: string;
  prefix: string;
  scopes: string;
  expires_at: number | null;
  last_used_at: number | null;
  created_at: number;
  revoked_at: number | null;
}

export const toApiKey = (r: ApiKeyRow): auth.v1.ApiKey => ({
  id: r.id,
  name: r.name,
  prefix: r.prefix,
  scopes: JSON.parse(r.scopes) as string[],
  userId: r.user_id,
  expiresAt: isoTime(r.expires_at),
  lastUsedAt: isoTime(r.last_used_at),
  createdAt: isoTime(r.created_at),
  revokedAt: isoTime(r.revoked_at),
});

const USER_COLUMNS = 'id, username, email, password_hash, full_name, kind, is_active, is_superuser, default_org_id, created_at, updated_at';
const ORG_COLUMNS = 'id, name, slug, description, personal, created_at, updated_at';
const KEY_COLUMNS = 'id, user_id, name, prefix, scopes, expires_at, last_used_at, created_at, revoked_at';
/** A project_grants row that reaches a user: granted to them or to a team of theirs (two parameters: the user's id twice). */
const GRANTED_TO_USER = "((subject_type = 'user' AND subject_id = ?) OR (subject_type = 'team' AND subject_id IN (SELECT team_id FROM team_members WHERE user_id = ?)))";
const USER_COLUMN_LIST = USER_COLUMNS.split(', ');
const KEY_COLUMN_LIST = KEY_COLUMNS.split(', ');
/** A key and its user side by side, their columns prefixed k_ and u_. */
const KEY_AND_USER_BY_HASH =
  `SELECT ${KEY_COLUMN_LIST.map((c) => `k.${c} AS k_${c}`).join(', ')}, ${USER_COLUMN_LIST.map((c) => `u.${c} AS u_${c}`).join(', ')}, ` +
  // In the same statement (one snapshot): what this call may reuse (ADR 0015).
  `${ACCESS_EPOCH_SQL} AS access_epoch FROM api_keys k LEFT JOIN users u ON u.id = k.user_id WHERE k.key_hash = ?`;

export interface NewUser {
  id: string;
  username: string;
  email: string | null;
  passwordHash: string | null;
  fullName: string;
  kind: 'user' | 'service';
  superuser: boolean;
  defaultOrgId: string;
  now: number;
}

export class AuthRepository {
  constructor(readonly db: MetadataStore) {}

  // ------------------------------------------------------------ users

  async insertUser(tx: SqlExecutor, u: NewUser): Promise<void> {
    await tx.run(`INSERT INTO users (${USER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?)`, [
      u.id, u.username, u.email, u.passwordHash, u.fullName, u.kind, u.superuser ? 1 : 0, u.defaultOrgId, u.now, u.now,
    ]);
  }

  async user(id: string, tx: SqlExecutor = this.db): Promise<UserRow | undefined> {
    return (await tx.query<UserRow>(`SELECT ${USER_COLUMNS} FROM users WHERE id = ?`, [id]))[0];
  }

  async userByEmail(email: string, tx: SqlExecutor = this.db): Promise<UserRow | undefined> {
    return (await tx.query<UserRow>(`SELECT ${USER_COLUMNS} FROM users WHERE email = ?`, [email]))[0];
  }

  async usernameTaken(username: string, tx: SqlExecutor = this.db): Promise<boolean> {
    return (await tx.query('SELECT 1 AS one FROM users WHERE username = ?', [username])).length > 0;
  }

  async emailTaken(email: string, tx: SqlExecutor = this.db): Promise<boolean> {
    return (await tx.query('SELECT 1 AS one FROM users WHERE email = ?', [email])).length > 0;
  }

  async userCount(): Promise<number> {
    const [r] = await this.db.query<{ n: number }>(`SELECT COUNT(*) AS n FROM users WHERE kind = 'user'`);
    return Number(r?.n ?? 0);
  }

  async activeSuperuserCount(tx: SqlExecutor = this.db): Promise<number> {
    const [r] = await tx.query<{ n: number }>('SELECT COUNT(*) AS n FROM users WHERE is_superuser = 1 AND is_active = 1');
    return Number(r?.n ?? 0);
  }

  async listUsers(o: { offset: number; limit: number; search: string }): Promise<{ items: User[]; total: number }> {
    const like = containsPattern(o.search);
    const where = whereAll(o.search ? [sql`(LOWER(email) LIKE ${like} ESCAPE '\\' OR LOWER(username) LIKE ${like} ESCAPE '\\')`] : []);
    const { rows, total } = await selectPage<UserRow>(this.db, { columns: USER_COLUMNS, from: sql`FROM users ${where}`, orderBy: 'created_at DESC, id', limit: o.limit, offset: o.offset });
    return { items: rows.map(toUser), total };
  }

  async updateUserFlags(tx: SqlExecutor, id: string, f: { isActive?: boolean; isSuperuser?: boolean }, now: number): Promise<void> {
    const flag = (v: boolean | undefined) => (v === undefined ? undefined : v ? 1 : 0);
    const update = sql`UPDATE users SET ${assignments({ updated_at: now, is_active: flag(f.isActive), is_superuser: flag(f.isSuperuser) })} WHERE id = ${id}`;
    await tx.run(update.text, update.params);
  }

  async setPassword(id: string, hash: string, now: number): Promise<void> {
    await this.db.run('UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?', [hash, now, id]);
  }

  // ------------------------------------------------------------ organisations

  async insertOrg(tx: SqlExecutor, o: { id: string; name: string; slug: string; description: string; personal: boolean; now: number }): Promise<void> {
    await tx.run(`INSERT INTO organizations (${ORG_COLUMNS}, settings) VALUES (?, ?, ?, ?, ?, ?, ?, '{}')`, [
      o.id, o.name, o.slug, o.description, o.personal ? 1 : 0, o.now, o.now,
    ]);
  }

  async org(id: string, tx: SqlExecutor = this.db): Promise<Organization | undefined> {
    const r = (await tx.query<OrgRow>(`SELECT ${ORG_COLUMNS} FROM organizations WHERE id = ?`, [id]))[0];
    return r && toOrg(r);
  }

  async orgBySlug(slug: string): Promise<Organization | undefined> {
    const r = (await this.db.query<OrgRow>(`SELECT ${ORG_COLUMNS} FROM organizations WHERE slug = ?`, [slug]))[0];
    return r && toOrg(r);
  }

  async orgSlugTaken(slug: string, tx: SqlExecutor = this.db): Promise<boolean> {
    return (await tx.query('SELECT 1 AS one FROM organizations WHERE slug = ?', [slug])).length > 0;
  }

  /** The caller's organisations, or all of them (`userId` undefined). */
  async listOrgs(o: { userId?: string; offset: number; limit: number }): Promise<{ items: Organization[]; total: number }> {
    const where = whereAll(o.userId === undefined ? [] : [sql`id IN (SELECT org_id FROM org_members WHERE user_id = ${o.userId})`]);
    const { rows, total } = await selectPage<OrgRow>(this.db, { columns: ORG_COLUMNS, from: sql`FROM organizations ${where}`, orderBy: 'created_at, id', limit: o.limit, offset: o.offset });
    return { items: rows.map(toOrg), total };
  }

  async updateOrg(id: string, c: { name?: string; description?: string }, now: number): Promise<Organization | undefined> {
    const update = sql`UPDATE organizations SET ${assignments({ updated_at: now, name: c.name, description: c.description })} WHERE id = ${id}`;
    await this.db.run(update.text, update.params);
    return this.org(id);
  }

  /** Deletes the organisation with its memberships, teams, roles and grants; its service accounts are deactivated. */
  async deleteOrg(id: string, now: number): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.run('DELETE FROM team_members WHERE team_id IN (SELECT id FROM teams WHERE org_id = ?)', [id]);
      await tx.run(`DELETE FROM project_grants WHERE org_id = ?`, [id]);
      await tx.run('DELETE FROM teams WHERE org_id = ?', [id]);
      await tx.run('DELETE FROM roles WHERE org_id = ?', [id]);
      await tx.run('DELETE FROM org_members WHERE org_id = ?', [id]);
      await tx.run(`UPDATE users SET is_active = 0, updated_at = ? WHERE kind = 'service' AND default_org_id = ?`, [now, id]);
      await tx.run('DELETE FROM organizations WHERE id = ?', [id]);
    });
  }

  // ------------------------------------------------------------ memberships

  async memberRole(orgId: string, userId: string, tx: SqlExecutor = this.db): Promise<string | undefined> {
    const r = (await tx.query<{ role: string }>('SELECT role FROM org_members WHERE org_id = ? AND user_id = ?', [orgId, userId]))[0];
    return r?.role;
  }

  async addMember(tx: SqlExecutor, orgId: string, userId: string, role: string, now: number): Promise<void> {
    await tx.run('INSERT INTO org_members (org_id, user_id, role, joined_at) VALUES (?, ?, ?, ?)', [orgId, userId, role, now]);
  }

  async member(orgId: string, userId: string, tx: SqlExecutor = this.db): Promise<auth.v1.Member | undefined> {
    const r = (
      await tx.query<MemberRow>(
        'SELECT m.user_id, u.username, u.email, m.role, u.kind, m.joined_at FROM org_members m JOIN users u ON u.id = m.user_id WHERE m.org_id = ? AND m.user_id = ?',
        [orgId, userId],
      )
    )[0];
    return r && toMember(r);
  }

  async listMembers(orgId: string): Promise<auth.v1.Member[]> {
    const rows = await this.db.query<MemberRow>(
      'SELECT m.user_id, u.username, u.email, m.role, u.kind, m.joined_at FROM org_members m JOIN users u ON u.id = m.user_id WHERE m.org_id = ? ORDER BY m.joined_at, u.username',
      [orgId],
    );
    return rows.map(toMember);
  }

  async setMemberRole(tx: SqlExecutor, orgId: string, userId: string, role: string): Promise<void> {
    await tx.run('UPDATE org_members SET role = ? WHERE org_id = ? AND user_id = ?', [role, orgId, userId]);
  }

  /** Removes the membership and, with it, the user's team memberships and project grants in that organisation. */
  async removeMember(tx: SqlExecutor, orgId: string, userId: string): Promise<void> {
    await tx.run('DELETE FROM team_members WHERE user_id = ? AND team_id IN (SELECT id FROM teams WHERE org_id = ?)', [userId, orgId]);
    await tx.run(`DELETE FROM project_grants WHERE subject_type = 'user' AND subject_id = ? AND org_id = ?`, [userId, orgId]);
    await tx.run('DELETE FROM org_members WHERE org_id = ? AND user_id = ?', [orgId, userId]);
  }

  async ownerCount(orgId: string, tx: SqlExecutor = this.db): Promise<number> {
    const [r] = await tx.query<{ n: number }>(`SELECT COUNT(*) AS n FROM org_members WHERE org_id = ? AND role = 'owner'`, [orgId]);
    return Number(r?.n ?? 0);
  }

  async membershipsOf(userId: string): Promise<auth.v1.Membership[]> {
    const rows = await this.db.query<{ id: string; slug: string; name: string; role: string }>(
      'SELECT o.id, o.slug, o.name, m.role FROM org_members m JOIN organizations o ON o.id = m.org_id WHERE m.user_id = ? ORDER BY o.personal DESC, o.created_at, o.id',
      [userId],
    );
    return rows.map((r) => ({ organizationId: r.id, organizationSlug: r.slug, organizationName: r.name, role: r.role }));
  }

  /** (org, role) of each of the user's memberships. */
  async orgRolesOf(userId: string): Promise<{ org_id: string; role: string }[]> {
    return this.db.query<{ org_id: string; role: string }>('SELECT org_id, role FROM org_members WHERE user_id = ?', [userId]);
  }

  // ------------------------------------------------------------ teams

  async insertTeam(t: { id: string; orgId: string; name: string; description: string; now: number }): Promise<auth.v1.Team> {
    await this.db.run('INSERT INTO teams (id, org_id, name, description, created_at) VALUES (?, ?, ?, ?, ?)', [t.id, t.orgId, t.name, t.description, t.now]);
    return (await this.team(t.id))!;
  }

  async team(id: string): Promise<auth.v1.Team | undefined> {
    const r = (await this.db.query<TeamRow>('SELECT id, org_id, name, description, created_at FROM teams WHERE id = ?', [id]))[0];
    return r && toTeam(r);
  }

  async teamNameTaken(orgId: string, name: string): Promise<boolean> {
    return (await this.db.query('SELECT 1 AS one FROM teams WHERE org_id = ? AND name = ?', [orgId, name])).length > 0;
  }

  async listTeams(orgId: string): Promise<auth.v1.Team[]> {
    const rows = await this.db.query<TeamRow>('SELECT id, org_id, name, description, created_at FROM teams WHERE org_id = ? ORDER BY name', [orgId]);
    return rows.map(toTeam);
  }

  async deleteTeam(id: string): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.run('DELETE FROM team_members WHERE team_id = ?', [id]);
      await tx.run(`DELETE FROM project_grants WHERE subject_type = 'team' AND subject_id = ?`, [id]);
      await tx.run('DELETE FROM teams WHERE id = ?', [id]);
    });
  }

  async teamMembers(teamId: string): Promise<auth.v1.Member[]> {
    const rows = await this.db.query<MemberRow>(
      'SELECT t.user_id, u.username, u.email, t.role, u.kind, t.joined_at FROM team_members t JOIN users u ON u.id = t.user_id WHERE t.team_id = ? ORDER BY u.username',
      [teamId],
    );
    return rows.map(toMember);
  }

  async teamMember(teamId: string, userId: string): Promise<auth.v1.Member | undefined> {
    const r = (
      await this.db.query<MemberRow>(
        'SELECT t.user_id, u.username, u.email, t.role, u.kind, t.joined_at FROM team_members t JOIN users u ON u.id = t.user_id WHERE t.team_id = ? AND t.user_id = ?',
        [teamId, userId],
      )
    )[0];
    return r && toMember(r);
  }

  /** Adds or changes a team membership. */
  async putTeamMember(teamId: string, userId: string, role: string, now: number): Promise<void> {
    await this.db.transaction(async (tx) => {
      const { changes } = await tx.run('UPDATE team_members SET role = ? WHERE team_id = ? AND user_id = ?', [role, teamId, userId]);
      if (!changes) await tx.run('INSERT INTO team_members (team_id, user_id, role, joined_at) VALUES (?, ?, ?, ?)', [teamId, userId, role, now]);
    });
  }

  async removeTeamMember(teamId: string, userId: string): Promise<boolean> {
    return (await this.db.run('DELETE FROM team_members WHERE team_id = ? AND user_id = ?', [teamId, userId])).changes > 0;
  }

  async teamRoleOf(teamId: string, userId: string): Promise<string | undefined> {
    return (await this.db.query<{ role: string }>('SELECT role FROM team_members WHERE team_id = ? AND user_id = ?', [teamId, userId]))[0]?.role;
  }

  // ------------------------------------------------------------ roles

  async insertRole(r: { id: string; orgId: string; name: string; permissions: string[]; now: number }): Promise<void> {
    await this.db.run('INSERT INTO roles (id, org_id, name, permissions, created_at) VALUES (?, ?, ?, ?, ?)', [r.id, r.orgId, r.name, JSON.stringify(r.permissions), r.now]);
  }

  async role(orgId: string, name: string): Promise<RoleRow | undefined> {
    return (await this.db.query<RoleRow>('SELECT id, org_id, name, permissions FROM roles WHERE org_id = ? AND name = ?', [orgId, name]))[0];
  }

  async roleById(orgId: string, id: string): Promise<RoleRow | undefined> {
    return (await this.db.query<RoleRow>('SELECT id, org_id, name, permissions FROM roles WHERE org_id = ? AND id = ?', [orgId, id]))[0];
  }

  async listRoles(orgId: string): Promise<RoleRow[]> {
    return this.db.query<RoleRow>('SELECT id, org_id, name, permissions FROM roles WHERE org_id = ? ORDER BY name', [orgId]);
  }

  async roleInUse(orgId: string, name: string): Promise<boolean> {
    const m = await this.db.query('SELECT 1 AS one FROM org_members WHERE org_id = ? AND role = ?', [orgId, name]);
    if (m.length) return true;
    return (await this.db.query('SELECT 1 AS one FROM project_grants WHERE org_id = ? AND role = ?', [orgId, name])).length > 0;
  }

  async deleteRole(id: string): Promise<void> {
    await this.db.run('DELETE FROM roles WHERE id = ?', [id]);
  }

  // ------------------------------------------------------------ project grants

  async putGrant(g: { projectId: string; subjectType: string; subjectId: string; role: string; orgId: string; now: number }): Promise<void> {
    await this.db.transaction(async (tx) => {
      const { changes } = await tx.run('UPDATE project_grants SET role = ?, org_id = ? WHERE project_id = ? AND subject_type = ? AND subject_id = ?', [
        g.role, g.orgId, g.projectId, g.subjectType, g.subjectId,
      ]);
      if (!changes) {
        await tx.run('INSERT INTO project_grants (project_id, subject_type, subject_id, role, org_id, created_at) VALUES (?, ?, ?, ?, ?, ?)', [
          g.projectId, g.subjectType, g.subjectId, g.role, g.orgId, g.now,
        ]);
      }
    });
  }

  async listGrants(projectId: string): Promise<auth.v1.ProjectGrant[]> {
    const rows = await this.db.query<{ subject_type: auth.v1.ProjectGrant['subjectType']; subject_id: string; role: string; subject_name: string | null }>(
      `SELECT g.subject_type, g.subject_id, g.role, COALESCE(u.username, t.name) AS subject_name
         FROM project_grants g
         LEFT JOIN users u ON g.subject_type = 'user' AND u.id = g.subject_id
         LEFT JOIN teams t ON g.subject_type = 'team' AND t.id = g.subject_id
        WHERE g.project_id = ? ORDER BY g.subject_type, subject_name`,
      [projectId],
    );
    return rows.map((r) => ({ projectId, subjectType: r.subject_type, subjectId: r.subject_id, subjectName: r.subject_name ?? '', role: r.role }));
  }

  async removeGrant(projectId: string, subjectType: string, subjectId: string): Promise<boolean> {
    return (await this.db.run('DELETE FROM project_grants WHERE project_id = ? AND subject_type = ? AND subject_id = ?', [projectId, subjectType, subjectId])).changes > 0;
  }

  /**
   * Everything that gives a user a role on one project, in one statement: the
   * role in the project's organisation (`via` 'member') and the grants of the
   * project to the user or a team of theirs (`via` 'grant').
   */
  async rolesOnProject(userId: string, orgId: string, projectId: string): Promise<{ via: 'member' | 'grant'; role: string; org_id: string }[]> {
    return this.db.query(
      `SELECT 'member' AS via, role, org_id FROM org_members WHERE org_id = ? AND user_id = ?
       UNION ALL
       SELECT 'grant' AS via, role, org_id FROM project_grants WHERE project_id = ? AND ${GRANTED_TO_USER}`,
      [orgId, userId, projectId, userId, userId],
    );
  }

  /** Grants to the user and to the teams the user is in; of one project, or of all projects. */
  async grantsOf(userId: string, projectId?: string): Promise<{ project_id: string; role: string; org_id: string }[]> {
    const sql = `SELECT project_id, role, org_id FROM project_grants WHERE ${GRANTED_TO_USER} ${projectId === undefined ? '' : 'AND project_id = ?'}`;
    return this.db.query(sql, projectId === undefined ? [userId, userId] : [userId, userId, projectId]);
  }

  // ------------------------------------------------------------ sessions and refresh tokens

  async insertSession(tx: SqlExecutor, s: { id: string; userId: string; now: number; expiresAt: number; address: string; userAgent: string }): Promise<void> {
    await tx.run('INSERT INTO sessions (id, user_id, created_at, expires_at, revoked_at, address, user_agent) VALUES (?, ?, ?, ?, NULL, ?, ?)', [
      s.id, s.userId, s.now, s.expiresAt, s.address, s.userAgent,
    ]);
  }

  async session(id: string, tx: SqlExecutor = this.db): Promise<SessionRow | undefined> {
    return (await tx.query<SessionRow>('SELECT id, user_id, created_at, expires_at, revoked_at FROM sessions WHERE id = ?', [id]))[0];
  }

  async extendSession(tx: SqlExecutor, id: string, expiresAt: number): Promise<void> {
    await tx.run('UPDATE sessions SET expires_at = ? WHERE id = ?', [expiresAt, id]);
  }

  async revokeSession(id: string, now: number, tx: SqlExecutor = this.db): Promise<void> {
    await tx.run('UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL', [now, id]);
  }

  /** Revokes every live session of the user except `keep`. */
  async revokeSessionsOf(userId: string, now: number, keep = ''): Promise<number> {
    return (await this.db.run('UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL AND id <> ?', [now, userId, keep])).changes;
  }

  async insertRefresh(tx: SqlExecutor, r: { id: string; sessionId: string; hash: string; now: number; expiresAt: number }): Promise<void> {
    await tx.run('INSERT INTO refresh_tokens (id, session_id, token_hash, created_at, expires_at, used_at) VALUES (?, ?, ?, ?, ?, NULL)', [
      r.id, r.sessionId, r.hash, r.now, r.expiresAt,
    ]);
  }

  async refreshByHash(hash: string): Promise<RefreshRow | undefined> {
    return (await this.db.query<RefreshRow>('SELECT id, session_id, expires_at, used_at FROM refresh_tokens WHERE token_hash = ?', [hash]))[0];
  }

  /** Marks a refresh token used; false when another request used it first. */
  async useRefresh(tx: SqlExecutor, id: string, now: number): Promise<boolean> {
    return (await tx.run('UPDATE refresh_tokens SET used_at = ? WHERE id = ? AND used_at IS NULL', [now, id])).changes === 1;
  }

  /** Deletes refresh tokens and sessions that ended before `before`; resolves to the rows removed. */
  async purgeSessions(before: number): Promise<number> {
    return this.db.transaction(async (tx) => {
      const a = await tx.run('DELETE FROM refresh_tokens WHERE expires_at < ? OR session_id IN (SELECT id FROM sessions WHERE expires_at < ? OR revoked_at < ?)', [before, before, before]);
      const b = await tx.run('DELETE FROM sessions WHERE expires_at < ? OR revoked_at < ?', [before, before]);
      return a.changes + b.changes;
    });
  }

  // ------------------------------------------------------------ API keys

  async insertApiKey(tx: SqlExecutor, k: { id: string; userId: string; name: string; prefix: string; hash: string; scopes: string[]; expiresAt: number | null; now: number }): Promise<void> {
    await tx.run(
      'INSERT INTO api_keys (id, user_id, name, prefix, key_hash, scopes, expires_at, last_used_at, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, NULL)',
      [k.id, k.userId, k.name, k.prefix, k.hash, JSON.stringify(k.scopes), k.expiresAt, k.now],
    );
  }

  async apiKey(id: string, tx: SqlExecutor = this.db): Promise<ApiKeyRow | undefined> {
    return (await tx.query<ApiKeyRow>(`SELECT ${KEY_COLUMNS} FROM api_keys WHERE id = ?`, [id]))[0];
  }

  /** The key with this hash and the account it belongs to, in one statement (every call with a key needs both). */
  async apiKeyAndUserByHash(hash: string): Promise<{ key: ApiKeyRow; user: UserRow | undefined; accessEpoch: number } | undefined> {
    const row = (
      await this.db.query<Row>(KEY_AND_USER_BY_HASH, [hash])
    )[0];
    if (!row) return undefined;
    const part = (prefix: string, columns: readonly string[]) => {
      const out: Row = {};
      for (const c of columns) out[c] = row[prefix + c];
      return out;
    };
    return {
      key: part('k_', KEY_COLUMN_LIST) as ApiKeyRow,
      user: row.u_id === null || row.u_id === undefined ? undefined : (part('u_', USER_COLUMN_LIST) as UserRow),
      accessEpoch: Number(row.access_epoch),
    };
  }

  async apiKeysOf(userId: string): Promise<ApiKeyRow[]> {
    return this.db.query<ApiKeyRow>(`SELECT ${KEY_COLUMNS} FROM api_keys WHERE user_id = ? ORDER BY created_at DESC, id`, [userId]);
  }

  async revokeApiKey(userId: string, id: string, now: number): Promise<boolean> {
    return (await this.db.run('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND user_id = ? AND revoked_at IS NULL', [now, id, userId])).changes > 0;
  }

  async touchApiKey(id: string, now: number): Promise<void> {
    // Statements only: the first calls of a thousand keys after a restart share a few commits.
    await this.db.transaction((tx) => tx.run('UPDATE api_keys SET last_used_at = ? WHERE id = ?', [now, id]), { groupCommit: true });
  }

  // ------------------------------------------------------------ server settings

  async setting(key: string): Promise<string | undefined> {
    return (await this.db.query<{ value: string }>('SELECT value FROM server_settings WHERE key = ?', [key]))[0]?.value;
  }

  async putSetting(key: string, value: string): Promise<void> {
    await this.db.run('INSERT INTO server_settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value', [key, value]);
  }

  /** Deletes a setting if it still has `value`; false when it changed or is gone. */
  async deleteSetting(key: string, value: string): Promise<boolean> {
    return (await this.db.run('DELETE FROM server_settings WHERE key = ? AND value = ?', [key, value])).changes === 1;
  }

  /** Stores `value` unless the key has one; resolves to the stored value (a racing replica's wins). */
  async settingOnce(key: string, value: string): Promise<string> {
    await this.db.run('INSERT INTO server_settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING', [key, value]);
    return (await this.setting(key))!;
  }
}
