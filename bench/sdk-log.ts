/**
 * What `run.log()` costs the training loop, in every mode, next to the
 * physical limit measured in the same process: writing the same two numbers
 * into a Float64Array.
 *
 *   npx tsx bench/sdk-log.ts [--calls 400000] [--rounds 5] [--modes embedded,remote,offline] [--tiny]
 *
 * Remote mode logs to a real `wanllmdb serve` with sign-in on, through an
 * API key in WANLLMDB_URL / WANLLMDB_API_KEY (bench/lib/server.ts). `--tiny`
 * (2,000 calls, one round, 20,000 slow-sink points, short warm-ups) only
 * proves the bench still runs (test/e2e/bench-smoke.test.ts); its figures
 * mean nothing.
 *
 * Per mode: `rounds` × `calls` calls of run.log({ loss, acc }) (2 keys), each
 * round kept below the SDK's buffer cap and followed by an (untimed)
 * flush, so the figure is log() itself, not a sink that cannot keep up
 * (that case is measured separately: memory while the sink is slow).
 * Timing: process.hrtime.bigint() around batches of 100 calls (timer cost
 * amortised) → per-call median and p99 over batches; and around single
 * calls (timer cost subtracted) → per-call median, p99, p99.9.
 *
 * Then: a deliberately slow sink (offline, +20 ms per batch) while 5,000,000
 * points are logged — peak RSS and heap growth over the same SDK warmed up
 * and idle, and how long log() waited in total (it blocks instead of growing).
 *
 * Prints one JSON line; progress on stderr.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { init, type InitOptions } from '../sdk/typescript/src/index.js';
import { startBenchServer, withEnv, type BenchServer } from './lib/server.js';

// Workspace packages must resolve to their sources (the "source" export condition), as in the tests.
if (!process.execArgv.includes('--conditions=source')) {
  const r = spawnSync(process.execPath, ['--conditions=source', ...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}

const { values: args } = parseArgs({
  options: {
    calls: { type: 'string' },
    rounds: { type: 'string' },
    modes: { type: 'string', default: 'embedded,remote,offline' },
    'slow-points': { type: 'string' },
    tiny: { type: 'boolean', default: false },
  },
});
const tiny = args.tiny;
const calls = Number(args.calls ?? (tiny ? 2000 : 400_000));
const rounds = Number(args.rounds ?? (tiny ? 1 : 5));
const slowPoints = Number(args['slow-points'] ?? (tiny ? 20_000 : 5_000_000));
/** log() calls before the timing (JIT), and before the slow sink's memory baseline. */
const warmUp = tiny ? 2000 : 100_000;
const slowWarmUp = tiny ? 5000 : 300_000;
const modes = args.modes.split(',');
const log = (m: string) => process.stderr.write(`${m}\n`);
const BATCH = 100;
const round3 = (n: number) => Math.round(n * 1000) / 1000;

function quantile(sorted: Float64Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

interface Cost {
  batchedMedianNs: number;
  batchedP99Ns: number;
  singleMedianNs: number;
  singleP99Ns: number;
  singleP999Ns: number;
}

/** Timer overhead of one hrtime.bigint() pair. */
function timerOverheadNs(): number {
  const n = 200_000;
  const s = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    s[i] = Number(process.hrtime.bigint() - t0);
  }
  return quantile(s.sort(), 0.5);
}

/** Measures `fn(i)` both ways over `n` calls; `between` runs (untimed) every `roundCalls`. */
async function measure(fn: (i: number) => void, n: number, overhead: number, between?: () => Promise<void>, roundCalls = n): Promise<Cost> {
  const batched = new Float64Array(Math.floor(n / BATCH));
  const single = new Float64Array(n);
  let b = 0;
  let s = 0;
  let i = 0;
  for (let done = 0; done < n; ) {
    const end = Math.min(n, done + roundCalls);
    // Alternate: a batch timed as a whole, then a batch timed call by call.
    for (; done + BATCH <= end; done += BATCH) {
      if ((done / BATCH) % 2 === 0) {
        const t0 = process.hrtime.bigint();
        for (let k = 0; k < BATCH; k++) fn(i++);
        batched[b++] = Number(process.hrtime.bigint() - t0) / BATCH;
      } else {
        for (let k = 0; k < BATCH; k++) {
          const t0 = process.hrtime.bigint();
          fn(i++);
          single[s++] = Math.max(0, Number(process.hrtime.bigint() - t0) - overhead);
        }
      }
    }
    done = end;
    if (between) await between();
  }
  const bs = batched.subarray(0, b).sort();
  const ss = single.subarray(0, s).sort();
  return {
    batchedMedianNs: round3(quantile(bs, 0.5)),
    batchedP99Ns: round3(quantile(bs, 0.99)),
    singleMedianNs: round3(quantile(ss, 0.5)),
    singleP99Ns: round3(quantile(ss, 0.99)),
    singleP999Ns: round3(quantile(ss, 0.999)),
  };
}

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'wldb-bench-log-'));
  dirs.push(d);
  return d;
};

async function main() {
  const overhead = timerOverheadNs();
  log(`timer overhead ${overhead} ns`);

  // The physical limit: two numbers into a Float64Array (what log() must do at the very least).
  const limitArr = new Float64Array(1 << 16);
  const mask = (1 << 16) - 2;
  const limit = await measure(
    (i) => {
      limitArr[(i * 2) & mask] = i;
      limitArr[((i * 2) & mask) + 1] = i * 0.5;
    },
    calls * rounds,
    overhead,
  );
  log(`float64array limit: ${JSON.stringify(limit)}`);

  const result: Record<string, unknown> = { bench: 'sdk-log', keys: 2, callsPerMode: calls * rounds, timerOverheadNs: overhead, limit };
  let server: BenchServer | undefined;
  try {
    for (const mode of modes) {
      const opts: InitOptions = { project: 'bench', systemMetrics: false, captureConsole: false, git: false, handleExit: false };
      if (mode === 'embedded') opts.dir = tmp();
      else if (mode === 'offline') Object.assign(opts, { mode: 'offline', dir: join(tmp(), 'spool') });
      else if (mode !== 'remote') throw new Error(`--modes: ${JSON.stringify(mode)} is not one of embedded, remote, offline`);
      else server ??= await startBenchServer();
      const t0 = performance.now();
      // Remote: the server and key come from the environment, as a user's training script gets them.
      const run = mode === 'remote' ? await withEnv(server!.sdkEnv, () => init(opts)) : await init(opts);
      const initMs = Math.round(performance.now() - t0);
      // Warm-up (JIT), then the rounds.
      for (let i = 0; i < warmUp; i++) run.log({ loss: i, acc: i });
      await run.flush();
      const cost = await measure((i) => run.log({ loss: 1 / (i + 1), acc: i * 1e-6 }), calls * rounds, overhead, () => run.flush(), calls);
      await run.finish();
      const entry = {
        initMs,
        ...cost,
        ratioMedianToLimit: round3(cost.batchedMedianNs / Math.max(0.001, limit.batchedMedianNs)),
        ratioP99ToLimit: round3(cost.batchedP99Ns / Math.max(0.001, limit.batchedP99Ns)),
      };
      log(`${mode}: ${JSON.stringify(entry)}`);
      result[mode] = entry;
    }

    // Memory while the sink is deliberately slow.
    const run = await init({ mode: 'offline', dir: join(tmp(), 'slow'), _sinkDelayMs: 20, systemMetrics: false, captureConsole: false, git: false, handleExit: false });
    // The baseline is the SDK warmed up (modules loaded, first batches written), idle.
    for (let i = 0; i < slowWarmUp; i++) run.log({ loss: i, acc: i });
    await run.flush();
    await new Promise((r) => setTimeout(r, 200));
    const base = process.memoryUsage();
    let peakRss = 0;
    let peakHeap = 0;
    let peakExternal = 0;
    let waitedNs = 0;
    const t0 = performance.now();
    for (let i = 0; i < slowPoints / 2; i++) {
      const s = process.hrtime.bigint();
      run.log({ loss: i, acc: i });
      const d = Number(process.hrtime.bigint() - s);
      if (d > 1_000_000) waitedNs += d;
      if ((i & 0xffff) === 0) {
        const m = process.memoryUsage();
        peakRss = Math.max(peakRss, m.rss - base.rss);
        peakHeap = Math.max(peakHeap, m.heapUsed - base.heapUsed);
        peakExternal = Math.max(peakExternal, m.external + m.arrayBuffers - base.external - base.arrayBuffers);
      }
    }
    const loopSeconds = (performance.now() - t0) / 1000;
    await run.finish();
    const MB = 2 ** 20;
    result.slowSink = {
      points: slowPoints,
      loggedMB: Math.round((slowPoints * 28) / MB),
      delayPerBatchMs: 20,
      baseRssMB: Math.round(base.rss / MB),
      peakRssGrowthMB: round3(peakRss / MB),
      peakHeapGrowthMB: round3(peakHeap / MB),
      peakExternalGrowthMB: round3(peakExternal / MB),
      loopSeconds: round3(loopSeconds),
      log_waitedSeconds: round3(waitedNs / 1e9),
    };
    log(`slow sink: ${JSON.stringify(result.slowSink)}`);
  } finally {
    await server?.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

await main();
