import { createHash } from 'node:crypto';
import { Errors, isId, type Dialect, type SqlValue } from '@wanllmdb/core';
import { columnExpr, jsonNumber, jsonText, resolveField, type NumericRange, type RunField } from './run-fields.js';
import { joinSql, raw, sql, type Sql } from '@wanllmdb/core';

/**
 * Sorting and keyset pagination of run lists.
 *
 * A sort key becomes one or two SQL components: a column is one; a
 * config./summary. path is two — its numeric reading, then its text
 * reading — so numbers sort before strings and each sorts naturally.
 * Missing values (NULL) sort last in both directions, and the run id breaks
 * ties, in the sort's direction. A page after a cursor is "rows strictly
 * after (k0, k1, id) in that order" — a keyset condition, never OFFSET — so
 * paging stays correct while runs are added and costs the same on page 100
 * as on page 1.
 */
export const DEFAULT_SORT = '-created_at';
const MAX_SORT_LENGTH = 300;

export interface RunSort {
  /** The sort as given (normalised), carried in cursors. */
  text: string;
  field: RunField;
  descending: boolean;
}

export interface SortComponent {
  expr: Sql;
  kind: 'number' | 'text';
  /** NOT NULL columns sort without a NULLS clause, so an index in the same order serves them. */
  nullable: boolean;
  /** An integer column's values: a cursor value outside them is refused, as a filter value is (see NumericRange). */
  range?: NumericRange;
}

export function parseRunSort(input: string): RunSort {
  const text = input.trim() || DEFAULT_SORT;
  const fail = (why: string): never => {
    throw Errors.VALIDATION(`The sort ${JSON.stringify(text.slice(0, 80))} is invalid: ${why}. Sort by a field such as "-created_at", "name" or "-summary.accuracy".`, [{ field: 'sort', message: why }]);
  };
  if (text.length > MAX_SORT_LENGTH) fail(`it is longer than ${MAX_SORT_LENGTH} characters`);
  const descending = text.startsWith('-');
  const name = text.replace(/^[-+]/, '');
  const field = resolveField(name);
  if (typeof field === 'string') return fail(field);
  if (field.kind === 'column' && field.type === 'tags') fail('tags is a list and cannot be sorted on');
  return { text: `${descending ? '-' : ''}${name}`, field, descending };
}

export function sortComponents(sort: RunSort, d: Dialect): SortComponent[] {
  const f = sort.field;
  if (f.kind === 'json') return [{ expr: jsonNumber(f, d), kind: 'number', nullable: true }, { expr: jsonText(f, d), kind: 'text', nullable: true }];
  return [{ expr: columnExpr(f, d), kind: f.type === 'text' || f.type === 'state' ? 'text' : 'number', nullable: f.nullable, ...(f.range ? { range: f.range } : {}) }];
}

/** `ORDER BY` over the inner query's `k0…`, then `id`. */
export function orderBy(sort: RunSort, components: readonly SortComponent[], alias: string): Sql {
  const dir = sort.descending ? 'DESC' : 'ASC';
  const keys = components.map((c, i) => raw(`${alias}.k${i} ${dir}${c.nullable ? ' NULLS LAST' : ''}`));
  return joinSql([...keys, raw(`${alias}.id ${dir}`)], ', ');
}

export type CursorValue = number | string | null;

/** The position a page ended at: its last row's sort values and id. */
export interface Cursor {
  values: CursorValue[];
  id: string;
}

/**
 * Rows strictly after `cursor` in the order of `orderBy` (NULLs last):
 * OR over i of (k0 = v0 AND … AND k(i-1) = v(i-1) AND ki after vi), then the id.
 */
export function keysetAfter(sort: RunSort, components: readonly SortComponent[], cursor: Cursor, alias: string): Sql {
  const gt = raw(sort.descending ? ' < ' : ' > ');
  const k = (i: number) => raw(`${alias}.k${i}`);
  if (components.every((c) => !c.nullable)) {
    // A row-value comparison, which an index in sort order can answer directly.
    const names = raw([...components.map((_, i) => `${alias}.k${i}`), `${alias}.id`].join(', '));
    const values = joinSql([...cursor.values.map((v) => sql`${v}`), sql`${cursor.id}`], ', ');
    return sql`((${names})${gt}(${values}))`;
  }
  const alternatives: Sql[] = [];
  const equalSoFar: Sql[] = [];
  components.forEach((_, i) => {
    const v = cursor.values[i] ?? null;
    // Nothing sorts after NULL except rows that tie on it.
    if (v !== null) alternatives.push(joinSql([...equalSoFar, sql`(${k(i)}${gt}${v} OR ${k(i)} IS NULL)`], ' AND '));
    equalSoFar.push(v === null ? sql`${k(i)} IS NULL` : sql`${k(i)} = ${v}`);
  });
  alternatives.push(joinSql([...equalSoFar, sql`${raw(`${alias}.id`)}${gt}${cursor.id}`], ' AND '));
  return sql`(${joinSql(alternatives.map((a) => sql`(${a})`), ' OR ')})`;
}

const CURSOR_VERSION = 1;
/** Not a secret: a checksum that makes an edited or truncated cursor fail loudly instead of paging from a wrong place. */
const CURSOR_SALT = 'wanllmdb.tracking.runs.cursor';

const queryTag = (sort: RunSort, filter: string) => createHash('sha256').update(`${sort.text}\n${filter.trim()}`).digest('base64url').slice(0, 12);
const checksum = (payload: string) => createHash('sha256').update(`${CURSOR_SALT}\n${payload}`).digest('base64url').slice(0, 16);

const encodeValue = (v: unknown): CursorValue => (typeof v === 'number' && !Number.isFinite(v) ? (Number.isNaN(v) ? null : v > 0 ? 'Infinity' : '-Infinity') : (v as CursorValue));

/** An opaque cursor for the row after which the next page starts. */
export function encodeCursor(sort: RunSort, filter: string, last: Cursor): string {
  const payload = Buffer.from(JSON.stringify({ v: CURSOR_VERSION, q: queryTag(sort, filter), k: last.values.map(encodeValue), id: last.id })).toString('base64url');
  return `${payload}.${checksum(payload)}`;
}


/** The position in a cursor from `encodeCursor` for the same sort and filter. Throws WLDB_ERR_VALIDATION otherwise. */
export function decodeCursor(text: string, sort: RunSort, filter: string, components: readonly SortComponent[]): Cursor {
  const invalid = (why: string): never => {
    throw Errors.VALIDATION(`The cursor is invalid (${why}). Pass meta.nextCursor exactly as the previous page returned it, with the same filter and sort, or leave it empty for the first page.`, [
      { field: 'cursor', message: why },
    ]);
  };
  const [payload, sum, extra] = text.split('.');
  if (!payload || !sum || extra !== undefined || text.length > 4096) return invalid('not a cursor this server issued');
  if (checksum(payload) !== sum) return invalid('it was altered or truncated');
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    return invalid('not a cursor this server issued');
  }
  const c = parsed as { v?: unknown; q?: unknown; k?: unknown; id?: unknown };
  if (c.v !== CURSOR_VERSION || typeof c.id !== 'string' || !isId(c.id) || !Array.isArray(c.k)) return invalid('not a cursor this server issued');
  if (c.q !== queryTag(sort, filter)) return invalid('it belongs to a different filter or sort');
  if (c.k.length !== components.length) return invalid('not a cursor this server issued');
  const values = c.k.map((v: unknown, i): SqlValue => {
    if (v === null) return null;
    const { kind, range } = components[i]!;
    if (kind === 'text') return typeof v === 'string' ? v : invalid('a sort value has the wrong type');
    // A forged value PostgreSQL's INTEGER / BIGINT would refuse (SQLite compares it) is refused here, on both.
    if (range) return typeof v === 'number' && Number.isInteger(v) && v >= range.min && v <= range.max ? v : invalid('a sort value is out of range');
    if (typeof v === 'number' && Number.isFinite(v)) return v;
    if (v === 'Infinity') return Infinity;
    if (v === '-Infinity') return -Infinity;
    return invalid('a sort value has the wrong type');
  });
  return { values: values as CursorValue[], id: c.id };
}
