import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { init } from './index.js';
import { readOps } from './spool/spool.js';

const MB = 2 ** 20;
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const root = mkdtempSync(join(tmpdir(), 'wldb-bp-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('backpressure and flush', () => {
  it('with a slow sink, log() waits instead of growing: memory stays bounded while far more is logged', async () => {
    const cap = 8 * MB;
    const chunkPoints = 16_384;
    const run = await init({
      mode: 'offline',
      dir: join(root, 'slow'),
      chunkPoints,
      maxBufferBytes: cap,
      _sinkDelayMs: 15,
      systemMetrics: false,
      captureConsole: false,
    });
    const sink = (run as unknown as { sink: { bytesInFlight: number; ackedSeq: number; sentSeq: number } }).sink;
    // RSS is sampled after a full GC, so the test's own garbage (an object per
    // log() call) does not count as memory the SDK holds.
    gc();
    const base = process.memoryUsage.rss();
    let peakRss = 0;
    let peakInFlight = 0;
    let blocked = 0;
    const calls = 1_500_000; // 3,000,000 points, 80 MB of columns: 10 × the cap
    const started = performance.now();
    for (let step = 0; step < calls; step++) {
      const t = performance.now();
      run.log({ loss: step, acc: step });
      if (performance.now() - t > 5) blocked++;
      if ((step & 0x3fff) === 0) {
        gc();
        peakRss = Math.max(peakRss, process.memoryUsage.rss() - base);
        peakInFlight = Math.max(peakInFlight, sink.bytesInFlight);
      }
    }
    const seconds = (performance.now() - started) / 1000;
    await run.flush();
    // Everything logged before flush() is acknowledged.
    expect(sink.ackedSeq).toBe(sink.sentSeq);
    expect(sink.bytesInFlight).toBe(0);
    await run.finish();

    const chunkBytes = chunkPoints * 28;
    expect(peakInFlight).toBeLessThanOrEqual(cap + chunkBytes);
    expect(peakRss).toBeLessThan(64 * MB);
    // The loop waited for the sink: ~183 batches at ≥ 15 ms each cannot drain in less than ~2.7 s.
    expect(blocked).toBeGreaterThan(0);
    expect(seconds).toBeGreaterThan(2);
    const batches = (await readOps(join(root, 'slow'))).filter((o) => o.kind === 'metrics').length;
    expect(batches).toBe(Math.ceil((2 * calls) / chunkPoints));
  }, 60_000);

  it('flush() resolves only once the points logged before it are durable', async () => {
    const dir = join(root, 'flush');
    const run = await init({ mode: 'offline', dir, chunkPoints: 100, _sinkDelayMs: 50, systemMetrics: false, captureConsole: false, flushIntervalMs: 60_000 });
    for (let i = 0; i < 250; i++) run.log({ x: i });
    // 2 full chunks shipped, 50 points waiting in the buffer (the timer is far away).
    await run.flush();
    const ops = (await readOps(dir)).filter((o) => o.kind === 'metrics');
    expect(ops).toHaveLength(3);
    await run.finish();
  });
});
