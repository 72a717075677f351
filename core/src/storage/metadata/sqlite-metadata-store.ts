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
 * Writes go through one connection, which the store hands out exclusively:
 * every write outside a transaction, and every transaction as a whole, takes
 * a queue slot in turn. A SELECT outside a transaction runs on one of a few
 * read-only connections instead (WAL lets readers run beside the writer and
 * each other, each seeing every transaction committed when it starts), so
 * reads neither wait behind writes nor behind each other. Inside
 * `transaction(fn)` use the `tx` given to `fn`; calls on the store made from
 * inside `fn` are routed into the same transaction (a nested `transaction()`
 * becomes a savepoint) rather than queueing behind it. Each connection keeps
 * its recent statements prepared (SQLite re-prepares one by itself when a
 * migration changes the schema under it).
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
  /**
   * Read-only connections for SELECTs outside transactions (a file database
   * only; `:memory:` has one connection). Default 3: with the writer, the
   * size of libuv's default thread pool.
   */
  readers?: number;
}

/** Use this filename for a private in-memory database (tests). */
export const SQLITE_MEMORY = ':memory:';

// SQLITE_MAX_VARIABLE_NUMBER is 32766 from SQLite 3.32.0 on, 999 before.
const MAX_VARIABLES = sqlite3.VERSION_NUMBER >= 3_032_000 ? 32_766 : 999;
const PAGE_SIZE = 65536;
const DEFAULT_BUSY_TIMEOUT_MS = 10_000;
const DEFAULT_READERS = 3;
/** Prepared statements kept per connection (least recently used ones are finalized). */
const STATEMENT_CACHE_SIZE = 256;
/** Statements that only read: the ones a reader connection may take. */
const READ_ONLY_SQL = /^\s*SELECT\b/i;
const SAVEPOINT_SQL = /^\s*(SAVEPOINT|RELEASE|ROLLBACK\s+TO)\b/i;

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
    new Promise<number>((resolve, reject) =>
      statement.run(params, function (err) {
        if (err) reject(err);
        else resolve(this.changes);
      }),
    ),
  allPrepared: (statement: Statement, params: SqlValue[]) =>
    new Promise<Row[]>((resolve, reject) => statement.all<Row>(params, (err, rows) => (err ? reject(err) : resolve(rows)))),
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

/**
 * One connection's prepared statements by SQL text, least recently used
 * dropped first. A statement is used by one caller at a time: the writer's
 * queue guarantees that for it, and a reader's statement runs its calls in
 * order (the driver queues them).
 */
class StatementCache {
  private readonly statements = new Map<string, Promise<Statement>>();

  constructor(private readonly db: Database) {}

  get(sql: string): Promise<Statement> {
    let statement = this.statements.get(sql);
    if (statement) {
      // Re-inserted: Map order is recency order.
      this.statements.delete(sql);
      this.statements.set(sql, statement);
      return statement;
    }
    statement = driver.prepare(this.db, sql);
    this.statements.set(sql, statement);
    // A statement that fails to prepare (bad SQL) is not kept.
    statement.catch(() => this.statements.get(sql) === statement && this.statements.delete(sql));
    if (this.statements.size > STATEMENT_CACHE_SIZE) {
      const [oldest, evicted] = this.statements.entries().next().value as [string, Promise<Statement>];
      this.statements.delete(oldest);
      void evicted.then(driver.finalize, () => {});
    }
    return statement;
  }

  async clear(): Promise<void> {
    const all = [...this.statements.values()];
    this.statements.clear();
    await Promise.all(all.map((p) => p.then(driver.finalize, () => {})));
  }
}

/** Statements on the raw connection; the store decides when it may be used. */
class SqliteExecutor implements MigrationTransaction {
  readonly dialect = 'sqlite' as const;

  constructor(
    private readonly db: Database,
    private readonly busyTimeoutMs: number,
    private readonly statements: StatementCache,
    /** Throws when this executor may no longer be used (a finished transaction). */
    private readonly checkUsable: () => void = () => {},
  ) {}

  async query<T extends Row = Row>(sql: string, params?: readonly SqlValue[]): Promise<T[]> {
    this.checkUsable();
    try {
      return (await driver.allPrepared(await this.statements.get(sql), bindAll(params))) as T[];
    } catch (err) {
      throw failureOf(err, sql, this.busyTimeoutMs);
    }
  }

  async run(sql: string, params?: readonly SqlValue[]): Promise<{ changes: number }> {
    this.checkUsable();
    try {
      // Savepoint names are unique per use: not worth a cache slot.
      if (SAVEPOINT_SQL.test(sql)) return { changes: await driver.run(this.db, sql, bindAll(params)) };
      return { changes: await driver.runPrepared(await this.statements.get(sql), bindAll(params)) };
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

interface Reader {
  db: Database;
  statements: StatementCache;
  executor: SqliteExecutor;
  /** Statements queued or running on it. */
  busy: number;
}

async function openConnection(filename: string, mode: number, busyTimeoutMs: number): Promise<Database> {
  const db = await new Promise<Database>((resolve, reject) => {
    const opened: Database = new sqlite3.Database(filename, mode, (err) => (err ? reject(err) : resolve(opened)));
  });
  // Statements run one after another in call order, never interleaved by the driver.
  db.serialize();
  // Set before anything touches the file, so even switching to WAL waits for another process.
  db.configure('busyTimeout', busyTimeoutMs);
  return db;
}

export class SqliteMetadataStore extends RoutedMetadataStore {
  readonly dialect = 'sqlite' as const;
  private readonly queue = new ConnectionQueue();
  private readonly statements: StatementCache;
  private readonly readers: Reader[];
  /** SELECTs running on readers; close() waits for them. */
  private reading = 0;
  private readsDrained?: () => void;
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
    const opened: Database[] = [];
    try {
      if (!memory) await mkdir(dirname(filename), { recursive: true });
      const db = await openConnection(filename, sqlite3.OPEN_READWRITE | sqlite3.OPEN_CREATE, busyTimeoutMs);
      opened.push(db);
      // Large pages before the file gets its first page (no effect on an existing file):
      // metric history is written as large blobs, which 64 KiB pages store with far
      // fewer page writes than the 4 KiB default.
      await driver.exec(db, `PRAGMA page_size = ${PAGE_SIZE}`);
      await driver.all(db, 'PRAGMA journal_mode = WAL', []);
      await driver.exec(db, 'PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;');
      // A private in-memory database has no second connection to share it.
      const readers = memory ? 0 : Math.max(0, options.readers ?? DEFAULT_READERS);
      for (let i = 0; i < readers; i++) opened.push(await openConnection(filename, sqlite3.OPEN_READONLY, busyTimeoutMs));
    } catch (err) {
      await Promise.all(opened.map((db) => driver.close(db).catch(() => {})));
      throw Errors.DB_UNAVAILABLE(
        `Cannot open the SQLite database ${memory ? 'in memory' : `file ${filename}`}: ${(err as Error).message}. ` +
          'Check that the path in WANLLMDB_DB is right, its directory is writable and the file is a SQLite database.',
        [],
        err,
      );
    }
    return new SqliteMetadataStore(opened[0]!, opened.slice(1), filename, busyTimeoutMs);
  }

  private constructor(
    private readonly db: Database,
    readerDbs: Database[],
    /** The file this store writes, or `:memory:`. */
    readonly filename: string,
    private readonly busyTimeoutMs: number,
  ) {
    super();
    this.statements = new StatementCache(db);
    this.autocommit = new SqliteExecutor(db, busyTimeoutMs, this.statements);
    this.readers = readerDbs.map((rdb) => {
      const statements = new StatementCache(rdb);
      return { db: rdb, statements, executor: new SqliteExecutor(rdb, busyTimeoutMs, statements), busy: 0 };
    });
    const target: MigrationTarget = {
      dialect: 'sqlite',
      executor: this,
      // BEGIN IMMEDIATE takes the file's write lock: one migrator at a time, whatever the lock name.
      withMigrationLock: (_lockName, fn) => this.transaction((tx) => fn(tx as SqliteExecutor)),
    };
    this.migrator = new Migrator(target);
  }

  /** A SELECT outside a transaction goes to the least busy reader; anything else to the writer. */
  override query<T extends Row = Row>(sql: string, params?: readonly SqlValue[]): Promise<T[]> {
    if (this.readers.length === 0 || currentTransaction(this) || !READ_ONLY_SQL.test(sql)) return super.query<T>(sql, params);
    if (this.closed) return Promise.reject(Errors.DB_UNAVAILABLE('The SQLite metadata store is closed; open a new one to run statements.'));
    let reader = this.readers[0]!;
    for (const r of this.readers) if (r.busy < reader.busy) reader = r;
    reader.busy++;
    this.reading++;
    const done = () => {
      reader.busy--;
      if (--this.reading === 0) this.readsDrained?.();
    };
    return reader.executor.query<T>(sql, params).finally(done);
  }

  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    const open = currentTransaction(this);
    if (open) return inSavepoint(open, fn);
    return this.admit(async () => {
      // IMMEDIATE takes the write lock now (waiting up to busy_timeout), so a
      // transaction never fails half-way when it first writes.
      await this.autocommit.run('BEGIN IMMEDIATE');
      let finished = false;
      const tx = new SqliteExecutor(this.db, this.busyTimeoutMs, this.statements, () => {
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
    if (this.reading > 0) await new Promise<void>((resolve) => (this.readsDrained = resolve));
    await Promise.all(this.readers.map(async (r) => {
      await r.statements.clear();
      await driver.close(r.db);
    }));
    await this.queue.exclusive(async () => {
      await this.statements.clear();
      await driver.close(this.db);
    });
  }

  protected admit<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) {
      return Promise.reject(Errors.DB_UNAVAILABLE('The SQLite metadata store is closed; open a new one to run statements.'));
    }
    return this.queue.exclusive(fn);
  }
}
