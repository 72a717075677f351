import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database, { type Database as Connection, type Statement } from 'better-sqlite3';
import { Errors } from '../../errors.js';
import type { MetadataStore, Migration, Row, SqlExecutor, SqlValue, TransactionOptions } from './metadata-store.js';
import { Migrator, type MigrationTarget, type MigrationTransaction } from './migrations.js';
import { RoutedMetadataStore } from './routed-store.js';
import { planMultiRowInsert } from './multi-row-insert.js';
import { misuse, statementFailed } from './sql-errors.js';
import { BACKSTOP_PAGES, Checkpointer } from './sqlite-checkpointer.js';
import { currentTransaction, inSavepoint, runInTransaction, type OpenTransaction } from './transaction-scope.js';

/**
 * The embedded MetadataStore: one SQLite file through `better-sqlite3`
 * (ADR 0012: a statement is a few microseconds on the calling thread, where
 * the asynchronous driver spent a thread-pool round trip on each — 17× the
 * CPU and 28× the time of a small write transaction, measured).
 *
 * Writes go through one connection, which the store hands out exclusively:
 * every write outside a transaction, and every transaction as a whole, takes
 * a queue slot in turn (a transaction's callback is asynchronous, and nothing
 * else may run on the connection meanwhile). A SELECT outside a transaction
 * runs on a read-only connection instead (WAL lets it read beside the writer,
 * seeing every transaction committed when it starts), so reads never wait
 * for an open transaction. Inside `transaction(fn)` use the `tx` given to
 * `fn`; calls on the store made from inside `fn` are routed into the same
 * transaction (a nested `transaction()` becomes a savepoint) rather than
 * queueing behind it. Each connection keeps its recent statements prepared.
 *
 * Another process on the same file (`serve --workers`, the SDK beside a
 * server) may hold the write lock: SQLite's own busy handler would sleep on
 * this thread and stall every call of the process, so connections have none
 * and the store retries a busy statement itself, on timers, for up to
 * `busyTimeoutMs`.
 *
 * Durability: WAL with synchronous=NORMAL. A committed transaction is in the
 * WAL file when COMMIT returns, so it survives the process being killed; only
 * an OS crash or power loss can lose the last commits.
 *
 * Group commit (`transaction(fn, { groupCommit: true })`, ADR 0013): such
 * transactions run one after another in savepoints of one SQLite transaction,
 * committed once no more of them are waiting in this turn of the event loop
 * (or after GROUP_MAX_MEMBERS / GROUP_MAX_MS); each caller's promise resolves
 * after that COMMIT. Every commit writes each page it dirtied to the WAL
 * whole, so a thousand 2-point metric batches a second cost a thousand
 * commits of several pages each without it. Any other work on the writer
 * commits an open group first.
 *
 * Pages are 4 KiB and WAL checkpoints run on a thread of their own, not
 * inside a COMMIT on the event loop (ADR 0014, sqlite-checkpointer.ts).
 */
export interface SqliteMetadataStoreOptions {
  /**
   * How long a statement waits for another process's write lock on the same
   * file before failing with DB_UNAVAILABLE. Default 10 s.
   */
  busyTimeoutMs?: number;
  /** A read-only connection for SELECTs outside transactions (a file database only; `:memory:` has one connection). Default true. */
  reader?: boolean;
  /** Checkpoint the WAL on a thread of its own (a file database only). Default true. */
  checkpointer?: boolean;
  /** Called when a background checkpoint fails (default: a process warning). */
  onCheckpointError?: (message: string) => void;
}

/** Use this filename for a private in-memory database (tests). */
export const SQLITE_MEMORY = ':memory:';

const MAX_VARIABLES = 32_766; // SQLITE_MAX_VARIABLE_NUMBER of the SQLite better-sqlite3 bundles
/** SQLite's default: small commits write only what they touch (ADR 0014; was 64 KiB). */
const PAGE_SIZE = 4096;
const DEFAULT_BUSY_TIMEOUT_MS = 10_000;
/** Page cache per connection, KiB (SQLite's default is 2,000). */
const CACHE_KIB = 32 * 1024;
/** Prepared statements kept per connection (least recently used ones dropped). */
const STATEMENT_CACHE_SIZE = 256;
/** A commit group is committed at this many transactions, or when it has been open this long, even if more are waiting. */
const GROUP_MAX_MEMBERS = 256;
const GROUP_MAX_MS = 5;
/** Longest pause between tries for another process's lock (it is usually held for a few ms). */
const MAX_BUSY_PAUSE_MS = 4;
/** Statements that only read: the ones the reader connection may take. */
const READ_ONLY_SQL = /^\s*SELECT\b/i;
/** Savepoint names are unique per use: not worth a cache slot. */
const SAVEPOINT_SQL = /^\s*(SAVEPOINT|RELEASE|ROLLBACK\s+TO)\b/i;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

type DriverError = Error & { code?: string };
/** The primary result code of a driver error: SQLITE_CONSTRAINT_UNIQUE → SQLITE_CONSTRAINT. */
const primaryCode = (err: unknown) => /^SQLITE_[A-Z]+/.exec((err as DriverError | undefined)?.code ?? '')?.[0] ?? '';
const isBusy = (err: unknown) => {
  const code = primaryCode(err);
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED';
};

function failureOf(err: unknown, sql: string, busyTimeoutMs: number) {
  const code = primaryCode(err);
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

/** The driver binds no booleans; the port's conventions say 0/1, integers, and bytes as Buffers. */
function bind(value: SqlValue): SqlValue {
  switch (typeof value) {
    case 'boolean':
      return value ? 1 : 0;
    case 'bigint':
      // Past 64 bits the decimal text goes in; an INTEGER column keeps what fits.
      return value >= INT64_MIN && value <= INT64_MAX ? value : value.toString();
    case 'object':
      return value !== null && !Buffer.isBuffer(value) ? Buffer.from(value.buffer, value.byteOffset, value.byteLength) : value;
    default:
      return value;
  }
}

function bindAll(params: readonly SqlValue[] | undefined): SqlValue[] {
  return params === undefined || params.length === 0 ? [] : params.map(bind);
}

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

/** One connection's prepared statements by SQL text, least recently used dropped first. */
class StatementCache {
  private readonly statements = new Map<string, Statement>();

  constructor(private readonly db: Connection) {}

  get(sql: string): Statement {
    let statement = this.statements.get(sql);
    if (statement) {
      // Re-inserted: Map order is recency order.
      this.statements.delete(sql);
      this.statements.set(sql, statement);
      return statement;
    }
    statement = this.db.prepare(sql);
    this.statements.set(sql, statement);
    if (this.statements.size > STATEMENT_CACHE_SIZE) this.statements.delete(this.statements.keys().next().value as string);
    return statement;
  }
}

/**
 * Runs `attempt` again, on timers, while another connection holds the lock it
 * needs, for up to `busyTimeoutMs` (1 ms doubling to MAX_BUSY_PAUSE_MS between tries).
 */
async function whileBusy<T>(busyTimeoutMs: number, attempt: () => T): Promise<T> {
  const deadline = Date.now() + busyTimeoutMs;
  for (let pause = 1; ; pause = Math.min(MAX_BUSY_PAUSE_MS, pause * 2)) {
    try {
      return attempt();
    } catch (err) {
      if (!isBusy(err) || Date.now() >= deadline) throw err;
    }
    await sleep(pause);
  }
}

/** Statements on the raw connection; the store decides when it may be used. */
class SqliteExecutor implements MigrationTransaction {
  readonly dialect = 'sqlite' as const;

  constructor(
    private readonly db: Connection,
    private readonly busyTimeoutMs: number,
    private readonly statements: StatementCache,
    /** Throws when this executor may no longer be used (a finished transaction). */
    private readonly checkUsable: () => void = () => {},
    /** Outside a transaction a statement may meet another process's lock: it is retried. Inside one, the lock is ours. */
    private readonly retryBusy = false,
  ) {}

  async query<T extends Row = Row>(sql: string, params?: readonly SqlValue[]): Promise<T[]> {
    this.checkUsable();
    const values = bindAll(params);
    const once = () => {
      const statement = this.statements.get(sql);
      if (statement.reader) return statement.all(values) as T[];
      statement.run(values);
      return [];
    };
    try {
      return this.retryBusy ? await whileBusy(this.busyTimeoutMs, once) : once();
    } catch (err) {
      throw failureOf(err, sql, this.busyTimeoutMs);
    }
  }

  async run(sql: string, params?: readonly SqlValue[]): Promise<{ changes: number }> {
    this.checkUsable();
    const values = bindAll(params);
    const once = () => {
      if (SAVEPOINT_SQL.test(sql)) {
        this.db.prepare(sql).run(values);
        return { changes: 0 };
      }
      return { changes: this.statements.get(sql).run(values).changes };
    };
    try {
      return this.retryBusy ? await whileBusy(this.busyTimeoutMs, once) : once();
    } catch (err) {
      throw failureOf(err, sql, this.busyTimeoutMs);
    }
  }

  async exec(sql: string): Promise<void> {
    this.checkUsable();
    try {
      if (this.retryBusy) await whileBusy(this.busyTimeoutMs, () => this.db.exec(sql));
      else this.db.exec(sql);
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
        const statement = this.db.prepare(sql);
        for (let from = 0; from < full; from += plan.rowsPerStatement) statement.run(plan.params(rows, from, from + plan.rowsPerStatement));
      }
      if (full < rows.length) {
        sql = plan.sql(rows.length - full);
        this.db.prepare(sql).run(plan.params(rows, full, rows.length));
      }
    } catch (err) {
      if (Errors.DB_QUERY_FAILED.is(err)) throw err;
      throw failureOf(err, sql, this.busyTimeoutMs);
    }
    return rows.length;
  }
}

function openConnection(filename: string, readonly: boolean): Connection {
  // timeout 0: no busy handler sleeping on this thread; whileBusy retries on timers instead.
  const db = new Database(filename, { readonly, fileMustExist: readonly, timeout: 0 });
  // SQLite's default page cache is 2,000 KiB: 31 of our 64 KiB pages. Up to 32 MiB a connection keeps a server's hot index pages.
  db.pragma(`cache_size = -${CACHE_KIB}`);
  return db;
}

export class SqliteMetadataStore extends RoutedMetadataStore {
  readonly dialect = 'sqlite' as const;
  private readonly queue = new ConnectionQueue();
  private readonly statements: StatementCache;
  /** The open commit group (TransactionOptions.groupCommit), if any. */
  private group: CommitGroup | undefined;
  /** The savepoint each member of a group runs in (members run one at a time, so one name serves). */
  private readonly unit: { begin: Statement; release: Statement; rollback: Statement };
  /** Answers SELECTs outside transactions; undefined for `:memory:`. */
  private readonly reader?: SqliteExecutor;
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
    const opened: Connection[] = [];
    try {
      if (!memory) await mkdir(dirname(filename), { recursive: true });
      const db = openConnection(filename, false);
      opened.push(db);
      // Another process may be creating the same file or holding its lock: waited for like any statement.
      await whileBusy(busyTimeoutMs, () => {
        // The page size before the file gets its first page (no effect on an existing file).
        db.pragma(`page_size = ${PAGE_SIZE}`);
        db.pragma('journal_mode = WAL');
        db.pragma('synchronous = NORMAL');
        // With the checkpointer thread, this connection checkpoints only as a backstop.
        if (!memory && options.checkpointer !== false) db.pragma(`wal_autocheckpoint = ${BACKSTOP_PAGES}`);
        db.pragma('foreign_keys = ON');
      });
      // A private in-memory database has no second connection to share it.
      if (!memory && options.reader !== false) opened.push(openConnection(filename, true));
    } catch (err) {
      for (const db of opened) db.close();
      throw Errors.DB_UNAVAILABLE(
        `Cannot open the SQLite database ${memory ? 'in memory' : `file ${filename}`}: ${(err as Error).message}. ` +
          'Check that the path in WANLLMDB_DB is right, its directory is writable and the file is a SQLite database.',
        [],
        err,
      );
    }
    const checkpointer =
      memory || options.checkpointer === false
        ? undefined
        : new Checkpointer(filename, options.onCheckpointError ?? ((m) => process.emitWarning(`Background WAL checkpoint of ${filename} failed: ${m}`, 'WanllmdbWarning')));
    return new SqliteMetadataStore(opened[0]!, opened[1], filename, busyTimeoutMs, checkpointer);
  }

  private constructor(
    private readonly db: Connection,
    private readonly readerDb: Connection | undefined,
    /** The file this store writes, or `:memory:`. */
    readonly filename: string,
    private readonly busyTimeoutMs: number,
    private readonly checkpointer: Checkpointer | undefined,
  ) {
    super();
    this.statements = new StatementCache(db);
    this.unit = { begin: db.prepare('SAVEPOINT wldb_group_member'), release: db.prepare('RELEASE wldb_group_member'), rollback: db.prepare('ROLLBACK TO wldb_group_member') };
    this.autocommit = new SqliteExecutor(db, busyTimeoutMs, this.statements, undefined, true);
    if (readerDb) this.reader = new SqliteExecutor(readerDb, busyTimeoutMs, new StatementCache(readerDb), undefined, true);
    const target: MigrationTarget = {
      dialect: 'sqlite',
      executor: this,
      // BEGIN IMMEDIATE takes the file's write lock: one migrator at a time, whatever the lock name.
      withMigrationLock: (_lockName, fn) => this.transaction((tx) => fn(tx as SqliteExecutor)),
    };
    this.migrator = new Migrator(target);
  }

  /** A SELECT outside a transaction goes to the reader, not behind the writer's queue; anything else to the writer. */
  override query<T extends Row = Row>(sql: string, params?: readonly SqlValue[]): Promise<T[]> {
    if (!this.reader || currentTransaction(this) || !READ_ONLY_SQL.test(sql)) return super.query<T>(sql, params);
    if (this.closed) return Promise.reject(Errors.DB_UNAVAILABLE('The SQLite metadata store is closed; open a new one to run statements.'));
    return this.reader.query<T>(sql, params);
  }

  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>, options?: TransactionOptions): Promise<T> {
    const open = currentTransaction(this);
    if (open) return inSavepoint(open, fn);
    if (options?.groupCommit) return this.grouped(fn);
    return this.admit(async () => {
      // IMMEDIATE takes the write lock now (waiting up to the busy timeout), so a
      // transaction never fails half-way when it first writes.
      await this.autocommit.run('BEGIN IMMEDIATE');
      try {
        const result = await this.runCallback(fn);
        await this.autocommit.run('COMMIT');
        return result;
      } catch (err) {
        this.rollbackQuietly();
        throw err;
      }
    });
  }

  /** Runs a transaction's callback with a `tx` that refuses work once the callback has settled; calls on the store inside it join it. */
  private async runCallback<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    let finished = false;
    const tx = new SqliteExecutor(this.db, this.busyTimeoutMs, this.statements, () => {
      if (finished) throw misuse('This transaction has already finished; use `tx` only until the transaction callback resolves.');
    });
    const scope: OpenTransaction = { tx, isOpen: () => !finished };
    try {
      return await runInTransaction(this, scope, () => fn(tx));
    } finally {
      finished = true;
    }
  }

  /** Rolls the open SQLite transaction back, if SQLite has not already (disk full and I/O errors roll back by themselves). */
  private rollbackQuietly(): void {
    try {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
    } catch {
      // rolled back already
    }
  }

  /** A transaction that may share its commit (TransactionOptions.groupCommit); resolves once that commit is done. */
  private async grouped<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    if (this.closed) throw Errors.DB_UNAVAILABLE('The SQLite metadata store is closed; open a new one to run statements.');
    let committed!: Promise<void>;
    const result = await this.queue.exclusive(async () => {
      if (!this.group) {
        await this.autocommit.run('BEGIN IMMEDIATE');
        this.group = { waiting: [], openedAt: Date.now(), scheduled: false };
      }
      const group = this.group;
      let value: T;
      try {
        this.unit.begin.run();
        value = await this.runCallback(fn);
        this.unit.release.run();
      } catch (err) {
        this.undoUnit(group, err);
        throw err;
      }
      committed = new Promise<void>((resolve, reject) => group.waiting.push({ resolve, reject }));
      committed.catch(() => {}); // awaited below, once this slot is given up
      if (group.waiting.length >= GROUP_MAX_MEMBERS || Date.now() - group.openedAt >= GROUP_MAX_MS) await this.commitGroup();
      else this.scheduleCommit(group);
      return value;
    });
    await committed;
    return result;
  }

  /** Rolls back the failed transaction of a group; if SQLite already rolled back everything (I/O, disk full), the group's others fail too. */
  private undoUnit(group: CommitGroup, err: unknown): void {
    let cause = err;
    try {
      if (this.db.inTransaction) {
        this.unit.rollback.run();
        this.unit.release.run();
        if (group.waiting.length === 0) this.scheduleCommit(group);
        return;
      }
    } catch (undoErr) {
      cause = undoErr;
    }
    this.rollbackQuietly();
    this.group = undefined;
    const lost = Errors.DB_UNAVAILABLE(
      'A transaction that shared this one\'s commit failed in a way that rolled back all of them; nothing of this transaction was stored. Retry it.',
      [],
      cause,
    );
    for (const w of group.waiting) w.reject(lost);
  }

  /** Commits the open group after this turn of the event loop, so that transactions started in it join the group. */
  private scheduleCommit(group: CommitGroup): void {
    if (group.scheduled) return;
    group.scheduled = true;
    setImmediate(() => {
      void this.queue.exclusive(async () => {
        if (this.group === group) await this.commitGroup();
      });
    });
  }

  /** Commits the open group, if any, and settles its members (never throws). Only while holding the connection. */
  private async commitGroup(): Promise<void> {
    const group = this.group;
    if (!group) return;
    this.group = undefined;
    try {
      // Retried while busy, like any COMMIT here (in WAL mode it takes no other lock than the one BEGIN IMMEDIATE holds).
      await this.autocommit.run('COMMIT');
    } catch (err) {
      this.rollbackQuietly();
      for (const w of group.waiting) w.reject(err);
      return;
    }
    for (const w of group.waiting) w.resolve();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Reads run to completion when called; queued writes were admitted before `closed` was set, and the close waits behind them.
    this.readerDb?.close();
    await this.queue.exclusive(async () => {
      await this.commitGroup();
      this.db.close();
    });
    await this.checkpointer?.stop();
  }

  protected admit<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) {
      return Promise.reject(Errors.DB_UNAVAILABLE('The SQLite metadata store is closed; open a new one to run statements.'));
    }
    // Work that is not part of a group commits the open one first: it runs on its own, as it always has.
    return this.queue.exclusive(async () => {
      await this.commitGroup();
      return fn();
    });
  }
}

/** Transactions sharing one SQLite transaction and its COMMIT (TransactionOptions.groupCommit). */
interface CommitGroup {
  /** Members whose callbacks finished, waiting for the COMMIT. */
  waiting: { resolve: () => void; reject: (err: unknown) => void }[];
  openedAt: number;
  /** A commit is queued for after this turn of the event loop. */
  scheduled: boolean;
}
