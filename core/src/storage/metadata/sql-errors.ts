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

/**
 * What an API caller may see of a storage error. The messages above quote
 * SQL and the driver's own words, which quote parameter values (`invalid
 * input syntax for type integer: "1.5"`): they are for the operator's log.
 * A caller gets the same code and status and a message that says only what
 * to do, with the request id to report; undefined for any other error.
 */
export function storageErrorForCaller(e: WldbError, requestId: string): WldbError | undefined {
  const report = `The failure was logged with request id ${requestId}; report that id if it persists.`;
  if (Errors.DB_QUERY_FAILED.is(e)) return Errors.DB_QUERY_FAILED(`The server could not run a database statement. ${report}`, [], e);
  if (Errors.DB_CONSTRAINT_VIOLATION.is(e)) {
    return Errors.DB_CONSTRAINT_VIOLATION(`The change conflicts with data stored meanwhile (a duplicate, or a record it refers to is gone). Reload and retry. ${report}`, [], e);
  }
  if (Errors.DB_UNAVAILABLE.is(e)) return Errors.DB_UNAVAILABLE(`The server's database is unavailable. Retry in a moment. ${report}`, [], e);
  return undefined;
}

/** A programming error in how the port was called (not a driver error). */
export function misuse(message: string): WldbError {
  return Errors.DB_QUERY_FAILED(message);
}
