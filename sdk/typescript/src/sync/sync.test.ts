import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { metadataBackends } from '@wanllmdb/core/testing';
import { trackingApiRef } from '@wanllmdb/plugin-tracking';
import type { tracking } from '@wanllmdb/proto';
import { afterAll, describe, expect, it } from 'vitest';
import { useTrackingKernel } from '../../../../plugins/tracking/src/fixtures/tracking-kernel.js';
import { init } from '../index.js';
import { readRunFile, SpoolWriter } from '../spool/spool.js';
import { syncOffline } from './sync.js';

const root = mkdtempSync(join(tmpdir(), 'wldb-sync-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/**
 * `wanllmdb sync` into a real server (gRPC, a listening kernel) on each
 * metadata backend, run a second time as if the first one's record of what
 * it stored had been lost (killed between the server's commit and the
 * record's fsync, or the folder synced again from a copy): every operation is
 * sent again, and the store keeps each metric batch and each console-line
 * batch once, by its batch id.
 */
describe.each(metadataBackends())('sync run twice into a server on $name', (backend) => {
  const server = useTrackingKernel(backend, { listen: true });

  it('stores console lines once, from this SDK (batch ids) and from spools written before logs had them', async () => {
    const dir = join(root, backend.name);
    const run = await init({ mode: 'offline', dir, project: 'sync-twice', chunkPoints: 100, captureConsole: false, systemMetrics: false, git: false });
    for (let step = 0; step < 1_000; step++) {
      run.log({ loss: 1 / (step + 1) });
      // The console capture's entry point (what a process's stdout/stderr lines go through).
      if (step % 10 === 0) run._consoleLine({ time: Date.now(), stream: step % 20 ? 'stderr' : 'stdout', line: `step ${step}` });
    }
    await run.flush();
    for (let i = 0; i < 5; i++) run._consoleLine({ time: Date.now(), stream: 'stdout', line: `after flush ${i}` });
    await run.finish();
    // A logs op as an older SDK spooled it: no batch id.
    const { writer } = await SpoolWriter.open(dir, (await readRunFile(dir)).createRun);
    await writer.writeOp('logs', { runId: run.id, lines: [{ seq: 0, time: Date.now(), stream: 'stdout', line: 'from an older spool' }] });

    const url = `grpc://127.0.0.1:${server.ports!.grpcPort}`;
    const first = await syncOffline(dir, { url });
    expect(first.runs[0]).toMatchObject({ id: run.id, points: 1_000, skipped: 0 });
    // The record of what the target stored is lost: the second sync sends everything again.
    rmSync(join(dir, 'synced'), { recursive: true, force: true });
    const second = await syncOffline(dir, { url });
    expect(second.runs[0]).toMatchObject({ uploaded: first.runs[0]!.uploaded, skipped: 0 });

    const logs = (await server.call<tracking.v1.GetLogsResponse>('RunLogService/GetLogs', { runId: run.id, limit: 5000 })).data;
    const expected = [...Array.from({ length: 100 }, (_, i) => `step ${i * 10}`), ...Array.from({ length: 5 }, (_, i) => `after flush ${i}`), 'from an older spool'];
    expect(logs.map((l) => l.line)).toEqual(expected);
    expect(logs.map((l) => l.seq)).toEqual(expected.map((_, i) => i + 1));
    await server.kernel.get(trackingApiRef).metricsSettled();
    const keys = (await server.call<tracking.v1.ListMetricKeysResponse>('MetricService/ListMetricKeys', { runId: run.id })).data;
    expect(keys.find((k) => k.key === 'loss')).toMatchObject({ count: 1_000, firstStep: 0, lastStep: 999 });
    expect((await server.call<tracking.v1.RunResponse>('RunService/GetRun', { id: run.id })).data).toMatchObject({ state: 'finished' });
  }, 60_000);
});
