import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * Every bench in bench/ runs at a tiny size inside `npm test`, so none can
 * rot unnoticed: each is spawned as a user runs it (`node --import tsx
 * bench/<file>`), must exit 0 and print exactly one JSON line on stdout
 * whose figures are finite numbers. The figures' values mean nothing at
 * this size; that the bench still runs and still reports them does.
 */

const repo = fileURLToPath(new URL('../..', import.meta.url));

interface Entry {
  /** Flags for a tiny size. */
  args: string[];
  /** Paths (dot-separated) of figures that must be finite numbers — each bench's ratios to its limit among them. */
  figures: string[];
}

const perBackend = (backends: string[], paths: string[]) => backends.flatMap((b) => paths.map((p) => `${b}.${p}`));

/** One entry per file in bench/; a new bench fails the first test below until it is added here. */
const BENCHES: Record<string, Entry> = {
  'artifact-transfer.ts': {
    args: ['--tiny'],
    figures: [
      'limit.copyMBps',
      'limit.readMBps',
      ...perBackend(['embedded', 'remote'], ['uploadMBps', 'uploadRatioToCopy', 'rssGrowthMB', 'downloadMBps', 'downloadRatioToRead']),
      'resume.sentShare',
    ],
  },
  'artifact-many-files.ts': { args: ['--tiny'], figures: ['limit.copyFilesPerSec', 'remote.filesPerSec', 'remote.ratioToCopy', 'remote.recommitMs'] },
  'metadata-insert.ts': { args: ['--tiny'], figures: perBackend(['sqlite', 'postgres'], ['portRowsPerSec', 'rawRowsPerSec', 'ratio']) },
  'metric-chart-query.ts': {
    args: ['--tiny'],
    figures: perBackend(['sqlite', 'postgres'], ['ingestPointsPerSec.oneKey', 'oneKey10M.medianMs', 'oneKey10M.limitMedianMs', 'oneKey10M.ratioToLimit', 'runs100x100k.medianMs', 'runs100x100k.limitMedianMs', 'runs100x100k.ratioToLimit']),
  },
  'metric-store-ingest.ts': { args: ['--tiny'], figures: ['storeAckedPointsPerSec', 'storeAggregatedPointsPerSec', 'rawAppendPointsPerSec', 'ratioToRaw', 'memoryMB.rssPeak'] },
  'run-list.ts': { args: ['--tiny'], figures: perBackend(['sqlite', 'postgres'], ['service_ms', 'raw_driver_ms', 'ratio']) },
  'sdk-log.ts': {
    args: ['--tiny'],
    figures: ['limit.batchedMedianNs', ...perBackend(['embedded', 'remote', 'offline'], ['batchedMedianNs', 'ratioMedianToLimit', 'ratioP99ToLimit']), 'slowSink.peakRssGrowthMB'],
  },
  'sdk-ingest.ts': {
    args: ['--tiny'],
    figures: ['rawAppendLimit.pointsPerSec', 'storeViaKernel.ratioToRaw', ...perBackend(['embedded', 'remote'], ['pointsPerSec', 'ratioToRaw', 'ratioToStore'])],
  },
  'ui.ts': {
    args: ['--tiny'],
    figures: ['tableFirstRender', 'tableSort', 'tableFilter', 'chart', 'live'].flatMap((f) => [`${f}Ms`, `${f}LimitMs`, `${f}Ratio`]),
  },
  'api-load.ts': {
    args: ['--tiny', '--source'],
    figures: [
      ...['open_list', 'open_ingest'].flatMap((k) => [`${k}.p95Ms`, `${k}.errors`, `${k}.warmup.p95Ms`]),
      ...['saturation_list', 'saturation_ingest'].flatMap((k) => [`${k}.requestsPerSecond`, `${k}.requestsPerCoreSecond`]),
      'bare_fastify.requestsPerCoreSecond',
      'listPerCoreVsBare',
      'ingestPerCoreVsBare',
    ],
  },
};

/** Benches spawned at once: two cores, and each bench starts a server or a browser of its own. */
const PARALLEL = 2;
let running = 0;
const waiting: (() => void)[] = [];
async function slot<T>(fn: () => Promise<T>): Promise<T> {
  if (running >= PARALLEL) await new Promise<void>((resolve) => waiting.push(resolve));
  running++;
  try {
    return await fn();
  } finally {
    running--;
    waiting.shift()?.();
  }
}

function runBench(file: string, args: string[]): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', `bench/${file}`, ...args], { cwd: repo, env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (c: Buffer) => (stdout += c));
  proc.stderr.on('data', (c: Buffer) => (stderr += c));
  return new Promise((resolve, reject) => {
    proc.once('error', reject);
    proc.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

const at = (o: unknown, path: string): unknown => path.split('.').reduce<unknown>((v, k) => (v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), o);

describe('benchmarks at a tiny size', () => {
  it('lists every bench in bench/', () => {
    const files = readdirSync(new URL('../../bench/', import.meta.url)).filter((f) => f.endsWith('.ts')).sort();
    const missing = files.filter((f) => !(f in BENCHES));
    expect(missing, `add ${missing.join(', ')} to BENCHES in test/e2e/bench-smoke.test.ts: the flags of a tiny size and the figures it prints`).toEqual([]);
    const gone = Object.keys(BENCHES).filter((f) => !files.includes(f));
    expect(gone, `remove ${gone.join(', ')} from BENCHES in test/e2e/bench-smoke.test.ts: no such file in bench/`).toEqual([]);
  });

  for (const [file, { args, figures }] of Object.entries(BENCHES)) {
    it.concurrent(`${file} ${args.join(' ')} exits 0 and prints one JSON line of finite figures`, { timeout: 240_000 }, async () => {
      const r = await slot(() => runBench(file, args));
      const tail = `\n--- stderr (last 3,000 characters) ---\n${r.stderr.slice(-3000)}`;
      expect(r.code, `bench/${file} exited with ${r.code ?? r.signal}${tail}`).toBe(0);
      const lines = r.stdout.split('\n').filter((l) => l.trim());
      expect(lines, `bench/${file} must print exactly one line on stdout (progress goes to stderr)`).toHaveLength(1);
      let result: Record<string, unknown>;
      try {
        result = JSON.parse(lines[0]!);
      } catch {
        throw new Error(`bench/${file} printed a line that is not JSON: ${lines[0]!.slice(0, 500)}`);
      }
      expect(result.bench).toBe(file.replace(/\.ts$/, ''));
      const bad = figures.filter((f) => typeof at(result, f) !== 'number' || !Number.isFinite(at(result, f)));
      expect(bad.map((f) => `${f} = ${JSON.stringify(at(result, f))}`), `bench/${file}: figures that are not finite numbers in ${lines[0]}`).toEqual([]);
    });
  }
});
