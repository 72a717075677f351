import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { Contract, coreServices, type MetadataStore } from '@wanllmdb/core';
import { metadataBackends, startTestKernel, type TestKernel } from '@wanllmdb/core/testing';
import { projectsPlugin } from '@wanllmdb/plugin-projects';
import { pino } from 'pino';
import protobuf from 'protobufjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rejection } from './fixtures/rejection.js';
import { startTrackingKernel, type TrackingKernel } from './fixtures/tracking-kernel.js';
import { createTrackingPlugin } from './tracking-plugin.js';

/** JSON text nested `n` levels: objects `{"a":{"a":…1}}` or arrays `[[…1]]` (built as text: JSON.stringify itself recurses). */
const deepText = (n: number, kind: 'object' | 'array' = 'object') => (kind === 'object' ? `${'{"a":'.repeat(n)}1${'}'.repeat(n)}` : `${'['.repeat(n)}1${']'.repeat(n)}`);
/** The same as an object, built in a loop. */
function deepValue(n: number, kind: 'object' | 'array' = 'object'): unknown {
  let v: unknown = 1;
  for (let i = 0; i < n; i++) v = kind === 'object' ? { a: v } : [v];
  return v;
}

/** google.protobuf.Struct bytes nested `n` levels ({"a": {"a": … 1}}), written bottom-up by hand so no encoder recurses. */
function deepStructBytes(n: number): Uint8Array {
  const delimited = (field: number, bytes: Uint8Array) => protobuf.Writer.create().uint32((field << 3) | 2).bytes(bytes).finish();
  const concat = (...parts: Uint8Array[]) => Buffer.concat(parts);
  let value = protobuf.Writer.create().uint32((2 << 3) | 1).double(1).finish(); // Value { number_value: 1 }
  let struct = new Uint8Array();
  for (let i = 0; i < n; i++) {
    const entry = concat(protobuf.Writer.create().uint32((1 << 3) | 2).string('a').finish(), delimited(2, value)); // map entry { key, value }
    struct = delimited(1, entry); // Struct { fields: [entry] }
    value = delimited(5, struct); // Value { struct_value }
  }
  return struct;
}

/** `deep`: a JSON object nested n levels; Struct fields take it as it is, a list of values wraps it. */
const HTTP_CASES: { what: string; field: string; send: (deep: string) => [string, string, string] }[] = [
  { what: 'run config (create)', field: 'config', send: (d) => ['POST', '/api/v1/projects/bad-input/runs', `{"config":${d}}`] },
  { what: 'run config (update)', field: 'config', send: (d) => ['POST', '/api/v1/runs/{run}/config', `{"config":${d}}`] },
  { what: 'run summary', field: 'summary', send: (d) => ['PATCH', '/api/v1/runs/{run}/summary', `{"summary":${d}}`] },
  { what: 'finish summary', field: 'summary', send: (d) => ['POST', '/api/v1/runs/{run}/finish', `{"summary":${d}}`] },
  { what: 'view spec', field: 'spec', send: (d) => ['POST', '/api/v1/projects/bad-input/views', `{"name":"v","spec":${d}}`] },
  { what: 'project settings', field: 'settings', send: (d) => ['POST', '/api/v1/projects', `{"name":"deep ${randomUUID()}","settings":${d}}`] },
  { what: 'metric batch values', field: 'metrics.loss', send: (d) => ['POST', '/api/v1/metrics/batch', `{"runId":"{run}","metrics":{"loss":[${d}]}}`] },
];

/** The HTTP/JSON, gRPC and in-process faces answer bad input with a coded 4xx, never a 500 (one backend: the transports are under test). */
describe.each(metadataBackends().filter((b) => b.name === 'sqlite'))('bad input over every transport ($name)', (backend) => {
  let t: TrackingKernel;
  let base = '';
  let runId = '';

  const send = async (method: string, path: string, body?: string, headers: Record<string, string> = { 'content-type': 'application/json' }) => {
    const res = await fetch(`${base}${path.replace('{run}', runId)}`, { method, body, headers: body === undefined ? {} : headers });
    const text = await res.text();
    return { status: res.status, text, json: text ? (JSON.parse(text) as any) : undefined };
  };
  /** Every 4xx carries the design's envelope with a WLDB_ERR code. */
  const expectEnvelope = (r: { status: number; text: string; json: any }, status: number, code: string) => {
    expect(r.status, r.text.slice(0, 500)).toBe(status);
    expect(r.json.error.code).toBe(code);
    expect(typeof r.json.error.message).toBe('string');
    expect(Array.isArray(r.json.error.details)).toBe(true);
    expect(r.json.meta.requestId).toBeTruthy();
  };

  beforeAll(async () => {
    t = await startTrackingKernel(backend, { listen: true });
    base = `http://127.0.0.1:${t.ports!.httpPort}`;
    runId = (await t.call('RunService/CreateRun', { projectId: 'bad-input' })).data.id;
  });
  afterAll(() => t?.close());

  describe('JSON nested deeper than 32 levels gets a 400 naming the field, at any depth', () => {
    for (const c of HTTP_CASES) {
      it(`over HTTP: ${c.what}`, async () => {
        for (const n of [33, 2_000, 100_000]) {
          // Objects all the way down, or an object holding arrays all the way down.
          for (const deep of [deepText(n), `{"x":${deepText(n - 1, 'array')}}`]) {
            const r = await send(...c.send(deep));
            expectEnvelope(r, 400, 'WLDB_ERR_VALIDATION');
            expect(r.json.error.details).toEqual([{ field: c.field, message: expect.stringContaining('nested deeper than 32 levels') }]);
          }
        }
      });
    }

    it('over HTTP: 32 levels are accepted, and deep bodies (arrays or objects) are refused before any conversion', async () => {
      const made = await send('POST', '/api/v1/projects/bad-input/runs', `{"config":${deepText(32)}}`);
      expect(made.status, made.text).toBe(201);
      expect(JSON.stringify(made.json.data.config)).toBe(deepText(32));
      expectEnvelope(await send('POST', '/api/v1/projects/bad-input/runs', deepText(100_000, 'array')), 400, 'WLDB_ERR_VALIDATION');
      expectEnvelope(await send('POST', '/api/v1/projects/bad-input/runs', deepText(100_000)), 400, 'WLDB_ERR_VALIDATION');
      expect((await send('GET', '/healthz')).json).toEqual({ status: 'SERVING' });
    });

    it('over gRPC', async () => {
      const methods = new Contract().methods('wanllmdb.tracking.v1.RunService');
      const client = new grpc.Client(`127.0.0.1:${t.ports!.grpcPort}`, grpc.credentials.createInsecure());
      const raw = (name: string, bytes: Uint8Array) => {
        const m = methods.find((x) => x.name === name)!;
        return new Promise<unknown>((resolve, reject) =>
          client.makeUnaryRequest(m.path, (b: Uint8Array) => Buffer.from(b), (b: Buffer) => m.responseType.decode(b), bytes, (err, res) => (err ? reject(err) : resolve(res))),
        );
      };
      const field = (n: number, wire: number) => protobuf.Writer.create().uint32((n << 3) | wire);
      const createRun = (config: Uint8Array) => Buffer.concat([field(1, 2).string('bad-input').finish(), field(8, 2).bytes(config).finish()]);
      const updateSummary = (summary: Uint8Array) => Buffer.concat([field(1, 2).string(runId).finish(), field(2, 2).bytes(summary).finish()]);
      try {
        for (const [bytes, name] of [
          [createRun(deepStructBytes(2_000)), 'config'],
          [createRun(deepStructBytes(33)), 'config'],
          [updateSummary(deepStructBytes(2_000)), 'summary'],
        ] as const) {
          const err = (await raw(name === 'config' ? 'CreateRun' : 'UpdateSummary', bytes).catch((e: grpc.ServiceError) => e)) as grpc.ServiceError;
          expect(err.code, err.details).toBe(grpc.status.INVALID_ARGUMENT);
          expect(err.metadata.get('wldb-error-code')).toEqual(['WLDB_ERR_VALIDATION']);
          expect(JSON.parse(String(err.metadata.get('wldb-error-details-bin')[0]))).toEqual([{ field: name, message: expect.stringContaining('nested deeper than 32 levels') }]);
        }
        // Bytes that are no message at all: a coded 400, not grpc-js's bare INTERNAL.
        const garbage = (await raw('GetRun', Buffer.from([(9 << 3) | 6, 0x01]) /* field 9 with wire type 6, which protobuf does not have */).catch((e: grpc.ServiceError) => e)) as grpc.ServiceError;
        expect(garbage.code).toBe(grpc.status.INVALID_ARGUMENT);
        expect(garbage.metadata.get('wldb-error-code')).toEqual(['WLDB_ERR_VALIDATION']);
        // The same in a client stream (a metric stream, a file upload): the call fails with the coded 400.
        for (const [service, name] of [
          ['MetricService', 'StreamMetrics'],
          ['RunFileService', 'UploadFile'],
        ] as const) {
          const m = new Contract().methods(`wanllmdb.tracking.v1.${service}`).find((x) => x.name === name)!;
          const streamed = await new Promise<grpc.ServiceError | null>((resolve) => {
            const call = client.makeClientStreamRequest(m.path, (b: Uint8Array) => Buffer.from(b), (b: Buffer) => b, (err) => resolve(err));
            call.write(Buffer.from([(9 << 3) | 6, 0x01]));
            call.end();
          });
          expect(streamed?.code, name).toBe(grpc.status.INVALID_ARGUMENT);
          expect(streamed!.metadata.get('wldb-error-code')).toEqual(['WLDB_ERR_VALIDATION']);
        }
        // A nest of protobuf groups (unknown field 15; how a decoder's skipping recurses): refused, not followed.
        const groups = Buffer.concat([Buffer.alloc(5_000, (15 << 3) | 3), Buffer.alloc(5_000, (15 << 3) | 4)]);
        for (const [name, head] of [
          ['CreateRun', field(1, 2).string('bad-input').finish()],
          ['GetRun', field(1, 2).string(runId).finish()],
        ] as const) {
          const grouped = (await raw(name, Buffer.concat([head, groups])).catch((e: grpc.ServiceError) => e)) as grpc.ServiceError;
          expect(grouped.code, name).toBe(grpc.status.INVALID_ARGUMENT);
          expect(grouped.metadata.get('wldb-error-code')).toEqual(['WLDB_ERR_VALIDATION']);
        }
        // 32 levels still work.
        expect(await raw('CreateRun', createRun(deepStructBytes(32)))).toBeTruthy();
      } finally {
        client.close();
      }
    });

    it('in process, including a cyclic object', async () => {
      for (const n of [33, 100_000]) {
        const err = await rejection(t.call('RunService/CreateRun', { projectId: 'bad-input', config: deepValue(n) }));
        expect(err.code).toBe('WLDB_ERR_VALIDATION');
        expect(err.details).toEqual([{ field: 'config', message: expect.stringContaining('nested deeper than 32 levels') }]);
      }
      const settings = await rejection(t.kernel.call('wanllmdb.projects.v1.ProjectService/CreateProject', { name: 'deep in process', settings: deepValue(100_000, 'array') as never }));
      expect(settings.details).toEqual([{ field: 'settings', message: expect.stringContaining('nested deeper') }]);
      const cyclic: Record<string, unknown> = { lr: 0.1 };
      cyclic.self = cyclic;
      const err = await rejection(t.call('RunService/UpdateConfig', { id: runId, config: cyclic }));
      expect(err.details[0]!.field).toBe('config');
    });
  });

  it('refuses a body of null with a 400 (an object is required)', async () => {
    const r = await send('POST', '/api/v1/projects/bad-input/runs', 'null');
    expectEnvelope(r, 400, 'WLDB_ERR_VALIDATION');
    expect(r.json.error.message).toMatch(/must be a JSON object, not null/);
    expectEnvelope(await send('DELETE', `/api/v1/runs/${randomUUID()}`, 'null'), 400, 'WLDB_ERR_VALIDATION');
    expectEnvelope(await send('POST', '/api/v1/projects/bad-input/runs', '"text"'), 400, 'WLDB_ERR_VALIDATION');
  });

  it('refuses a "__proto__" key by name (it is valid JSON), and nothing is polluted', async () => {
    for (const [body, field] of [
      ['{"__proto__":{"polluted":1}}', '(body)'],
      ['{"config":{"__proto__":{"polluted":1}}}', 'config'],
      ['{"config":{"model":[{"__proto__":{"polluted":1}}]}}', 'config'],
    ]) {
      const r = await send('POST', '/api/v1/projects/bad-input/runs', body);
      expectEnvelope(r, 400, 'WLDB_ERR_VALIDATION');
      expect(r.json.error.details).toEqual([{ field, message: expect.stringContaining('"__proto__"') }]);
    }
    const batch = await send('POST', '/api/v1/metrics/batch', `{"runId":"${runId}","metrics":{"__proto__":[{"step":1,"value":1}]}}`);
    expectEnvelope(batch, 400, 'WLDB_ERR_VALIDATION');
    expect(batch.json.error.details[0].field).toBe('metrics');
    const inProcess = await rejection(t.call('RunService/UpdateConfig', { id: runId, config: JSON.parse('{"a":{"__proto__":{"polluted":1}}}') }));
    expect(inProcess.details).toEqual([{ field: 'config', message: expect.stringContaining('"__proto__"') }]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((await t.call('RunService/GetRun', { id: runId })).data.config).toEqual({});
  });

  it('answers a body that is not JSON with 415, whatever its content type', async () => {
    for (const type of ['text/plain', 'text/plain; charset=utf-8', 'application/x-www-form-urlencoded', 'application/xml']) {
      expectEnvelope(await send('POST', '/api/v1/projects/bad-input/runs', '{}', { 'content-type': type }), 415, 'WLDB_ERR_UNSUPPORTED_MEDIA_TYPE');
    }
    expect((await send('POST', '/api/v1/projects/bad-input/runs', '{}')).status).toBe(201);
  });

  it('refuses limit=0 with the allowed range; an absent limit is the default', async () => {
    const r = await send('GET', '/api/v1/projects/bad-input/runs?limit=0');
    expectEnvelope(r, 400, 'WLDB_ERR_VALIDATION');
    expect(r.json.error.details).toEqual([{ field: 'limit', message: 'must be an integer from 1 to 1000 (leave it out for 50)' }]);
    expectEnvelope(await send('GET', '/api/v1/projects/bad-input/runs?limit=1001'), 400, 'WLDB_ERR_VALIDATION');
    expect((await send('GET', '/api/v1/projects/bad-input/runs?limit=1')).json.data).toHaveLength(1);
    expect((await send('GET', '/api/v1/projects/bad-input/runs')).status).toBe(200);
    expect((await rejection(t.call('RunService/ListRuns', { projectId: 'bad-input', limit: 0 }))).details[0]!.field).toBe('limit');
    expect((await t.call('RunService/ListRuns', { projectId: 'bad-input' })).data.length).toBeGreaterThan(1);
  });

  it('refuses limit=0 and maxPoints=0 on the log and metric reads too; absent means the default', async () => {
    const cases: { path: string; field: string; message: string; method: string; request: Record<string, unknown> }[] = [
      { path: `/api/v1/runs/${runId}/logs?limit=0`, field: 'limit', message: 'must be an integer from 1 to 5000 (leave it out for 500)', method: 'RunLogService/GetLogs', request: { runId, limit: 0 } },
      { path: `/api/v1/runs/${runId}/metrics?maxPoints=0`, field: 'maxPoints', message: 'must be an integer from 1 to 10000 (leave it out for 1000)', method: 'MetricService/GetMetrics', request: { runId, maxPoints: 0 } },
    ];
    for (const { path, field, message, method, request } of cases) {
      const r = await send('GET', path);
      expectEnvelope(r, 400, 'WLDB_ERR_VALIDATION');
      expect(r.json.error.details).toEqual([{ field, message }]);
      expect((await rejection(t.call(method, request))).details[0]!.field).toBe(field);
      expect((await send('GET', path.replace(/\?.*/, ''))).status).toBe(200);
    }
    const query = await send('POST', '/api/v1/metrics/query', JSON.stringify({ runIds: [runId], keys: ['loss'], maxPoints: 0 }));
    expectEnvelope(query, 400, 'WLDB_ERR_VALIDATION');
    expect(query.json.error.details).toEqual([{ field: 'maxPoints', message: 'must be an integer from 1 to 10000 (leave it out for 1000)' }]);
    expect((await send('POST', '/api/v1/metrics/query', JSON.stringify({ runIds: [runId], keys: ['loss'] }))).status).toBe(200);
  });

  it('answers a URL over the header limit (16 KiB) with 431 and the error envelope', async () => {
    const r = await send('GET', `/api/v1/projects/bad-input/runs?filter=${'x'.repeat(17_000)}`);
    expectEnvelope(r, 431, 'WLDB_ERR_HEADERS_TOO_LARGE');
    expect(r.json.error.message).toMatch(/16 KiB/);
    expect((await send('GET', '/healthz')).json).toEqual({ status: 'SERVING' });
  });

  it('caps config and summary keys, at every depth, at the 256 characters a filter can name', async () => {
    const long = 'k'.repeat(10_000);
    for (const body of [{ config: { [long]: 1 } }, { config: { model: { [long]: 1 } } }, { config: { layers: [{ [long]: 1 }] } }]) {
      const r = await send('POST', '/api/v1/projects/bad-input/runs', JSON.stringify(body));
      expectEnvelope(r, 400, 'WLDB_ERR_VALIDATION');
      expect(r.json.error.details[0]).toEqual({ field: expect.stringMatching(/^config\..*k…$/), message: expect.stringContaining('at most 256') });
    }
    for (const [method, path, body] of [
      ['POST', `/api/v1/runs/${runId}/config`, { config: { [long]: 1 } }],
      ['PATCH', `/api/v1/runs/${runId}/summary`, { summary: { [long]: 1 } }],
      ['POST', `/api/v1/runs/${runId}/finish`, { summary: { nested: { [long]: 1 } } }],
    ] as const) {
      expectEnvelope(await send(method, path, JSON.stringify(body)), 400, 'WLDB_ERR_VALIDATION');
    }
    // The longest key that is stored is one a filter can name.
    const key = 'k'.repeat(256);
    const run = (await send('POST', '/api/v1/projects/bad-input/runs', JSON.stringify({ config: { [key]: 7 } }))).json.data;
    const found = await send('GET', `/api/v1/projects/bad-input/runs?filter=${encodeURIComponent(`config.${key} = 7`)}`);
    expect(found.json.data.map((x: { id: string }) => x.id)).toEqual([run.id]);
  });
});

/** A database error reaches a caller as its code and a generic message; the SQL goes to the log with the request id. */
describe.each(metadataBackends())('database errors on $name', (backend) => {
  let k: TestKernel;
  let db: MetadataStore;
  const logs: string[] = [];
  let base = '';

  beforeAll(async () => {
    const logger = pino({ level: 'error', base: undefined }, new Writable({ write: (chunk, _enc, cb) => (logs.push(String(chunk)), cb()) }));
    k = await startTestKernel(backend, { plugins: [projectsPlugin, createTrackingPlugin()], listen: true, services: { logger } });
    db = k.kernel.get(coreServices.db);
    base = `http://127.0.0.1:${k.ports!.httpPort}`;
  });
  afterAll(() => k?.close());

  it('never shows SQL or parameters to the caller', async () => {
    const run = (await k.kernel.call<any>('wanllmdb.tracking.v1.RunService/CreateRun', { projectId: 'db-errors' })).data;
    // The table a query reads is gone: the driver's error names it and quotes the statement.
    await db.run('ALTER TABLE run_logs RENAME TO run_logs_elsewhere');
    try {
      const requestId = `db-error-${randomUUID()}`;
      const res = await fetch(`${base}/api/v1/runs/${run.id}/logs?search=secret-needle`, { headers: { 'x-request-id': requestId } });
      const text = await res.text();
      expect(res.status).toBe(500);
      const body = JSON.parse(text);
      expect(body.error).toEqual({ code: 'WLDB_ERR_DB_QUERY_FAILED', message: expect.stringContaining(requestId), details: [] });
      expect(text).not.toMatch(/SELECT|run_logs|secret-needle|SQLITE|relation/i);
      const logged = logs.find((l) => l.includes(requestId));
      expect(logged).toMatch(/run_logs/);
      const inProcess = await rejection(k.kernel.call('wanllmdb.tracking.v1.RunLogService/GetLogs', { runId: run.id, search: 'secret-needle' }));
      expect(inProcess.code).toBe('WLDB_ERR_DB_QUERY_FAILED');
      expect(inProcess.message).not.toMatch(/SELECT|run_logs|secret-needle/i);
    } finally {
      await db.run('ALTER TABLE run_logs_elsewhere RENAME TO run_logs');
    }
  });
});
