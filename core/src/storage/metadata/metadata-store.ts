/**
 * MetadataStore: the relational port. One SQL text with `?` placeholders works
 * on both adapters (SQLite and PostgreSQL); the adapter rewrites placeholders.
 * Portable conventions every plugin follows:
 * - ids are TEXT (UUIDs), times are BIGINT epoch milliseconds,
 *   booleans are INTEGER 0/1, JSON is TEXT — but a document queries look
 *   into is the dialect's binary JSON (json-docs.ts) — and bytes need a
 *   per-dialect migration.
 * - BIGINT columns come back as JS numbers on both adapters (exact up to
 *   2^53); NUMERIC, and SUM() of integers on PostgreSQL, come back as strings:
 *   CAST(SUM(x) AS BIGINT) when a number is wanted.
 * - one statement per query()/run() call; table and column names in SQL are
 *   unquoted lower_snake_case so both dialects fold them alike.
 * - after a failed statement inside a transaction, stop and let it roll back:
 *   PostgreSQL refuses further statements in it (a nested transaction() is a
 *   savepoint and may fail on its own).
 * Driver errors become WLDB_ERR_DB_QUERY_FAILED (bad SQL),
 * WLDB_ERR_DB_CONSTRAINT_VIOLATION (UNIQUE, FOREIGN KEY, NOT NULL, CHECK) or
 * WLDB_ERR_DB_UNAVAILABLE (unreachable, locked for too long, closed).
 */
export type SqlValue = string | number | bigint | boolean | null | Uint8Array;
export type Row = Record<string, unknown>;
export type Dialect = 'sqlite' | 'postgres';

export interface SqlExecutor {
  readonly dialect: Dialect;
  /** Runs a statement that returns rows (SELECT, or INSERT … RETURNING). */
  query<T extends Row = Row>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
  /** Runs a statement that returns no rows; resolves to the number of rows an INSERT, UPDATE or DELETE changed. */
  run(sql: string, params?: readonly SqlValue[]): Promise<{ changes: number }>;
  /**
   * Inserts many rows of the same shape as few multi-row statements.
   * Outside a transaction it opens one, so the rows land all or nothing.
   */
  insertMany(table: string, columns: readonly string[], rows: readonly (readonly SqlValue[])[]): Promise<number>;
}

export interface Migration {
  /** 1, 2, 3 … per plugin; applied in order, each once. */
  version: number;
  name: string;
  /** SQL for both dialects, or one text per dialect. Several statements may be separated by `;`. */
  up: string | Record<Dialect, string>;
}

export interface TransactionOptions {
  /**
   * The transaction may share its COMMIT with other such transactions
   * (group commit): it still runs alone, all or nothing, in a savepoint of
   * its own, and its promise still resolves only once its writes are
   * committed — but one commit then carries many small transactions, which
   * is what lets a store take thousands of small writes a second (SQLite
   * writes each dirty page of every commit to its WAL). Only for callbacks
   * that run statements and nothing else: a callback that awaits anything
   * but its `tx` (a lock, a network call, another caller) could wait for a
   * transaction whose commit waits for it. Adapters without a benefit
   * (PostgreSQL) ignore it.
   */
  groupCommit?: boolean;
}

export interface MetadataStore extends SqlExecutor {
  /**
   * Runs `fn` in one transaction: commit when it resolves, roll back when it
   * throws (the error is rethrown). Use the `tx` given to `fn`, and await every
   * statement before `fn` resolves; `tx` refuses work once the transaction has
   * ended. Calls on the store itself made from inside `fn` join the same
   * transaction, and a nested `transaction()` runs as a savepoint (rolled back
   * alone when its callback throws), so neither deadlocks. Callers outside `fn`
   * never see or join it.
   */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>, options?: TransactionOptions): Promise<T>;
  /**
   * Applies the plugin's migrations that are not yet applied, each in its own
   * transaction, under a lock so that two servers starting at once apply each
   * migration exactly once. Resolves to the versions applied by this call.
   */
  migrate(plugin: string, migrations: readonly Migration[]): Promise<number[]>;
  /** Versions already applied for a plugin, ascending. */
  appliedMigrations(plugin: string): Promise<number[]>;
  /** Waits for queued work, then closes connections. */
  close(): Promise<void>;
}
