import { Errors, WldbError } from '../../errors.js';
import type { Dialect } from './metadata-store.js';

/** How a driver error is reported: each kind has its own code and advice. */
export type StatementFailure =
  /** The statement itself is wrong (syntax, unknown table, type mismatch …). */
  | 'query'
  /** A UNIQUE, FOREIGN KEY, NOT NULL or CHECK constraint refused the change. */
  | 'constraint'
  /** The database could not be reached or used (lock timeout, closed connection, I/O). */
  | 'unavailable';

export const DIALECT_NAME: Record<Dialect, string> = { sqlite: 'SQLite', postgres: 'PostgreSQL' };

/** The start of a statement, on one line, for messages (parameters are never shown). */
export function sqlExcerpt(sql: string, max = 160): string {
  const line = sql.replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max)}…` : line;
}

/** The driver's own words, without SQLite's `SQLITE_ERROR: ` prefix. */
export function driverReason(err: unknown): string {
  if (err instanceof WldbError && err.cause !== undefined) return driverReason(err.cause);
  if (err instanceof Error) {
    const text = err.message || (err as { code?: string }).code || err.name;
    return text.replace(/^SQLITE_[A-Z_]+: /, '');
  }
  return String(err);
}

export function statementFailed(kind: StatementFailure, dialect: Dialect, sql: string, cause: unknown, advice?: string): WldbError {
  const db = DIALECT_NAME[dialect];
  const reason = driverReason(cause);
  const statement = `Statement: ${sqlExcerpt(sql)}`;
  switch (kind) {
    case 'constraint':
      return Errors.DB_CONSTRAINT_VIOLATION(
        `${db} refused the change because a constraint failed: ${reason}. ${statement}. ` +
          'Check for a duplicate key, a missing referenced row or a missing required value before writing.',
        [],
        cause,
      );
    case 'unavailable':
      return Errors.DB_UNAVAILABLE(
        `The ${db} database could not run a statement: ${reason}. ${statement}. ` +
          (advice ?? 'Check that the database is reachable and retry.'),
        [],
        cause,
      );
    case 'query':
      return Errors.DB_QUERY_FAILED(
        `${db} rejected a statement: ${reason}. ${statement}. ` +
          "Check the SQL and its parameters, and that the plugin's migrations created the tables it uses.",
        [],
        cause,
      );
  }
}

/** A programming error in how the port was called (not a driver error). */
export function misuse(message: string): WldbError {
  return Errors.DB_QUERY_FAILED(message);
}
