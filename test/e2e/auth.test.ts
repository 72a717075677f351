import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { E2E_ADMIN, grpcClients, runCli, startServer, type ServerProcess } from './server-process.js';

/**
 * Sign-in on the real `wanllmdb serve` (issue 4): tokens, API keys,
 * organisations, audit, rate limits, first start, --no-auth, CORS and
 * `wanllmdb admin create-user`, over HTTP and gRPC.
 */

const dataDir = () => mkdtempSync(join(tmpdir(), 'wldb-e2e-auth-'));
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

interface Reply {
  status: number;
  json: any;
  text: string;
  headers: Headers;
}

async function http(base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  const res = await fetch(base + path, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json: any;
  if (/^application\/json/.test(res.headers.get('content-type') ?? '') && text) json = JSON.parse(text);
  return { status: res.status, json, text, headers: res.headers };
}

/** Every refusal carries the design's envelope and a WLDB_ERR code. */
function expectEnvelope(r: Reply, status: number, code: string) {
  expect(r.status, r.text).toBe(status);
  expect(r.json?.error?.code, r.text).toBe(code);
  expect(typeof r.json.error.message).toBe('string');
  expect(Array.isArray(r.json.error.details)).toBe(true);
  expect(r.json.meta.requestId).toBeTruthy();
}

async function login(base: string, email: string, password: string): Promise<{ accessToken: string; refreshToken: string; expiresIn: number; tokenType: string }> {
  const r = await http(base, 'POST', '/api/v1/auth/login', { email, password });
  expect(r.status, r.text).toBe(200);
  return r.json.data;
}

async function register(base: string, body: Record<string, unknown>): Promise<Reply> {
  return http(base, 'POST', '/api/v1/auth/register', body);
}

/** The gRPC error a call fails with (fails the test if it succeeds). */
async function grpcError(call: Promise<unknown>): Promise<grpc.ServiceError> {
  const outcome = await call.then(
    (v) => ({ ok: true as const, v }),
    (e: grpc.ServiceError) => ({ ok: false as const, e }),
  );
  if (outcome.ok) throw new Error(`expected the gRPC call to fail, got ${JSON.stringify(outcome.v)}`);
  return outcome.e;
}

async function waitForOutput(server: ServerProcess, re: RegExp, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!re.test(server.output())) {
    if (Date.now() > until) throw new Error(`server output never matched ${re}:\n${server.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A CORS preflight as a browser on `origin` would send it before a POST. */
function preflight(base: string, origin: string) {
  return fetch(`${base}/api/v1/projects`, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
  });
}

// ---------------------------------------------------------------------------

describe('sign-in, API keys, organisations and audit (one server)', () => {
  let server: ServerProcess;
  let base: string;
  /** Every password, token and key this describe sends: none may reach the audit log or the server's log. */
  const secrets: string[] = [E2E_ADMIN.password];
  const viewer = { email: 'viewer@e2e.test', password: 'viewer-password-1' };
  const outsider = { email: 'outsider@e2e.test', password: 'outsider-password-1' };
  const orgAdmin = { email: 'orgadmin@e2e.test', password: 'orgadmin-password-1' };
  secrets.push(viewer.password, outsider.password, orgAdmin.password);
  let viewerToken = '';
  let orgAdminToken = '';
  let outsiderToken = '';
  let orgA: { id: string; slug: string };
  let privateProject: { id: string };

  beforeAll(async () => {
    server = await startServer(['--data', dataDir()]);
    base = server.base;
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('refuses calls without a valid credential: 401 over HTTP, UNAUTHENTICATED over gRPC', async () => {
    const none = await http(base, 'GET', '/api/v1/projects');
    expectEnvelope(none, 401, 'WLDB_ERR_UNAUTHENTICATED');
    expect(none.json.error.message).toMatch(/Authorization: Bearer/);

    for (const header of ['Bearer not-a-token', 'Bearer wldb_not-a-real-key', 'Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl', 'Basic YWRtaW46cGFzcw==']) {
      expectEnvelope(await http(base, 'GET', '/api/v1/projects', undefined, { authorization: header }), 401, 'WLDB_ERR_UNAUTHENTICATED');
    }

    const g = grpcClients(server.grpcPort);
    try {
      const err = await grpcError(g.listProjects({}));
      expect(err.code).toBe(16); // UNAUTHENTICATED
      expect(err.metadata.get('wldb-error-code')).toEqual(['WLDB_ERR_UNAUTHENTICATED']);
    } finally {
      g.close();
    }
    const garbage = grpcClients(server.grpcPort, 'garbage-token');
    try {
      expect((await grpcError(garbage.listProjects({}))).code).toBe(16);
    } finally {
      garbage.close();
    }
  });

  it('logs in, reads /auth/me, rotates refresh tokens (reuse revokes the family) and logs out', async () => {
    const wrong = await http(base, 'POST', '/api/v1/auth/login', { email: E2E_ADMIN.email, password: 'not-the-password' });
    expectEnvelope(wrong, 401, 'WLDB_ERR_UNAUTHENTICATED');
    secrets.push('not-the-password');

    const first = await login(base, E2E_ADMIN.email, E2E_ADMIN.password);
    secrets.push(first.accessToken, first.refreshToken);
    expect(first).toMatchObject({ expiresIn: 1800, tokenType: 'Bearer' });
    expect(first.accessToken.split('.')).toHaveLength(3); // a JWT

    const me = await http(base, 'GET', '/api/v1/auth/me', undefined, bearer(first.accessToken));
    expect(me.status, me.text).toBe(200);
    expect(me.json.data.user).toMatchObject({ email: E2E_ADMIN.email, isSuperuser: true, isActive: true, kind: 'user' });
    expect(me.json.data.authMethod).toBe('password');
    expect(JSON.stringify(me.json)).not.toMatch(/password_?hash/i);
    expect((await http(base, 'GET', '/api/v1/projects', undefined, bearer(first.accessToken))).status).toBe(200);

    // Refresh rotates: a new pair, the old refresh token is spent.
    const rotated = await http(base, 'POST', '/api/v1/auth/refresh', { refreshToken: first.refreshToken });
    expect(rotated.status, rotated.text).toBe(200);
    const second = rotated.json.data;
    secrets.push(second.accessToken, second.refreshToken);
    expect(second.refreshToken).not.toBe(first.refreshToken);
    expect(second.accessToken).not.toBe(first.accessToken);
    expect((await http(base, 'GET', '/api/v1/auth/me', undefined, bearer(second.accessToken))).status).toBe(200);

    // The spent token again: refused, and the whole session (family) ends.
    expectEnvelope(await http(base, 'POST', '/api/v1/auth/refresh', { refreshToken: first.refreshToken }), 401, 'WLDB_ERR_UNAUTHENTICATED');
    expectEnvelope(await http(base, 'POST', '/api/v1/auth/refresh', { refreshToken: second.refreshToken }), 401, 'WLDB_ERR_UNAUTHENTICATED');
    expectEnvelope(await http(base, 'GET', '/api/v1/auth/me', undefined, bearer(second.accessToken)), 401, 'WLDB_ERR_UNAUTHENTICATED');

    // Logout ends the session: its access token is refused at once.
    const third = await login(base, E2E_ADMIN.email, E2E_ADMIN.password);
    secrets.push(third.accessToken, third.refreshToken);
    expect((await http(base, 'GET', '/api/v1/auth/me', undefined, bearer(third.accessToken))).status).toBe(200);
    const out = await http(base, 'POST', '/api/v1/auth/logout', {}, bearer(third.accessToken));
    expect(out.status, out.text).toBe(204);
    expectEnvelope(await http(base, 'GET', '/api/v1/auth/me', undefined, bearer(third.accessToken)), 401, 'WLDB_ERR_UNAUTHENTICATED');
    expectEnvelope(await http(base, 'GET', '/api/v1/projects', undefined, bearer(third.accessToken)), 401, 'WLDB_ERR_UNAUTHENTICATED');
    expectEnvelope(await http(base, 'POST', '/api/v1/auth/refresh', { refreshToken: third.refreshToken }), 401, 'WLDB_ERR_UNAUTHENTICATED');
  });

  it('makes API keys shown once, usable over HTTP and gRPC, refused once revoked', async () => {
    const { accessToken } = await login(base, E2E_ADMIN.email, E2E_ADMIN.password);
    secrets.push(accessToken);
    const made = await http(base, 'POST', '/api/v1/auth/api-keys', { name: 'ci key' }, bearer(accessToken));
    expect(made.status, made.text).toBe(201);
    const { key, apiKey } = made.json.data;
    secrets.push(key);
    expect(key).toMatch(/^wldb_/);
    expect(apiKey).toMatchObject({ name: 'ci key', scopes: ['*:*'], revokedAt: '' });
    expect(apiKey.prefix.length).toBeGreaterThan(4);
    expect(apiKey.prefix.length).toBeLessThan(key.length);
    expect(key.startsWith(apiKey.prefix)).toBe(true);

    const list = await http(base, 'GET', '/api/v1/auth/api-keys', undefined, bearer(accessToken));
    expect(list.status).toBe(200);
    const listed = list.json.data.find((k: { id: string }) => k.id === apiKey.id);
    expect(listed).toMatchObject({ name: 'ci key', prefix: apiKey.prefix });
    expect(listed).not.toHaveProperty('key');
    expect(list.text).not.toContain(key);

    // The key over HTTP …
    const me = await http(base, 'GET', '/api/v1/auth/me', undefined, bearer(key));
    expect(me.status, me.text).toBe(200);
    expect(me.json.data).toMatchObject({ authMethod: 'api_key', scopes: ['*:*'] });
    expect((await http(base, 'GET', '/api/v1/projects', undefined, bearer(key))).status).toBe(200);
    // … and over gRPC (metadata authorization: Bearer …).
    const g = grpcClients(server.grpcPort, key);
    try {
      const made = await g.createProject({ name: 'made over grpc with a key' });
      expect(made.data.slug).toBe('made-over-grpc-with-a-key');
      expect((await g.listProjects({})).data.map((p: { id: string }) => p.id)).toContain(made.data.id);

      const revoked = await http(base, 'DELETE', `/api/v1/auth/api-keys/${apiKey.id}`, undefined, bearer(accessToken));
      expect(revoked.status, revoked.text).toBe(204);

      expectEnvelope(await http(base, 'GET', '/api/v1/projects', undefined, bearer(key)), 401, 'WLDB_ERR_UNAUTHENTICATED');
      const err = await grpcError(g.listProjects({}));
      expect(err.code).toBe(16);
      expect(err.metadata.get('wldb-error-code')).toEqual(['WLDB_ERR_UNAUTHENTICATED']);
    } finally {
      g.close();
    }
    const after = await http(base, 'GET', '/api/v1/auth/api-keys', undefined, bearer(accessToken));
    expect(after.json.data.find((k: { id: string }) => k.id === apiKey.id).revokedAt).toMatch(/^\d{4}-/);
  });

  it('organisations: a viewer reads a private project but may not change it; a non-member cannot tell it exists', async () => {
    const { accessToken: admin } = await login(base, E2E_ADMIN.email, E2E_ADMIN.password);
    secrets.push(admin);

    const org = await http(base, 'POST', '/api/v1/orgs', { name: 'Org A' }, bearer(admin));
    expect(org.status, org.text).toBe(201);
    orgA = org.json.data;
    expect(orgA).toMatchObject({ name: 'Org A', slug: 'org-a', personal: false });

    const v = await register(base, viewer);
    expect(v.status, v.text).toBe(201);
    expect(v.json.data).toMatchObject({ email: viewer.email, isSuperuser: false });
    expect(v.text).not.toContain(viewer.password);
    const o = await register(base, outsider);
    expect(o.status, o.text).toBe(201);

    const added = await http(base, 'POST', `/api/v1/orgs/${orgA.id}/members`, { email: viewer.email, role: 'viewer' }, bearer(admin));
    expect(added.status, added.text).toBe(201);
    expect(added.json.data).toMatchObject({ userId: v.json.data.id, role: 'viewer' });
    // An organisation admin (not a site admin): reads the organisation's audit log in the next test.
    expect((await register(base, orgAdmin)).status).toBe(201);
    expect((await http(base, 'POST', `/api/v1/orgs/${orgA.id}/members`, { email: orgAdmin.email, role: 'admin' }, bearer(admin))).status).toBe(201);
    orgAdminToken = (await login(base, orgAdmin.email, orgAdmin.password)).accessToken;
    secrets.push(orgAdminToken);

    const created = await http(base, 'POST', '/api/v1/projects', { name: 'Secret Plans', organizationId: orgA.id, visibility: 'private' }, bearer(admin));
    expect(created.status, created.text).toBe(201);
    privateProject = created.json.data;
    expect(created.json.data).toMatchObject({ organizationId: orgA.id, visibility: 'private' });

    viewerToken = (await login(base, viewer.email, viewer.password)).accessToken;
    outsiderToken = (await login(base, outsider.email, outsider.password)).accessToken;
    secrets.push(viewerToken, outsiderToken);

    // The viewer: reads, may not write.
    const seen = await http(base, 'GET', `/api/v1/projects/${privateProject.id}`, undefined, bearer(viewerToken));
    expect(seen.status, seen.text).toBe(200);
    expect(seen.json.data.name).toBe('Secret Plans');
    const vMe = await http(base, 'GET', '/api/v1/auth/me', undefined, bearer(viewerToken));
    expect(vMe.json.data.memberships).toContainEqual(expect.objectContaining({ organizationId: orgA.id, role: 'viewer' }));
    expect((await http(base, 'GET', '/api/v1/projects', undefined, bearer(viewerToken))).json.data.map((p: { id: string }) => p.id)).toContain(privateProject.id);
    expectEnvelope(await http(base, 'PATCH', `/api/v1/projects/${privateProject.id}`, { description: 'defaced' }, bearer(viewerToken)), 403, 'WLDB_ERR_PERMISSION_DENIED');
    expect((await http(base, 'GET', `/api/v1/projects/${privateProject.id}`, undefined, bearer(admin))).json.data.description).not.toBe('defaced');

    // The outsider: the project looks exactly like one that does not exist.
    const hiddenOne = await http(base, 'GET', `/api/v1/projects/${privateProject.id}`, undefined, bearer(outsiderToken));
    expectEnvelope(hiddenOne, 404, 'WLDB_ERR_NOT_FOUND');
    const missingId = '00000000-0000-4000-8000-000000000000';
    const missing = await http(base, 'GET', `/api/v1/projects/${missingId}`, undefined, bearer(outsiderToken));
    expectEnvelope(missing, 404, 'WLDB_ERR_NOT_FOUND');
    expect(hiddenOne.json.error.message.replace(privateProject.id, '<id>')).toBe(missing.json.error.message.replace(missingId, '<id>'));
    expect(hiddenOne.json.error.details).toEqual(missing.json.error.details);
    expectEnvelope(await http(base, 'PATCH', `/api/v1/projects/${privateProject.id}`, { description: 'x' }, bearer(outsiderToken)), 404, 'WLDB_ERR_NOT_FOUND');
    const outsiderList = await http(base, 'GET', '/api/v1/projects', undefined, bearer(outsiderToken));
    expect(outsiderList.status).toBe(200);
    expect(outsiderList.json.data.map((p: { id: string }) => p.id)).not.toContain(privateProject.id);
    expect(outsiderList.text).not.toContain('Secret Plans');
    // Nor the organisation.
    expectEnvelope(await http(base, 'GET', `/api/v1/orgs/${orgA.id}`, undefined, bearer(outsiderToken)), 404, 'WLDB_ERR_NOT_FOUND');
  });

  it('audits mutations (not reads) for the admin, exports CSV, shows others nothing, and never records a secret', async () => {
    const { accessToken: admin } = await login(base, E2E_ADMIN.email, E2E_ADMIN.password);
    secrets.push(admin);

    const list = await http(base, 'GET', '/api/v1/audit?limit=1000', undefined, bearer(admin));
    expect(list.status, list.text).toBe(200);
    const events: any[] = list.json.data;
    const of = (action: string) => events.filter((e) => e.action === action);

    const createdHere = of('wanllmdb.projects.v1.ProjectService/CreateProject').find((e) => e.target === `org:${orgA.id}` || e.organizationId === orgA.id);
    expect(createdHere).toMatchObject({ result: 'ok', address: '127.0.0.1', transport: 'http', actorName: 'admin', actorKind: 'user', organizationId: orgA.id });
    expect(createdHere.at).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(createdHere.requestId).toBeTruthy();
    expect(of('wanllmdb.projects.v1.ProjectService/CreateProject').some((e) => e.transport === 'grpc' && e.result === 'ok' && e.address === '127.0.0.1')).toBe(true);

    const denied = of('wanllmdb.projects.v1.ProjectService/UpdateProject').filter((e) => e.result === 'WLDB_ERR_PERMISSION_DENIED');
    expect(denied).toHaveLength(1);
    expect(denied[0]).toMatchObject({ actorName: 'viewer', target: `project:${privateProject.id}`, address: '127.0.0.1', transport: 'http' });
    expect(of('wanllmdb.auth.v1.OrgService/CreateOrg')).toContainEqual(expect.objectContaining({ result: 'ok', actorName: 'admin' }));
    expect(of('wanllmdb.auth.v1.OrgService/AddMember')).toContainEqual(expect.objectContaining({ result: 'ok', target: `org:${orgA.id}` }));
    expect(of('wanllmdb.auth.v1.AuthService/RevokeApiKey')).toContainEqual(expect.objectContaining({ result: 'ok' }));
    expect(of('wanllmdb.auth.v1.AuthService/Login')).toContainEqual(expect.objectContaining({ result: 'WLDB_ERR_UNAUTHENTICATED' }));
    expect(of('wanllmdb.auth.v1.AuthService/Register').filter((e) => e.result === 'ok')).toHaveLength(3);
    // Reads are not audited.
    expect(events.some((e) => /\/(Get|List)[A-Z]/.test(e.action))).toBe(false);

    // An organisation admin sees their organisation's events: what was made in it, and what was refused on it.
    const orgLog = await http(base, 'GET', '/api/v1/audit', undefined, bearer(orgAdminToken));
    expect(orgLog.status, orgLog.text).toBe(200);
    expect(orgLog.json.data.every((e: { organizationId: string }) => e.organizationId === orgA.id)).toBe(true);
    expect(orgLog.json.data.map((e: { id: string }) => e.id)).toContain(createdHere.id);

    // The outsider's denied GET/PATCH are not about their own organisations: they see nothing, and no error.
    for (const token of [outsiderToken, viewerToken]) {
      const mine = await http(base, 'GET', '/api/v1/audit', undefined, bearer(token));
      expect(mine.status, mine.text).toBe(200);
      expect(mine.json.data).toEqual([]);
    }

    const csv = await http(base, 'GET', '/api/v1/audit:export?format=csv', undefined, bearer(admin));
    expect(csv.status, csv.text).toBe(200);
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
    const lines = csv.text.trimEnd().split('\n');
    expect(lines[0]).toBe('id,at,actor_id,actor_name,actor_kind,action,permission,target,organization_id,address,transport,result,request_id');
    expect(lines.length).toBeGreaterThanOrEqual(events.length + 1);
    expect(csv.text).toContain('wanllmdb.projects.v1.ProjectService/CreateProject');
    expect(csv.text).toContain('WLDB_ERR_PERMISSION_DENIED');

    const jsonl = await http(base, 'GET', '/api/v1/audit:export', undefined, bearer(admin));
    expect(jsonl.status).toBe(200);
    expect(jsonl.text.trimEnd().split('\n').map((l) => JSON.parse(l).id)).toEqual(expect.arrayContaining(events.map((e) => e.id)));

    const outsiderCsv = await http(base, 'GET', '/api/v1/audit:export?format=csv', undefined, bearer(outsiderToken));
    expect(outsiderCsv.status).toBe(200);
    expect(outsiderCsv.text.trimEnd().split('\n')).toHaveLength(1); // the header alone

    expect(secrets.length).toBeGreaterThan(10);
    for (const secret of secrets) {
      expect(csv.text.includes(secret), 'a secret in the CSV audit export').toBe(false);
      expect(jsonl.text.includes(secret), 'a secret in the JSONL audit export').toBe(false);
      expect(list.text.includes(secret), 'a secret in the audit list').toBe(false);
      expect(server.output().includes(secret), `a secret in the server log:\n${server.output()}`).toBe(false);
    }
  });

  it("records a refused call on an organisation's project under that organisation, for its admins to see", async () => {
    const { accessToken: admin } = await login(base, E2E_ADMIN.email, E2E_ADMIN.password);
    secrets.push(admin);
    const all = await http(base, 'GET', '/api/v1/audit?action=wanllmdb.projects.v1.ProjectService/UpdateProject&result=WLDB_ERR_PERMISSION_DENIED', undefined, bearer(admin));
    expect(all.status, all.text).toBe(200);
    expect(all.json.data).toHaveLength(1);
    const denied = all.json.data[0];
    expect(denied.target).toBe(`project:${privateProject.id}`);
    // Known product bug (core/src/rpc/rpc-host.ts, invoke): when authorize throws, `resolved` stays empty and the
    // audit record's organisation is '' — so an organisation's admins never see refusals on their own projects.
    expect(denied.organizationId).toBe(orgA.id);
    const orgLog = await http(base, 'GET', '/api/v1/audit', undefined, bearer(orgAdminToken));
    expect(orgLog.json.data.map((e: { id: string }) => e.id)).toContain(denied.id);
  });

  it('answers a cross-origin preflight without access-control-allow-origin by default', async () => {
    const res = await preflight(base, 'http://evil.example');
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    expect(res.headers.get('access-control-allow-credentials')).toBeNull();
    // A real cross-origin call gets no CORS grant either.
    const get = await fetch(`${base}/healthz`, { headers: { origin: 'http://evil.example' } });
    expect(get.headers.get('access-control-allow-origin')).toBeNull();
  });
});

// ---------------------------------------------------------------------------

describe('rate limits', () => {
  let server: ServerProcess;

  beforeAll(async () => {
    server = await startServer(['--data', dataDir()], { WANLLMDB_RATE_LIMIT_PER_ADDRESS_PER_MIN: '5' });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('refuses calls past the per-address limit: 429 with Retry-After over HTTP, RESOURCE_EXHAUSTED with retry-after over gRPC', async () => {
    const { accessToken } = await login(server.base, E2E_ADMIN.email, E2E_ADMIN.password); // public: not counted
    for (let i = 0; i < 5; i++) {
      const r = await http(server.base, 'GET', '/api/v1/projects', undefined, bearer(accessToken));
      expect(r.status, `call ${i + 1}: ${r.text}`).toBe(200);
    }
    const limited = await http(server.base, 'GET', '/api/v1/projects', undefined, bearer(accessToken));
    expectEnvelope(limited, 429, 'WLDB_ERR_RATE_LIMITED');
    const retryAfter = limited.headers.get('retry-after');
    expect(retryAfter).toMatch(/^\d+$/);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    expect(Number(retryAfter)).toBeLessThanOrEqual(60);

    const g = grpcClients(server.grpcPort, accessToken);
    try {
      const err = await grpcError(g.listProjects({}));
      expect(err.code).toBe(8); // RESOURCE_EXHAUSTED
      expect(err.metadata.get('wldb-error-code')).toEqual(['WLDB_ERR_RATE_LIMITED']);
      const [ra] = err.metadata.get('retry-after');
      expect(String(ra)).toMatch(/^\d+$/);
      expect(Number(ra)).toBeGreaterThanOrEqual(1);
    } finally {
      g.close();
    }
  });

  it('locks an account after repeated wrong passwords, even against the right one', async () => {
    const victim = { email: 'victim@e2e.test', password: 'victim-password-1' };
    expect((await register(server.base, victim)).status).toBe(201);
    // The default limit: 10 failures per account per window.
    for (let i = 0; i < 10; i++) {
      expectEnvelope(await http(server.base, 'POST', '/api/v1/auth/login', { email: victim.email, password: `guess-${i}-wrong` }), 401, 'WLDB_ERR_UNAUTHENTICATED');
    }
    const locked = await http(server.base, 'POST', '/api/v1/auth/login', { email: victim.email, password: 'guess-10-wrong' });
    expectEnvelope(locked, 429, 'WLDB_ERR_RATE_LIMITED');
    expect(locked.headers.get('retry-after')).toMatch(/^\d+$/);
    const right = await http(server.base, 'POST', '/api/v1/auth/login', victim);
    expectEnvelope(right, 429, 'WLDB_ERR_RATE_LIMITED');
    expect(right.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(right.text).not.toContain('accessToken');
    // Another account from the same address is not locked by it.
    expect((await http(server.base, 'POST', '/api/v1/auth/login', E2E_ADMIN)).status).toBe(200);
  });
});

// ---------------------------------------------------------------------------

describe('first start without a bootstrap administrator', () => {
  let server: ServerProcess;

  beforeAll(async () => {
    server = await startServer(['--data', dataDir()], { WANLLMDB_BOOTSTRAP_ADMIN: '' });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('prints a one-time setup token that makes the first site administrator; later sign-ups are normal users until switched off', async () => {
    // Logs go to stderr, the "serving" line that startServer waits for too, but warnings may land after it.
    await waitForOutput(server, /"setupToken"/);
    let setupToken = '';
    for (const line of server.output().split('\n')) {
      try {
        const entry = JSON.parse(line) as { setupToken?: string };
        if (entry.setupToken) setupToken = entry.setupToken;
      } catch {
        // not a JSON line
      }
    }
    expect(setupToken, server.output()).toMatch(/^\S{20,}$/);
    // Nobody may sign in yet.
    expectEnvelope(await http(server.base, 'POST', '/api/v1/auth/login', E2E_ADMIN), 401, 'WLDB_ERR_UNAUTHENTICATED');

    const first = { email: 'first@e2e.test', password: 'first-admin-password' };
    const made = await register(server.base, { ...first, setupToken });
    expect(made.status, made.text).toBe(201);
    expect(made.json.data).toMatchObject({ email: first.email, isSuperuser: true });
    const admin = (await login(server.base, first.email, first.password)).accessToken;
    const me = await http(server.base, 'GET', '/api/v1/auth/me', undefined, bearer(admin));
    expect(me.json.data.user).toMatchObject({ email: first.email, isSuperuser: true });

    // The token is spent.
    expectEnvelope(await register(server.base, { email: 'second@e2e.test', password: 'second-password-1', setupToken }), 403, 'WLDB_ERR_PERMISSION_DENIED');
    expectEnvelope(await register(server.base, { email: 'third@e2e.test', password: 'third-password-1', setupToken: 'made-up-token' }), 403, 'WLDB_ERR_PERMISSION_DENIED');

    // Without it: a normal user.
    const normal = { email: 'normal@e2e.test', password: 'normal-password-1' };
    const n = await register(server.base, normal);
    expect(n.status, n.text).toBe(201);
    expect(n.json.data.isSuperuser).toBe(false);
    const normalToken = (await login(server.base, normal.email, normal.password)).accessToken;
    expect((await http(server.base, 'GET', '/api/v1/auth/me', undefined, bearer(normalToken))).json.data.user.isSuperuser).toBe(false);
    expectEnvelope(await http(server.base, 'PATCH', '/api/v1/admin/settings', { allowRegistration: false }, bearer(normalToken)), 403, 'WLDB_ERR_PERMISSION_DENIED');

    // Registration switched off by the administrator.
    const off = await http(server.base, 'PATCH', '/api/v1/admin/settings', { allowRegistration: false }, bearer(admin));
    expect(off.status, off.text).toBe(200);
    expect(off.json.data).toEqual({ allowRegistration: false });
    expectEnvelope(await register(server.base, { email: 'late@e2e.test', password: 'late-password-1' }), 403, 'WLDB_ERR_PERMISSION_DENIED');
    expectEnvelope(await register(server.base, { email: 'late@e2e.test', password: 'late-password-1', setupToken }), 403, 'WLDB_ERR_PERMISSION_DENIED');

    for (const secret of [first.password, normal.password, admin, normalToken]) expect(server.output()).not.toContain(secret);
  });
});

// ---------------------------------------------------------------------------

describe('--no-auth', () => {
  it('is refused on an address other machines can reach (exit 2, naming --no-auth)', async () => {
    const r = await runCli(['serve', '--data', dataDir(), '--no-auth', '--host', '0.0.0.0', '--port', '0', '--http-port', '0']);
    expect(r.code, r.output).toBe(2);
    expect(r.output).toMatch(/--no-auth/);
    expect(r.output).toMatch(/0\.0\.0\.0/);
    expect(r.output).toMatch(/WLDB_ERR_CONFIG_INVALID/);
  });

  it('on loopback: warns that authentication is off, and serves without a token', async () => {
    const server = await startServer(['--data', dataDir(), '--no-auth']);
    try {
      await waitForOutput(server, /authentication is OFF/);
      const list = await http(server.base, 'GET', '/api/v1/projects');
      expect(list.status, list.text).toBe(200);
      const made = await http(server.base, 'POST', '/api/v1/projects', { name: 'no auth here' });
      expect(made.status, made.text).toBe(201);
      const g = grpcClients(server.grpcPort);
      try {
        expect((await g.getProject({ id: made.json.data.id })).data.name).toBe('no auth here');
      } finally {
        g.close();
      }
    } finally {
      await server.stop();
    }
  });
});

// ---------------------------------------------------------------------------

describe('CORS with --cors-origins', () => {
  let server: ServerProcess;

  beforeAll(async () => {
    server = await startServer(['--data', dataDir(), '--cors-origins', 'http://ui.example:3000']);
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("grants the listed origin's preflight, and still not another's", async () => {
    const ok = await preflight(server.base, 'http://ui.example:3000');
    expect(ok.status).toBeLessThan(300);
    expect(ok.headers.get('access-control-allow-origin')).toBe('http://ui.example:3000');
    expect(ok.headers.get('access-control-allow-methods')).toMatch(/POST/);
    expect(ok.headers.get('access-control-allow-headers')?.toLowerCase()).toMatch(/authorization/);

    const evil = await preflight(server.base, 'http://evil.example');
    expect(evil.headers.get('access-control-allow-origin')).toBeNull();
    // Close but not equal: another port, another scheme.
    expect((await preflight(server.base, 'http://ui.example:3001')).headers.get('access-control-allow-origin')).toBeNull();
    expect((await preflight(server.base, 'https://ui.example:3000')).headers.get('access-control-allow-origin')).toBeNull();

    // The real call from the listed origin may read the answer, and retry-after / x-request-id.
    const { accessToken } = await login(server.base, E2E_ADMIN.email, E2E_ADMIN.password);
    const res = await fetch(`${server.base}/api/v1/projects`, { headers: { origin: 'http://ui.example:3000', ...bearer(accessToken) } });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe('http://ui.example:3000');
    expect(res.headers.get('access-control-expose-headers')?.toLowerCase()).toMatch(/retry-after/);
  });
});

// ---------------------------------------------------------------------------

describe('wanllmdb admin create-user', () => {
  const cheap = { WANLLMDB_SCRYPT_LN: '10', WANLLMDB_ADMIN_PASSWORD: '' };

  it('makes a site administrator from a password on stdin; the server then signs them in', async () => {
    const dir = dataDir();
    const ops = { email: 'ops@e2e.test', password: 'ops-password-from-stdin' };
    const r = await runCli(['admin', 'create-user', '--email', ops.email, '--admin', '--password-stdin', '--data', dir], cheap, `${ops.password}\n`);
    expect(r.code, r.output).toBe(0);
    expect(r.output).toMatch(/created administrator ops@e2e\.test/);
    expect(r.output).not.toContain(ops.password);

    const server = await startServer(['--data', dir]);
    try {
      const { accessToken } = await login(server.base, ops.email, ops.password);
      const me = await http(server.base, 'GET', '/api/v1/auth/me', undefined, bearer(accessToken));
      expect(me.status, me.text).toBe(200);
      expect(me.json.data.user).toMatchObject({ email: ops.email, username: 'ops', isSuperuser: true });
      // An account existed, so WANLLMDB_BOOTSTRAP_ADMIN was not used.
      expectEnvelope(await http(server.base, 'POST', '/api/v1/auth/login', E2E_ADMIN), 401, 'WLDB_ERR_UNAUTHENTICATED');
      expect(server.output()).not.toContain(ops.password);
    } finally {
      await server.stop();
    }
  });

  it('exits 2 with a clear message when no password is given', async () => {
    const dir = dataDir();
    const none = await runCli(['admin', 'create-user', '--email', 'nopw@e2e.test', '--data', dir], cheap);
    expect(none.code, none.output).toBe(2);
    expect(none.output).toMatch(/No password given/);
    expect(none.output).toMatch(/--password-stdin/);
    const empty = await runCli(['admin', 'create-user', '--email', 'nopw@e2e.test', '--password-stdin', '--data', dir], cheap, '');
    expect(empty.code, empty.output).toBe(2);
    expect(empty.output).toMatch(/No password given/);
  });
});
