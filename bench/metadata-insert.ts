/**
 * How much the MetadataStore port costs over its raw drivers when inserting
 * many small rows. For SQLite (a temp file) and PostgreSQL (a temp schema) it
 * inserts N rows of (run_id TEXT, key TEXT, step BIGINT, value DOUBLE
 * PRECISION) once through `insertMany` and once through the raw driver
 * (better-sqlite3 / pg) doing the same thing its best way (multi-row INSERTs
 * of the same chunk size in one transaction, full chunks as one prepared
 * statement), and prints one JSON line:
 *
 *   npx tsx bench/metadata-insert.ts [--rows 1000000] [--rounds 3] [--backends sqlite,postgres] [--tiny]
 *
 * `--tiny` (2,000 rows, one round) only proves the bench still runs
 * (test/e2e/bench-smoke.test.ts); its figures mean nothing.
 *
 * Progress goes to stderr. PostgreSQL is WLDB_TEST_PG_URL or
 * postgres://postgres@127.0.0.1:5432/test.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import Database from 'better-sqlite3';
import { createMetadataStore, type MetadataStore, type SqlValue } from '../core/src/storage/metadata/index.js';

type Point = [runId: string, key: string, step: number, value: number];

const TABLE_DDL = (table: string) => `CREATE TABLE ${table} (run_id TEXT NOT NULL, key TEXT NOT NULL, step BIGINT NOT NULL, value DOUBLE PRECISION NOT NULL)`;
const COLUMNS = ['run_id', 'key', 'step', 'value'] as const;
const SQLITE_ROWS_PER_STATEMENT = Math.floor(32_766 / COLUMNS.length);
const PG_ROWS_PER_STATEMENT = Math.floor(65_535 / COLUMNS.length);
const PG_URL = process.env.WLDB_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

const { values: args } = parseArgs({
  options: {
    rows: { type: 'string' },
    rounds: { type: 'string' },
    backends: { type: 'string', default: 'sqlite,postgres' },
    tiny: { type: 'boolean', default: false },
  },
});
const rowCount = Number(args.rows ?? (args.tiny ? 2000 : 1_000_000));
if (!Number.isSafeInteger(rowCount) || rowCount < 1) throw new Error(`--rows must be a positive integer, got ${args.rows}`);
const rounds = Number(args.rounds ?? (args.tiny ? 1 : 3));
if (!Number.isSafeInteger(rounds) || rounds < 1) throw new Error(`--rounds must be a positive integer, got ${args.rounds}`);
const backends = new Set(args.backends.split(','));

const log = (message: string) => process.stderr.write(`${message}\n`);

function makeRows(n: number): Point[] {
  const keys = ['loss', 'accuracy', 'lr', 'grad_norm'];
  return Array.from({ length: n }, (_, i): Point => [`run-${i % 16}`, keys[i % keys.length]!, i, Math.sin(i)]);
}

async function timed(label: string, work: () => Promise<void>): Promise<number> {
  const start = process.hrtime.bigint();
  const cpuBefore = process.cpuUsage();
  await work();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const cpu = process.cpuUsage(cpuBefore);
  const perSec = Math.round(rowCount / seconds);
  log(`  ${label}: ${seconds.toFixed(2)} s, ${perSec.toLocaleString('en')} rows/s (this process used ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s of CPU)`);
  return perSec;
}

interface Figures {
  portRowsPerSec: number;
  rawRowsPerSec: number;
  /** port / raw: 1 means the port costs nothing. */
  ratio: number;
}

const figures = (port: number, raw: number): Figures => ({ portRowsPerSec: port, rawRowsPerSec: raw, ratio: Math.round((port / raw) * 1000) / 1000 });

/**
 * Runs both sides `rounds` times in ABBA order (raw, port, port, raw, …), so a
 * machine that warms up or slows down during the run favours neither, and
 * keeps each side's best.
 */
async function compare(raw: () => Promise<number>, port: () => Promise<number>): Promise<Figures> {
  let bestRaw = 0;
  let bestPort = 0;
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? [raw, port] : [port, raw];
    for (const side of order) {
      const perSec = await side();
      if (side === raw) bestRaw = Math.max(bestRaw, perSec);
      else bestPort = Math.max(bestPort, perSec);
    }
  }
  return figures(bestPort, bestRaw);
}

// ---------------------------------------------------------------- SQLite

/** The raw driver's best way: better-sqlite3, synchronous, on the calling thread (the port's driver too). */
async function rawSqlite(file: string, rows: Point[]): Promise<number> {
  const db = new Database(file, { timeout: 10_000 });
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec(TABLE_DDL('points'));
    const tuple = `(${COLUMNS.map(() => '?').join(',')})`;
    const insertSql = (n: number) => `INSERT INTO points (${COLUMNS.join(', ')}) VALUES ${new Array<string>(n).fill(tuple).join(',')}`;
    const flat = (from: number, to: number) => {
      const params = new Array<string | number>((to - from) * COLUMNS.length);
      let i = 0;
      for (let r = from; r < to; r++) for (const value of rows[r]!) params[i++] = value;
      return params;
    };
    return await timed('raw better-sqlite3', async () => {
      db.exec('BEGIN IMMEDIATE');
      const full = Math.floor(rows.length / SQLITE_ROWS_PER_STATEMENT) * SQLITE_ROWS_PER_STATEMENT;
      if (full > 0) {
        const statement = db.prepare(insertSql(SQLITE_ROWS_PER_STATEMENT));
        for (let from = 0; from < full; from += SQLITE_ROWS_PER_STATEMENT) statement.run(flat(from, from + SQLITE_ROWS_PER_STATEMENT));
      }
      if (full < rows.length) db.prepare(insertSql(rows.length - full)).run(flat(full, rows.length));
      db.exec('COMMIT');
    });
  } finally {
    db.close();
  }
}

async function portRun(url: string, rows: Point[], label: string): Promise<number> {
  const store: MetadataStore = await createMetadataStore(url);
  try {
    await store.run(TABLE_DDL('points'));
    return await timed(label, async () => {
      await store.insertMany('points', COLUMNS, rows as SqlValue[][]);
    });
  } finally {
    await store.close();
  }
}

async function benchSqlite(rows: Point[]): Promise<Figures> {
  log('sqlite (temp file, WAL, synchronous=NORMAL):');
  const dir = await mkdtemp(join(tmpdir(), 'wldb-bench-'));
  let round = 0;
  const file = () => join(dir, `bench-${++round}.db`);
  try {
    return await compare(
      () => rawSqlite(file(), rows),
      () => portRun(`sqlite://${file()}`, rows, 'port insertMany'),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- PostgreSQL

async function rawPostgres(schema: string, rows: Point[]): Promise<number> {
  const client = new pg.Client({ connectionString: PG_URL, options: `-c search_path=${schema}` });
  await client.connect();
  try {
    await client.query('DROP TABLE IF EXISTS points');
    await client.query(TABLE_DDL('points'));
    const width = COLUMNS.length;
    const insertSql = (n: number) =>
      `INSERT INTO points (${COLUMNS.join(', ')}) VALUES ` +
      Array.from({ length: n }, (_, r) => `(${Array.from({ length: width }, (_, c) => `$${r * width + c + 1}`).join(',')})`).join(',');
    const fullSql = insertSql(PG_ROWS_PER_STATEMENT);
    return await timed('raw pg', async () => {
      await client.query('BEGIN');
      for (let from = 0; from < rows.length; from += PG_ROWS_PER_STATEMENT) {
        const to = Math.min(rows.length, from + PG_ROWS_PER_STATEMENT);
        const params = new Array<string | number>((to - from) * width);
        let i = 0;
        for (let r = from; r < to; r++) for (const value of rows[r]!) params[i++] = value;
        // A named statement is parsed and planned once, then only bound and executed.
        await client.query(to - from === PG_ROWS_PER_STATEMENT ? { name: 'full_chunk', text: fullSql, values: params } : { text: insertSql(to - from), values: params });
      }
      await client.query('COMMIT');
    });
  } finally {
    await client.end();
  }
}

async function benchPostgres(rows: Point[]): Promise<Figures> {
  log('postgres (temp schema):');
  const schema = `wldb_bench_${randomBytes(4).toString('hex')}`;
  const url = new URL(PG_URL);
  url.searchParams.set('schema', schema);
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE SCHEMA ${schema}`);
    const portInFreshTable = async () => {
      await admin.query(`DROP TABLE IF EXISTS ${schema}.points`);
      return portRun(url.toString(), rows, 'port insertMany');
    };
    return await compare(() => rawPostgres(schema, rows), portInFreshTable);
  } finally {
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.end();
  }
}

// ----------------------------------------------------------------

log(`making ${rowCount.toLocaleString('en')} rows…`);
const rows = makeRows(rowCount);
const result: Record<string, unknown> = { bench: 'metadata-insert', rows: rowCount };
if (backends.has('sqlite')) result.sqlite = await benchSqlite(rows);
if (backends.has('postgres')) result.postgres = await benchPostgres(rows);
process.stdout.write(`${JSON.stringify(result)}\n`);
