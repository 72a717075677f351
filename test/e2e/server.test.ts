import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { service as healthService } from 'grpc-health-check';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpcClients, runCli, startServer, type ServerProcess } from './server-process.js';

const require = createRequire(import.meta.url);
const dataDir = () => mkdtempSync(join(tmpdir(), 'wldb-e2e-'));

/** Credentials per server base URL: http() signs every call in unless told otherwise. */
const signedIn = new Map<string, Record<string, string>>();
async function signInTo(server: ServerProcess): Promise<void> {
  signedIn.set(server.base, (await server.credentials()).headers);
}

async function http(base: string, method: string, path: string, body?: unknown, extra: Record<string, string> = {}) {
  const headers = { ...signedIn.get(base), ...extra };
  const res = await fetch(base + path, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined, text, headers: res.headers };
}

/** Every 4xx carries the design's envelope, a WLDB_ERR code, and no stack trace. */
function expectEnvelope(r: { status: number; json: any; text: string }, status: number, code: string) {
  expect(r.status, r.text).toBe(status);
  expect(r.json.error.code).toBe(code);
  expect(typeof r.json.error.message).toBe('string');
  expect(Array.isArray(r.json.error.details)).toBe(true);
  expect(r.json.meta.requestId).toBeTruthy();
  expect(r.text).not.toMatch(/\bat .*\.(ts|js):\d+/);
}

describe('wanllmdb serve (a real server process)', () => {
  let server: ServerProcess;

  beforeAll(async () => {
    server = await startServer(['--data', dataDir(), '--body-limit', '4096']);
    await signInTo(server);
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('answers /healthz and the gRPC health service', async () => {
    const r = await http(server.base, 'GET', '/healthz');
    expect(r.json).toEqual({ status: 'SERVING' });
    const Client = grpc.makeClientConstructor(healthService, 'Health');
    const client = new Client(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure()) as any;
    const status = await new Promise<any>((res, rej) => client.check({ service: '' }, (e: unknown, v: unknown) => (e ? rej(e) : res(v))));
    expect(status.status).toBe('SERVING');
    client.close();
  });

  it('lists its services through gRPC server reflection', async () => {
    const protoPath = require.resolve('@grpc/reflection/build/proto/grpc/reflection/v1alpha/reflection.proto');
    const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(protoPath, { keepCase: true })) as any;
    const client = new pkg.grpc.reflection.v1alpha.ServerReflection(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure());
    const call = client.ServerReflectionInfo();
    const reply = await new Promise<any>((resolve, reject) => {
      call.on('data', resolve);
      call.on('error', reject);
      call.write({ list_services: '' });
    });
    call.end();
    client.close();
    const names = reply.list_services_response.service.map((s: { name: string }) => s.name);
    expect(names).toContain('wanllmdb.projects.v1.ProjectService');
    expect(names).toContain('grpc.health.v1.Health');
  });

  it('serves projects end to end over HTTP, and the same data over gRPC', async () => {
    const created = await http(server.base, 'POST', '/api/v1/projects', { name: 'MNIST Baseline', description: 'digits', settings: { owner: 'ml', tags: ['a'] } });
    expect(created.status, created.text).toBe(201);
    const p = created.json.data;
    expect(p).toMatchObject({ name: 'MNIST Baseline', slug: 'mnist-baseline', visibility: 'private', settings: { owner: 'ml', tags: ['a'] } });
    expect(p.createdAt).toMatch(/^\d{4}-\d\d-\d\dT/);

    const got = await http(server.base, 'GET', `/api/v1/projects/${p.id}`);
    expect(got.json.data).toEqual(p);

    const patched = await http(server.base, 'PATCH', `/api/v1/projects/${p.id}`, { description: 'handwritten digits', visibility: 'public' });
    expect(patched.status).toBe(200);
    expect(patched.json.data).toMatchObject({ name: 'MNIST Baseline', description: 'handwritten digits', visibility: 'public' });

    const g = grpcClients(server.grpcPort, (await server.credentials()).apiKey);
    try {
      const viaGrpc = await g.getProject({ id: p.id });
      expect(viaGrpc.data).toMatchObject({ id: p.id, description: 'handwritten digits', visibility: 'public' });
      const made = await g.createProject({ name: 'from grpc' });
      expect(made.data.slug).toBe('from-grpc');
      const viaHttp = await http(server.base, 'GET', `/api/v1/projects/${made.data.id}`);
      expect(viaHttp.json.data.name).toBe('from grpc');
      const err = await g.getProject({ id: 'not-a-uuid' }).catch((e: grpc.ServiceError) => e);
      expect(err.code).toBe(grpc.status.NOT_FOUND); // neither an id nor a slug of the caller's organisation
      expect(err.metadata.get('wldb-error-code')).toEqual(['WLDB_ERR_NOT_FOUND']);
    } finally {
      g.close();
    }

    const deleted = await http(server.base, 'DELETE', `/api/v1/projects/${p.id}`);
    expect(deleted.status).toBe(204);
    expectEnvelope(await http(server.base, 'GET', `/api/v1/projects/${p.id}`), 404, 'WLDB_ERR_NOT_FOUND');
  });

  it('paginates the project list with data and meta', async () => {
    for (let i = 0; i < 5; i++) await http(server.base, 'POST', '/api/v1/projects', { name: `page test ${i}` });
    const r = await http(server.base, 'GET', '/api/v1/projects?page=2&pageSize=2&search=page%20test');
    expect(r.status).toBe(200);
    expect(r.json.meta).toEqual({ total: 5, page: 2, pageSize: 2, totalPages: 3 });
    expect(r.json.data.map((x: { name: string }) => x.name)).toEqual(['page test 2', 'page test 1']);
  });

  it('streams project changes as Server-Sent Events', async () => {
    const ac = new AbortController();
    const res = await fetch(`${server.base}/api/v1/projects:watch`, { signal: ac.signal, headers: signedIn.get(server.base) });
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const reader = res.body!.getReader();
    const first = await reader.read(); // ": stream open" — the subscription exists now
    expect(new TextDecoder().decode(first.value)).toContain('stream open');
    await http(server.base, 'POST', '/api/v1/projects', { name: 'watched' });
    let text = '';
    while (!text.includes('\n\n') || !text.includes('data:')) text += new TextDecoder().decode((await reader.read()).value);
    const event = JSON.parse(/data: (.*)\n/.exec(text)![1]!);
    expect(event).toMatchObject({ kind: 'created', project: { name: 'watched' } });
    ac.abort();
  });

  describe('bad input gets a 4xx envelope, never a crash', () => {
    it('malformed JSON', async () => {
      expectEnvelope(await http(server.base, 'POST', '/api/v1/projects', '{"name": '), 400, 'WLDB_ERR_MALFORMED_JSON');
    });
    it('unknown fields', async () => {
      const r = await http(server.base, 'POST', '/api/v1/projects', { name: 'x', colour: 'red' });
      expectEnvelope(r, 400, 'WLDB_ERR_VALIDATION');
      expect(r.json.error.details[0].field).toBe('colour');
    });
    it('wrong types', async () => {
      const r = await http(server.base, 'POST', '/api/v1/projects', { name: 42, settings: 'nope' });
      expectEnvelope(r, 400, 'WLDB_ERR_VALIDATION');
      expect(r.json.error.details.map((d: { field: string }) => d.field).sort()).toEqual(['name', 'settings']);
      expectEnvelope(await http(server.base, 'GET', '/api/v1/projects?pageSize=abc'), 400, 'WLDB_ERR_VALIDATION');
      expectEnvelope(await http(server.base, 'GET', '/api/v1/projects?bogus=1'), 400, 'WLDB_ERR_VALIDATION');
      expectEnvelope(await http(server.base, 'POST', '/api/v1/projects', [1, 2]), 400, 'WLDB_ERR_VALIDATION');
    });
    it('invalid values', async () => {
      expectEnvelope(await http(server.base, 'POST', '/api/v1/projects', { name: '' }), 400, 'WLDB_ERR_VALIDATION');
      expectEnvelope(await http(server.base, 'POST', '/api/v1/projects', { name: 'v', visibility: 'secret' }), 400, 'WLDB_ERR_VALIDATION');
      expectEnvelope(await http(server.base, 'GET', '/api/v1/projects?pageSize=1000'), 400, 'WLDB_ERR_VALIDATION');
      await http(server.base, 'POST', '/api/v1/projects', { name: 'dup' });
      expectEnvelope(await http(server.base, 'POST', '/api/v1/projects', { name: 'dup' }), 409, 'WLDB_ERR_ALREADY_EXISTS');
    });
    it('bodies over the configured limit', async () => {
      expectEnvelope(await http(server.base, 'POST', '/api/v1/projects', { name: 'big', description: 'x'.repeat(10_000) }), 413, 'WLDB_ERR_BODY_TOO_LARGE');
    });
    it('non-JSON bodies', async () => {
      expectEnvelope(await http(server.base, 'POST', '/api/v1/projects', 'name=x', { 'content-type': 'text/csv' }), 415, 'WLDB_ERR_UNSUPPORTED_MEDIA_TYPE');
    });
    it('unknown routes', async () => {
      expectEnvelope(await http(server.base, 'GET', '/api/v1/nothing-here'), 404, 'WLDB_ERR_ROUTE_NOT_FOUND');
    });
    it('invalid ids', async () => {
      // A project is named by UUID or by slug in the caller's organisation: these name none, and say so like a hidden one.
      for (const id of ['123', "1' OR '1'='1", '..%2F..%2Fetc%2Fpasswd']) {
        expectEnvelope(await http(server.base, 'GET', `/api/v1/projects/${id}`), 404, 'WLDB_ERR_NOT_FOUND');
      }
      for (const id of ['123', "1' OR '1'='1", '..%2F..%2Fetc%2Fpasswd']) {
        expectEnvelope(await http(server.base, 'GET', `/api/v1/runs/${id}`), 400, 'WLDB_ERR_INVALID_ID');
      }
      expectEnvelope(await http(server.base, 'DELETE', '/api/v1/projects/00000000-0000-4000-8000-000000000000'), 404, 'WLDB_ERR_NOT_FOUND');
    });
    it('is still serving after all of it', async () => {
      expect((await http(server.base, 'GET', '/healthz')).json).toEqual({ status: 'SERVING' });
    });
  });
});

describe('start-up configuration', () => {
  it('stops with a message naming a bad setting', async () => {
    const r = await runCli(['serve', '--data', dataDir(), '--db', 'mysql://x'], {});
    expect(r.code).toBe(2);
    expect(r.output).toMatch(/--db has an invalid value "mysql:\/\/x"/);
    expect(r.output).toMatch(/WLDB_ERR_CONFIG_INVALID/);
    const e = await runCli(['serve', '--data', dataDir()], { WANLLMDB_BUS: 'kafka://x' });
    expect(e.code).toBe(2);
    expect(e.output).toMatch(/WANLLMDB_BUS has an invalid value/);
  });
});

describe('shutdown and restart lose nothing acknowledged', () => {
  /**
   * Creates projects from 16 concurrent clients until `total` attempts are
   * made; calls `onAcked` once `threshold` creates were acknowledged (so the
   * signal lands while requests are in flight). Returns the acknowledged ids.
   */
  async function hammer(server: ServerProcess, total: number, threshold: number, onAcked: () => void) {
    const acked: string[] = [];
    let next = 0;
    let fired = false;
    await signInTo(server);
    const g = grpcClients(server.grpcPort, (await server.credentials()).apiKey);
    // Half the clients speak HTTP, half gRPC.
    const client = async (_: unknown, c: number) => {
      while (next < total) {
        const i = next++;
        try {
          if (c % 2 === 0) {
            const r = await http(server.base, 'POST', '/api/v1/projects', { name: `load ${i}` });
            if (r.status === 201) acked.push(r.json.data.id);
          } else {
            acked.push((await g.createProject({ name: `load ${i}` })).data.id);
          }
        } catch {
          // refused or reset: not acknowledged, so nothing is promised
        }
        if (!fired && acked.length >= threshold) {
          fired = true;
          onAcked();
        }
      }
    };
    await Promise.all(Array.from({ length: 16 }, client));
    g.close();
    return acked;
  }

  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    it(`keeps every acknowledged write across ${signal} mid-request and a restart`, async () => {
      const dir = dataDir();
      const first = await startServer(['--data', dir]);
      let exit: Promise<number | null> | undefined;
      const acked = await hammer(first, 400, 40, () => (exit = first.stop(signal)));
      const code = await exit;
      if (signal === 'SIGTERM') expect(code).toBe(0);
      expect(acked.length).toBeGreaterThanOrEqual(40);
      expect(acked.length).toBeLessThan(400);

      const second = await startServer(['--data', dir]);
      signedIn.set(second.base, signedIn.get(first.base)!); // the same key works after the restart
      try {
        for (const id of acked) {
          const r = await http(second.base, 'GET', `/api/v1/projects/${id}`);
          expect(r.status, `acknowledged project ${id} lost`).toBe(200);
        }
      } finally {
        await second.stop();
      }
    });
  }
});
