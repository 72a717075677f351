/**
 * Chart queries on SqlMetricStore, against the physical limit measured in the
 * same run. Prints one JSON line:
 *
 *   npx tsx bench/metric-chart-query.ts [--backends sqlite,postgres] [--big 10000000] [--runs 100] [--run-points 100000] [--repeat 30] [--tiny]
 *
 * `--tiny` (20,000 points, 4 runs × 2,000, 2 repeats) only proves the bench
 * still runs (test/e2e/bench-smoke.test.ts); its figures mean nothing.
 *
 * Data, ingested first through SqlMetricStore.append in large batches (the
 * ingest rate is reported too):
 * - (a) one run, one key, --big points (10,000,000) → query 1,000 buckets, target ≤ 20 ms;
 * - (b) --runs runs (100) × --run-points points (100,000) → one query for all
 *   runs, 1,000 buckets each, target ≤ 150 ms.
 * Each query is repeated --repeat times; median and p95 are reported.
 *
 * Physical limit of each query: reading the very tile chunks the query needs
 * with the raw driver (better-sqlite3 / pg, one statement, as the store does) plus a plain JS
 * min/max/mean of the same number of tile buckets into 1,000 buckets — what
 * any implementation on these tiles must at least do. For scale, `naiveReadMs`
 * is what reading all of (a)'s raw chunks with the raw driver costs (the
 * O(points) alternative). Progress goes to stderr.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import Database from 'better-sqlite3';
import { createMetadataStore, type MetadataStore } from '../core/src/storage/metadata/index.js';
import { encodeMetricBatch, type MetricColumns } from '../plugins/tracking/src/metrics/metric-batch.js';
import { decodeChunk } from '../plugins/tracking/src/metrics/metric-chunk.js';
import { SqlMetricStore } from '../plugins/tracking/src/metrics/sql-metric-store.js';
import { pointsPerItem, tileLevels } from '../plugins/tracking/src/metrics/tile-levels.js';

const { values: args } = parseArgs({
  options: {
    backends: { type: 'string', default: 'sqlite,postgres' },
    big: { type: 'string' },
    runs: { type: 'string' },
    'run-points': { type: 'string' },
    repeat: { type: 'string' },
    tiny: { type: 'boolean', default: false },
  },
});
const bigPoints = Number(args.big ?? (args.tiny ? 20_000 : 10_000_000));
const runCount = Number(args.runs ?? (args.tiny ? 4 : 100));
const runPoints = Number(args['run-points'] ?? (args.tiny ? 2000 : 100_000));
const repeat = Number(args.repeat ?? (args.tiny ? 2 : 30));
const BUCKETS = 1000;
const INGEST_BATCH = 1_000_000;
const PG_URL = process.env.WLDB_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const log = (message: string) => process.stderr.write(`${message}\n`);

function columns(n: number): MetricColumns {
  return { length: 0, step: new Float64Array(n), value: new Float64Array(n), time: new Float64Array(n), keyIndex: new Int32Array(n), keys: ['loss'] };
}

/** Points [from, from + n) of a noisy decaying curve with a spike every 777,777 steps. */
function fill(cols: MetricColumns, from: number, n: number, seed: number): Uint8Array {
  cols.length = n;
  for (let i = 0; i < n; i++) {
    const s = from + i;
    cols.step[i] = s;
    cols.value[i] = s % 777_777 === 7 ? 100 : Math.exp(-s / 3e6) + 0.05 * Math.sin(s * 0.37 + seed);
    cols.time[i] = 1_700_000_000_000 + s * 20;
  }
  return encodeMetricBatch(cols);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const p95 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(xs.length * 0.95) - 1)]!;
const round = (x: number) => Math.round(x * 100) / 100;
/** The store's median over the limit's (a limit measured as 0 ms on a tiny run counts as 0.01 ms). */
const ratio = (ms: number, limitMs: number) => round(ms / Math.max(0.01, limitMs));

async function timeRepeated(fn: () => Promise<unknown>): Promise<{ medianMs: number; p95Ms: number }> {
  await fn(); // warm-up
  const times: number[] = [];
  for (let i = 0; i < repeat; i++) {
    const start = performance.now();
    await fn();
    times.push(performance.now() - start);
  }
  return { medianMs: round(median(times)), p95Ms: round(p95(times)) };
}

/** The level the store reads for a whole-series query of `count` points (see series-query.ts). */
function chartLevel(count: number): number {
  if (count <= BUCKETS) return 0;
  for (let level = 1; level <= tileLevels(count); level++) if (Math.ceil(count / pointsPerItem(level)) <= 4 * BUCKETS) return level;
  return tileLevels(count);
}

/** Plain JS min/max/mean of the chunks' tile buckets into 1,000 equal-width buckets (the CPU floor). */
function reduceTiles(blobs: Uint8Array[]): number {
  let checksum = 0;
  const decoded = blobs.map((b) => decodeChunk(b)).flatMap((c) => (c.kind === 1 ? [c.tiles] : []));
  const lo = decoded[0]?.firstStep[0] ?? 0;
  const last = decoded.at(-1);
  const hi = last ? last.lastStep[last.n - 1]! : 1;
  const width = (hi - lo) / BUCKETS || 1;
  const min = new Float64Array(BUCKETS).fill(Infinity);
  const max = new Float64Array(BUCKETS).fill(-Infinity);
  const sum = new Float64Array(BUCKETS);
  const count = new Float64Array(BUCKETS);
  for (const t of decoded) {
    for (let i = 0; i < t.n; i++) {
      const b = Math.min(BUCKETS - 1, Math.floor((t.firstStep[i]! - lo) / width));
      if (t.min[i]! < min[b]!) min[b] = t.min[i]!;
      if (t.max[i]! > max[b]!) max[b] = t.max[i]!;
      sum[b]! += t.sum[i]!;
      count[b]! += t.count[i]!;
    }
  }
  for (let b = 0; b < BUCKETS; b++) checksum += count[b] ? sum[b]! / count[b]! + min[b]! + max[b]! : 0;
  return checksum;
}

interface RawReader {
  /** Blobs of metric_chunks rows matching the WHERE clause (with `?` placeholders). */
  blobs(where: string, params: (string | number)[]): Promise<Uint8Array[]>;
  close(): Promise<void>;
}

async function rawSqlite(file: string): Promise<RawReader> {
  const db = new Database(file, { readonly: true, fileMustExist: true, timeout: 10_000 });
  return {
    blobs: async (where, params) => db.prepare<unknown[], { data: Buffer }>(`SELECT data FROM metric_chunks WHERE ${where}`).all(params).map((r) => r.data),
    close: async () => void db.close(),
  };
}

async function rawPostgres(url: string, schema: string): Promise<RawReader> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`SET search_path TO "${schema}"`);
  return {
    async blobs(where, params) {
      let n = 0;
      const text = where.replace(/\?/g, () => `$${++n}`);
      return (await client.query<{ data: Buffer }>(`SELECT data FROM metric_chunks WHERE ${text}`, params)).rows.map((r) => r.data);
    },
    close: () => client.end(),
  };
}

async function bench(backend: 'sqlite' | 'postgres') {
  log(`${backend}:`);
  let db: MetadataStore;
  let raw: () => Promise<RawReader>;
  let cleanUp: () => Promise<void>;
  if (backend === 'sqlite') {
    const dir = await mkdtemp(join(tmpdir(), 'wldb-bench-chart-'));
    const file = join(dir, 'metrics.db');
    db = await createMetadataStore(`sqlite://${file}`);
    raw = () => rawSqlite(file);
    cleanUp = () => rm(dir, { recursive: true, force: true });
  } else {
    const schema = `wldb_bench_${randomBytes(4).toString('hex')}`;
    const url = new URL(PG_URL);
    url.searchParams.set('schema', schema);
    db = await createMetadataStore(url.toString());
    raw = () => rawPostgres(PG_URL, schema);
    cleanUp = async () => {
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await client.end();
    };
  }
  const store = await SqlMetricStore.open(db, { logger: { warn: () => {}, error: (d, m) => log(`error: ${m} ${String((d as { err?: unknown }).err)}`) } });
  try {
    // Ingest (a): one key, large batches.
    const big = 'big-run';
    let start = performance.now();
    const cols = columns(INGEST_BATCH);
    for (let from = 0; from < bigPoints; from += INGEST_BATCH) {
      await store.append(big, `b${from}`, fill(cols, from, Math.min(INGEST_BATCH, bigPoints - from), 0));
    }
    await store.idle();
    const ingestA = bigPoints / ((performance.now() - start) / 1000);
    log(`  ingested ${bigPoints.toLocaleString('en')} points of one key: ${Math.round(ingestA).toLocaleString('en')} points/s`);

    // Ingest (b): many runs, one batch each, a few in flight.
    const runs = Array.from({ length: runCount }, (_, r) => `run-${String(r).padStart(3, '0')}`);
    start = performance.now();
    const small = Array.from({ length: 4 }, () => columns(runPoints));
    for (let r = 0; r < runCount; r += small.length) {
      await Promise.all(small.map((c, i) => (r + i < runCount ? store.append(runs[r + i]!, 'b0', fill(c, 0, runPoints, r + i)) : undefined)));
    }
    await store.idle();
    const ingestB = (runCount * runPoints) / ((performance.now() - start) / 1000);
    log(`  ingested ${runCount} runs × ${runPoints.toLocaleString('en')} points: ${Math.round(ingestB).toLocaleString('en')} points/s`);

    // (a) one key, 10M points → 1,000 buckets.
    const queryA = () => store.query({ runIds: [big], keys: ['loss'], xKey: 'step', maxPoints: BUCKETS });
    const [seriesA] = await queryA();
    if (!seriesA || seriesA.count.reduce((a, b) => a + b, 0) !== bigPoints || Math.max(...seriesA.max) !== 100) throw new Error('query (a) returned the wrong series');
    const a = await timeRepeated(queryA);
    // (b) 100 runs → 1,000 buckets each.
    const queryB = () => store.query({ runIds: runs, keys: ['loss'], xKey: 'step', maxPoints: BUCKETS });
    const seriesB = await queryB();
    if (seriesB.length !== runCount || seriesB.some((s) => s.x.length > BUCKETS)) throw new Error('query (b) returned the wrong series');
    const b = await timeRepeated(queryB);
    log(`  query (a) median ${a.medianMs} ms, p95 ${a.p95Ms} ms; query (b) median ${b.medianMs} ms, p95 ${b.p95Ms} ms`);

    // Physical limits: the same chunks with the raw driver + plain JS reduction of the same buckets.
    const reader = await raw();
    let limitA: { medianMs: number; p95Ms: number };
    let limitB: { medianMs: number; p95Ms: number };
    let naiveReadMs: number;
    const levelA = chartLevel(bigPoints);
    const levelB = chartLevel(runPoints);
    try {
      limitA = await timeRepeated(async () => reduceTiles(await reader.blobs('run_id = ? AND key = ? AND level = ? ORDER BY chunk', [big, 'loss', levelA])));
      limitB = await timeRepeated(async () => {
        const blobs = await reader.blobs(`run_id IN (${runs.map(() => '?').join(',')}) AND key = ? AND level = ? ORDER BY run_id, chunk`, [...runs, 'loss', levelB]);
        // Per run, as the store answers per series.
        const perRun = Math.ceil(blobs.length / runCount);
        let checksum = 0;
        for (let r = 0; r < blobs.length; r += perRun) checksum += reduceTiles(blobs.slice(r, r + perRun));
        return checksum;
      });
      const naiveStart = performance.now();
      await reader.blobs('run_id = ? AND key = ? AND level = 0', [big, 'loss']);
      naiveReadMs = round(performance.now() - naiveStart);
    } finally {
      await reader.close();
    }
    log(`  limit (a) median ${limitA.medianMs} ms (level ${levelA}); limit (b) median ${limitB.medianMs} ms (level ${levelB}); all raw chunks of (a): ${naiveReadMs} ms`);
    return {
      ingestPointsPerSec: { oneKey: Math.round(ingestA), manyRuns: Math.round(ingestB) },
      oneKey10M: { ...a, targetMs: 20, limitMedianMs: limitA.medianMs, ratioToLimit: ratio(a.medianMs, limitA.medianMs), tileLevel: levelA, tileBuckets: Math.ceil(bigPoints / pointsPerItem(levelA)), naiveReadAllRawMs: naiveReadMs },
      runs100x100k: { ...b, targetMs: 150, limitMedianMs: limitB.medianMs, ratioToLimit: ratio(b.medianMs, limitB.medianMs), tileLevel: levelB, tileBucketsPerRun: Math.ceil(runPoints / pointsPerItem(levelB)) },
    };
  } finally {
    await store.close();
    await db.close();
    await cleanUp();
  }
}

const results: Record<string, unknown> = {};
for (const backend of args.backends.split(',') as ('sqlite' | 'postgres')[]) results[backend] = await bench(backend);
console.log(JSON.stringify({ bench: 'metric-chart-query', bigPoints, runs: runCount, runPoints, buckets: BUCKETS, repeat, ...results }));
