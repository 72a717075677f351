/**
 * MetadataStore: the relational port. One SQL text with `?` placeholders works
 * on both adapters (SQLite and PostgreSQL); the adapter rewrites placeholders.
 * Portable conventions every plugin follows:
 * - ids are TEXT (UUIDs), times are BIGINT epoch milliseconds,
 *   booleans are INTEGER 0/1, JSON is TEXT, bytes need a per-dialect migration.
 * - BIGINT columns come back as JS numbers on both adapters.
 */
export type SqlValue = string | number | bigint | boolean | null | Uint8Array;
export type Row = Record<string, unknown>;
export type Dialect = 'sqlite' | 'postgres';

export interface SqlExecutor {
  readonly dialect: Dialect;
  /** Runs a statement that returns rows (SELECT, or INSERT … RETURNING). */
  query<T extends Row = Row>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
  /** Runs a statement that returns no rows; resolves to the number of rows changed. */
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

export interface MetadataStore extends SqlExecutor {
  /** Runs `fn` in one transaction: commit when it resolves, roll back when it throws. */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
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
