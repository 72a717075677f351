import type { Dialect, MetadataStore, Migration, Row, SqlExecutor, SqlValue, TransactionOptions } from './metadata-store.js';
import type { Migrator } from './migrations.js';
import { currentTransaction } from './transaction-scope.js';

/**
 * What both adapters share: a call made inside `transaction(fn)` joins that
 * transaction (see transaction-scope.ts); any other call runs on the
 * adapter's autocommit executor, admitted the adapter's way (SQLite: behind
 * the single connection's queue; PostgreSQL: tracked so close() waits for it).
 */
export abstract class RoutedMetadataStore implements MetadataStore {
  abstract readonly dialect: Dialect;
  protected abstract readonly autocommit: SqlExecutor;
  protected abstract readonly migrator: Migrator;

  /** Runs work outside any transaction, refusing it once the store is closed. */
  protected abstract admit<T>(work: () => Promise<T>): Promise<T>;
  abstract transaction<T>(fn: (tx: SqlExecutor) => Promise<T>, options?: TransactionOptions): Promise<T>;
  abstract close(): Promise<void>;

  query<T extends Row = Row>(sql: string, params?: readonly SqlValue[]): Promise<T[]> {
    const open = currentTransaction(this);
    if (open) return open.tx.query<T>(sql, params);
    return this.admit(() => this.autocommit.query<T>(sql, params));
  }

  run(sql: string, params?: readonly SqlValue[]): Promise<{ changes: number }> {
    const open = currentTransaction(this);
    if (open) return open.tx.run(sql, params);
    return this.admit(() => this.autocommit.run(sql, params));
  }

  insertMany(table: string, columns: readonly string[], rows: readonly (readonly SqlValue[])[]): Promise<number> {
    const open = currentTransaction(this);
    if (open) return open.tx.insertMany(table, columns, rows);
    if (rows.length === 0) return Promise.resolve(0);
    return this.transaction((tx) => tx.insertMany(table, columns, rows));
  }

  migrate(plugin: string, migrations: readonly Migration[]): Promise<number[]> {
    return this.migrator.migrate(plugin, migrations);
  }

  appliedMigrations(plugin: string): Promise<number[]> {
    return this.migrator.applied(plugin);
  }
}
