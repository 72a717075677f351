import { createApiRef } from '@wanllmdb/core';
import type { auth } from '@wanllmdb/proto';

/**
 * What the server shell asks of auth in process: `wanllmdb admin create-user`
 * and first-start bootstrap. Resolve with `kernel.get(authAdminRef)`
 * after `kernel.start()`.
 */
export interface AuthAdmin {
  /**
   * Creates a user with a personal organisation. Validates like Register
   * (WLDB_ERR_VALIDATION with field details); ALREADY_EXISTS for a taken email.
   */
  createUser(input: { email: string; password: string; username?: string; fullName?: string; superuser?: boolean }): Promise<auth.v1.User>;
  /** Users that sign in (service accounts are not counted). */
  userCount(): Promise<number>;
  setAllowRegistration(allow: boolean): Promise<void>;
  /**
   * A one-time setup token for the first administrator (first start with no
   * account): Register with it succeeds even when self-registration is off,
   * makes a site administrator, and spends the token. Valid 24 hours; a new
   * call replaces the previous token. Refused once any user exists.
   */
  createSetupToken(): Promise<string>;
}

/** The auth plugin's in-process admin API. */
export const authAdminRef = createApiRef<AuthAdmin>({ plugin: 'auth', name: 'admin' });
