import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { expectContiguous, openStore, settledKeys, startChild, startCli } from '../../sdk/typescript/src/fixtures/e2e-helpers.js';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'wldb-sdk-off-'));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const lastFlushed = (child: { all(re: RegExp): RegExpExecArray[] }) => Math.max(-1, ...child.all(/flushed (\d+)/).map((m) => Number(m[1])));

/** Lines of a spool's sync record (one per stored op), 0 before the first. */
function recorded(spool: string): number {
  const dir = join(spool, 'synced');
  if (!existsSync(dir)) return 0;
  return readdirSync(dir)
    .filter((n) => n.endsWith('.log'))
    .reduce((sum, n) => sum + readFileSync(join(dir, n), 'utf8').split('\n').filter(Boolean).length, 0);
}

describe('SDK, offline mode then `wanllmdb sync` (real processes)', () => {
  it('kill -9 while spooling: sync uploads every acknowledged point once; a second sync uploads nothing', async () => {
    const spool = join(tmp(), 'spool');
    const data = tmp();
    const child = startChild({ init: { mode: 'offline', dir: spool, project: 'e2e-offline', captureConsole: false }, steps: 0, flushEvery: 5_000, then: 'forever' });
    const runId = (await child.waitFor(/run (\S+)/))[1]!;
    await child.waitFor(/(flushed \d+\n[\s\S]*){3}/);
    child.proc.kill('SIGKILL');
    await child.exited;
    const flushed = lastFlushed(child);

    const sync = startCli(['sync', spool, '--data', data]);
    const exit = await sync.exited;
    expect(exit.code, sync.output()).toBe(0);
    expect(sync.output()).toMatch(/sync: \d+% · run 1\/1/); // plain progress lines when stderr is not a TTY
    expect(sync.output()).toMatch(new RegExp(`${runId}: \\d+ uploaded`));

    const again = startCli(['sync', spool, '--data', data]);
    expect((await again.exited).code, again.output()).toBe(0);
    expect(again.output()).toMatch(new RegExp(`${runId}: 0 uploaded \\(0 metric batches, 0 points\\), \\d+ already synced`));

    const store = await openStore(data);
    try {
      const keys = await settledKeys(store, runId);
      const n = expectContiguous(keys.get('loss'), flushed + 1);
      expect(expectContiguous(keys.get('acc'), flushed + 1)).toBe(n);
      expect((await store.run(runId)).projectId).toBeTruthy();
    } finally {
      await store.close();
    }
  });

  it('a sync killed midway, run again, completes with every point exactly once', async () => {
    const spool = join(tmp(), 'spool');
    const data = tmp();
    const steps = 600_000;
    const child = startChild({ init: { mode: 'offline', dir: spool, project: 'e2e-offline', captureConsole: false, chunkPoints: 8_192 }, steps, flushEvery: 100_000, then: 'finish' });
    const runId = (await child.waitFor(/run (\S+)/))[1]!;
    await child.waitFor(/finished/);
    expect((await child.exited).code).toBe(0);

    const first = startCli(['sync', spool, '--data', data]);
    // Kill it once it has recorded the run and some batches, but not all.
    const deadline = Date.now() + 60_000;
    while (recorded(spool) < 3 && Date.now() < deadline && first.proc.exitCode === null) await new Promise((r) => setTimeout(r, 20));
    first.proc.kill('SIGKILL');
    await first.exited;
    const partial = recorded(spool);
    expect(partial).toBeGreaterThanOrEqual(3);

    const second = startCli(['sync', spool, '--data', data]);
    expect((await second.exited).code, second.output()).toBe(0);
    const m = /: (\d+) uploaded \((\d+) metric batches, (\d+) points\), (\d+) already synced/.exec(second.output());
    expect(m, second.output()).toBeTruthy();
    expect(Number(m![4])).toBeGreaterThan(0);

    const store = await openStore(data);
    try {
      const keys = await settledKeys(store, runId);
      expect(expectContiguous(keys.get('loss'), steps)).toBe(steps);
      expect(expectContiguous(keys.get('acc'), steps)).toBe(steps);
      expect(await store.run(runId)).toMatchObject({ state: 'finished', exitCode: 0 });
    } finally {
      await store.close();
    }
  });
});
