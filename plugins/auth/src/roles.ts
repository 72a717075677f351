import { permissionMatches } from '@wanllmdb/core';

/** A set of permissions: patterns that grant, and exact permissions taken back out. */
export interface PermissionSet {
  allow: readonly string[];
  deny: readonly string[];
}

export const BUILTIN_ROLES = ['owner', 'admin', 'member', 'viewer'] as const;
export type BuiltinRole = (typeof BUILTIN_ROLES)[number];

/**
 * Reads that a `*:read` wildcard does not reach: they must be named
 * (`audit:read`, `audit:*`) or come with `*:*`.
 */
const SENSITIVE_READS: ReadonlySet<string> = new Set(['audit:read']);

/** Downloading an artifact's bytes is its own permission (a key may list versions without fetching data); whoever may read, may download. */
const READ = ['*:read', 'artifacts:download'];
const MEMBER = [...READ, 'projects:create', 'projects:write', 'runs:write', 'runs:delete', 'artifacts:write', 'artifacts:alias', 'artifacts:delete', 'reports:write', 'sweeps:write', 'models:write'];

export const BUILTIN_PERMISSIONS: Readonly<Record<BuiltinRole, PermissionSet>> = Object.freeze({
  owner: { allow: ['*:*'], deny: [] },
  admin: { allow: ['*:*'], deny: ['orgs:delete'] },
  member: { allow: MEMBER, deny: [] },
  viewer: { allow: READ, deny: [] },
});

export const isBuiltinRole = (name: string): name is BuiltinRole => (BUILTIN_ROLES as readonly string[]).includes(name);

/** Whether one pattern grants a permission, with sensitive reads excluded from `<any>:read`. */
export function patternGrants(pattern: string, permission: string): boolean {
  if (!permissionMatches(pattern, permission)) return false;
  if (SENSITIVE_READS.has(permission) && pattern.startsWith('*:') && pattern !== '*:*') return false;
  return true;
}

export function setGrants(set: PermissionSet, permission: string): boolean {
  return !set.deny.includes(permission) && set.allow.some((p) => patternGrants(p, permission));
}

/** Whether an API key's scopes let it use a permission (undefined scopes = not narrowed). */
export function scopesAllow(scopes: readonly string[] | undefined, permission: string): boolean {
  return !scopes || scopes.some((s) => permissionMatches(s, permission));
}

/** `<area|*>:<verb|*>`, lower-case. */
export const PATTERN = /^(\*|[a-z][a-z0-9-]{0,63}):(\*|[a-z][a-z0-9-]{0,63})$/;
/** Areas no role or key may name: they are not granted by roles. */
const RESERVED_AREAS = new Set(['site', 'public']);

/** A problem with one permission pattern of a custom role, or undefined. */
export function checkRolePattern(p: unknown): string | undefined {
  if (typeof p !== 'string' || !PATTERN.test(p)) return 'must look like "<area>:<verb>" in lower case, with * for any (e.g. "runs:write", "*:read")';
  if (RESERVED_AREAS.has(p.split(':')[0]!)) return `cannot name "${p.split(':')[0]}": site administration is not granted by roles`;
  return undefined;
}

/** A problem with one API key scope, or undefined. */
export function checkScope(s: unknown): string | undefined {
  if (typeof s !== 'string' || !PATTERN.test(s)) return 'must look like "<area>:<verb>" in lower case, with * for any (e.g. "runs:write", "*:read", "*:*")';
  return undefined;
}
