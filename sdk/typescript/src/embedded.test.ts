import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectContiguous, openStore, settledKeys, type StoreClient } from './fixtures/e2e-helpers.js';
import { init, type Run } from './index.js';

const data = mkdtempSync(join(tmpdir(), 'wldb-sdk-emb-'));
afterAll(() => rmSync(data, { recursive: true, force: true }));

describe('embedded mode', () => {
  let run: Run;
  let store: StoreClient;
  const N = 20_000;

  beforeAll(async () => {
    run = await init({ dir: data, project: 'mnist', name: 'baseline', config: { lr: 1e-3, model: { layers: 4 } }, tags: ['v1'], systemMetrics: { intervalMs: 100 } });
    for (let step = 0; step < N; step++) run.log({ loss: 1 / (step + 1), acc: step / N });
    process.stdout.write('epoch 1 done\n');
    await run.config.update({ model: { dropout: 0.1 } });
    run.summary.set('best_acc', 0.98);
    const file = join(data, 'weights.bin');
    writeFileSync(file, Buffer.alloc(3 << 20, 7));
    const saved = await run.save(file, { name: 'weights.bin' });
    expect(saved).toMatchObject({ path: 'weights.bin', size: 3 << 20 });
    await new Promise((r) => setTimeout(r, 250)); // a system-metrics sample or two
    await run.finish({ summary: { epochs: 1 } });
    store = await openStore(data);
  });
  afterAll(async () => store?.close());

  it('creates the run in the data folder with its config, tags, git and environment', async () => {
    const info = await store.run(run.id);
    expect(info).toMatchObject({
      name: 'baseline',
      tags: ['v1'],
      state: 'finished',
      exitCode: 0,
      config: { lr: 1e-3, model: { layers: 4, dropout: 0.1 } },
      environment: { runtime: `node ${process.versions.node}`, pid: process.pid },
    });
    expect(info.git?.commit).toMatch(/^[0-9a-f]{40}$/);
    expect(info.summary).toMatchObject({ best_acc: 0.98, epochs: 1 });
    expect(run.info.state).toBe('finished');
  });

  it('stores every point once, and system metrics under system/ with their own x', async () => {
    const keys = await settledKeys(store, run.id);
    expect(expectContiguous(keys.get('loss'), N)).toBe(N);
    expect(expectContiguous(keys.get('acc'), N)).toBe(N);
    expect(keys.get('system/cpu.percent')?.count).toBeGreaterThan(0);
  });

  it('captures console output as the run log (still printed)', async () => {
    const lines = await store.logs(run.id);
    expect(lines.some((l) => l.stream === 'stdout' && l.line === 'epoch 1 done')).toBe(true);
  });

  it('resumes a run where its steps ended; refuses to resume one that does not exist with resume: must', async () => {
    const again = await init({ dir: data, id: run.id, resume: 'allow', systemMetrics: false, captureConsole: false });
    expect(again.step).toBe(N);
    again.log({ loss: 0 });
    await again.finish();
    await expect(init({ dir: data, id: randomUUID(), resume: 'must', systemMetrics: false, captureConsole: false })).rejects.toMatchObject({ code: 'WLDB_ERR_NOT_FOUND' });
  });

  it('a finished run takes no more calls', async () => {
    run.log({ loss: 1 }); // a warning, not an error
    await expect(run.summary.set('x', 1)).rejects.toMatchObject({ code: 'WLDB_ERR_KERNEL_STATE' });
    await expect(run.save(join(data, 'nope'))).rejects.toMatchObject({ code: 'WLDB_ERR_VALIDATION' });
  });
});

describe('remote mode without a server', () => {
  it('init() fails after its timeout with a message that says what to do', async () => {
    const started = Date.now();
    await expect(init({ url: 'grpc://127.0.0.1:1', timeoutMs: 1_500, systemMetrics: false, captureConsole: false })).rejects.toMatchObject({
      code: 'WLDB_ERR_SERVER_UNAVAILABLE',
      message: expect.stringMatching(/Cannot reach the wanLLMDB server at grpc:\/\/127\.0\.0\.1:1.*wanllmdb serve.*offline/s),
    });
    expect(Date.now() - started).toBeLessThan(15_000);
  });
});
