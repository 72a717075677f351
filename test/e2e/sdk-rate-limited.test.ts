import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { coreServices, type Kernel } from '@wanllmdb/core';
import { metadataBackends, type FreshDatabase, type MetadataBackend } from '@wanllmdb/core/testing';
import { createAuthPlugin } from '@wanllmdb/plugin-auth';
import { projectsPlugin } from '@wanllmdb/plugin-projects';
import { trackingApiRef, trackingPlugin } from '@wanllmdb/plugin-tracking';
import type { tracking } from '@wanllmdb/proto';
import { init } from '@wanllmdb/sdk';
import { serve } from '@wanllmdb/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectContiguous } from '../../sdk/typescript/src/fixtures/e2e-helpers.js';
import { E2E_ENV, signIn, type Credentials } from './server-process.js';

/**
 * Issue 9, item 1: a remote SDK run whose API key is rate-limited loses
 * nothing. `wanllmdb serve` (the real serve(), in this process, so its limits
 * can be tiny and its windows short) is called by the SDK over gRPC with an
 * API key, while the test uses up the key's budgets from the side, as other
 * calls on a shared key would. A flush() that resolves must mean its points
 * are stored; metadata calls and heartbeats wait their turn; finish() finishes.
 */

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface LimitedServer {
  kernel: Kernel;
  grpcUrl: string;
  creds: Credentials;
  /** Calls `path` with the API key until the server answers 429: the key's budget for that kind of call is used up. */
  useUpBudget(method: 'GET' | 'POST', path: string): Promise<void>;
  /** The audit records of a method called over gRPC, oldest first (read with the administrator's token: its own budget). */
  audit(action: string): Promise<{ at: string; result: string }[]>;
  /** The run and its keys' statistics as stored (read in process, past the limits), once aggregation is done. */
  stored(runId: string): Promise<{ run: tracking.v1.Run | undefined; keys: Map<string, tracking.v1.MetricKeyStats> }>;
  close(): Promise<void>;
}

async function startLimitedServer(backend: MetadataBackend, rateLimits: Record<string, number>): Promise<LimitedServer> {
  const db: FreshDatabase = await backend.fresh();
  const data = mkdtempSync(join(tmpdir(), 'wldb-sdk-limited-'));
  dirs.push(data);
  const { kernel, grpcPort, httpPort } = await serve({
    flags: { dataDir: data, db: db.url, host: '127.0.0.1', grpcPort: 0, httpPort: 0, logLevel: 'warn' },
    env: { ...process.env, ...E2E_ENV },
    plugins: [createAuthPlugin({ scryptLn: 4, rateLimits }), projectsPlugin, trackingPlugin],
  });
  const base = `http://127.0.0.1:${httpPort}`;
  const creds = await signIn(base);
  return {
    kernel,
    grpcUrl: `grpc://127.0.0.1:${grpcPort}`,
    creds,
    async useUpBudget(method, path) {
      for (let i = 0; i < 200; i++) {
        const res = await fetch(base + path, { method, headers: { ...creds.headers, 'content-type': 'application/json' }, body: method === 'POST' ? '{}' : undefined });
        await res.arrayBuffer();
        if (res.status === 429) {
          expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
          return;
        }
        if (!res.ok) throw new Error(`${method} ${path}: ${res.status}`);
      }
      throw new Error(`${method} ${path} was never rate-limited`);
    },
    async audit(action) {
      const res = await fetch(`${base}/api/v1/audit?action=${encodeURIComponent(action)}&limit=1000`, { headers: { authorization: `Bearer ${creds.accessToken}` } });
      const body = (await res.json()) as { data: { at: string; result: string; transport: string }[] };
      if (!res.ok) throw new Error(`audit: ${res.status} ${JSON.stringify(body)}`);
      return body.data.filter((e) => e.transport === 'grpc').sort((a, b) => a.at.localeCompare(b.at));
    },
    async stored(runId) {
      const api = kernel.get(trackingApiRef);
      await api.metricsSettled();
      const service = kernel.get(coreServices.rpc).service;
      const keys = await api.listMetricKeys(service, runId);
      return { run: await api.getRun(service, runId), keys: new Map(keys.map((k) => [k.key, k])) };
    },
    async close() {
      await kernel.stop();
      await db.drop();
    },
  };
}

const quiet = { captureConsole: false, systemMetrics: false, git: false } as const;

describe.each(metadataBackends())('a rate-limited remote SDK run on $name', (backend) => {
  /** Budgets per one-second window: ordinary calls, and run ingest (metrics, logs, heartbeats). */
  let fast: LimitedServer;
  /** Minute-long windows: a used-up budget stays used up for the whole test. */
  let slow: LimitedServer;

  beforeAll(async () => {
    fast = await startLimitedServer(backend, { windowSeconds: 1, callsPerMinute: 20, ingestPerMinute: 3 });
    slow = await startLimitedServer(backend, { windowSeconds: 60, callsPerMinute: 6, ingestPerMinute: 40 });
  });
  afterAll(async () => {
    await fast?.close();
    await slow?.close();
  });

  it('stores every acknowledged step exactly once, retries config, summary and finish after Retry-After, and ends finished', async () => {
    const warnings: string[] = [];
    const flushes = 12;
    const stepsPerFlush = 2_000;
    const run = await init({ url: fast.grpcUrl, apiKey: fast.creds.apiKey, project: 'rate-limited', chunkPoints: 1_000, heartbeatMs: 0, ...quiet, onWarning: (w) => warnings.push(w) });
    let acknowledged = -1;
    for (let f = 0; f < flushes; f++) {
      for (let i = 0; i < stepsPerFlush; i++) {
        const step = f * stepsPerFlush + i;
        run.log({ loss: 1 / (step + 1), acc: step });
      }
      // Every third flush finds the ingest budget used up by another client of the key; the others use it up themselves.
      if (f % 3 === 0) await fast.useUpBudget('POST', `/api/v1/runs/${run.id}/logs`);
      await run.flush();
      acknowledged = (f + 1) * stepsPerFlush - 1;
    }
    await fast.useUpBudget('GET', `/api/v1/runs/${run.id}`);
    await run.config.update({ limited: true });
    await fast.useUpBudget('GET', `/api/v1/runs/${run.id}`);
    await run.summary.update({ last_acknowledged: acknowledged });
    await fast.useUpBudget('GET', `/api/v1/runs/${run.id}`);
    await run.finish();

    // The limits were met (the SDK says so), and nothing was given up.
    expect(warnings.some((w) => /rate-limit/i.test(w)), warnings.join('\n')).toBe(true);
    expect(warnings.filter((w) => /was dropped|could not be stored|given up/i.test(w))).toEqual([]);
    const total = acknowledged + 1;
    const { run: stored, keys } = await fast.stored(run.id);
    expect(expectContiguous(keys.get('loss'), total)).toBe(total);
    expect(expectContiguous(keys.get('acc'), total)).toBe(total);
    expect(stored).toMatchObject({ state: 'finished', exitCode: 0, config: { limited: true }, summary: { last_acknowledged: acknowledged } });
    // The server did refuse the SDK's own calls: metric streams, and metadata calls that then went through.
    expect((await fast.audit('wanllmdb.tracking.v1.MetricService/StreamMetrics')).some((e) => e.result === 'WLDB_ERR_RATE_LIMITED')).toBe(true);
    const metadata: string[] = [];
    for (const method of ['UpdateConfig', 'UpdateSummary', 'FinishRun']) {
      const results = (await fast.audit(`wanllmdb.tracking.v1.RunService/${method}`)).map((e) => e.result);
      expect(results.at(-1)).toBe('ok');
      metadata.push(...results);
    }
    expect(metadata).toContain('WLDB_ERR_RATE_LIMITED');
  }, 120_000);

  it('a rate-limited heartbeat is sent again after Retry-After, not at the next beat', async () => {
    const heartbeatMs = 5_000;
    const run = await init({ url: fast.grpcUrl, apiKey: fast.creds.apiKey, project: 'rate-limited', heartbeatMs, ...quiet, onWarning: () => {} });
    const action = 'wanllmdb.tracking.v1.RunService/Heartbeat';
    try {
      // Keep the key's ingest budget used up (with empty console-line appends, which leave the heartbeat alone)
      // until one of the SDK's heartbeats has been refused (refusals are audited).
      let refused: { at: string } | undefined;
      while (!refused) {
        await fast.useUpBudget('POST', `/api/v1/runs/${run.id}/logs`);
        refused = (await fast.audit(action)).find((e) => e.result === 'WLDB_ERR_RATE_LIMITED');
        if (!refused) await new Promise((r) => setTimeout(r, 100)); // pace: the audit reads have a budget too
      }
      let beatAt = 0;
      while (beatAt <= Date.parse(refused.at)) {
        beatAt = Date.parse((await fast.stored(run.id)).run!.heartbeatAt);
        if (beatAt <= Date.parse(refused.at)) await new Promise((r) => setTimeout(r, 100)); // polling pace
      }
      // Retry-After is 1 s; the next regular beat would come 5 s after the refused one.
      expect(beatAt - Date.parse(refused.at)).toBeLessThan(heartbeatMs - 1_500);
    } finally {
      await run.finish();
    }
  }, 60_000);

  it('ordinary calls that use up the key do not hold up its metrics; past rateLimitWaitMs what waits is given up, and flush() and finish() say so', async () => {
    const warnings: string[] = [];
    const stepsPerFlush = 1_000;
    const run = await init({ url: slow.grpcUrl, apiKey: slow.creds.apiKey, project: 'budgets', chunkPoints: 500, heartbeatMs: 0, rateLimitWaitMs: 2_000, ...quiet, onWarning: (w) => warnings.push(w) });
    // Another client of the key uses up its call budget for the rest of the minute.
    await slow.useUpBudget('GET', `/api/v1/runs/${run.id}`);
    for (let f = 0; f < 5; f++) {
      for (let i = 0; i < stepsPerFlush; i++) run.log({ loss: f * stepsPerFlush + i });
      await run.flush();
    }
    expect(warnings).toEqual([]);
    // Metadata calls are in the used-up budget: the server asks for ~a minute, more than the 2 s the run may wait.
    await expect(run.config.update({ never: true })).rejects.toMatchObject({ code: 'WLDB_ERR_RATE_LIMITED', message: expect.stringMatching(/for more than 2 s .*rateLimitWaitMs/) });
    // Now the ingest budget too: the next points cannot be stored, and the flush says how many were given up (once).
    await slow.useUpBudget('POST', `/api/v1/runs/${run.id}/logs`);
    for (let i = 0; i < stepsPerFlush; i++) run.log({ loss: 5 * stepsPerFlush + i });
    await expect(run.flush()).rejects.toMatchObject({ code: 'WLDB_ERR_RATE_LIMITED', message: expect.stringMatching(/^1000 point\(s\) logged before this flush could not be stored/) });
    await run.flush();
    expect(warnings.some((w) => /was dropped/.test(w))).toBe(true);
    // FinishRun is refused as well: finish() rejects, and the worker is stopped all the same.
    await expect(run.finish()).rejects.toMatchObject({ code: 'WLDB_ERR_RATE_LIMITED' });
    const { run: stored, keys } = await slow.stored(run.id);
    expect(stored?.state).toBe('running');
    expect(expectContiguous(keys.get('loss'), 5 * stepsPerFlush)).toBe(5 * stepsPerFlush);
  }, 60_000);
});
