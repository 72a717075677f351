import { Errors, type ErrorDetail } from '../errors.js';
import { isId } from '../ids.js';

/**
 * Edge validation, one way for every plugin: a handler collects every
 * problem of a request with its field path (`metrics.loss[3].value`), then
 * `throwIfAny()` reports them at once as WLDB_ERR_VALIDATION in one message
 * style — "<what> is invalid: <field> <problem>; … Fix these fields and
 * retry." — with every problem in the details. Values are never echoed back
 * (a password or token may sit in any field). Plugins extend it with checks
 * of their own (`class RunProblems extends Problems`).
 */
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;
const CONTROL_OR_NEWLINE = /[\u0000-\u001f\u007f]/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;
/** Problems named in the message (all are in the details). */
const IN_MESSAGE = 3;

/** The common limits of text fields. */
export const TEXT_LIMITS = { name: 255, description: 10_000 } as const;

/** A list answer's paging meta. */
export const pageMeta = (total: number, page: number, pageSize: number) => ({ total, page, pageSize, totalPages: Math.ceil(total / pageSize) });

export class Problems {
  readonly list: ErrorDetail[] = [];

  /** `what` starts the message: "The project", "The metric batch". */
  constructor(private readonly what: string) {}

  add(field: string, message: string): void {
    this.list.push({ field, message });
  }

  /** A single-line text field: trimmed, at most `max` characters, no control characters or line breaks. */
  line(field: string, value: unknown, max: number = TEXT_LIMITS.name, opts: { required?: boolean } = {}): string {
    const v = typeof value === 'string' ? value.trim() : value === undefined || value === null ? '' : undefined;
    if (v === undefined) return (this.add(field, 'must be a string'), '');
    if (!v) {
      if (opts.required) this.add(field, 'is required');
    } else if (v.length > max) this.add(field, `is longer than ${max} characters`);
    else if (CONTROL_OR_NEWLINE.test(v)) this.add(field, 'contains control characters or line breaks');
    return v;
  }

  /** Free text (line breaks allowed), at most `max` characters. */
  text(field: string, value: unknown, max: number = TEXT_LIMITS.description): string {
    const v = typeof value === 'string' ? value : value === undefined || value === null ? '' : undefined;
    if (v === undefined) return (this.add(field, 'must be a string'), '');
    if (v.length > max) this.add(field, `is longer than ${max} characters`);
    else if (CONTROL.test(v)) this.add(field, 'contains control characters');
    return v;
  }

  /** One of `allowed`; empty means `fallback`. */
  oneOf<T extends string>(field: string, value: unknown, allowed: readonly T[], fallback?: T): T {
    const v = value === undefined || value === null || value === '' ? fallback : value;
    if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
      this.add(field, `must be one of ${allowed.map((a) => `"${a}"`).join(', ')}`);
      return (fallback ?? allowed[0]) as T;
    }
    return v as T;
  }

  /** Trimmed text matching `re` (at most `max` characters), else `explain`. */
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

  /** An integer in [min, max]; absent means `fallback`. */
  integer(field: string, value: unknown, fallback: number, min: number, max: number): number {
    const v = value === undefined || value === null ? fallback : value;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      this.add(field, `must be an integer from ${min} to ${max}`);
      return fallback;
    }
    return v;
  }

  /** A page size: absent means `fallback`; anything sent, 0 included, must be from 1 to `max`. */
  pageSize(field: string, value: unknown, fallback: number, max: number): number {
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
      this.add(field, `must be an integer from 1 to ${max} (leave it out for ${fallback})`);
      return fallback;
    }
    return value;
  }

  /** Page and page size of a numbered list (1-based page; 0 or absent means the first page and `fallbackSize`), and the rows to skip. */
  page(page: unknown, pageSize: unknown, maxSize = 100, fallbackSize = 20): { page: number; pageSize: number; offset: number } {
    const p = Number(page) || 1;
    const s = Number(pageSize) || fallbackSize;
    if (!Number.isInteger(p) || p < 1) this.add('page', 'must be 1 or more');
    if (!Number.isInteger(s) || s < 1 || s > maxSize) this.add('pageSize', `must be from 1 to ${maxSize}`);
    return { page: p, pageSize: s, offset: (p - 1) * s };
  }

  /** An RFC 3339 instant as epoch ms; undefined when empty. */
  instant(field: string, value: unknown): number | undefined {
    if (value === undefined || value === null || value === '') return undefined;
    const ok = typeof value === 'string' && value.length <= 40 && RFC3339.test(value);
    const ms = ok ? Date.parse(value) : NaN;
    if (!Number.isFinite(ms)) {
      this.add(field, 'is not an RFC 3339 instant such as 2025-01-31T12:00:00Z');
      return undefined;
    }
    return ms;
  }

  /** A JSON document of at most `maxBytes` (UTF-8 of its JSON text). */
  jsonSize<T>(field: string, value: T, maxBytes: number): T {
    if (Buffer.byteLength(JSON.stringify(value ?? null)) > maxBytes) this.add(field, `is larger than ${maxBytes} bytes`);
    return value;
  }

  throwIfAny(): void {
    if (!this.list.length) return;
    const named = this.list.slice(0, IN_MESSAGE).map((p) => `${p.field} ${p.message}`).join('; ');
    const more = this.list.length > IN_MESSAGE ? ` (and ${this.list.length - IN_MESSAGE} more)` : '';
    throw Errors.VALIDATION(`${this.what} is invalid: ${named}${more}. Fix these fields and retry.`, this.list);
  }
}
