import type { Dialect } from './metadata-store.js';

/**
 * The one JSON-column rule (metadata-store.ts): JSON is TEXT, read and
 * written whole — except a document that queries look *into* (filters,
 * sorts, field selections over many rows, like a run's config and summary),
 * which is stored in the dialect's binary JSON so a condition does not parse
 * a JSON text per row: SQLite JSONB in a BLOB, PostgreSQL jsonb. Declare
 * such a column with `JSON_DOC_TYPE`, write it with `toJsonDoc` and read it
 * with `fromJsonDoc`.
 */
export const JSON_DOC_TYPE: Readonly<Record<Dialect, string>> = Object.freeze({ sqlite: 'BLOB', postgres: 'JSONB' });

/** A JSON text — a placeholder (default) or a column — as the dialect stores a document. */
export const toJsonDoc = (d: Dialect, expr = '?'): string => (d === 'sqlite' ? `jsonb(${expr})` : `CAST(${expr} AS JSONB)`);

/**
 * A document column in a select list, as `alias`: JSON text on SQLite (it
 * keeps JSONB bytes); on PostgreSQL the driver parses jsonb into a value itself.
 */
export const fromJsonDoc = (d: Dialect, column: string, alias = column.replace(/^.*\./, '')): string =>
  d === 'sqlite' ? `json(${column}) AS ${alias}` : `${column}${alias === column ? '' : ` AS ${alias}`}`;
