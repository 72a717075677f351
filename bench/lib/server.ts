/**
 * How every bench that needs a server starts one, so each measures the
 * server as users run it: the real `wanllmdb serve` in its own process
 * (test/e2e/server-process.ts: free ports, sign-in required, the first
 * administrator made from WANLLMDB_BOOTSTRAP_ADMIN), passwords hashed at the
 * production cost, an API key made through the HTTP API, and the SDK
 * pointed at it the way the README says — WANLLMDB_URL and WANLLMDB_API_KEY.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { E2E_ADMIN, signIn, startServer, type ServerProcess } from '../../test/e2e/server-process.js';

export interface BenchServer {
  process: ServerProcess;
  /** `http://127.0.0.1:<port>` */
  base: string;
  /** `grpc://127.0.0.1:<port>` */
  url: string;
  /** The administrator's sign-in (`admin`) and an API key of theirs (`apiKey`, `headers`). */
  admin: { email: string; password: string };
  accessToken: string;
  apiKey: string;
  /** `{ authorization: 'Bearer <apiKey>' }` */
  headers: Record<string, string>;
  /** What a user exports before running a training script against this server. */
  sdkEnv: { WANLLMDB_URL: string; WANLLMDB_API_KEY: string };
  /** Stops the server (SIGTERM, graceful) and removes the data folder it made. */
  stop(): Promise<void>;
}

export interface BenchServerOptions {
  /** The data folder to serve; default a new temporary one, removed by stop(). */
  data?: string;
  /** More `wanllmdb serve` flags (e.g. `--db postgres://…`). */
  args?: string[];
  env?: NodeJS.ProcessEnv;
}

export async function startBenchServer(opts: BenchServerOptions = {}): Promise<BenchServer> {
  const made = opts.data === undefined ? mkdtempSync(join(tmpdir(), 'wldb-bench-server-')) : undefined;
  const data = opts.data ?? made!;
  // WANLLMDB_SCRYPT_LN empty: the production scrypt cost, not the tests' cheap one.
  const proc = await startServer(['--data', data, ...(opts.args ?? [])], { WANLLMDB_SCRYPT_LN: '', ...opts.env });
  try {
    const creds = await signIn(proc.base);
    const url = `grpc://127.0.0.1:${proc.grpcPort}`;
    return {
      process: proc,
      base: proc.base,
      url,
      admin: E2E_ADMIN,
      accessToken: creds.accessToken,
      apiKey: creds.apiKey,
      headers: creds.headers,
      sdkEnv: { WANLLMDB_URL: url, WANLLMDB_API_KEY: creds.apiKey },
      async stop() {
        await proc.stop();
        if (made) rmSync(made, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await proc.stop();
    if (made) rmSync(made, { recursive: true, force: true });
    throw err;
  }
}

/**
 * Runs `fn` with these variables set in this process's environment and
 * restores them after: a bench measuring several SDK modes in one process
 * points only its remote runs at the server (the SDK reads the variables
 * when a run starts).
 */
export async function withEnv<T>(env: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}
