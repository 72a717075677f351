import { containsPattern, type Dialect } from '@wanllmdb/core';
import { tracking } from '@wanllmdb/proto';
import { raw, sql, type Sql } from '@wanllmdb/core';

/**
 * The fields a run list may filter and sort on, and how each reads in SQL
 * on either dialect, over the runs table `r` alone.
 *
 * config.* and summary.* are paths into binary JSON columns (SQLite JSONB,
 * PostgreSQL jsonb). Each path segment is an object key matching
 * KEY_SEGMENT; paths are bound as parameters like every value, so a
 * segment never becomes SQL text.
 */
export type ColumnType = 'text' | 'state' | 'number' | 'time' | 'tags';

export interface ColumnField {
  kind: 'column';
  name: string;
  column: string;
  type: ColumnType;
  nullable: boolean;
  /** number and time columns: the whole numbers the column holds (see NumericRange). */
  range?: NumericRange;
}

/**
 * The whole numbers a numeric column holds. A filter value outside it, or
 * with a fraction, is refused before any SQL: PostgreSQL's INTEGER and
 * BIGINT parameters reject such values (an error), where SQLite compares
 * them — so both answer the same 400.
 */
export interface NumericRange {
  min: number;
  max: number;
  /** How the message names the range, e.g. "a 32-bit integer". */
  what: string;
}

/** runs.exit_code: INTEGER, set by FinishRun from a 32-bit integer. */
export const EXIT_CODE_RANGE: NumericRange = { min: -(2 ** 31), max: 2 ** 31 - 1, what: 'a 32-bit integer' };
/** Times are BIGINT epoch milliseconds; this is the range of a JavaScript Date (±100,000,000 days from 1970). */
export const EPOCH_MS_RANGE: NumericRange = { min: -8.64e15, max: 8.64e15, what: 'whole epoch milliseconds' };

export interface JsonField {
  kind: 'json';
  name: string;
  scope: 'config' | 'summary';
  path: string[];
}

export type RunField = ColumnField | JsonField;

const col = (name: string, column: string, type: ColumnType, nullable = false, range?: NumericRange): ColumnField => ({
  kind: 'column',
  name,
  column,
  type,
  nullable,
  ...(range ? { range } : {}),
});

const COLUMNS: ColumnField[] = [
  col('id', 'r.id', 'text'),
  col('name', 'r.name', 'text'),
  col('group', 'r.group_name', 'text'),
  col('job_type', 'r.job_type', 'text'),
  col('state', 'r.state', 'state'),
  col('notes', 'r.notes', 'text'),
  col('created_by', 'r.created_by', 'text'),
  col('exit_code', 'r.exit_code', 'number', true, EXIT_CODE_RANGE),
  col('created_at', 'r.created_at', 'time', false, EPOCH_MS_RANGE),
  col('updated_at', 'r.updated_at', 'time', false, EPOCH_MS_RANGE),
  col('started_at', 'r.started_at', 'time', false, EPOCH_MS_RANGE),
  col('finished_at', 'r.finished_at', 'time', true, EPOCH_MS_RANGE),
  col('heartbeat_at', 'r.heartbeat_at', 'time', false, EPOCH_MS_RANGE),
  col('tags', 'r.tags', 'tags'),
];

const camel = (s: string) => s.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
const BY_NAME = new Map<string, ColumnField>();
for (const c of COLUMNS) {
  BY_NAME.set(c.name, c);
  BY_NAME.set(camel(c.name), c);
}

export const FIELD_NAMES = COLUMNS.map((c) => c.name);
/** The contract's closed set of run states (Run.state). */
export const RUN_STATES = tracking.v1.closedSets.Run.state;
export type RunState = tracking.v1.Run['state'];

/**
 * The longest config or summary key, at any depth: what a filter or sort can
 * name, and what is stored (request-checks.ts), so every stored key can be
 * queried. 256, as metric keys (which become summary keys) have always been.
 */
export const MAX_KEY_LENGTH = 256;
/** One object key of a config./summary. path: letters, digits, `_`, `-`, `/` (W&B style "train/loss"). */
export const KEY_SEGMENT = new RegExp(`^[A-Za-z0-9_\\-/]{1,${MAX_KEY_LENGTH}}$`);
const MAX_SEGMENTS = 16;

/** The field a name refers to, or a sentence saying why there is none. */
export function resolveField(name: string): RunField | string {
  const column = BY_NAME.get(name);
  if (column) return column;
  const dot = name.indexOf('.');
  const scope = dot < 0 ? name : name.slice(0, dot);
  if (scope === 'config' || scope === 'summary') {
    const path = dot < 0 ? [] : name.slice(dot + 1).split('.');
    if (path.length === 0) return `${scope} needs a key, e.g. ${scope}.lr`;
    if (path.length > MAX_SEGMENTS) return `${name} has more than ${MAX_SEGMENTS} segments`;
    const bad = path.find((seg) => !KEY_SEGMENT.test(seg));
    if (bad !== undefined) return `${JSON.stringify(bad)} in ${scope}. is not a key of letters, digits, "_", "-" or "/" (at most ${MAX_KEY_LENGTH})`;
    return { kind: 'json', name, scope, path };
  }
  return `unknown field ${JSON.stringify(name)}; use ${FIELD_NAMES.join(', ')}, config.<key> or summary.<key>`;
}

/** The JSON document a field reads. */
const jsonColumn = (f: JsonField) => raw(f.scope === 'config' ? 'r.config' : 'r.summary');

/** PostgreSQL: the jsonb value at the path (NULL when absent). */
function pgValue(f: JsonField): Sql {
  let e = jsonColumn(f);
  for (const seg of f.path) e = sql`${e} -> CAST(${seg} AS TEXT)`;
  return e;
}

/** SQLite: the path in json_extract syntax; segments are restricted to KEY_SEGMENT, so quoting is safe. */
const sqlitePath = (f: JsonField) => `$${f.path.map((s) => `."${s}"`).join('')}`;

/** Code-point order on both dialects (SQLite's BINARY is already). */
const collate = (d: Dialect) => raw(d === 'postgres' ? ' COLLATE "C"' : '');

/**
 * The value as a double: JSON numbers, and the strings "Infinity" /
 * "-Infinity" (how non-finite numbers are stored). NULL for anything
 * else — a string, a missing key — so a comparison never fails, it just
 * does not match.
 */
export function jsonNumber(f: JsonField, d: Dialect): Sql {
  const doc = jsonColumn(f);
  if (d === 'sqlite') {
    const p = sqlitePath(f);
    return sql`(CASE WHEN json_type(${doc}, ${p}) IN ('integer', 'real') THEN json_extract(${doc}, ${p}) ELSE (CASE json_extract(${doc}, ${p}) WHEN 'Infinity' THEN 9e999 WHEN '-Infinity' THEN -9e999 END) END)`;
  }
  const v = pgValue(f);
  return sql`(CASE jsonb_typeof(${v}) WHEN 'number' THEN CAST(${v} AS DOUBLE PRECISION) WHEN 'string' THEN (CASE ${v} #>> '{}' WHEN 'Infinity' THEN CAST('Infinity' AS DOUBLE PRECISION) WHEN '-Infinity' THEN CAST('-Infinity' AS DOUBLE PRECISION) END) END)`;
}

/** The value as JSON text (`1.5`, `"adam"`, `{"a":1}`); NULL when the path is absent. */
export function jsonAsText(f: JsonField, d: Dialect): Sql {
  if (d === 'sqlite') return sql`(${jsonColumn(f)} -> ${sqlitePath(f)})`;
  return sql`CAST(${pgValue(f)} AS TEXT)`;
}

/** The value as text when it is a JSON string; NULL otherwise. */
export function jsonText(f: JsonField, d: Dialect): Sql {
  const doc = jsonColumn(f);
  if (d === 'sqlite') {
    const p = sqlitePath(f);
    return sql`(CASE json_type(${doc}, ${p}) WHEN 'text' THEN json_extract(${doc}, ${p}) END)`;
  }
  const v = pgValue(f);
  return sql`(CASE jsonb_typeof(${v}) WHEN 'string' THEN (${v} #>> '{}')${collate(d)} END)`;
}

/** True when the value is the JSON boolean `value`. */
export function jsonIsBool(f: JsonField, d: Dialect, value: boolean): Sql {
  if (d === 'sqlite') return sql`(json_type(${jsonColumn(f)}, ${sqlitePath(f)}) = ${value ? 'true' : 'false'})`;
  return sql`(${pgValue(f)} = CAST(${value ? 'true' : 'false'} AS JSONB))`;
}

/** `LIKE` pattern of a case-insensitive substring search; `%` and `_` match themselves. */

/** An array holding the string `s`, or a string containing it (case-insensitive). */
export function jsonContains(f: JsonField, d: Dialect, s: string): Sql {
  const doc = jsonColumn(f);
  if (d === 'sqlite') {
    const p = sqlitePath(f);
    return sql`(CASE json_type(${doc}, ${p}) WHEN 'array' THEN EXISTS (SELECT 1 FROM json_each(${doc}, ${p}) e WHERE e.type = 'text' AND e.value = ${s}) WHEN 'text' THEN LOWER(json_extract(${doc}, ${p})) LIKE ${containsPattern(s)} ESCAPE '\\' ELSE 0 END)`;
  }
  const v = pgValue(f);
  return sql`(CASE jsonb_typeof(${v}) WHEN 'array' THEN ${v} @> jsonb_build_array(CAST(${s} AS TEXT)) WHEN 'string' THEN LOWER(${v} #>> '{}') LIKE ${containsPattern(s)} ESCAPE '\\' ELSE FALSE END)`;
}

/** The runs' tags array holds exactly `tag`. */
export function tagsContain(d: Dialect, tag: string): Sql {
  if (d === 'sqlite') return sql`EXISTS (SELECT 1 FROM json_each(r.tags) t WHERE t.value = ${tag})`;
  return sql`(r.tags @> jsonb_build_array(CAST(${tag} AS TEXT)))`;
}

/** A column, with code-point collation for text on PostgreSQL. */
export function columnExpr(f: ColumnField, d: Dialect): Sql {
  const isText = f.type === 'text' || f.type === 'state';
  return isText ? sql`${raw(f.column)}${collate(d)}` : raw(f.column);
}
