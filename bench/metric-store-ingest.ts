/**
 * Sustained durable metric ingest through SqlMetricStore.append on SQLite,
 * against the raw limit measured in the same run, and the process's memory
 * before, during and after. Prints one JSON line:
 *
 *   npx tsx bench/metric-store-ingest.ts [--points 10000000] [--batch 100000] [--keys 2] [--tiny]
 *
 * `--tiny` (20,000 points in batches of 5,000) only proves the bench still
 * runs (test/e2e/bench-smoke.test.ts); its figures mean nothing.
 *
 * - store: `append` of Arrow IPC batches of --batch points (the keys
 *   interleaved, steps increasing), one after another as one client would,
 *   each acknowledged after its commit; then `idle()` (every batch aggregated
 *   into raw chunks and tiles). Figures: points/s until the last ack, and
 *   until aggregation completed.
 * - raw limit: the same Arrow IPC byte blobs inserted as rows with the raw
 *   better-sqlite3 driver (the store's own), one transaction per blob, WAL,
 *   synchronous=NORMAL.
 *
 * Batches are encoded as the client would, inside the timed loop (~1.5 ms
 * per 100,000 points). Progress goes to stderr.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import Database from 'better-sqlite3';
import { createMetadataStore } from '../core/src/storage/metadata/index.js';
import { encodeMetricBatch, type MetricColumns } from '../plugins/tracking/src/metrics/metric-batch.js';
import { SqlMetricStore } from '../plugins/tracking/src/metrics/sql-metric-store.js';

const { values: args } = parseArgs({
  options: {
    points: { type: 'string' },
    batch: { type: 'string' },
    tiny: { type: 'boolean', default: false },
    keys: { type: 'string', default: '2' },
    'page-size': { type: 'string', default: '' },
    'in-flight': { type: 'string', default: '1' },
  },
});
/** SQLite page size of both databases; empty: SQLite's default (4096), as SqliteMetadataStore creates files today. */
const pageSize = args['page-size'] ? Number(args['page-size']) : undefined;
/** Appends a client keeps in flight (1: each waits for the previous ack). */
const inFlight = Number(args['in-flight']);
const totalPoints = Number(args.points ?? (args.tiny ? 20_000 : 10_000_000));
const batchPoints = Number(args.batch ?? (args.tiny ? 5000 : 100_000));
const keyCount = Number(args.keys);
for (const [name, v] of [['points', totalPoints], ['batch', batchPoints], ['keys', keyCount]] as const) {
  if (!Number.isSafeInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer`);
}
const batches = Math.ceil(totalPoints / batchPoints);
const log = (message: string) => process.stderr.write(`${message}\n`);
// A full GC before each memory reading, so the figures are live memory, not garbage not yet collected.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const mb = (bytes: number) => Math.round(bytes / 1024 / 1024);

/** Batch `b`: points b·batch … of the keys in turn; step = index / keys, so each key's steps increase. */
function makeBatch(b: number, cols: MetricColumns): Uint8Array {
  const n = Math.min(batchPoints, totalPoints - b * batchPoints);
  cols.length = n;
  const first = b * batchPoints;
  for (let i = 0; i < n; i++) {
    const p = first + i;
    cols.step[i] = Math.floor(p / keyCount);
    cols.value[i] = Math.sin(p / 1e4) + (p % 97) / 97;
    cols.time[i] = 1_700_000_000_000 + p;
    cols.keyIndex[i] = p % keyCount;
  }
  return encodeMetricBatch(cols);
}

function columns(): MetricColumns {
  return {
    length: 0,
    step: new Float64Array(batchPoints),
    value: new Float64Array(batchPoints),
    time: new Float64Array(batchPoints),
    keyIndex: new Int32Array(batchPoints),
    keys: Array.from({ length: keyCount }, (_, k) => `metric_${k}`),
  };
}

function memory() {
  const m = process.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed, buffers: m.arrayBuffers };
}

function openRaw(file: string): Database.Database {
  const db = new Database(file, { timeout: 10_000 });
  // The page size must be set before the first table is created (and before WAL).
  if (pageSize) db.pragma(`page_size = ${pageSize}`);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  return db;
}

function rawLimit(file: string): number {
  const db = openRaw(file);
  try {
    db.exec('CREATE TABLE blobs (run_id TEXT NOT NULL, batch_id TEXT NOT NULL, data BLOB, PRIMARY KEY (run_id, batch_id))');
    const insert = db.prepare('INSERT INTO blobs (run_id, batch_id, data) VALUES (?, ?, ?)');
    const cols = columns();
    let encodeMs = 0;
    const start = performance.now();
    for (let b = 0; b < batches; b++) {
      const t = performance.now();
      const bytes = makeBatch(b, cols);
      encodeMs += performance.now() - t;
      db.exec('BEGIN IMMEDIATE');
      insert.run('run', `b${b}`, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      db.exec('COMMIT');
    }
    const seconds = (performance.now() - start) / 1000;
    log(`  raw better-sqlite3, one transaction per blob: ${seconds.toFixed(2)} s (of which encoding ${(encodeMs / 1000).toFixed(2)} s)`);
    return totalPoints / seconds;
  } finally {
    db.close();
  }
}

async function storeIngest(file: string) {
  if (pageSize) {
    const pre = openRaw(file);
    pre.exec('CREATE TABLE bench_page_size (x INTEGER)');
    pre.close();
  }
  const db = await createMetadataStore(`sqlite://${file}`);
  const store = await SqlMetricStore.open(db, { logger: { warn: (d, m) => log(`warn: ${m}`), error: (d, m) => log(`error: ${m} ${String((d as { err?: unknown }).err)}`) } });
  try {
    // Warm-up (worker start, statement caches) on another run, outside the timing.
    await store.append('warmup', 'w', makeBatch(0, columns()));
    await store.idle();
    gc();
    const before = memory();
    let peak = before;
    const sampler = setInterval(() => {
      const m = memory();
      if (m.rss > peak.rss) peak = m;
    }, 50);
    const cols = columns();
    const runId = 'bench-run';
    const start = performance.now();
    const window: Promise<void>[] = [];
    const rssTrail: number[] = [];
    for (let b = 0; b < batches; b++) {
      const n = Math.min(batchPoints, totalPoints - b * batchPoints);
      window.push(
        store.append(runId, `b${b}`, makeBatch(b, cols)).then((result) => {
          if (result.accepted !== n) throw new Error(`batch ${b}: accepted ${result.accepted} of ${n}: ${JSON.stringify(result.warnings)}`);
        }),
      );
      if (window.length >= inFlight) await window.shift();
      if (b % 20 === 19) {
        const m = process.memoryUsage();
        rssTrail.push(mb(m.rss));
        log(`  appended ${(((b + 1) * batchPoints) / 1e6).toFixed(1)} M points, rss ${mb(m.rss)} MB, heap ${mb(m.heapUsed)} MB`);
      }
    }
    await Promise.all(window);
    const acked = (performance.now() - start) / 1000;
    await store.idle();
    const done = (performance.now() - start) / 1000;
    clearInterval(sampler);
    // Twice, a moment apart: ArrayBuffer memory is released by a task after the collection.
    gc();
    await new Promise((resolve) => setTimeout(resolve, 200));
    gc();
    const after = memory();
    const keys = await store.keys(runId);
    const stored = keys.reduce((sum, k) => sum + k.count, 0);
    if (stored !== totalPoints) throw new Error(`aggregated ${stored} points, expected ${totalPoints}`);
    log(`  store: last ack after ${acked.toFixed(2)} s, aggregated after ${done.toFixed(2)} s; rss ${mb(before.rss)} → peak ${mb(peak.rss)} → ${mb(after.rss)} MB`);
    return { acked, done, before, peak, after, rssTrail };
  } finally {
    await store.close();
    await db.close();
  }
}

const dir = await mkdtemp(join(tmpdir(), 'wldb-bench-ingest-'));
try {
  log(`metric ingest: ${totalPoints.toLocaleString('en')} points, ${keyCount} keys, batches of ${batchPoints.toLocaleString('en')} (SQLite temp file, WAL)`);
  const raw = rawLimit(join(dir, 'raw.db'));
  const store = await storeIngest(join(dir, 'store.db'));
  const durable = totalPoints / store.done;
  console.log(
    JSON.stringify({
      bench: 'metric-store-ingest',
      backend: 'sqlite',
      pageSize: pageSize ?? 4096,
      appendsInFlight: inFlight,
      points: totalPoints,
      keys: keyCount,
      batchPoints,
      storeAckedPointsPerSec: Math.round(totalPoints / store.acked),
      storeAggregatedPointsPerSec: Math.round(durable),
      targetPointsPerSec: 2_000_000,
      rawAppendPointsPerSec: Math.round(raw),
      ratioToRaw: Math.round((durable / raw) * 1000) / 1000,
      memoryMB: {
        rssBefore: mb(store.before.rss),
        rssPeak: mb(store.peak.rss),
        rssAfter: mb(store.after.rss),
        heapBefore: mb(store.before.heap),
        heapAfter: mb(store.after.heap),
        buffersAfter: mb(store.after.buffers),
        rssEvery20Batches: store.rssTrail,
      },
    }),
  );
} finally {
  await rm(dir, { recursive: true, force: true });
}
