import pg from 'pg';
import { Errors } from '../../errors.js';
import type { MetadataStore, Migration, Row, SqlExecutor, SqlValue } from './metadata-store.js';
import { Migrator, advisoryLockKey, type MigrationTarget, type MigrationTransaction } from './migrations.js';
import { RoutedMetadataStore } from './routed-store.js';
import { planMultiRowInsert } from './multi-row-insert.js';
import { misuse, statementFailed } from './sql-errors.js';
import { currentTransaction, inSavepoint, runInTransaction, type OpenTransaction } from './transaction-scope.js';

/**
 * The server MetadataStore: PostgreSQL through a `pg` pool.
 *
 * SQL is written with `?` placeholders (as for SQLite) and rewritten to
 * `$1…$n` here. BIGINT (INT8) values come back as JS numbers, like SQLite's
 * INTEGER; NUMERIC stays a string. The URL may carry `?schema=name`: the
 * schema is created if missing and is the search_path of every pooled
 * connection, so one database can hold several isolated stores (tests use a
 * fresh schema per suite).
 *
 * Inside `transaction(fn)` use the `tx` given to `fn`; calls on the store made
 * from inside `fn` are routed into the same transaction (a nested
 * `transaction()` becomes a savepoint) rather than taking another connection.
 */
export interface PostgresMetadataStoreOptions {
  /** Largest number of pooled connections. Default 10. */
  maxConnections?: number;
}

// The bind message counts parameters in an unsigned 16-bit field.
const MAX_PARAMETERS = 65_535;
const DEFAULT_MAX_CONNECTIONS = 10;
const CONNECT_TIMEOUT_MS = 10_000;
/** First key of every advisory lock this store takes ("WLDB"), so other users of advisory locks don't collide. */
const ADVISORY_LOCK_CLASS = 0x574c4442;
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'EAI_AGAIN']);

/** Where a URL points, for messages: host:port and database, never the password. */
interface Target {
  connectionString: string;
  where: string;
  schema: string | undefined;
  /** libpq `options` (e.g. `-c search_path=…`) sent when each connection starts. */
  startupOptions: string | undefined;
}

function parseUrl(url: string): Target {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw Errors.CONFIG_INVALID(
      'Setting WANLLMDB_DB is not a valid PostgreSQL URL. Use postgres://user[:password]@host[:port]/database[?schema=name].',
      [{ field: 'WANLLMDB_DB', message: 'expected postgres://user@host:5432/database' }],
    );
  }
  const host = parsed.hostname || parsed.searchParams.get('host') || 'localhost';
  const where = `${host}:${parsed.port || '5432'} (database "${decodeURIComponent(parsed.pathname.slice(1)) || '(default)'}")`;

  const schema = parsed.searchParams.get('schema') ?? undefined;
  if (schema !== undefined && !SCHEMA_NAME.test(schema)) {
    throw Errors.CONFIG_INVALID(
      `Setting WANLLMDB_DB names schema ${JSON.stringify(schema)}, which is not a plain lower-case identifier. Use letters a-z, digits and underscores, starting with a letter or underscore.`,
      [{ field: 'WANLLMDB_DB', message: 'schema must match [a-z_][a-z0-9_]*' }],
    );
  }
  // Both are taken out of the URL: the driver would let the URL's `options` override ours.
  const options = [parsed.searchParams.get('options'), schema && `-c search_path=${schema}`].filter(Boolean).join(' ');
  parsed.searchParams.delete('schema');
  parsed.searchParams.delete('options');
  return { connectionString: parsed.toString(), where, schema, startupOptions: options || undefined };
}

function failureOf(err: unknown, sql: string, where: string) {
  const code = String((err as { code?: unknown } | undefined)?.code ?? '');
  const message = err instanceof Error ? err.message : '';
  if (code.startsWith('23')) return statementFailed('constraint', 'postgres', sql, err);
  if (/^(08|53|57P)/.test(code) || UNAVAILABLE_CODES.has(code) || /Connection terminated|not queryable|timeout exceeded when trying to connect/i.test(message)) {
    return statementFailed('unavailable', 'postgres', sql, err, `Check that PostgreSQL at ${where} is running and reachable, then retry.`);
  }
  return statementFailed('query', 'postgres', sql, err);
}

/** The port's convention is booleans as 0/1; pg would send 'true', which an INTEGER column refuses. */
function bind(value: SqlValue): SqlValue {
  return typeof value === 'boolean' ? (value ? 1 : 0) : value;
}

function bindAll(params: readonly SqlValue[] | undefined): SqlValue[] | undefined {
  return params === undefined || params.length === 0 ? undefined : params.map(bind);
}

/**
 * Rewrites `?` placeholders to `$1…$n`, leaving `?` alone inside quoted
 * strings ('…', E'…', $tag$…$tag$), quoted identifiers and comments.
 */
export function toPostgresPlaceholders(sql: string): string {
  if (!sql.includes('?')) return sql;
  let out = '';
  let n = 0;
  let i = 0;
  const len = sql.length;
  while (i < len) {
    const ch = sql[i]!;
    if (ch === '?') {
      out += `$${++n}`;
      i++;
      continue;
    }
    let end = i + 1;
    if (ch === "'") {
      const backslashEscapes = /[eE]/.test(sql[i - 1] ?? '') && !/[A-Za-z0-9_]/.test(sql[i - 2] ?? '');
      while (end < len) {
        const c = sql[end]!;
        if (backslashEscapes && c === '\\') end += 2;
        else if (c === "'" && sql[end + 1] === "'") end += 2;
        else if (c === "'") break;
        else end++;
      }
      end++;
    } else if (ch === '"') {
      end = sql.indexOf('"', i + 1);
      end = end < 0 ? len : end + 1;
    } else if (ch === '-' && sql[i + 1] === '-') {
      end = sql.indexOf('\n', i);
      end = end < 0 ? len : end + 1;
    } else if (ch === '/' && sql[i + 1] === '*') {
      end = sql.indexOf('*/', i + 2);
      end = end < 0 ? len : end + 2;
    } else if (ch === '$') {
      const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i, i + 64));
      if (tag && !/[A-Za-z0-9_]/.test(sql[i - 1] ?? '')) {
        const close = sql.indexOf(tag[0], i + tag[0].length);
        end = close < 0 ? len : close + tag[0].length;
      }
    }
    out += sql.slice(i, end);
    i = end;
  }
  return out;
}

/** Rewritten statements by their text: the same few statements run over and over. */
class PlaceholderCache {
  private readonly cache = new Map<string, string>();

  get(sql: string): string {
    let rewritten = this.cache.get(sql);
    if (rewritten === undefined) {
      rewritten = toPostgresPlaceholders(sql);
      if (this.cache.size >= 1000) this.cache.clear();
      this.cache.set(sql, rewritten);
    }
    return rewritten;
  }
}

/**
 * Full insertMany chunks run as named prepared statements: PostgreSQL then
 * parses and plans a 65,535-parameter INSERT once per connection instead of
 * once per chunk (about 1.5× the rows/s). pg keeps one statement per name and
 * connection and refuses a name reused with other text, so a name is given to
 * exactly one (table, columns, rows) shape for the life of the process.
 */
const preparedInsertNames = new Map<string, string>();

function preparedInsertName(table: string, columns: readonly string[], rows: number): string {
  const shape = `${table}(${columns.join(',')})x${rows}`;
  let name = preparedInsertNames.get(shape);
  if (name === undefined) {
    name = `wldb_insert_${preparedInsertNames.size + 1}`;
    preparedInsertNames.set(shape, name);
  }
  return name;
}

/**
 * Other statements with parameters run as named prepared statements too, one
 * name per SQL text, once a text has run PREPARE_AFTER times: PostgreSQL
 * parses each text once per connection instead of on every call (a server's
 * hot statements are a few hundred texts run thousands of times a second),
 * and one-off texts (a user's filter, IN lists of many lengths) never take a
 * name. Bounded: past MAX_PREPARED_TEXTS names statements run unnamed, and
 * the counts of texts not yet named are forgotten past MAX_COUNTED_TEXTS.
 * `*` in a result (`SELECT *`, `RETURNING *`) is never prepared: its columns
 * could change under a kept plan.
 */
const PREPARE_AFTER = 3;
const MAX_PREPARED_TEXTS = 1_000;
const MAX_COUNTED_TEXTS = 10_000;
const preparedNames = new Map<string, string | null>();
const textRuns = new Map<string, number>();

function preparedName(text: string): string | undefined {
  const known = preparedNames.get(text);
  if (known !== undefined) return known ?? undefined;
  if (preparedNames.size >= MAX_PREPARED_TEXTS) return undefined;
  const runs = (textRuns.get(text) ?? 0) + 1;
  if (runs < PREPARE_AFTER) {
    if (textRuns.size >= MAX_COUNTED_TEXTS) textRuns.clear();
    textRuns.set(text, runs);
    return undefined;
  }
  textRuns.delete(text);
  const name = /\*/.test(text.replace(/COUNT\(\*\)/gi, '')) ? null : `wldb_s_${preparedNames.size + 1}`;
  preparedNames.set(text, name);
  return name ?? undefined;
}

type Queryable = Pick<pg.Pool, 'query'> | pg.PoolClient;

/** Statements on the pool (autocommit) or on one checked-out connection (a transaction). */
class PostgresExecutor implements MigrationTransaction {
  readonly dialect = 'postgres' as const;

  constructor(
    private readonly on: Queryable,
    private readonly placeholders: PlaceholderCache,
    private readonly where: string,
    /** Throws when this executor may no longer be used (a finished transaction). */
    private readonly checkUsable: () => void = () => {},
  ) {}

  async query<T extends Row = Row>(sql: string, params?: readonly SqlValue[]): Promise<T[]> {
    const result = await this.send(sql, params);
    // Several statements without parameters give one result each; the last one is the answer.
    return (Array.isArray(result) ? (result.at(-1)?.rows ?? []) : result.rows) as T[];
  }

  async run(sql: string, params?: readonly SqlValue[]): Promise<{ changes: number }> {
    const result = await this.send(sql, params);
    const results: pg.QueryResult[] = Array.isArray(result) ? result : [result];
    return { changes: results.reduce((sum, r) => sum + (r.rowCount ?? 0), 0) };
  }

  async exec(sql: string): Promise<void> {
    // Without parameters pg uses the simple query protocol, which runs several statements.
    await this.send(sql, undefined);
  }

  /** Must run inside a transaction: chunks are separate statements. */
  async insertMany(table: string, columns: readonly string[], rows: readonly (readonly SqlValue[])[]): Promise<number> {
    this.checkUsable();
    if (rows.length === 0) return 0;
    const plan = planMultiRowInsert('postgres', table, columns, MAX_PARAMETERS, bind);
    let full: pg.QueryConfig | undefined;
    for (let from = 0; from < rows.length; from += plan.rowsPerStatement) {
      const to = Math.min(rows.length, from + plan.rowsPerStatement);
      const query: pg.QueryConfig =
        to - from === plan.rowsPerStatement
          ? (full ??= { name: preparedInsertName(table, columns, plan.rowsPerStatement), text: plan.sql(plan.rowsPerStatement) })
          : { text: plan.sql(to - from) };
      try {
        await this.on.query({ ...query, values: plan.params(rows, from, to) });
      } catch (err) {
        throw failureOf(err, query.text, this.where);
      }
    }
    return rows.length;
  }

  private async send(sql: string, params: readonly SqlValue[] | undefined): Promise<pg.QueryResult | pg.QueryResult[]> {
    this.checkUsable();
    const values = bindAll(params);
    const text = values ? this.placeholders.get(sql) : sql;
    const name = values ? preparedName(text) : undefined;
    try {
      return (await (name ? this.on.query({ name, text, values }) : this.on.query(text, values))) as pg.QueryResult | pg.QueryResult[];
    } catch (err) {
      throw failureOf(err, sql, this.where);
    }
  }
}

export class PostgresMetadataStore extends RoutedMetadataStore {
  readonly dialect = 'postgres' as const;
  private readonly placeholders = new PlaceholderCache();
  protected readonly autocommit: PostgresExecutor;
  protected readonly migrator: Migrator;
  private readonly inFlight = new Set<Promise<unknown>>();
  private closed = false;

  /**
   * Connects once (so a wrong URL or a stopped server fails here, not on the
   * first query), creates the URL's `schema` if missing, and keeps a pool.
   */
  static async open(url: string, options: PostgresMetadataStoreOptions = {}): Promise<PostgresMetadataStore> {
    const target = parseUrl(url);
    // Per-pool parsers: the process-wide pg.types stays untouched for other pg users.
    const types = new pg.TypeOverrides();
    types.setTypeParser(pg.types.builtins.INT8, (text: string) => Number(text));
    const pool = new pg.Pool({
      connectionString: target.connectionString,
      ...(target.startupOptions ? { options: target.startupOptions } : {}),
      types,
      max: options.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    });
    // An idle connection that breaks is dropped by the pool and replaced on the
    // next checkout; without a listener the 'error' event would end the process.
    pool.on('error', () => {});

    let client: pg.PoolClient;
    try {
      client = await pool.connect();
    } catch (err) {
      await pool.end().catch(() => {});
      const reason = (err as Error).message || (err as { code?: string }).code || String(err);
      throw Errors.DB_UNAVAILABLE(
        `Cannot connect to PostgreSQL at ${target.where}: ${reason}. ` +
          'Check that the server is running and reachable, and that WANLLMDB_DB names the right host, port, database and user.',
        [],
        err,
      );
    }
    try {
      if (target.schema) await createSchema(client, target.schema);
      client.release();
    } catch (err) {
      client.release(true);
      await pool.end().catch(() => {});
      throw Errors.DB_UNAVAILABLE(
        `Cannot create schema "${target.schema}" in PostgreSQL at ${target.where}: ${(err as Error).message}. ` +
          'Create the schema yourself, or grant the user CREATE on the database.',
        [],
        err,
      );
    }
    return new PostgresMetadataStore(pool, target.where);
  }

  private constructor(
    private readonly pool: pg.Pool,
    /** host:port and database, for messages. */
    private readonly where: string,
  ) {
    super();
    this.autocommit = new PostgresExecutor(pool, this.placeholders, where);
    const target: MigrationTarget = {
      dialect: 'postgres',
      executor: this,
      withMigrationLock: (lockName, fn) =>
        this.transaction(async (tx) => {
          // Held until this transaction ends; other migrators of the same plugin wait here.
          await tx.query('SELECT pg_advisory_xact_lock(?, ?)', [ADVISORY_LOCK_CLASS, advisoryLockKey(lockName)]);
          return fn(tx as PostgresExecutor);
        }),
    };
    this.migrator = new Migrator(target);
  }

  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    const open = currentTransaction(this);
    if (open) return inSavepoint(open, fn);
    return this.admit(async () => {
      const client = await this.checkout();
      const connection = new PostgresExecutor(client, this.placeholders, this.where);
      let finished = false;
      const tx = new PostgresExecutor(client, this.placeholders, this.where, () => {
        if (finished) throw misuse('This transaction has already finished; use `tx` only until the transaction callback resolves.');
      });
      const scope: OpenTransaction = { tx, isOpen: () => !finished };
      // A connection whose ROLLBACK failed is in an unknown state: destroy it rather than reuse it.
      let broken: unknown;
      try {
        await connection.run('BEGIN');
        const result = await runInTransaction(this, scope, () => fn(tx));
        finished = true;
        await connection.run('COMMIT');
        return result;
      } catch (err) {
        finished = true;
        await connection.run('ROLLBACK').catch((rollbackErr: unknown) => (broken = rollbackErr));
        throw err;
      } finally {
        client.release(broken === undefined ? undefined : true);
      }
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.inFlight]);
    await this.pool.end();
  }

  private async checkout(): Promise<pg.PoolClient> {
    try {
      return await this.pool.connect();
    } catch (err) {
      throw failureOf(err, 'BEGIN', this.where);
    }
  }

  /** Runs `work` unless the store is closed, and lets close() wait for it. */
  protected admit<T>(work: () => Promise<T>): Promise<T> {
    if (this.closed) {
      return Promise.reject(Errors.DB_UNAVAILABLE('The PostgreSQL metadata store is closed; open a new one to run statements.'));
    }
    const promise = work();
    this.inFlight.add(promise);
    const forget = () => this.inFlight.delete(promise);
    promise.then(forget, forget);
    return promise;
  }
}

async function createSchema(client: pg.PoolClient, schema: string): Promise<void> {
  try {
    await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
  } catch (err) {
    // Two stores creating the same schema at once: the loser sees a duplicate, which is fine.
    const code = (err as { code?: string }).code;
    if (code !== '23505' && code !== '42P06') throw err;
  }
}
