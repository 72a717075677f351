import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { coreServices, externalPlugin, type PluginProcessStatus } from '@wanllmdb/core';
import { isAlive, jsonCall, metadataBackends, startTestKernel, type TestKernel } from '@wanllmdb/core/testing';
import { authAdminRef, createAuthPlugin } from '@wanllmdb/plugin-auth';
import { projectsPlugin } from '@wanllmdb/plugin-projects';
import { PROTO_DIR, protoFiles } from '@wanllmdb/proto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startServer } from './server-process.js';

const EXAMPLE = fileURLToPath(new URL('../../plugin-template/python', import.meta.url));
const pythonBin = inject('pythonBin');

/** A copy of the Python example (its manifest changed by `edit`), so a test's tuning never touches the template. */
function copyOfExample(edit: (manifest: Record<string, unknown>) => void = () => undefined): string {
  const dir = mkdtempSync(join(tmpdir(), 'wldb-py-plugin-'));
  cpSync(EXAMPLE, dir, { recursive: true, filter: (src) => !src.includes('__pycache__') });
  const file = join(dir, 'wanllmdb-plugin.json');
  const manifest = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  edit(manifest);
  writeFileSync(file, JSON.stringify(manifest));
  return dir;
}

/** The environment a user would have after activating the venv. */
const withVenv = (env: NodeJS.ProcessEnv = process.env) => ({ ...env, PATH: `${pythonBin}:${env.PATH ?? ''}` });

/** The plugin program's own environment, as the kernel gave it (to act as the program would). */
function programEnv(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')) {
    const i = kv.indexOf('=');
    if (i > 0) out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}

function unary(client: any, method: string, request: unknown, md: grpc.Metadata): Promise<any> {
  return new Promise((resolve, reject) => client[method](request, md, (err: grpc.ServiceError | null, res: unknown) => (err ? reject(err) : resolve(res))));
}
const bearer = (token: string, extra: Record<string, string> = {}) => {
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${token}`);
  for (const [k, v] of Object.entries(extra)) md.set(k, v);
  return md;
};

/** The example plugin in Python (grpcio), loaded as a third-party plugin: started, called, killed, restarted and stopped by the kernel. */
describe('an out-of-process plugin in Python', () => {
  const sqlite = metadataBackends().find((b) => b.name === 'sqlite')!;
  let dir = '';
  let t: TestKernel;
  let base = '';
  const tokens: Record<string, string> = {};
  let projectId = '';
  let text: any;

  const http = (method: string, path: string, token: string, body?: unknown) => jsonCall(base, method, path, token, body);
  const stats = async () => (await http('GET', '/api/v1/hello-py/stats', tokens.admin!)).body;
  const status = (): PluginProcessStatus => t.kernel.get(coreServices.pluginHost).status().find((s) => s.plugin === 'hello-py')!;

  beforeAll(async () => {
    // Health checked every 300 ms, so a hung program is found within a second.
    dir = copyOfExample((m) => (m.healthIntervalMs = 300));
    t = await startTestKernel(sqlite, {
      plugins: [projectsPlugin, createAuthPlugin({ scryptLn: 4 }), externalPlugin(dir, withVenv())],
      listen: true,
      env: { WANLLMDB_HELLO_PY_GREETING: 'Hi' },
    });
    base = `http://127.0.0.1:${t.ports!.httpPort}`;
    const post = async (path: string, body: unknown, token?: string) =>
      (await (await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) })).json()) as Record<string, any>;
    await t.kernel.get(authAdminRef).createUser({ email: 'admin@py.test', password: 'correct horse battery', superuser: true });
    for (const who of ['owner', 'outsider']) await post('/api/v1/auth/register', { email: `${who}@py.test`, password: 'correct horse battery' });
    for (const who of ['admin', 'owner', 'outsider']) tokens[who] = (await post('/api/v1/auth/login', { email: `${who}@py.test`, password: 'correct horse battery' })).data.accessToken;
    projectId = (await post('/api/v1/projects', { name: 'greeted' }, tokens.owner)).data.id;
    tokens.runsOnly = (await post('/api/v1/auth/api-keys', { name: 'runs only', scopes: ['runs:read'] }, tokens.owner)).data.key;

    const def = protoLoader.loadSync(join(dir, 'proto/wanllmdb/hellopy/v1/hellopy.proto'), { includeDirs: [join(dir, 'proto'), PROTO_DIR], keepCase: false, longs: Number, defaults: true });
    const Service = (grpc.loadPackageDefinition(def) as any).wanllmdb.hellopy.v1.TextService as grpc.ServiceClientConstructor;
    text = new Service(`127.0.0.1:${t.ports!.grpcPort}`, grpc.credentials.createInsecure());
  });
  afterAll(async () => {
    text?.close();
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves its own service over HTTP and gRPC, calling back into the kernel as the caller', async () => {
    const res = await http('POST', `/api/v1/hello-py/projects/${projectId}/analyze`, tokens.owner!, { text: 'The cat and the hat; the end.' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ greeting: 'Hi, greeted!', words: 7, characters: 29, topWords: [{ word: 'the', count: 3 }, { word: 'and', count: 1 }, { word: 'cat', count: 1 }] });
    const viaGrpc = await unary(text, 'analyze', { projectId, text: 'a b a' }, bearer(tokens.owner!));
    expect(viaGrpc).toMatchObject({ greeting: 'Hi, greeted!', words: 2 + 1, topWords: [{ word: 'a', count: 2 }, { word: 'b', count: 1 }] });
  });

  it('is refused, before the program sees the call, for a caller without the declared permission', async () => {
    const before = (await stats()).calls;
    const hidden = await http('POST', `/api/v1/hello-py/projects/${projectId}/analyze`, tokens.outsider!, { text: 'x' });
    expect(hidden.status).toBe(404); // another user's private project is not seen to exist
    const scoped = await http('POST', `/api/v1/hello-py/projects/${projectId}/analyze`, tokens.runsOnly!, { text: 'x' });
    expect(scoped.status).toBe(403);
    expect(scoped.body.error.code).toBe('WLDB_ERR_PERMISSION_DENIED');
    expect((await http('GET', '/api/v1/hello-py/stats', tokens.owner!)).status).toBe(403);
    await expect(unary(text, 'analyze', { projectId, text: 'x' }, new grpc.Metadata())).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    expect((await stats()).calls).toBe(before + 1); // only the stats call itself reached the program
  });

  it('passes the program’s coded errors on with their field, and its own principal counts every project', async () => {
    const tooLong = await http('POST', `/api/v1/hello-py/projects/${projectId}/analyze`, tokens.owner!, { text: 'x'.repeat(100_001) });
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.error).toMatchObject({ code: 'WLDB_ERR_VALIDATION', details: [{ field: 'text', message: 'is longer than 100000 characters' }] });
    // Stats calls ListProjects as plugin:hello-py (its manifest grants projects:read): it sees the owner's private project.
    expect((await stats()).projectsTotal).toBe(1);
  });

  it('gives the program a credential that works only on the kernel socket and only within its manifest’s permissions', async () => {
    const env = programEnv(status().pid);
    const token = env.WANLLMDB_PLUGIN_TOKEN!;
    const pkg = protoLoader.loadSync(protoFiles(), { includeDirs: [PROTO_DIR], keepCase: false, longs: Number, defaults: true });
    const Projects = (grpc.loadPackageDefinition(pkg) as any).wanllmdb.projects.v1.ProjectService as grpc.ServiceClientConstructor;
    const onSocket = new Projects(env.WANLLMDB_KERNEL_ADDRESS!, grpc.credentials.createInsecure());
    const onPort = new Projects(`127.0.0.1:${t.ports!.grpcPort}`, grpc.credentials.createInsecure());
    try {
      expect((await unary(onSocket, 'listProjects', {}, bearer(token))).meta.total).toBe(1);
      await expect(unary(onSocket, 'createProject', { name: 'by the plugin' }, bearer(token))).rejects.toMatchObject({
        code: grpc.status.PERMISSION_DENIED,
        details: expect.stringContaining('wanllmdb-plugin.json'),
      });
      await expect(unary(onSocket, 'listProjects', {}, bearer(token, { 'x-wanllmdb-call-token': 'not-a-live-call' }))).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
      await expect(unary(onPort, 'listProjects', {}, bearer(token))).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    } finally {
      onSocket.close();
      onPort.close();
    }
  });

  it('is restarted by the kernel when killed, with a new credential, and calls go on', async () => {
    const first = await stats();
    const oldToken = programEnv(first.pid).WANLLMDB_PLUGIN_TOKEN!;
    process.kill(first.pid, 'SIGKILL');
    await expect.poll(() => isAlive(first.pid)).toBe(false);
    // A call during the restart waits for the new program.
    const res = await http('POST', `/api/v1/hello-py/projects/${projectId}/analyze`, tokens.owner!, { text: 'still here' });
    expect(res.status).toBe(200);
    const second = await stats();
    expect(second.pid).not.toBe(first.pid);
    expect(status()).toMatchObject({ state: 'serving', restarts: 1, lastExit: 'signal SIGKILL' });
    expect(programEnv(second.pid).WANLLMDB_PLUGIN_TOKEN).not.toBe(oldToken);
  });

  it('kills and restarts a program that stops answering its health checks', async () => {
    const { pid } = await stats();
    process.kill(pid, 'SIGSTOP');
    await expect.poll(() => status(), { timeout: 20_000, interval: 100 }).toMatchObject({ state: 'serving', restarts: 2, lastExit: 'unhealthy' });
    expect(isAlive(pid)).toBe(false);
    expect((await stats()).pid).toBe(status().pid);
  });

  it('is stopped with its Shutdown call when the kernel stops, and exits by itself', async () => {
    const { pid } = status();
    await t.close();
    expect(status()).toMatchObject({ state: 'stopped', lastExit: 'exit 0' });
    expect(isAlive(pid)).toBe(false);
  });
});

describe('an out-of-process plugin loaded with wanllmdb serve --plugins', () => {
  it('serves through the CLI, and ends itself when the server is killed with -9', async () => {
    const data = mkdtempSync(join(tmpdir(), 'wldb-py-serve-'));
    const server = await startServer(['--data', data, '--plugins', EXAMPLE], withVenv());
    try {
      const { headers } = await server.credentials();
      const res = await fetch(`${server.base}/api/v1/hello-py/stats`, { headers });
      expect(res.status).toBe(200);
      const { pid } = (await res.json()) as { pid: number };
      expect(isAlive(pid)).toBe(true);
      await server.stop('SIGKILL');
      // Nobody calls Shutdown now: the program sees its stdin close and ends.
      await expect.poll(() => isAlive(pid), { timeout: 10_000 }).toBe(false);
    } finally {
      await server.stop();
      rmSync(data, { recursive: true, force: true });
    }
  });
});
