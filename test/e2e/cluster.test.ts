/**
 * `wanllmdb serve --workers N`: a primary and N worker processes on one data
 * folder and one pair of ports (ADR 0011). What a user relies on: calls land
 * on any worker and see the same data; a change made through one worker
 * reaches a live stream held by another; a worker that dies is replaced
 * while the others keep answering; SIGTERM drains every worker; a killed
 * primary leaves no worker behind.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { E2E_ADMIN, startServer, type ServerProcess } from './server-process.js';

const dirs: string[] = [];
const dataDir = async () => {
  const d = await mkdtemp(join(tmpdir(), 'wldb-cluster-'));
  dirs.push(d);
  return d;
};
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** Child pids of a process (its workers). */
async function childrenOf(pid: number): Promise<number[]> {
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  return text.trim().split(/\s+/).filter(Boolean).map(Number);
}
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** One call on a connection of its own: round-robin hands each new connection to the next worker. */
function callOnNewConnection(base: string, method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { method, agent: false, headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) } }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, json: text ? JSON.parse(text) : undefined }));
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

describe('wanllmdb serve --workers 2', () => {
  let server: ServerProcess;
  let headers: Record<string, string>;

  beforeAll(async () => {
    server = await startServer(['--data', await dataDir(), '--workers', '2']);
    await waitFor('both workers listening', () => server.output().includes('serving with 2 worker processes'));
    headers = (await server.credentials()).headers;
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('runs two worker processes behind one pair of ports', async () => {
    const workers = await childrenOf(server.proc.pid!);
    expect(workers).toHaveLength(2);
    const lines = server.output().split('\n').filter((l) => l.includes('wanllmdb is serving'));
    const ports = new Set(lines.map((l) => /"http":"([^"]+)"/.exec(l)![1]));
    expect(lines).toHaveLength(2);
    expect(ports.size).toBe(1);
  });

  it('delivers a change made through one worker to a live stream held by the other', async () => {
    const controller = new AbortController();
    const res = await fetch(`${server.base}/api/v1/projects:watch`, { headers, signal: controller.signal });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    let seen = '';
    const names = Array.from({ length: 6 }, (_, i) => `cluster-watch-${i}`);
    // Each create on a fresh connection: consecutive connections alternate between the workers,
    // so some of these land on the worker that does not hold the stream.
    for (const name of names) expect((await callOnNewConnection(server.base, 'POST', '/api/v1/projects', headers, { name })).status).toBe(201);
    const decoder = new TextDecoder();
    await waitFor('every create on the stream', async () => {
      const { value } = await reader.read();
      seen += decoder.decode(value);
      return names.every((n) => seen.includes(`"${n}"`)) || undefined;
    });
    controller.abort();
  });

  it('answers the same data from either worker', async () => {
    const created = await callOnNewConnection(server.base, 'POST', '/api/v1/projects', headers, { name: 'cluster-read' });
    for (let i = 0; i < 4; i++) {
      const got = await callOnNewConnection(server.base, 'GET', `/api/v1/projects/${created.json.data.id}`, headers);
      expect(got.status).toBe(200);
      expect(got.json.data.name).toBe('cluster-read');
    }
  });

  it('ends a signed-out session on every worker at once', async () => {
    const login = await callOnNewConnection(server.base, 'POST', '/api/v1/auth/login', {}, { email: E2E_ADMIN.email, password: E2E_ADMIN.password });
    const bearer = { authorization: `Bearer ${login.json.data.accessToken}` };
    for (let i = 0; i < 4; i++) expect((await callOnNewConnection(server.base, 'GET', '/api/v1/auth/me', bearer)).status).toBe(200);
    expect((await callOnNewConnection(server.base, 'POST', '/api/v1/auth/logout', bearer, {})).status).toBe(204);
    for (let i = 0; i < 4; i++) expect((await callOnNewConnection(server.base, 'GET', '/api/v1/auth/me', bearer)).status).toBe(401);
  });

  it('replaces a worker that dies while the other keeps answering', { timeout: 90_000 }, async () => {
    const before = await childrenOf(server.proc.pid!);
    process.kill(before[0]!, 'SIGKILL');
    // Once the primary has seen the exit it hands new connections to the survivor only
    // (a connection accepted in the instant before can be lost with the dead worker, as with any crash).
    await waitFor('the primary to notice', () => server.output().includes('a worker process exited; starting another') || undefined);
    for (let i = 0; i < 4; i++) expect((await callOnNewConnection(server.base, 'GET', '/healthz', {})).status).toBe(200);
    const after = await waitFor('a replacement worker', async () => {
      const now = await childrenOf(server.proc.pid!);
      return now.length === 2 && !now.includes(before[0]!) ? now : undefined;
    });
    expect(after).toContain(before[1]);
    // Listening again: a third "wanllmdb is serving".
    await waitFor('the replacement listening', () => server.output().split('wanllmdb is serving').length - 1 >= 3 || undefined, 60_000);
    for (let i = 0; i < 4; i++) {
      const got = await callOnNewConnection(server.base, 'GET', '/api/v1/projects?pageSize=1', headers);
      expect(got.status, JSON.stringify(got.json)).toBe(200);
    }
  });
});

describe('stopping a server with workers', () => {
  it('drains every worker on SIGTERM and exits 0', async () => {
    const server = await startServer(['--data', await dataDir(), '--workers', '2']);
    await waitFor('both workers listening', () => server.output().includes('serving with 2 worker processes'));
    const workers = await childrenOf(server.proc.pid!);
    expect(await server.stop('SIGTERM')).toBe(0);
    expect(workers.filter(alive)).toEqual([]);
  });

  it('leaves no worker behind when the primary is killed', async () => {
    const server = await startServer(['--data', await dataDir(), '--workers', '2']);
    await waitFor('both workers listening', () => server.output().includes('serving with 2 worker processes'));
    const workers = await childrenOf(server.proc.pid!);
    expect(workers).toHaveLength(2);
    await server.stop('SIGKILL');
    await waitFor('the workers to exit', () => workers.every((p) => !alive(p)) || undefined);
  });
});

describe('rate limits with workers', () => {
  it('count every call of the server once, whichever worker takes it', async () => {
    const server = await startServer(['--data', await dataDir(), '--workers', '2'], { WANLLMDB_RATE_LIMIT_PER_ADDRESS_PER_MIN: '6' });
    try {
      await waitFor('both workers listening', () => server.output().includes('serving with 2 worker processes'));
      const { headers } = await server.credentials(); // making the key is 1 of the 6 (sign-in is not counted)
      const statuses: number[] = [];
      // Each on a new connection, so they alternate between the workers: counts per worker would let all 8 through.
      for (let i = 0; i < 8; i++) statuses.push((await callOnNewConnection(server.base, 'GET', '/api/v1/projects', headers)).status);
      expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429, 429]);
    } finally {
      await server.stop();
    }
  });
});
