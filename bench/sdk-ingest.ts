/**
 * Sustained durable ingest through the SDK: `points` points (2 keys per
 * log() call) from the first log() to the last flush acknowledged, in
 * embedded mode and in remote mode (a `wanllmdb serve` process on loopback,
 * SQLite, sign-in on; the SDK finds it and its API key in WANLLMDB_URL /
 * WANLLMDB_API_KEY, bench/lib/server.ts). Next to it, in the same run and on
 * the same disk:
 *
 * - storeViaKernel: the same Arrow batches appended straight through the
 *   kernel's AppendMetricBatch handler (no SDK: what the store itself takes);
 * - rawAppendLimit: the same Arrow batch bytes inserted as rows (one row
 *   and one committed transaction per batch, WAL, synchronous=NORMAL) with
 *   the raw better-sqlite3 driver (the store's own) — the physical limit of
 *   storing them durably.
 *
 *   npx tsx bench/sdk-ingest.ts [--points 10000000] [--modes embedded,remote] [--chunk 131072] [--tiny]
 *
 * `--tiny` (20,000 points in chunks of 4,096) only proves the bench still
 * runs (test/e2e/bench-smoke.test.ts); its figures mean nothing.
 *
 * Prints one JSON line; progress on stderr.
 */
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

if (!process.execArgv.includes('--conditions=source')) {
  const r = spawnSync(process.execPath, ['--conditions=source', ...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}

const { Kernel, loadConfig } = await import('@wanllmdb/core');
const { projectsPlugin } = await import('@wanllmdb/plugin-projects');
const { trackingPlugin, encodeMetricBatch } = await import('@wanllmdb/plugin-tracking');
const { default: Database } = await import('better-sqlite3');
const { init } = await import('../sdk/typescript/src/index.js');
const { startBenchServer, withEnv } = await import('./lib/server.js');

const { values: args } = parseArgs({
  options: {
    points: { type: 'string' },
    modes: { type: 'string', default: 'embedded,remote' },
    chunk: { type: 'string' },
    tiny: { type: 'boolean', default: false },
  },
});
const points = Number(args.points ?? (args.tiny ? 20_000 : 10_000_000));
const chunk = Number(args.chunk ?? (args.tiny ? 4096 : 131_072));
const modes = args.modes.split(',');
const log = (m: string) => process.stderr.write(`${m}\n`);
const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'wldb-bench-ingest-'));
  dirs.push(d);
  return d;
};
const rate = (n: number, ms: number) => Math.round(n / (ms / 1000));

/** The batches the SDK would make: `chunk` points each, loss/acc alternating, steps 0, 1, 2 … */
function* batches(): Generator<Uint8Array> {
  let step = 0;
  for (let done = 0; done < points; done += chunk) {
    const n = Math.min(chunk, points - done);
    const cols = { length: n, step: new Float64Array(n), value: new Float64Array(n), time: new Float64Array(n), keyIndex: new Int32Array(n), keys: ['loss', 'acc'] };
    const now = Date.now();
    for (let i = 0; i < n; i++) {
      cols.step[i] = step;
      cols.keyIndex[i] = i & 1;
      cols.value[i] = 1 / (step + 1);
      cols.time[i] = now;
      if (i & 1) step++;
    }
    yield encodeMetricBatch(cols);
  }
}

/** The physical limit: one row per batch, one committed transaction each, raw better-sqlite3 with a prepared statement. */
function rawAppendLimit(): { pointsPerSec: number; ms: number } {
  const file = join(tmp(), 'raw.db');
  const db = new Database(file, { timeout: 10_000 });
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec('CREATE TABLE batches (run_id TEXT NOT NULL, batch_id TEXT NOT NULL, seq INTEGER NOT NULL, ipc BLOB NOT NULL, PRIMARY KEY (run_id, batch_id))');
  const stmt = db.prepare('INSERT INTO batches (run_id, batch_id, seq, ipc) VALUES (?, ?, ?, ?)');
  const runId = randomUUID();
  let ms = 0;
  let seq = 0;
  for (const b of batches()) {
    const t0 = performance.now();
    db.exec('BEGIN IMMEDIATE');
    stmt.run(runId, randomUUID(), seq++, Buffer.from(b.buffer, b.byteOffset, b.byteLength));
    db.exec('COMMIT');
    ms += performance.now() - t0;
  }
  db.close();
  return { pointsPerSec: rate(points, ms), ms: Math.round(ms) };
}

/** The store without the SDK: the same batches through the kernel's AppendMetricBatch, one after another. */
async function storeViaKernel(): Promise<{ pointsPerSec: number; ms: number }> {
  const config = loadConfig({ flags: { dataDir: tmp() } });
  config.logLevel = 'warn';
  const kernel = new Kernel({ plugins: [projectsPlugin, trackingPlugin], config, listen: false });
  await kernel.start();
  try {
    const run = (await kernel.call<{ data: { id: string } }>('wanllmdb.tracking.v1.RunService/CreateRun', { projectId: 'bench', id: randomUUID(), resume: 'never' })).data;
    let ms = 0;
    for (const b of batches()) {
      const t0 = performance.now();
      await kernel.call('wanllmdb.tracking.v1.MetricService/AppendMetricBatch', { runId: run.id, batchId: randomUUID(), arrowIpc: b });
      ms += performance.now() - t0;
    }
    return { pointsPerSec: rate(points, ms), ms: Math.round(ms) };
  } finally {
    await kernel.stop();
  }
}

/** Embedded without `sdkEnv`; remote with the server and key in the environment, as a user's training script gets them. */
async function sdk(sdkEnv?: Record<string, string>) {
  const t0 = performance.now();
  const opts = { project: 'bench', ...(sdkEnv ? {} : { dir: tmp() }), chunkPoints: chunk, systemMetrics: false, captureConsole: false, git: false, handleExit: false };
  const run = sdkEnv ? await withEnv(sdkEnv, () => init(opts)) : await init(opts);
  const initMs = Math.round(performance.now() - t0);
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  for (let step = 0, calls = points / 2; step < calls; step++) run.log({ loss: 1 / (step + 1), acc: step });
  const logged = performance.now();
  await run.flush();
  const ms = performance.now() - start;
  const cpu = process.cpuUsage(cpu0);
  await run.finish();
  return {
    initMs,
    pointsPerSec: rate(points, ms),
    seconds: Math.round(ms) / 1000,
    logLoopSeconds: Math.round(logged - start) / 1000,
    processCpuSeconds: Math.round((cpu.user + cpu.system) / 1e3) / 1000,
  };
}

const result: Record<string, unknown> = { bench: 'sdk-ingest', points, keys: 2, chunkPoints: chunk };
let server: Awaited<ReturnType<typeof startBenchServer>> | undefined;
try {
  log(`raw better-sqlite3 append limit (${points.toLocaleString('en')} points as ${Math.ceil(points / chunk)} batch rows) …`);
  const raw = rawAppendLimit();
  result.rawAppendLimit = raw;
  log(`  ${JSON.stringify(raw)}`);
  log('store via the kernel (no SDK) …');
  const store = await storeViaKernel();
  result.storeViaKernel = { ...store, ratioToRaw: Math.round((store.pointsPerSec / raw.pointsPerSec) * 1000) / 1000 };
  log(`  ${JSON.stringify(result.storeViaKernel)}`);
  for (const mode of modes) {
    log(`SDK ${mode} …`);
    if (mode !== 'embedded' && mode !== 'remote') throw new Error(`--modes: ${JSON.stringify(mode)} is not one of embedded, remote`);
    if (mode === 'remote') server = await startBenchServer();
    const r = await sdk(server?.sdkEnv);
    const target = mode === 'embedded' ? 2_000_000 : 1_000_000;
    result[mode] = {
      ...r,
      target,
      met: r.pointsPerSec >= target,
      ratioToRaw: Math.round((r.pointsPerSec / raw.pointsPerSec) * 1000) / 1000,
      ratioToStore: Math.round((r.pointsPerSec / store.pointsPerSec) * 1000) / 1000,
    };
    log(`  ${JSON.stringify(result[mode])}`);
    await server?.stop();
    server = undefined;
  }
} finally {
  await server?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
process.stdout.write(`${JSON.stringify(result)}\n`);
