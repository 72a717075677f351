import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeMetricBatch } from '@wanllmdb/plugin-tracking';
import type { tracking } from '@wanllmdb/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { init, type Run } from './index.js';
import type { CallMethod } from './protocol.js';
import { readOps, readRunFile } from './spool/spool.js';
import { syncOffline } from './sync/sync.js';
import type { EncodedBatch, Transport } from './transport/transport.js';

const tmp = (p: string) => mkdtempSync(join(tmpdir(), p));

/** Every point of a spool's metric files, in order. */
async function spooledPoints(dir: string) {
  const out: { key: string; step: number; value: number }[] = [];
  for (const op of (await readOps(dir)).filter((o) => o.kind === 'metrics')) {
    const cols = decodeMetricBatch(new Uint8Array(readFileSync(op.file)));
    for (let i = 0; i < cols.length; i++) out.push({ key: cols.keys[cols.keyIndex[i]!]!, step: cols.step[i]!, value: cols.value[i]! });
  }
  return out;
}

/**
 * A store in memory with the server's idempotency: a batch id stored once is
 * skipped after. `failAfterStore` loses the answer of the n-th append (the
 * data is stored, the caller sees an error), as a crash between the store's
 * commit and the reply would.
 */
class FakeStore implements Transport {
  readonly name = 'fake store';
  /** A store of its own: sync records progress per target. */
  readonly target = `fake ${Math.random()}`;
  readonly batches = new Map<string, number>();
  readonly appends: string[] = [];
  duplicates = 0;
  readonly calls: { method: CallMethod; request: any }[] = [];
  failAfterStore = 0;

  async appendBatches(_runId: string, batches: readonly EncodedBatch[]): Promise<tracking.v1.MetricWarning[]> {
    for (const b of batches) {
      this.appends.push(b.batchId);
      if (this.batches.has(b.batchId)) this.duplicates++;
      else this.batches.set(b.batchId, decodeMetricBatch(b.bytes).length);
      if (this.failAfterStore && this.appends.length === this.failAfterStore) throw Object.assign(new Error('answer lost'), { code: 'EPIPE' });
    }
    return [];
  }
  async call(method: CallMethod, request: unknown): Promise<unknown> {
    this.calls.push({ method, request });
    return {};
  }
  async close(): Promise<void> {}
  get points(): number {
    return [...this.batches.values()].reduce((a, b) => a + b, 0);
  }
}

describe('offline mode', () => {
  let dir: string;
  let run: Run;
  const N = 5_000;

  beforeAll(async () => {
    dir = join(tmp('wldb-offline-'), 'run');
    run = await init({ mode: 'offline', dir, project: 'mnist', name: 'baseline', config: { lr: 1e-3, model: { layers: 4 } }, tags: ['v1'], chunkPoints: 1_000, systemMetrics: false, captureConsole: false });
    for (let step = 0; step < N; step++) run.log({ loss: 1 / (step + 1), acc: step / N });
    await run.config.update({ batch: 64 });
    run.summary.set('best_acc', 0.98);
    const file = join(tmp('wldb-file-'), 'weights.bin');
    writeFileSync(file, 'w'.repeat(10_000));
    const saved = await run.save(file, { name: 'model/weights.bin' });
    expect(saved).toMatchObject({ path: 'model/weights.bin', size: 10_000 });
    await run.finish({ exitCode: 0 });
  });

  it('spools the run: run.json, then ordered, fsynced, renamed op files; metrics by batch id', async () => {
    expect(run.dir).toBe(dir);
    const meta = await readRunFile(dir);
    expect(meta.createRun).toMatchObject({ projectId: 'mnist', id: run.id, name: 'baseline', tags: ['v1'], config: { lr: 1e-3, model: { layers: 4 } }, resume: 'never' });
    expect(meta.createRun.environment?.runtime).toMatch(/^node 20\./);
    const ops = await readOps(dir);
    const kinds = ops.map((o) => o.kind);
    expect(kinds.filter((k) => k === 'metrics').length).toBe(10);
    expect(kinds.slice(-4)).toEqual(['config', 'summary', 'file', 'finish']);
    expect(ops.map((o) => o.seq)).toEqual(ops.map((_, i) => i + 1));
    for (const op of ops.filter((o) => o.kind === 'metrics')) expect(op.name).toMatch(/^\d{12}\.metrics\.[0-9a-f-]{36}\.arrow$/);
    expect(readdirSync(join(dir, 'ops')).some((n) => n.startsWith('.tmp-'))).toBe(false);
    const finish = JSON.parse(readFileSync(ops.at(-1)!.file, 'utf8'));
    expect(finish).toMatchObject({ id: run.id, exitCode: 0 });
    expect(readFileSync(join(dir, 'files', readdirSync(join(dir, 'files'))[0]!), 'utf8')).toHaveLength(10_000);
  });

  it('keeps every point, in order', async () => {
    const points = await spooledPoints(dir);
    expect(points).toHaveLength(2 * N);
    expect(points[0]).toEqual({ key: 'loss', step: 0, value: 1 });
    expect(points.at(-1)).toEqual({ key: 'acc', step: N - 1, value: (N - 1) / N });
  });

  it('syncs exactly once: a second sync uploads nothing', async () => {
    const store = new FakeStore();
    const first = await syncOffline(dir, { transport: store });
    expect(first.runs[0]).toMatchObject({ id: run.id, batches: 10, points: 2 * N, skipped: 0 });
    expect(store.points).toBe(2 * N);
    expect(store.calls.map((c) => c.method)).toEqual(['createRun', 'updateConfig', 'updateSummary', 'uploadFile', 'finishRun']);
    expect(store.calls[0]!.request.resume).toBe('allow');
    const second = await syncOffline(dir, { transport: store });
    expect(second.runs[0]).toMatchObject({ uploaded: 0, batches: 0 });
    expect(store.appends).toHaveLength(10);
    expect(store.calls).toHaveLength(5);
  });

  it('resumes an interrupted sync, and a batch whose answer was lost is not stored twice', async () => {
    const store = new FakeStore();
    // 1. Stopped between two steps.
    const stop = new AbortController();
    let steps = 0;
    await expect(syncOffline(dir, { transport: store, groupBytes: 1, onProgress: () => ++steps === 4 && stop.abort(), signal: stop.signal })).rejects.toThrow(/Sync was stopped/);
    const afterStop = store.appends.length;
    expect(afterStop).toBeGreaterThan(0);
    expect(afterStop).toBeLessThan(10);
    // 2. The store took a batch but its answer was lost: sync fails without recording it.
    store.failAfterStore = afterStop + 2;
    await expect(syncOffline(dir, { transport: store, groupBytes: 1, retryForMs: 0 })).rejects.toThrow(/answer lost/);
    store.failAfterStore = 0;
    // 3. The rerun completes; the unrecorded batch is sent again and skipped by its id.
    const done = await syncOffline(dir, { transport: store, groupBytes: 1 });
    expect(done.runs[0]!.skipped).toBeGreaterThan(0);
    expect(store.batches.size).toBe(10);
    expect(store.points).toBe(2 * N);
    expect(store.duplicates).toBe(1);
    expect(store.calls.filter((c) => c.method === 'finishRun')).toHaveLength(1);
    expect(store.calls.filter((c) => c.method === 'createRun')).toHaveLength(1);
  });

  it('refuses to reuse a spool folder for a new run, and resumes it with resume: allow', async () => {
    await expect(init({ mode: 'offline', dir, id: run.id, systemMetrics: false, captureConsole: false })).rejects.toMatchObject({ code: 'WLDB_ERR_ALREADY_EXISTS' });
    const again = await init({ mode: 'offline', dir, id: run.id, resume: 'allow', systemMetrics: false, captureConsole: false });
    expect(again.step).toBe(N);
    again.log({ loss: 0 });
    await again.finish();
    const points = await spooledPoints(dir);
    expect(points.at(-1)).toEqual({ key: 'loss', step: N, value: 0 });
  });
});

describe('init() options', () => {
  it('refuses bad options with a catalogued error that says what to do', async () => {
    await expect(init({ mode: 'bogus' as never })).rejects.toMatchObject({ code: 'WLDB_ERR_CONFIG_INVALID', message: expect.stringMatching(/not one of embedded, remote, offline/) });
    await expect(init({ mode: 'remote', url: '' })).rejects.toMatchObject({ code: 'WLDB_ERR_CONFIG_INVALID', message: expect.stringMatching(/WANLLMDB_URL/) });
    await expect(init({ url: 'http://x:1' })).rejects.toMatchObject({ code: 'WLDB_ERR_CONFIG_INVALID', message: expect.stringMatching(/grpc:\/\/host:port/) });
    await expect(init({ id: 'nope' })).rejects.toMatchObject({ code: 'WLDB_ERR_CONFIG_INVALID', message: expect.stringMatching(/not a UUID/) });
    await expect(init({ resume: 'must' })).rejects.toMatchObject({ code: 'WLDB_ERR_CONFIG_INVALID', message: expect.stringMatching(/needs the id/) });
  });
});
