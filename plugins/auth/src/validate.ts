import { Errors, isId, type ErrorDetail } from '@wanllmdb/core';
import { PASSWORD_MAX, PASSWORD_MIN } from './secrets.js';

/**
 * Edge validation for the auth handlers: every problem of a request is
 * collected with its field and reported at once as WLDB_ERR_VALIDATION.
 * Values are never echoed back (a password or token may sit in any field).
 */
const CONTROL = /[\u0000-\u001f\u007f]/;
const CONTROL_TEXT = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;
/** Deliberately simple: one @, no spaces, a dot in the domain. */
const EMAIL = /^[^\s@]{1,64}@[^\s@.]+(\.[^\s@.]+)+$/;
export const SLUG = /^[a-z0-9]+(-[a-z0-9]+)*$/;
export const USERNAME = /^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$/;
export const ROLE_NAME = /^[a-z][a-z0-9_-]{0,62}$/;
export const MAX_NAME = 255;
export const MAX_DESCRIPTION = 10_000;
export const MAX_EMAIL = 254;
export const MAX_PAGE_SIZE = 100;

/** A list answer's paging meta. */
export const pageMeta = (total: number, page: number, pageSize: number) => ({ total, page, pageSize, totalPages: Math.ceil(total / pageSize) });

export class Problems {
  readonly list: ErrorDetail[] = [];
  constructor(private readonly what: string) {}

  add(field: string, message: string): void {
    this.list.push({ field, message });
  }

  /** A one-line name: trimmed, ≤255 characters, no control characters. */
  name(field: string, value: unknown, opts: { required?: boolean; max?: number } = {}): string {
    const max = opts.max ?? MAX_NAME;
    const v = typeof value === 'string' ? value.trim() : value === undefined || value === null ? '' : undefined;
    if (v === undefined) return (this.add(field, 'must be a string'), '');
    if (!v) {
      if (opts.required) this.add(field, 'is required');
    } else if (v.length > max) this.add(field, `is longer than ${max} characters`);
    else if (CONTROL.test(v)) this.add(field, 'contains control characters or line breaks');
    return v;
  }

  text(field: string, value: unknown, max = MAX_DESCRIPTION): string {
    const v = typeof value === 'string' ? value : value === undefined || value === null ? '' : undefined;
    if (v === undefined) return (this.add(field, 'must be a string'), '');
    if (v.length > max) this.add(field, `is longer than ${max} characters`);
    else if (CONTROL_TEXT.test(v)) this.add(field, 'contains control characters');
    return v;
  }

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
    const fullName = this.name('fullName', req.fullName);
    return { email, password, username, fullName };
  }

  match(field: string, value: unknown, re: RegExp, explain: string, opts: { required?: boolean; max?: number } = {}): string {
    const v = typeof value === 'string' ? value.trim() : '';
    if (!v) {
      if (opts.required) this.add(field, 'is required');
    } else if (v.length > (opts.max ?? 100) || !re.test(v)) this.add(field, explain);
    return v;
  }

  /** A UUID, lower-cased; '' (with a problem) when it is not one. */
  id(field: string, value: unknown, opts: { required?: boolean } = { required: true }): string {
    if ((value === undefined || value === null || value === '') && !opts.required) return '';
    if (isId(value)) return value.toLowerCase();
    this.add(field, value ? 'is not a valid id (a UUID)' : 'is required');
    return '';
  }

  oneOf<T extends string>(field: string, value: unknown, allowed: readonly T[], fallback?: T): T {
    const v = value === undefined || value === null || value === '' ? fallback : value;
    if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
      this.add(field, `must be one of ${allowed.map((a) => `"${a}"`).join(', ')}`);
      return (fallback ?? allowed[0]) as T;
    }
    return v as T;
  }

  /** Page and page size (1-based page, default 20 a page), and the rows to skip. */
  page(page: unknown, pageSize: unknown): { page: number; pageSize: number; offset: number } {
    const p = Number(page) || 1;
    const s = Number(pageSize) || 20;
    if (!Number.isInteger(p) || p < 1) this.add('page', 'must be 1 or more');
    if (!Number.isInteger(s) || s < 1 || s > MAX_PAGE_SIZE) this.add('pageSize', `must be from 1 to ${MAX_PAGE_SIZE}`);
    return { page: p, pageSize: s, offset: (p - 1) * s };
  }

  /** An RFC 3339 instant as epoch ms; undefined when empty. */
  instant(field: string, value: unknown): number | undefined {
    if (value === undefined || value === null || value === '') return undefined;
    const ok = typeof value === 'string' && value.length <= 40 && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(value);
    const ms = ok ? Date.parse(value) : NaN;
    if (!Number.isFinite(ms)) {
      this.add(field, 'is not an RFC 3339 instant such as 2025-01-31T12:00:00Z');
      return undefined;
    }
    return ms;
  }

  throwIfAny(): void {
    if (this.list.length) {
      const summary = this.list.map((p) => `${p.field} ${p.message}`).join('; ');
      throw Errors.VALIDATION(`${this.what} is invalid: ${summary}. Fix these fields and retry.`, this.list);
    }
  }
}

