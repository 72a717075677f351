import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { expectContiguous, grpcStore, settledKeys, startChild } from '../../sdk/typescript/src/fixtures/e2e-helpers.js';
import { startServer, type ServerProcess } from './server-process.js';

const PG_URL = process.env.WLDB_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'wldb-sdk-remote-'));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const backends = [
  { name: 'SQLite', db: () => ({ args: [] as string[], drop: async () => {} }) },
  {
    name: 'PostgreSQL',
    db: () => {
      const schema = `sdk_e2e_${randomBytes(4).toString('hex')}`;
      return {
        args: ['--db', `${PG_URL}?schema=${schema}`],
        drop: async () => {
          const client = new pg.Client({ connectionString: PG_URL });
          await client.connect();
          await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
          await client.end();
        },
      };
    },
  },
];

describe.each(backends)('SDK, remote mode against `wanllmdb serve` on $name (real processes)', ({ name, db }) => {
  it('the server is kill -9ed mid-ingest and restarted on the same port: the SDK retries, every batch is stored exactly once', async () => {
    const data = tmp();
    const { args, drop } = db();
    const serverArgs = ['--data', data, ...args];
    let server: ServerProcess | undefined = await startServer(serverArgs);
    const port = server.grpcPort;
    // The tracking flows of remote mode, unchanged, with an API key of the bootstrap administrator.
    const { apiKey } = await server.credentials();
    const steps = 300_000;
    const file = join(data, 'model.bin');
    writeFileSync(file, Buffer.alloc(5 << 20, 1));
    try {
      const child = startChild({
        init: { url: `grpc://127.0.0.1:${port}`, apiKey, project: 'e2e-remote', captureConsole: false, timeoutMs: 60_000 },
        steps,
        flushEvery: 20_000,
        then: 'finish',
        save: file,
      });
      const runId = (await child.waitFor(/run (\S+)/))[1]!;
      await child.waitFor(/flushed 59999/);
      // The child goes on logging (and streaming) at full speed while the server dies.
      await server.stop('SIGKILL');
      server = undefined;
      await new Promise((r) => setTimeout(r, 300));
      server = await startServer([...serverArgs, '--port', String(port)]);
      expect(server.grpcPort).toBe(port);
      await child.waitFor(/finished/, 120_000);
      expect((await child.exited).code, child.output()).toBe(0);

      const store = grpcStore(port, apiKey);
      try {
        const keys = await settledKeys(store, runId);
        expect(expectContiguous(keys.get('loss'), steps)).toBe(steps);
        expect(expectContiguous(keys.get('acc'), steps)).toBe(steps);
        expect(await store.run(runId)).toMatchObject({
          state: 'finished',
          exitCode: 0,
          config: { extra: { nested: [1, 'two', true, null] } },
          summary: { final_step: steps - 1, note: 'done' },
        });
        expect(await store.files(runId)).toEqual([expect.objectContaining({ path: 'artifacts/model.bin', size: 5 << 20 })]);
      } finally {
        await store.close();
      }

      if (name === 'SQLite') {
        // A server and an embedded writer on the same data folder at once, while a remote SDK writes through the server.
        const embedded = startChild({ init: { dir: data, project: 'e2e-shared', captureConsole: false }, steps: 50_000, flushEvery: 5_000, then: 'finish' });
        const remote = startChild({ init: { url: `grpc://127.0.0.1:${port}`, apiKey, project: 'e2e-shared', captureConsole: false }, steps: 50_000, flushEvery: 5_000, then: 'finish' });
        const ids = [(await embedded.waitFor(/run (\S+)/))[1]!, (await remote.waitFor(/run (\S+)/))[1]!];
        expect((await embedded.exited).code, embedded.output()).toBe(0);
        expect((await remote.exited).code, remote.output()).toBe(0);
        const shared = grpcStore(port, apiKey);
        try {
          for (const id of ids) {
            expect(await shared.run(id)).toMatchObject({ state: 'finished' });
            expect(expectContiguous((await settledKeys(shared, id)).get('loss'), 50_000)).toBe(50_000);
          }
        } finally {
          await shared.close();
        }
      }
    } finally {
      await server?.stop();
      await drop();
    }
  }, 180_000);
});
