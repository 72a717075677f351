import { Problems, TEXT_LIMITS } from '@wanllmdb/core';
import { PASSWORD_MAX, PASSWORD_MIN } from './secrets.js';

/**
 * Edge validation of the auth handlers: core's Problems (one message style
 * for every plugin) plus emails, passwords and new accounts. Values are never
 * echoed back (a password or token may sit in any field).
 */
const CONTROL = /[\u0000-\u001f\u007f]/;
/** Deliberately simple: one @, no spaces, a dot in the domain. */
const EMAIL = /^[^\s@]{1,64}@[^\s@.]+(\.[^\s@.]+)+$/;
export const SLUG = /^[a-z0-9]+(-[a-z0-9]+)*$/;
export const USERNAME = /^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$/;
export const ROLE_NAME = /^[a-z][a-z0-9_-]{0,62}$/;
export const MAX_NAME = TEXT_LIMITS.name;
export const MAX_EMAIL = 254;

/** The auth checks on top of core's Problems: emails, passwords, new accounts. */
export class AuthProblems extends Problems {
  /** Lower-cased, trimmed. */
  email(field: string, value: unknown, opts: { required?: boolean } = { required: true }): string {
    const v = typeof value === 'string' ? value.trim().toLowerCase() : '';
    if (!v) {
      if (opts.required) this.add(field, 'is required');
    } else if (v.length > MAX_EMAIL || CONTROL.test(v) || !EMAIL.test(v)) this.add(field, 'is not an email address such as ada@example.com');
    return v;
  }

  password(field: string, value: unknown): string {
    const v = typeof value === 'string' ? value : '';
    if (v.length < PASSWORD_MIN) this.add(field, `must be at least ${PASSWORD_MIN} characters`);
    else if (v.length > PASSWORD_MAX) this.add(field, `must be at most ${PASSWORD_MAX} characters`);
    return v;
  }

  /** A password the caller already has (sign-in, the current one when changing it): required, not over-long. */
  givenPassword(field: string, value: unknown): string {
    const v = typeof value === 'string' ? value : '';
    if (!v) this.add(field, 'is required');
    else if (v.length > PASSWORD_MAX) this.add(field, `must be at most ${PASSWORD_MAX} characters`);
    return v;
  }

  /** A new account's fields (registration, and site administrators creating users). */
  newUser(req: { email?: unknown; password?: unknown; username?: unknown; fullName?: unknown }): { email: string; password: string; username: string; fullName: string } {
    const email = this.email('email', req.email);
    const password = this.password('password', req.password);
    const username = this.match('username', typeof req.username === 'string' ? req.username.toLowerCase() : req.username, USERNAME, 'must be 1–64 lower-case letters, digits, ".", "_" or "-", starting and ending with a letter or digit', { max: 64 });
    const fullName = this.line('fullName', req.fullName);
    return { email, password, username, fullName };
  }
}
