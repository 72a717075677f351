import { Errors } from '../errors.js';

/** Who is calling. */
export interface Principal {
  id: string;
  kind: 'user' | 'service-account' | 'anonymous';
  name: string;
}

/** What the RPC host asks before it runs a handler. */
export interface AuthRequest {
  principal: Principal;
  /** The permission the method declares, e.g. `projects:write`. */
  permission: string;
  /** Full method name, e.g. `wanllmdb.projects.v1.ProjectService/GetProject`. */
  method: string;
}

/**
 * Authentication and authorisation, one port. The RPC host calls
 * `authenticate` with the request's headers/metadata, then `authorize`; a
 * method runs only if both succeed (deny by default).
 */
export interface Auth {
  /** Resolves the caller from `authorization` etc.; throws UNAUTHENTICATED for a bad credential. */
  authenticate(headers: Readonly<Record<string, string | undefined>>): Promise<Principal>;
  /** Throws PERMISSION_DENIED (or NOT_FOUND to hide a resource) when not allowed. */
  authorize(req: AuthRequest): Promise<void>;
}

export const LOCAL_PRINCIPAL: Principal = Object.freeze({ id: 'local', kind: 'user', name: 'local' });

/**
 * Embedded mode: one implicit local user who may do everything declared.
 * It still refuses a method that declares no permission.
 */
export class LocalAuth implements Auth {
  async authenticate(): Promise<Principal> {
    return LOCAL_PRINCIPAL;
  }
  async authorize(req: AuthRequest): Promise<void> {
    if (!req.permission) throw Errors.PERMISSION_DENIED(`Method ${req.method} declares no permission, so nobody may call it.`);
  }
}
