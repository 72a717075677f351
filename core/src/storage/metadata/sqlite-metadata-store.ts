import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import sqlite3, { type Database, type Statement } from 'sqlite3';
import { Errors } from '../../errors.js';
import type { MetadataStore, Migration, Row, SqlExecutor, SqlValue } from './metadata-store.js';
import { Migrator, type MigrationTarget, type MigrationTransaction } from './migrations.js';
import { RoutedMetadataStore } from './routed-store.js';
import { planMultiRowInsert } from './multi-row-insert.js';
import { misuse, statementFailed } from './sql-errors.js';
import { currentTransaction, inSavepoint, runInTransaction, type OpenTransaction } from './transaction-scope.js';

/**
 * The embedded MetadataStore: one SQLite file through the `sqlite3` driver.
 *
 * The driver has one connection, so the store hands it out exclusively: every
 * call outside a transaction, and every transaction as a whole, takes a queue
 * slot in turn. Inside `transaction(fn)` use the `tx` given to `fn`; calls on
 * the store made from inside `fn` are routed into the same transaction (a
 * nested `transaction()` becomes a savepoint) rather than queueing behind it.
 *
 * Durability: WAL with synchronous=NORMAL. A committed transaction is in the
 * WAL file when COMMIT returns, so it survives the process being killed; only
 * an OS crash or power loss can lose the last commits.
 */
export interface SqliteMetadataStoreOptions {
  /**
   * How long a statement waits for another process's write lock on the same
   * file before failing with DB_UNAVAILABLE. Default 10 s.
   */
  busyTimeoutMs?: number;
}

/** Use this filename for a private in-memory database (tests). */
export const SQLITE_MEMORY = ':memory:';

// SQLITE_MAX_VARIABLE_NUMBER is 32766 from SQLite 3.32.0 on, 999 before.
const MAX_VARIABLES = sqlite3.VERSION_NUMBER >= 3_032_000 ? 32_766 : 999;
const PAGE_SIZE = 65536;
const DEFAULT_BUSY_TIMEOUT_MS = 10_000;

type DriverError = Error & { code?: string };

function failureOf(err: unknown, sql: string, busyTimeoutMs: number) {
  const code = (err as DriverError | undefined)?.code ?? '';
  if (code === 'SQLITE_CONSTRAINT') return statementFailed('constraint', 'sqlite', sql, err);
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') {
    return statementFailed(
      'unavailable',
      'sqlite',
      sql,
      err,
      `Another connection held the database file's lock for more than ${busyTimeoutMs} ms; retry, and look for a process stuck in a long transaction.`,
    );
  }
  if (/^SQLITE_(IOERR|FULL|CANTOPEN|READONLY|CORRUPT|NOTADB|PERM)$/.test(code)) {
    return statementFailed('unavailable', 'sqlite', sql, err, 'Check the database file, the permissions of its directory and the free disk space.');
  }
  return statementFailed('query', 'sqlite', sql, err);
}

/** SQLite has no boolean or bigint binding in this driver; the port's conventions say 0/1 and integers. */
function bind(value: SqlValue): SqlValue {
  switch (typeof value) {
    case 'boolean':
      return value ? 1 : 0;
    case 'bigint':
      // An INTEGER column turns the decimal text back into an exact 64-bit integer.
      return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
    case 'object':
      return value !== null && !Buffer.isBuffer(value) ? Buffer.from(value.buffer, value.byteOffset, value.byteLength) : value;
    default:
      return value;
  }
}

function bindAll(params: readonly SqlValue[] | undefined): SqlValue[] {
  return params === undefined || params.length === 0 ? [] : params.map(bind);
}

/** The driver's callback API as promises; errors are left raw for the caller to classify. */
const driver = {
  all: (db: Database, sql: string, params: SqlValue[]) =>
    new Promise<Row[]>((resolve, reject) => db.all<Row>(sql, params, (err, rows) => (err ? reject(err) : resolve(rows)))),
  run: (db: Database, sql: string, params: SqlValue[]) =>
    new Promise<number>((resolve, reject) =>
      db.run(sql, params, function (err) {
        if (err) reject(err);
        else resolve(this.changes);
      }),
    ),
  exec: (db: Database, sql: string) => new Promise<void>((resolve, reject) => db.exec(sql, (err) => (err ? reject(err) : resolve()))),
  prepare: (db: Database, sql: string) =>
    new Promise<Statement>((resolve, reject) => {
      const statement = db.prepare(sql, (err) => (err ? reject(err) : resolve(statement)));
    }),
  runPrepared: (statement: Statement, params: SqlValue[]) =>
    new Promise<void>((resolve, reject) => statement.run(params, (err) => (err ? reject(err) : resolve()))),
  finalize: (statement: Statement) => new Promise<void>((resolve) => statement.finalize(() => resolve())),
  close: (db: Database) => new Promise<void>((resolve, reject) => db.close((err) => (err ? reject(err) : resolve()))),
};

/** Gives the one connection to one holder at a time, first come first served. */
class ConnectionQueue {
  private tail: Promise<void> = Promise.resolve();

  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const previous = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((resolve) => (release = resolve));
    await previous;
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

/** Statements on the raw connection; the store decides when it may be used. */
class SqliteExecutor implements MigrationTransaction {
  readonly dialect = 'sqlite' as const;

  constructor(
    private readonly db: Database,
    private readonly busyTimeoutMs: number,
    /** Throws when this executor may no longer be used (a finished transaction). */
    private readonly checkUsable: () => void = () => {},
  ) {}

  async query<T extends Row = Row>(sql: string, params?: readonly SqlValue[]): Promise<T[]> {
    this.checkUsable();
    try {
      return (await driver.all(this.db, sql, bindAll(params))) as T[];
    } catch (err) {
      throw failureOf(err, sql, this.busyTimeoutMs);
    }
  }

  async run(sql: string, params?: readonly SqlValue[]): Promise<{ changes: number }> {
    this.checkUsable();
    try {
      return { changes: await driver.run(this.db, sql, bindAll(params)) };
    } catch (err) {
      throw failureOf(err, sql, this.busyTimeoutMs);
    }
  }

  async exec(sql: string): Promise<void> {
    this.checkUsable();
    try {
      await driver.exec(this.db, sql);
    } catch (err) {
      throw failureOf(err, sql, this.busyTimeoutMs);
    }
  }

  /** Must run inside a transaction: chunks are separate statements. */
  async insertMany(table: string, columns: readonly string[], rows: readonly (readonly SqlValue[])[]): Promise<number> {
    this.checkUsable();
    if (rows.length === 0) return 0;
    const plan = planMultiRowInsert('sqlite', table, columns, MAX_VARIABLES, bind);
    const full = Math.floor(rows.length / plan.rowsPerStatement) * plan.rowsPerStatement;
    let sql = '';
    try {
      if (full > 0) {
        sql = plan.sql(plan.rowsPerStatement);
        const statement = await driver.prepare(this.db, sql);
        try {
          for (let from = 0; from < full; from += plan.rowsPerStatement) {
            await driver.runPrepared(statement, plan.params(rows, from, from + plan.rowsPerStatement));
          }
        } finally {
          await driver.finalize(statement);
        }
      }
      if (full < rows.length) {
        sql = plan.sql(rows.length - full);
        await driver.run(this.db, sql, plan.params(rows, full, rows.length));
      }
    } catch (err) {
      if (Errors.DB_QUERY_FAILED.is(err)) throw err;
      throw failureOf(err, sql, this.busyTimeoutMs);
    }
    return rows.length;
  }
}

export class SqliteMetadataStore extends RoutedMetadataStore {
  readonly dialect = 'sqlite' as const;
  private readonly queue = new ConnectionQueue();
  protected readonly autocommit: SqliteExecutor;
  protected readonly migrator: Migrator;
  private closed = false;

  /**
   * Opens (creating if missing, with its directory) the database file, or a
   * private in-memory database for `:memory:`.
   */
  static async open(filename: string, options: SqliteMetadataStoreOptions = {}): Promise<SqliteMetadataStore> {
    const busyTimeoutMs = options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
    const memory = filename === SQLITE_MEMORY;
    let db: Database | undefined;
    try {
      if (!memory) await mkdir(dirname(filename), { recursive: true });
      db = await new Promise<Database>((resolve, reject) => {
        const opened: Database = new sqlite3.Database(filename, (err) => (err ? reject(err) : resolve(opened)));
      });
      // Statements run one after another in call order, never interleaved by the driver.
      db.serialize();
      // Set before anything touches the file, so even switching to WAL waits for another process.
      db.configure('busyTimeout', busyTimeoutMs);
      // Large pages before the file gets its first page (no effect on an existing file):
      // metric history is written as large blobs, which 64 KiB pages store with far
      // fewer page writes than the 4 KiB default.
      await driver.exec(db, `PRAGMA page_size = ${PAGE_SIZE}`);
      await driver.all(db, 'PRAGMA journal_mode = WAL', []);
      await driver.exec(db, 'PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;');
    } catch (err) {
      if (db) await driver.close(db).catch(() => {});
      throw Errors.DB_UNAVAILABLE(
        `Cannot open the SQLite database ${memory ? 'in memory' : `file ${filename}`}: ${(err as Error).message}. ` +
          'Check that the path in WANLLMDB_DB is right, its directory is writable and the file is a SQLite database.',
        [],
        err,
      );
    }
    return new SqliteMetadataStore(db, filename, busyTimeoutMs);
  }

  private constructor(
    private readonly db: Database,
    /** The file this store writes, or `:memory:`. */
    readonly filename: string,
    private readonly busyTimeoutMs: number,
  ) {
    super();
    this.autocommit = new SqliteExecutor(db, busyTimeoutMs);
    const target: MigrationTarget = {
      dialect: 'sqlite',
      executor: this,
      // BEGIN IMMEDIATE takes the file's write lock: one migrator at a time, whatever the lock name.
      withMigrationLock: (_lockName, fn) => this.transaction((tx) => fn(tx as SqliteExecutor)),
    };
    this.migrator = new Migrator(target);
  }

  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    const open = currentTransaction(this);
    if (open) return inSavepoint(open, fn);
    return this.admit(async () => {
      // IMMEDIATE takes the write lock now (waiting up to busy_timeout), so a
      // transaction never fails half-way when it first writes.
      await this.autocommit.run('BEGIN IMMEDIATE');
      let finished = false;
      const tx = new SqliteExecutor(this.db, this.busyTimeoutMs, () => {
        if (finished) throw misuse('This transaction has already finished; use `tx` only until the transaction callback resolves.');
      });
      const scope: OpenTransaction = { tx, isOpen: () => !finished };
      try {
        const result = await runInTransaction(this, scope, () => fn(tx));
        finished = true;
        await this.autocommit.run('COMMIT');
        return result;
      } catch (err) {
        finished = true;
        // Some errors (disk full, I/O) already rolled SQLite back; then there is nothing to undo.
        await this.autocommit.run('ROLLBACK').catch(() => {});
        throw err;
      }
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Queued calls were admitted before `closed` was set; the close waits behind them.
    await this.queue.exclusive(() => driver.close(this.db));
  }

  protected admit<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) {
      return Promise.reject(Errors.DB_UNAVAILABLE('The SQLite metadata store is closed; open a new one to run statements.'));
    }
    return this.queue.exclusive(fn);
  }
}
