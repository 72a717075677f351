import { assertId, Errors, type ErrorDetail } from '@wanllmdb/core';
import type { JsonObject, JsonValue } from '@wanllmdb/proto';
import { checkJsonObject, type JsonLimits } from './json-values.js';
import { MAX_KEY_LENGTH } from './run-fields.js';

/**
 * Edge validation shared by the tracking handlers: every problem of a
 * request is collected with its field, then reported at once as
 * WLDB_ERR_VALIDATION. Handlers also tolerate fields left out entirely
 * (in-process callers may send partial objects), treating them as defaults.
 */
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;
const CONTROL_OR_NEWLINE = /[\u0000-\u001f\u007f]/;

export const LIMITS = {
  name: 255,
  group: 255,
  jobType: 255,
  tag: 128,
  tags: 100,
  notes: 65_536,
  projectRef: 255,
} as const;

/** Key problems reported per document: a config of 10,000 long keys needs one message, not 10,000. */
const MAX_KEY_PROBLEMS = 10;

export const CONFIG_LIMITS: JsonLimits = { maxBytes: 1024 * 1024, maxDepth: 32 };
export const SUMMARY_LIMITS: JsonLimits = { maxBytes: 1024 * 1024, maxDepth: 32 };

export class Problems {
  readonly list: ErrorDetail[] = [];

  constructor(private readonly what: string) {}

  add(field: string, message: string): void {
    this.list.push({ field, message });
  }

  /** A single-line text field: trimmed, at most `max` characters, no control characters. */
  line(field: string, value: unknown, max: number, opts: { required?: boolean } = {}): string {
    const v = typeof value === 'string' ? value.trim() : value === undefined || value === null ? '' : undefined;
    if (v === undefined) {
      this.add(field, 'must be a string');
      return '';
    }
    if (!v && opts.required) this.add(field, 'is required');
    else if (v.length > max) this.add(field, `is longer than ${max} characters`);
    else if (CONTROL_OR_NEWLINE.test(v)) this.add(field, 'contains control characters or line breaks');
    return v;
  }

  /** Free text (line breaks allowed). */
  text(field: string, value: unknown, max: number): string {
    const v = typeof value === 'string' ? value : value === undefined || value === null ? '' : undefined;
    if (v === undefined) {
      this.add(field, 'must be a string');
      return '';
    }
    if (v.length > max) this.add(field, `is longer than ${max} characters`);
    else if (CONTROL.test(v)) this.add(field, 'contains control characters');
    return v;
  }

  oneOf<T extends string>(field: string, value: unknown, allowed: readonly T[], fallback: T): T {
    const v = value === undefined || value === null || value === '' ? fallback : value;
    if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
      this.add(field, `must be one of ${allowed.map((a) => `"${a}"`).join(', ')}`);
      return fallback;
    }
    return v as T;
  }

  tags(field: string, value: unknown): string[] {
    const list = value ?? [];
    if (!Array.isArray(list)) {
      this.add(field, 'must be a list of strings');
      return [];
    }
    if (list.length > LIMITS.tags) this.add(field, `has more than ${LIMITS.tags} tags`);
    const out: string[] = [];
    list.forEach((t, i) => {
      const tag = this.line(`${field}[${i}]`, t, LIMITS.tag, { required: true });
      if (tag && !out.includes(tag)) out.push(tag);
    });
    return out;
  }

  json(field: string, value: unknown, limits: JsonLimits): JsonObject {
    return checkJsonObject(value ?? {}, field, limits, this.list);
  }

  /**
   * Config and summary keys, at every depth: at most MAX_KEY_LENGTH
   * characters, the longest key a filter or sort can name, so whatever is
   * stored can be queried. Iterative (the document is already checked to be
   * at most 32 levels deep, but the walk needs no such promise).
   */
  keys(field: string, doc: JsonObject): void {
    let reported = 0;
    const stack: { v: JsonValue; path: string }[] = [{ v: doc, path: field }];
    for (let top = stack.pop(); top && reported < MAX_KEY_PROBLEMS; top = stack.pop()) {
      const { v, path } = top;
      if (v === null || typeof v !== 'object') continue;
      if (Array.isArray(v)) {
        v.forEach((x, i) => stack.push({ v: x, path: `${path}[${i}]` }));
        continue;
      }
      for (const [k, x] of Object.entries(v)) {
        if (k.length > MAX_KEY_LENGTH) {
          this.add(`${path}.${k.slice(0, 40)}…`, `is a key of ${k.length} characters; keys are at most ${MAX_KEY_LENGTH} (the longest a filter or sort can name)`);
          reported++;
        }
        stack.push({ v: x, path: `${path}.${k}` });
      }
    }
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

  /** An integer in range. */
  integer(field: string, value: unknown, fallback: number, min: number, max: number): number {
    const v = value === undefined || value === null ? fallback : value;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      this.add(field, `must be an integer from ${min} to ${max}`);
      return fallback;
    }
    return v;
  }

  throwIfAny(): void {
    if (!this.list.length) return;
    const first = this.list.slice(0, 3).map((p) => `${p.field} ${p.message}`).join('; ');
    const more = this.list.length > 3 ? ` (and ${this.list.length - 3} more)` : '';
    throw Errors.VALIDATION(`${this.what} is invalid: ${first}${more}. Fix these fields and retry.`, this.list);
  }
}

/** A required run id (WLDB_ERR_INVALID_ID unless a UUID). */
export const runId = (value: unknown, field = 'id') => assertId(value ?? '', field);

export const runNotFound = (id: string, field = 'id') =>
  Errors.NOT_FOUND(`Run ${id} does not exist. List a project's runs with GET /api/v1/projects/{project}/runs.`, [{ field, message: 'no such run' }]);
