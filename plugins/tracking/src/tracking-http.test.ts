import { createHash, randomBytes, randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { Contract } from '@wanllmdb/core';
import { metadataBackends } from '@wanllmdb/core/testing';
import type { tracking } from '@wanllmdb/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTrackingKernel, type TrackingKernel } from './fixtures/tracking-kernel.js';
import { trackingApiRef } from './tracking-api.js';

type Run = tracking.v1.Run;

/** The HTTP/JSON and gRPC faces of the tracking services (one backend: the handlers are shared, the transports are what is tested). */
describe.each(metadataBackends().filter((b) => b.name === 'sqlite'))('tracking over HTTP and gRPC ($name)', (backend) => {
  let t: TrackingKernel;
  let base = '';
  let runId = '';

  const http = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${base}${path}`, {
      method,
      ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    });
    const text = await res.text();
    return { status: res.status, type: res.headers.get('content-type') ?? '', json: text ? (JSON.parse(text) as any) : undefined };
  };

  beforeAll(async () => {
    t = await startTrackingKernel(backend, { listen: true });
    base = `http://127.0.0.1:${t.ports!.httpPort}`;
  });
  afterAll(() => t?.close());

  it('creates, reads, patches, finishes and deletes runs', async () => {
    const created = await http('POST', '/api/v1/projects/http-project/runs', { name: 'over-http', config: { lr: 0.01 }, tags: ['a'], job_type: 'train' });
    expect(created.status).toBe(201);
    const run = created.json.data as Run;
    runId = run.id;
    expect(run).toMatchObject({ name: 'over-http', config: { lr: 0.01 }, tags: ['a'], jobType: 'train', state: 'running', finishedAt: '' });
    expect((await http('GET', `/api/v1/runs/${run.id}`)).json.data.id).toBe(run.id);
    expect((await http('PATCH', `/api/v1/runs/${run.id}`, { notes: 'patched' })).json.data).toMatchObject({ notes: 'patched', name: 'over-http' });
    expect((await http('POST', `/api/v1/runs/${run.id}/heartbeat`, {})).json).toEqual({ state: 'running' });
    expect((await http('POST', `/api/v1/runs/${run.id}/config`, { config: { epochs: 2 } })).json.data).toMatchObject({ version: 2, config: { lr: 0.01, epochs: 2 } });
    expect((await http('GET', `/api/v1/runs/${run.id}/config/history`)).json.data).toHaveLength(2);

    const missing = await http('GET', `/api/v1/runs/${randomUUID()}`);
    expect(missing.status).toBe(404);
    expect(missing.json.error.code).toBe('WLDB_ERR_NOT_FOUND');
    expect((await http('GET', '/api/v1/runs/not-an-id')).status).toBe(400);
    const invalid = await http('POST', '/api/v1/projects/http-project/runs', { name: 'x'.repeat(256), group: 'g\nh' });
    expect(invalid.status).toBe(400);
    expect(invalid.json.error.details.map((d: { field: string }) => d.field).sort()).toEqual(['group', 'name']);
    const closed = await http('POST', '/api/v1/projects/http-project/runs', { resume: 'maybe' });
    expect([closed.status, closed.json.error.details]).toEqual([400, [{ field: 'resume', message: 'must be one of "never", "allow", "must"' }]]);

    const doomed = (await http('POST', '/api/v1/projects/http-project/runs', {})).json.data as Run;
    expect((await http('POST', `/api/v1/runs/${doomed.id}/finish`, { exit_code: 3 })).json.data).toMatchObject({ state: 'crashed', exitCode: 3 });
    expect((await http('DELETE', `/api/v1/runs/${doomed.id}`)).status).toBe(204);
    expect((await http('GET', `/api/v1/runs/${doomed.id}`)).status).toBe(404);
  });

  it('serves metrics, NaN summaries as strings, filtered lists and exports', async () => {
    expect((await http('POST', `/api/v1/runs/${runId}/metrics`, { metrics: [{ name: 'loss', step: 1, value: 0.5 }, { name: 'loss', step: 2, value: 0.25 }] })).json).toMatchObject({ accepted: 2 });
    const batch = await http('POST', '/api/v1/metrics/batch', { runId, metrics: { weird: [{ step: 1, value: 'NaN' }, { step: 2, value: '-Infinity' }] } });
    expect(batch.json).toMatchObject({ accepted: 2 });
    const refused = await http('POST', '/api/v1/metrics/batch', { runId, metrics: { weird: [{ step: 1, value: 'lots' }] } });
    expect(refused.status).toBe(400);
    expect(refused.json.error.details[0].field).toBe('metrics.weird[0].value');
    await t.kernel.get(trackingApiRef).metricsSettled();

    const got = await http('GET', `/api/v1/runs/${runId}/metrics?names=loss,weird`);
    expect(got.json.data.loss).toEqual([expect.objectContaining({ step: 1, value: 0.5 }), expect.objectContaining({ step: 2, value: 0.25 })]);
    // The design's point shape: raw points carry their wall time as an RFC 3339 timestamp.
    expect(Date.parse(got.json.data.loss[0].timestamp)).toBeGreaterThan(Date.now() - 600_000);
    expect(got.json.data.weird.map((p: { value: unknown }) => p.value)).toEqual(['NaN', '-Infinity']);
    expect((await http('GET', `/api/v1/runs/${runId}`)).json.data.summary).toMatchObject({ loss: 0.25, weird: '-Infinity' });
    expect((await http('PATCH', `/api/v1/runs/${runId}/summary`, { summary: { best: 'Infinity', loss: null } })).json.data).toMatchObject({ best: 'Infinity', loss: 0.25 });
    expect((await http('GET', `/api/v1/runs/${runId}/metrics/keys`)).json.data.map((k: { key: string }) => k.key)).toEqual(['loss', 'weird']);

    const filter = encodeURIComponent('summary.loss < 0.3 AND config.lr = 0.01 AND tags CONTAINS "a"');
    const list = await http('GET', `/api/v1/projects/http-project/runs?filter=${filter}&sort=-summary.loss&limit=10`);
    expect(list.status).toBe(200);
    expect(list.json.data.map((r: Run) => r.id)).toEqual([runId]);
    expect(list.json.meta).toEqual({ total: 1, nextCursor: '' });
    const bad = await http('GET', `/api/v1/projects/http-project/runs?filter=${encodeURIComponent('summary.loss <')}`);
    expect(bad.status).toBe(400);
    expect(bad.json.error).toMatchObject({ code: 'WLDB_ERR_VALIDATION', details: [{ field: 'filter' }] });
    expect(bad.json.error.message).toMatch(/character 15 \(after "summary.loss <"\): expected a value/);

    const csv = await fetch(`${base}/api/v1/runs/${runId}/metrics:export?format=csv&names=loss`);
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(await csv.text()).toMatch(/loss/);
    const arrow = await fetch(`${base}/api/v1/runs/${runId}/metrics:export?format=arrow`);
    expect(arrow.headers.get('content-type')).toBe('application/vnd.apache.arrow.stream');
    expect((await arrow.arrayBuffer()).byteLength).toBeGreaterThan(0);
  });

  it('appends and pages console logs', async () => {
    const lines = Array.from({ length: 7 }, (_, i) => ({ line: `line ${i}`, stream: i === 3 ? 'stderr' : 'stdout' }));
    expect((await http('POST', `/api/v1/runs/${runId}/logs`, { lines, batchId: 'http-batch-1' })).json).toEqual({ accepted: 7, duplicate: false });
    // Sent again (a client retrying a lost answer): stored once.
    expect((await http('POST', `/api/v1/runs/${runId}/logs`, { lines, batchId: 'http-batch-1' })).json).toEqual({ accepted: 7, duplicate: true });
    const page = await http('GET', `/api/v1/runs/${runId}/logs?after=2&limit=3`);
    expect(page.json.data.map((l: { seq: number }) => l.seq)).toEqual([3, 4, 5]);
    expect(page.json.meta).toEqual({ nextAfter: 5, hasMore: true });
    expect((await http('GET', `/api/v1/runs/${runId}/logs?after=5`)).json.meta).toEqual({ nextAfter: 7, hasMore: false });
    expect((await http('GET', `/api/v1/runs/${runId}/logs?search=LINE%203`)).json.data).toEqual([expect.objectContaining({ seq: 4, stream: 'stderr', line: 'line 3' })]);
  });

  it('uploads a file over a gRPC client stream and downloads it over HTTP as raw bytes', async () => {
    const contract = new Contract();
    const upload = contract.methods('wanllmdb.tracking.v1.RunFileService').find((m) => m.name === 'UploadFile')!;
    const client = new grpc.Client(`127.0.0.1:${t.ports!.grpcPort}`, grpc.credentials.createInsecure());
    const content = randomBytes(3 * 1024 * 1024 + 17);
    try {
      const stored = await new Promise<{ data: tracking.v1.RunFile }>((resolve, reject) => {
        const call = client.makeClientStreamRequest(
          upload.path,
          (o: unknown) => Buffer.from(upload.requestType.encode(upload.requestType.fromObject(o as object)).finish()),
          (b: Buffer) => upload.responseType.toObject(upload.responseType.decode(b), { longs: Number }) as { data: tracking.v1.RunFile },
          (err, res) => (err ? reject(err) : resolve(res!)),
        );
        for (let at = 0; at < content.length; at += 1024 * 1024) {
          call.write(at === 0 ? { runId, path: 'data/sample.csv', data: content.subarray(at, at + 1024 * 1024) } : { data: content.subarray(at, at + 1024 * 1024) });
        }
        call.end();
      });
      expect(stored.data).toMatchObject({ path: 'data/sample.csv', size: content.length, digest: createHash('sha256').update(content).digest('hex') });
    } finally {
      client.close();
    }
    const res = await fetch(`${base}/api/v1/runs/${runId}/files:download?path=${encodeURIComponent('data/sample.csv')}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(Buffer.from(await res.arrayBuffer()).equals(content)).toBe(true);
    expect((await http('GET', `/api/v1/runs/${runId}/files`)).json.data).toEqual([expect.objectContaining({ path: 'data/sample.csv', size: content.length })]);

    const traversal = await http('GET', `/api/v1/runs/${runId}/files:download?path=${encodeURIComponent('../../../etc/passwd')}`);
    expect(traversal.status).toBe(400);
    expect(traversal.json.error.details[0].field).toBe('path');
    expect((await http('GET', `/api/v1/runs/${runId}/files:download?path=nope.txt`)).status).toBe(404);
  });

  it('streams run events as Server-Sent Events', async () => {
    const abort = new AbortController();
    const res = await fetch(`${base}/api/v1/projects/http-project/runs:watch`, { signal: abort.signal });
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const reader = res.body!.getReader();
    let text = '';
    await new Promise((r) => setTimeout(r, 100));
    await http('PATCH', `/api/v1/runs/${runId}`, { notes: 'watched' });
    while (!text.includes('"kind":"updated"')) {
      const { value, done } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString();
    }
    abort.abort();
    const event = JSON.parse(text.split('\n').find((l) => l.startsWith('data: ') && l.includes('"kind":"updated"'))!.slice(6));
    expect(event).toMatchObject({ kind: 'updated', runId, run: { notes: 'watched' } });
  });
});
