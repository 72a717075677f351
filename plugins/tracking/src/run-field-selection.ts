import type { Dialect } from '@wanllmdb/core';
import type { JsonObject, JsonValue, tracking } from '@wanllmdb/proto';
import type { RunProblems } from './request-checks.js';
import { jsonAsText, resolveField, type JsonField } from './run-fields.js';
import { joinSql, raw, sql, type Sql } from '@wanllmdb/core';

/**
 * ListRunsRequest.fields: which keys of config and summary a run list sends.
 * Those two documents are what grows (a run may hold thousands of metric
 * keys), while a runs table shows a handful of columns; with a selection the
 * database extracts the named paths and the rest never leaves it. Names are
 * the filter's (`summary.loss`, `config.optimizer.lr`); a bare `config` or
 * `summary` keeps that document whole; a column name (`name`, `state`, …)
 * is accepted and changes nothing, since those fields always come.
 */
export const MAX_FIELDS = 100;

export type Document = 'config' | 'summary';

export interface FieldSelection {
  /** Documents sent whole. */
  whole: ReadonlySet<Document>;
  /** Paths into the documents not sent whole, none a prefix of another. */
  paths: JsonField[];
}

/** The selection of `fields`, or undefined for whole runs (none given); problems go to `p`. */
export function parseFieldSelection(p: RunProblems, fields: unknown): FieldSelection | undefined {
  if (fields === undefined || fields === null) return undefined;
  if (!Array.isArray(fields)) {
    p.add('fields', 'must be a list of field names such as "summary.loss"');
    return undefined;
  }
  if (fields.length === 0) return undefined;
  if (fields.length > MAX_FIELDS) p.add('fields', `has more than ${MAX_FIELDS} entries`);
  const whole = new Set<Document>();
  const byName = new Map<string, JsonField>();
  fields.slice(0, MAX_FIELDS).forEach((raw: unknown, i) => {
    const name = typeof raw === 'string' ? raw.trim() : undefined;
    if (!name) return p.add(`fields[${i}]`, 'must be a non-empty field name such as "summary.loss"');
    if (name === 'config' || name === 'summary') return void whole.add(name);
    const field = resolveField(name);
    if (typeof field === 'string') return p.add(`fields[${i}]`, field);
    if (field.kind === 'json') byName.set(`${field.scope}.${field.path.join('.')}`, field);
  });
  const selected = [...byName.values()].filter((f) => !whole.has(f.scope));
  // A path under another selected path comes with it.
  const covered = (f: JsonField) => selected.some((g) => g !== f && g.scope === f.scope && g.path.length < f.path.length && g.path.every((s, j) => f.path[j] === s));
  return { whole, paths: selected.filter((f) => !covered(f)) };
}

/**
 * The select-list entries for config and summary under a selection: a
 * document whole (`readDoc`), else an empty one, and each path as JSON text
 * in `sel_<i>` (NULL when the run does not have it).
 */
export function selectionColumns(sel: FieldSelection, d: Dialect, readDoc: (column: Document) => string): Sql {
  const doc = (column: Document) => raw(sel.whole.has(column) ? readDoc(column) : `'{}' AS ${column}`);
  const paths = sel.paths.map((f, i) => sql`${jsonAsText(f, d)} AS ${raw(`sel_${i}`)}`);
  return joinSql([doc('config'), doc('summary'), ...paths], ', ');
}

/** Puts the selected values of `row` (from selectionColumns) into the run's config and summary. */
export function applySelection(run: tracking.v1.Run, row: Record<string, unknown>, sel: FieldSelection): void {
  sel.paths.forEach((f, i) => {
    const text = row[`sel_${i}`];
    if (text === null || text === undefined) return;
    const target = (f.scope === 'config' ? (run.config ??= {}) : (run.summary ??= {})) as JsonObject;
    setPath(target, f.path, JSON.parse(String(text)) as JsonValue);
  });
}

function setPath(doc: JsonObject, path: readonly string[], value: JsonValue): void {
  let at = doc;
  for (const seg of path.slice(0, -1)) {
    const next = Object.hasOwn(at, seg) ? at[seg] : undefined;
    if (next !== null && typeof next === 'object' && !Array.isArray(next)) at = next as JsonObject;
    else at = define(at, seg, {}) as JsonObject;
  }
  define(at, path.at(-1)!, value);
}

/** An own property even for a key such as "__proto__" (which a plain assignment would take as the prototype). */
function define(obj: JsonObject, key: string, value: JsonValue): JsonValue {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  return value;
}
