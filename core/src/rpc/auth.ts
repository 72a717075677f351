import { Errors } from '../errors.js';

/** Who is calling. */
export interface Principal {
  /** User or service-account id; 'local' in embedded mode; '' when anonymous. */
  id: string;
  kind: 'user' | 'service' | 'anonymous' | 'local';
  name: string;
  /** The caller's own (personal, or a service account's) organisation; '' when none. */
  orgId: string;
  /** A site administrator: may do everything. */
  superuser: boolean;
  /** How the caller proved who they are. */
  method: 'password' | 'api_key' | 'local' | 'none';
  /** An API key's scopes (permission patterns such as `runs:write`, `*:read`); undefined = not narrowed. */
  scopes?: readonly string[];
  /** The session (access token) or API key the call came with. */
  credentialId?: string;
  /** The access epoch read with the credential (ADR 0015); undefined = reuse no authorisation facts. */
  accessEpoch?: number;
}

/** A resource a call names: `{ type: 'run', id: '…' }`. */
export interface ResourceRef {
  type: string;
  id: string;
}

/** A resource as its owning plugin knows it: where it sits in the org → project tree. */
export interface ResolvedResource {
  type: string;
  /** The canonical id (a slug resolves to the project's UUID). */
  id: string;
  orgId?: string;
  projectId?: string;
  teamId?: string;
  /** A project's visibility (a run inherits its project's). */
  visibility?: 'public' | 'private';
}

/** What the RPC host asks before it runs a handler. */
export interface AuthRequest {
  principal: Principal;
  /** The permission the method declares, e.g. `projects:write`. */
  permission: string;
  /** Full method name, e.g. `wanllmdb.projects.v1.ProjectService/GetProject`. */
  method: string;
  /** The resources the request names (from `(wanllmdb.auth.v1.resource)`, or a handler's own check). */
  resources: readonly ResourceRef[];
  /**
   * Filled with each resource as it is resolved — also when authorisation
   * then refuses — so the audit record of a refused call names its organisation.
   */
  resolved?: ResolvedResource[];
}

/** What the caller may see, for handlers that list (ListProjects): narrow the query to it. */
export interface AccessScope {
  /** Everything (site admins, embedded mode). */
  all: boolean;
  /** Organisations whose projects the caller may see through an organisation role. */
  orgIds: readonly string[];
  /** Projects granted directly or through a team. */
  projectIds: readonly string[];
  /** Public projects of any organisation are visible too. */
  publicProjects: boolean;
}

/** One settled call, for the audit log (no request bodies: they may hold secrets). */
export interface AuditRecord {
  at: number;
  principal: Principal;
  method: string;
  permission: string;
  /** `type:id` of each resource the call named. */
  targets: readonly string[];
  /** The organisation of the first resource that has one ('' when none). */
  orgId: string;
  address: string;
  transport: 'grpc' | 'http' | 'local';
  /** 'ok' or the error code. */
  result: string;
  requestId: string;
}

/** What a transport knows about the caller. */
export interface CallerInfo {
  headers: Readonly<Record<string, string | undefined>>;
  /** The peer's IP address ('' in process). */
  address: string;
  /** The permission the called method declares (`public` methods accept anonymous callers). */
  permission: string;
  method: string;
  /** The method is run ingest (`(wanllmdb.auth.v1.ingest)`): rate-limited in budgets of its own. */
  ingest?: boolean;
  /** The method streams (either way): the call may outlive anything granted for a moment. */
  streaming?: boolean;
}

/**
 * Authentication and authorisation, one port. The RPC host calls
 * `authenticate` with the request's headers/metadata, then `authorize`; a
 * method runs only if both succeed (deny by default).
 */
export interface Auth {
  /**
   * Resolves the caller from `authorization: Bearer <token or API key>`.
   * Throws UNAUTHENTICATED for a missing (unless the method is `public`),
   * bad, expired or revoked credential; RATE_LIMITED past the limits.
   */
  authenticate(caller: CallerInfo): Promise<Principal>;
  /**
   * Throws PERMISSION_DENIED, or NOT_FOUND where the resource must not be
   * seen to exist (a private project of another organisation). Resolves the
   * named resources.
   */
  authorize(req: AuthRequest): Promise<ResolvedResource[]>;
  /** What the caller may see, for list handlers. */
  access(principal: Principal, permission: string): Promise<AccessScope>;
  /** Records a settled call in the audit log (called for every call that is not a read). */
  audit?(record: AuditRecord): Promise<void>;
}

export const LOCAL_PRINCIPAL: Principal = Object.freeze({
  id: 'local',
  kind: 'local',
  name: 'local',
  orgId: '',
  superuser: true,
  method: 'local',
});

/** A caller who has not signed in (public methods only). */
export const ANONYMOUS_PRINCIPAL: Principal = Object.freeze({ id: '', kind: 'anonymous', name: 'anonymous', orgId: '', superuser: false, method: 'none' });

/** What a site administrator or the embedded local user may see: everything. */
export const FULL_ACCESS: AccessScope = Object.freeze({ all: true, orgIds: Object.freeze([]), projectIds: Object.freeze([]), publicProjects: true });

/**
 * Embedded mode (and `serve --no-auth` on loopback): one implicit local user
 * who may do everything declared. It still refuses a method that declares no
 * permission.
 */
export class LocalAuth implements Auth {
  async authenticate(): Promise<Principal> {
    return LOCAL_PRINCIPAL;
  }
  async authorize(req: AuthRequest): Promise<ResolvedResource[]> {
    if (!req.permission) throw Errors.PERMISSION_DENIED(`Method ${req.method} declares no permission, so nobody may call it.`);
    const out = req.resources.map((r) => ({ type: r.type, id: r.id }));
    req.resolved?.push(...out);
    return out;
  }
  async access(): Promise<AccessScope> {
    return FULL_ACCESS;
  }
}

/** True for permissions that only read (their calls are not audited). */
export function isReadPermission(permission: string): boolean {
  return permission.endsWith(':read');
}

/**
 * Whether a permission pattern grants a permission: `*:*`, `runs:*`,
 * `*:read` and `runs:read` all grant `runs:read`.
 */
export function permissionMatches(pattern: string, permission: string): boolean {
  if (pattern === permission) return true;
  const [pa, pv] = pattern.split(':');
  const [a, v] = permission.split(':');
  return (pa === '*' || pa === a) && (pv === '*' || pv === v);
}
