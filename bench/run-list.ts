/**
 * How fast a run list answers on a big project: N runs (default 10,000) with
 * config and summary values, filtered and sorted by summary values, first
 * page — through the whole service path (`kernel.call` → validation →
 * filter compiler → MetadataStore → Run messages) and, for comparison, the
 * same SQL text with the same parameters on the raw driver (better-sqlite3 /
 * pg). Prints one JSON line:
 *
 *   npx tsx bench/run-list.ts [--runs 10000] [--repeats 15] [--backends sqlite,postgres] [--tiny]
 *
 * `--tiny` (200 runs, 2 repeats) only proves the bench still runs
 * (test/e2e/bench-smoke.test.ts); its figures mean nothing.
 *
 * Target: median ≤ 50 ms per backend. Progress goes to stderr. PostgreSQL is
 * WLDB_TEST_PG_URL or postgres://postgres@127.0.0.1:5432/test (a temp schema).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import Database from 'better-sqlite3';
import { Kernel, localCallContext, coreServices, type MetadataStore, type SqlValue } from '../core/src/index.js';
import { toPostgresPlaceholders } from '../core/src/storage/metadata/postgres-metadata-store.js';
import { projectsPlugin, projectsApiRef } from '../plugins/projects/src/index.js';
import { parseRunFilter } from '../plugins/tracking/src/run-filter.js';
import { RunRepository } from '../plugins/tracking/src/run-repository.js';
import { parseRunSort } from '../plugins/tracking/src/run-sort.js';
import { createTrackingPlugin } from '../plugins/tracking/src/tracking-plugin.js';

const PG_URL = process.env.WLDB_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const FILTER = 'summary.val_loss < 0.5 AND config.lr > 0.0005 AND state = "finished"';
const SORT = '-summary.accuracy';
const LIMIT = 50;

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string' },
    repeats: { type: 'string' },
    backends: { type: 'string', default: 'sqlite,postgres' },
    tiny: { type: 'boolean', default: false },
  },
});
const runCount = Number(args.runs ?? (args.tiny ? 200 : 10_000));
const repeats = Number(args.repeats ?? (args.tiny ? 2 : 15));
if (!Number.isSafeInteger(runCount) || runCount < 1) throw new Error(`--runs must be a positive integer, got ${args.runs}`);
if (!Number.isSafeInteger(repeats) || repeats < 1) throw new Error(`--repeats must be a positive integer, got ${args.repeats}`);
const log = (m: string) => process.stderr.write(`${m}\n`);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

/**
 * Median times of each function, run in turns (a, b, c, a, b, c, …) so that
 * load from other processes on the machine weighs on all of them alike.
 */
async function timeEach(fns: (() => Promise<unknown>)[]): Promise<number[]> {
  for (const fn of fns) await fn(); // warm-up: statement caches, page cache
  const times: number[][] = fns.map(() => []);
  for (let i = 0; i < repeats; i++) {
    for (const [j, fn] of fns.entries()) {
      const t0 = performance.now();
      await fn();
      times[j]!.push(performance.now() - t0);
    }
  }
  return times.map(median);
}

/** N runs with realistic config and summary documents, written straight into the tables (the fixture, not what is measured). */
async function fill(db: MetadataStore, projectId: string): Promise<void> {
  const now = Date.now();
  const states = ['finished', 'finished', 'crashed', 'running', 'killed'];
  const runs: SqlValue[][] = [];
  const summaries: SqlValue[][] = [];
  for (let i = 0; i < runCount; i++) {
    const id = randomUUID();
    const config = { lr: [0.1, 0.01, 0.001, 0.0001][i % 4], batch_size: 32 * (1 + (i % 4)), epochs: 10 + (i % 20), optimizer: i % 2 ? 'adam' : 'sgd', model: { name: `resnet${18 + (i % 3) * 16}`, layers: 4 + (i % 8), dropout: (i % 5) / 10 }, seed: i };
    const summary: Record<string, number | string> = { val_loss: ((i * 7919) % 1000) / 1000, accuracy: ((i * 104729) % 997) / 997, 'train/loss': Math.sin(i), epoch: config.epochs, _step: 1000 + i, _runtime: 3600 + i };
    if (i % 50 === 0) summary.val_loss = 'NaN';
    const state = states[i % states.length]!;
    runs.push([id, projectId, `run-${i}`, `group-${i % 10}`, 'train', JSON.stringify(i % 3 ? ['baseline'] : ['baseline', 'sweep']), '', state, JSON.stringify(config), JSON.stringify(summary), now - i, state === 'running' ? null : now - i + 1000, now - i, now - i, now - i]);
    summaries.push([id, JSON.stringify(summary), '{}', now]);
  }
  const columns = ['id', 'project_id', 'name', 'group_name', 'job_type', 'tags', 'notes', 'state', 'config', 'summary', 'started_at', 'finished_at', 'heartbeat_at', 'created_at', 'updated_at'];
  // JSON text binds straight into PostgreSQL's jsonb columns; SQLite's are converted to JSONB, as the service stores them.
  await db.insertMany('runs', columns, runs);
  if (db.dialect === 'sqlite') await db.run('UPDATE runs SET tags = jsonb(tags), config = jsonb(config), summary = jsonb(summary)');
  await db.insertMany('run_summaries', ['run_id', 'metrics', 'user_values', 'updated_at'], summaries);
  if (db.dialect === 'postgres') await db.run('ANALYZE runs');
  if (db.dialect === 'postgres') await db.run('ANALYZE run_summaries');
  if (db.dialect === 'sqlite') await db.run('ANALYZE');
}

async function runBackend(name: 'sqlite' | 'postgres'): Promise<Record<string, unknown>> {
  let url: string;
  let cleanup: () => Promise<void>;
  let schema = '';
  if (name === 'sqlite') {
    const dir = await mkdtemp(join(tmpdir(), 'wldb-bench-runs-'));
    url = `sqlite://${join(dir, 'bench.db')}`;
    cleanup = () => rm(dir, { recursive: true, force: true });
  } else {
    schema = `wldb_bench_${randomBytes(5).toString('hex')}`;
    const u = new URL(PG_URL);
    u.searchParams.set('schema', schema);
    url = u.toString();
    cleanup = async () => {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await c.end();
    };
  }
  const blobs = await mkdtemp(join(tmpdir(), 'wldb-bench-blobs-'));
  const kernel = new Kernel({ plugins: [projectsPlugin, createTrackingPlugin()], config: { db: url, blobs: `file://${blobs}`, bus: 'memory', logLevel: 'silent' } });
  try {
    await kernel.start();
    const db = kernel.get(coreServices.db);
    const project = await kernel.get(projectsApiRef).ensure('bench-run-list', localCallContext('bench', kernel.logger));
    log(`${name}: writing ${runCount.toLocaleString('en')} runs…`);
    await fill(db, project.id);

    const request = { projectId: project.id, filter: FILTER, sort: SORT, limit: LIMIT, cursor: '' };
    let total = 0;
    const service = async () => {
      const res = await kernel.call<{ data: unknown[]; meta: { total: number } }>('wanllmdb.tracking.v1.RunService/ListRuns', request);
      total = res.meta.total;
    };
    const defaultSort = () => kernel.call('wanllmdb.tracking.v1.RunService/ListRuns', { projectId: project.id, limit: LIMIT });

    // The same statement on the raw driver, on a connection of its own.
    const { statement } = new RunRepository(db).listStatements({ projectId: project.id, filter: parseRunFilter(FILTER), sort: parseRunSort(SORT), limit: LIMIT });
    let rawQuery: () => Promise<unknown>;
    let closeRaw: () => Promise<void>;
    if (name === 'sqlite') {
      const raw = new Database(url.slice('sqlite://'.length), { readonly: true, fileMustExist: true, timeout: 10_000 });
      const params = statement.params as unknown[];
      rawQuery = async () => raw.prepare(statement.text).all(params);
      closeRaw = async () => void raw.close();
    } else {
      const raw = new pg.Client({ connectionString: PG_URL, options: `-c search_path=${schema}` });
      await raw.connect();
      const text = toPostgresPlaceholders(statement.text);
      rawQuery = () => raw.query({ text, values: statement.params as unknown[] });
      closeRaw = () => raw.end();
    }
    const [serviceMs, rawMs, defaultMs] = await timeEach([service, rawQuery, defaultSort]);
    await closeRaw();
    const result = { service_ms: +serviceMs!.toFixed(2), raw_driver_ms: +rawMs!.toFixed(2), ratio: +(serviceMs! / rawMs!).toFixed(2), default_sort_ms: +defaultMs!.toFixed(2), matched: total };
    log(`${name}: ${JSON.stringify(result)}`);
    return result;
  } finally {
    await kernel.stop().catch(() => undefined);
    await cleanup();
    await rm(blobs, { recursive: true, force: true });
  }
}

const results: Record<string, unknown> = {};
for (const b of args.backends.split(',')) {
  if (b !== 'sqlite' && b !== 'postgres') throw new Error(`unknown backend ${b}`);
  results[b] = await runBackend(b);
}
process.stdout.write(
  `${JSON.stringify({ bench: 'run-list', runs: runCount, page: LIMIT, repeats, filter: FILTER, sort: SORT, target_ms: 50, ...results, cpus: (await import('node:os')).cpus().length })}\n`,
);
