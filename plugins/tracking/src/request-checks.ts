import { assertId, Errors, Problems, TEXT_LIMITS } from '@wanllmdb/core';
import type { JsonObject, JsonValue } from '@wanllmdb/proto';
import { checkJsonObject, type JsonLimits } from './json-values.js';
import { MAX_KEY_LENGTH } from './run-fields.js';

/**
 * Edge validation of the tracking handlers: core's Problems (one message
 * style for every plugin) plus run tags, JSON documents and their keys.
 * Handlers also tolerate fields left out entirely (in-process callers may
 * send partial objects), treating them as defaults.
 */

export const LIMITS = {
  name: TEXT_LIMITS.name,
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

/** The tracking checks on top of core's: tags, JSON documents and their keys. */
export class RunProblems extends Problems {
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
}

/** A required run id (WLDB_ERR_INVALID_ID unless a UUID). */
export const runId = (value: unknown, field = 'id') => assertId(value ?? '', field);

export const runNotFound = (id: string, field = 'id') =>
  Errors.NOT_FOUND(`Run ${id} does not exist. List a project's runs with GET /api/v1/projects/{project}/runs.`, [{ field, message: 'no such run' }]);
