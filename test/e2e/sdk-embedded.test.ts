import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { expectContiguous, openStore, settledKeys, startChild, type StoreClient } from '../../sdk/typescript/src/fixtures/e2e-helpers.js';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'wldb-sdk-e2e-'));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const lastFlushed = (child: { all(re: RegExp): RegExpExecArray[] }) => Math.max(-1, ...child.all(/flushed (\d+)/).map((m) => Number(m[1])));

describe('SDK, embedded mode (real processes)', () => {
  it('survives kill -9: every point up to the last acknowledged flush is stored, none twice', async () => {
    const data = tmp();
    const child = startChild({ init: { dir: data, project: 'e2e', captureConsole: false }, steps: 0, flushEvery: 5_000, then: 'forever' });
    const runId = (await child.waitFor(/run (\S+)/))[1]!;
    await child.waitFor(/(flushed \d+\n[\s\S]*){3}/);
    child.proc.kill('SIGKILL');
    expect((await child.exited).signal).toBe('SIGKILL');
    const flushed = lastFlushed(child);

    const store = await openStore(data);
    try {
      const keys = await settledKeys(store, runId);
      const loss = expectContiguous(keys.get('loss'), flushed + 1);
      expect(expectContiguous(keys.get('acc'), flushed + 1)).toBe(loss);
      expect((await store.run(runId)).state).toBe('running');
    } finally {
      await store.close();
    }
  });

  describe('ends runs as the process ends', () => {
    const data = tmp();
    const ended = async (then: string, extra: object = {}) => {
      const child = startChild({ init: { dir: data, project: 'e2e-exit' }, steps: 1_000, flushEvery: 500, then, ...extra });
      const runId = (await child.waitFor(/run (\S+)/))[1]!;
      return { child, runId };
    };
    let store: StoreClient;
    afterAll(async () => store?.close());
    const open = async () => (store ??= await openStore(data));

    it('SIGTERM: the run is marked killed with exit code 143, then the process dies of the signal', async () => {
      const { child, runId } = await ended('idle');
      await child.waitFor(/ready/);
      child.proc.kill('SIGTERM');
      expect(await child.exited).toEqual({ code: null, signal: 'SIGTERM' });
      const run = await (await open()).run(runId);
      expect(run).toMatchObject({ state: 'killed', exitCode: 143 });
      expect(expectContiguous((await settledKeys(store, runId)).get('loss'), 1_000)).toBe(1_000);
    });

    it('an uncaught exception: the run is crashed with exit code 1 and the error is in its console log', async () => {
      const { child, runId } = await ended('throw');
      const exit = await child.exited;
      expect(exit.code).toBe(1);
      expect(child.output()).toMatch(/boom: the training loop failed/);
      expect(await (await open()).run(runId)).toMatchObject({ state: 'crashed', exitCode: 1 });
      const logs = await store.logs(runId);
      expect(logs.some((l) => l.stream === 'stderr' && l.line.includes('boom: the training loop failed'))).toBe(true);
    });

    it('an unhandled rejection: crashed, exit code 1', async () => {
      const { child, runId } = await ended('reject');
      expect((await child.exited).code).toBe(1);
      expect(await (await open()).run(runId)).toMatchObject({ state: 'crashed', exitCode: 1 });
    });

    it('the program just ends: finished with its exit code; process.exit(n): crashed with n', async () => {
      const a = await ended('end', { exitCode: 0 });
      const b = await ended('exit', { exitCode: 5 });
      expect((await a.child.exited).code).toBe(0);
      expect((await b.child.exited).code).toBe(5);
      expect(await (await open()).run(a.runId)).toMatchObject({ state: 'finished', exitCode: 0 });
      expect(await store.run(b.runId)).toMatchObject({ state: 'crashed', exitCode: 5 });
      const logs = await store.logs(a.runId);
      expect(logs.some((l) => l.stream === 'stdout' && l.line === 'flushed 999')).toBe(true);
    });
  });
});
