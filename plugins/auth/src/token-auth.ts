import {
  ANONYMOUS_PRINCIPAL,
  Errors,
  EpochCache,
  FULL_ACCESS,
  isReadPermission,
  type AccessScope,
  type AuditRecord,
  type Auth,
  type AuthRequest,
  type CallerInfo,
  type Clock,
  type Principal,
  type ResolvedResource,
  type ResourceDirectory,
} from '@wanllmdb/core';
import type { AuditLog } from './audit-log.js';
import type { RateLimits } from './rate-limits.js';
import type { AuthRepository, UserRow } from './repository.js';
import { BUILTIN_PERMISSIONS, isBuiltinRole, scopesAllow, setGrants, type PermissionSet } from './roles.js';
import { API_KEY_PREFIX, isApiKeyShape, sha256 } from './secrets.js';
import type { Sessions } from './sessions.js';

/** A key's last use is written at most this often. */
const TOUCH_EVERY_MS = 60_000;
const MAX_BEARER = 4096;

/** One call's lookups: its resources often share an organisation, and grants repeat roles. */
type CallMemo = Map<string, Promise<unknown>>;
const once = <T>(memo: CallMemo, key: string, load: () => Promise<T>): Promise<T> => {
  let hit = memo.get(key) as Promise<T> | undefined;
  if (!hit) memo.set(key, (hit = load()));
  return hit;
};

/** API keys' scopes as stored (JSON) → parsed and frozen; a pure function of the text, so no revocation waits on it. */
const parsedScopes = new Map<string, readonly string[]>();
function scopesOf(json: string): readonly string[] {
  let scopes = parsedScopes.get(json);
  if (!scopes) {
    if (parsedScopes.size >= 1_000) parsedScopes.clear();
    parsedScopes.set(json, (scopes = Object.freeze(JSON.parse(json) as string[])));
  }
  return scopes;
}

const signIn = 'Sign in: send `Authorization: Bearer <access token or API key>` (get a token with POST /api/v1/auth/login, or create an API key).';

/** Site administrators and the embedded local user: every organisation and project is theirs to act on. */
export const seesEverything = (p: Principal): boolean => p.superuser || p.kind === 'local';

/** The generic answer for a resource that does not exist or that the caller may not see. */
export const hidden = (type: string, id: string) =>
  Errors.NOT_FOUND(`The ${type} ${JSON.stringify(id.slice(0, 100))} does not exist or you have no access to it.`, [{ field: type, message: 'not found' }]);

/**
 * The Auth port over accounts, sessions and API keys: who is calling
 * (`authenticate`), what they may do (`authorize`, `access`), and the audit
 * log (`audit`). Deny by default: an unknown permission on a resource the
 * caller holds no role on is NOT_FOUND, not an error that leaks existence.
 */
export class TokenAuth implements Auth {
  private readonly touched = new Map<string, number>();
  /** A user's roles on a project and custom roles' permissions, reused while the access epoch stands (ADR 0015). */
  private readonly projectRoles = new EpochCache<Awaited<ReturnType<AuthRepository['rolesOnProject']>>>();
  private readonly customRoles = new EpochCache<PermissionSet>();

  constructor(
    private readonly repo: AuthRepository,
    private readonly sessions: Sessions,
    private readonly limits: RateLimits,
    private readonly directory: ResourceDirectory,
    private readonly auditLog: AuditLog,
    private readonly clock: Clock,
  ) {}

  // ------------------------------------------------------------ authenticate

  async authenticate(caller: CallerInfo): Promise<Principal> {
    const header = caller.headers['authorization'];
    if (!header) {
      if (caller.permission === 'public') return ANONYMOUS_PRINCIPAL;
      throw Errors.UNAUTHENTICATED(`${caller.method ? `${caller.method} needs a signed-in caller. ` : ''}${signIn}`);
    }
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
    if (!m || m[1]!.length > MAX_BEARER) throw Errors.UNAUTHENTICATED(`The Authorization header is malformed. ${signIn}`);
    const bearer = m[1]!;
    let principal: Principal;
    try {
      principal = bearer.startsWith(API_KEY_PREFIX) ? await this.fromApiKey(bearer) : await this.fromAccessToken(bearer);
    } catch (e) {
      // A public method (Refresh, Login) needs no credential: a stale one sent along is ignored.
      if (caller.permission === 'public' && Errors.UNAUTHENTICATED.is(e)) return ANONYMOUS_PRINCIPAL;
      throw e;
    }
    await this.limits.call(principal.method === 'api_key' ? `key:${principal.credentialId}` : `user:${principal.id}`, caller.address, caller.ingest === true);
    return principal;
  }

  private async fromAccessToken(token: string): Promise<Principal> {
    const claims = await this.sessions.verify(token);
    const user = await this.repo.user(claims.userId);
    if (!user) throw Errors.UNAUTHENTICATED(`The access token is not valid. ${signIn}`);
    if (!Number(user.is_active)) throw Errors.UNAUTHENTICATED('This account is disabled. Ask an administrator.');
    return principalOf(user, 'password', claims.sessionId);
  }

  private async fromApiKey(key: string): Promise<Principal> {
    // A mis-copied key is refused without a lookup.
    const found = isApiKeyShape(key) ? await this.repo.apiKeyAndUserByHash(sha256(key)) : undefined;
    if (!found) throw Errors.UNAUTHENTICATED('The API key is not valid. Check it was copied whole, or create a new one with POST /api/v1/auth/api-keys.');
    const row = found.key;
    const now = this.clock.now();
    if (row.revoked_at !== null) throw Errors.UNAUTHENTICATED(`The API key ${row.prefix}… was revoked. Create a new one with POST /api/v1/auth/api-keys.`);
    if (row.expires_at !== null && Number(row.expires_at) <= now) {
      throw Errors.UNAUTHENTICATED(`The API key ${row.prefix}… expired on ${new Date(Number(row.expires_at)).toISOString()}. Create a new one with POST /api/v1/auth/api-keys.`);
    }
    const user = found.user;
    if (!user || !Number(user.is_active)) throw Errors.UNAUTHENTICATED('The account this API key belongs to is disabled. Ask an administrator.');
    const last = Math.max(Number(row.last_used_at ?? 0), this.touched.get(row.id) ?? 0);
    if (now - last >= TOUCH_EVERY_MS) {
      this.touched.set(row.id, now);
      if (this.touched.size > 10_000) this.touched.clear();
      await this.repo.touchApiKey(row.id, now);
    }
    return { ...principalOf(user, 'api_key', row.id), scopes: scopesOf(row.scopes), accessEpoch: found.accessEpoch };
  }

  // ------------------------------------------------------------ authorize

  async authorize(req: AuthRequest): Promise<ResolvedResource[]> {
    const { principal: p, permission } = req;
    if (!permission) throw Errors.PERMISSION_DENIED(`Method ${req.method} declares no permission, so nobody may call it.`);
    if (permission === 'public') return this.resolveAll(req, false);
    if (p.kind === 'anonymous') throw Errors.UNAUTHENTICATED(signIn);
    if (!scopesAllow(p.scopes, permission)) {
      throw Errors.PERMISSION_DENIED(`This API key's scopes (${p.scopes!.join(', ')}) do not include ${permission}. Use a key with that scope, or create one with POST /api/v1/auth/api-keys.`);
    }
    if (permission === 'self:read' || permission === 'self:write') return this.resolveAll(req, false);
    if (permission === 'site:admin') {
      if (!p.superuser) throw Errors.PERMISSION_DENIED('Only site administrators may do this. Ask one.');
      return this.resolveAll(req, false);
    }
    if (seesEverything(p)) return this.resolveAll(req, false);
    return this.resolveAll(req, true);
  }

  private async resolveAll(req: AuthRequest, check: boolean): Promise<ResolvedResource[]> {
    const out: ResolvedResource[] = [];
    const memo: CallMemo = new Map();
    for (const ref of req.resources) {
      const r = await this.directory.resolve(ref, req.principal);
      if (!r) throw hidden(ref.type, ref.id);
      req.resolved?.push(r);
      if (check) await this.check(req.principal, req.permission, r, memo);
      out.push(r);
    }
    return out;
  }

  /** The principal's permission sets on a resource (empty = no role at all). */
  async permissionSetsOn(p: Principal, r: ResolvedResource, memo: CallMemo = new Map()): Promise<PermissionSet[]> {
    const sets: PermissionSet[] = [];
    const orgId = r.orgId;
    const projectId = r.projectId ?? (r.type === 'project' ? r.id : undefined);
    if (orgId && projectId) {
      // The usual case (a project, or a run or view in one): membership and grants in one statement.
      const roles = await once(memo, `project:${orgId}:${projectId}`, async () =>
        (await this.projectRoles.get(p.accessEpoch, `${p.id}\u0000${orgId}\u0000${projectId}`, () => this.repo.rolesOnProject(p.id, orgId, projectId)))!,
      );
      for (const g of roles) sets.push(await this.roleSet(g.org_id, g.role, memo, p.accessEpoch));
      return sets;
    }
    if (orgId) {
      const role = await once(memo, `member:${orgId}`, () => this.repo.memberRole(orgId, p.id));
      if (role) sets.push(await this.roleSet(orgId, role, memo, p.accessEpoch));
    }
    if (r.type === 'team' && r.teamId) {
      // A team's own admins manage its members; its members see it.
      const teamRole = await this.repo.teamRoleOf(r.teamId, p.id);
      if (teamRole) sets.push({ allow: teamRole === 'admin' ? ['teams:read', 'teams:write'] : ['teams:read'], deny: [] });
    }
    if (projectId) for (const g of await this.repo.grantsOf(p.id, projectId)) sets.push(await this.roleSet(g.org_id, g.role, memo, p.accessEpoch));
    return sets;
  }

  private async check(p: Principal, permission: string, r: ResolvedResource, memo: CallMemo): Promise<void> {
    const sets = await this.permissionSetsOn(p, r, memo);
    if (!sets.length && r.visibility !== 'public') throw hidden(r.type, r.id);
    if (sets.some((s) => setGrants(s, permission))) return;
    if (r.visibility === 'public' && isReadPermission(permission) && setGrants(BUILTIN_PERMISSIONS.viewer, permission)) return;
    throw Errors.PERMISSION_DENIED(`You need ${permission} on ${r.type} ${r.id}; ask an owner or admin of the organisation.`);
  }

  /** A role's permissions in an organisation; an unknown role grants nothing. */
  async roleSet(orgId: string, role: string, memo: CallMemo = new Map(), accessEpoch?: number): Promise<PermissionSet> {
    if (isBuiltinRole(role)) return BUILTIN_PERMISSIONS[role];
    return once(memo, `role:${orgId}:${role}`, async () => {
      const load = async (): Promise<PermissionSet> => {
        const row = orgId ? await this.repo.role(orgId, role) : undefined;
        return { allow: row ? (JSON.parse(row.permissions) as string[]) : [], deny: [] };
      };
      return (await this.customRoles.get(accessEpoch, `${orgId}\u0000${role}`, load))!;
    });
  }

  // ------------------------------------------------------------ access

  async access(p: Principal, permission: string): Promise<AccessScope> {
    if (seesEverything(p)) return scopesAllow(p.scopes, permission) ? FULL_ACCESS : none();
    const read = isReadPermission(permission);
    if (p.kind === 'anonymous' || !p.id) return { all: false, orgIds: [], projectIds: [], publicProjects: read && permission !== 'audit:read' };
    if (!scopesAllow(p.scopes, permission)) return none();
    const memo: CallMemo = new Map();
    const orgIds: string[] = [];
    for (const m of await this.repo.orgRolesOf(p.id)) if (setGrants(await this.roleSet(m.org_id, m.role, memo, p.accessEpoch), permission)) orgIds.push(m.org_id);
    const projectIds = new Set<string>();
    for (const g of await this.repo.grantsOf(p.id)) if (setGrants(await this.roleSet(g.org_id, g.role, memo, p.accessEpoch), permission)) projectIds.add(g.project_id);
    return { all: false, orgIds, projectIds: [...projectIds], publicProjects: read && setGrants(BUILTIN_PERMISSIONS.viewer, permission) };
  }

  // ------------------------------------------------------------ audit

  async audit(record: AuditRecord): Promise<void> {
    await this.auditLog.write(record);
  }
}

const none = (): AccessScope => ({ all: false, orgIds: [], projectIds: [], publicProjects: false });

export function principalOf(u: UserRow, method: Principal['method'], credentialId: string): Principal {
  return {
    id: u.id,
    kind: u.kind,
    name: u.username,
    orgId: u.default_org_id,
    superuser: Number(u.is_superuser) === 1,
    method,
    credentialId,
  };
}
