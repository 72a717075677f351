import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { jsonCall, metadataBackends, startTestKernel, type TestKernel } from '@wanllmdb/core/testing';
import { createAuthPlugin } from '@wanllmdb/plugin-auth';
import { projectsPlugin } from '@wanllmdb/plugin-projects';
import { PROTO_DIR } from '@wanllmdb/proto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HELLO_PROTO_DIR, helloPlugin } from './index.js';

/** A third-party plugin with a contract of its own: served like core's, with the permissions it declares enforced. */
describe.each(metadataBackends())('the hello plugin (its own proto) on $name', (backend) => {
  let t: TestKernel;
  let base = '';
  let client: grpc.Client & Record<string, (...args: unknown[]) => unknown>;
  const tokens: Record<string, string> = {};
  let projectId = '';

  const http = (method: string, path: string, token: string, body?: unknown) => jsonCall(base, method, path, token, body);
  const greetOverGrpc = (token: string, name: string) =>
    new Promise<{ message: string; count: string }>((resolve, reject) => {
      const md = new grpc.Metadata();
      md.set('authorization', `Bearer ${token}`);
      client.Greet!({ project_id: projectId, name }, md, (err: grpc.ServiceError | null, res: { message: string; count: string }) => (err ? reject(err) : resolve(res)));
    });

  const savedGreeting = process.env.WANLLMDB_HELLO_GREETING;
  beforeAll(async () => {
    process.env.WANLLMDB_HELLO_GREETING = 'Hi';
    t = await startTestKernel(backend, { plugins: [projectsPlugin, createAuthPlugin({ scryptLn: 4 }), helloPlugin], listen: true });
    base = `http://127.0.0.1:${t.ports!.httpPort}`;
    const post = async (path: string, body: unknown, token?: string) =>
      (await (await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) })).json()) as Record<string, any>;
    for (const who of ['owner', 'outsider']) {
      await post('/api/v1/auth/register', { email: `${who}@hello.test`, password: 'correct horse battery' });
      tokens[who] = (await post('/api/v1/auth/login', { email: `${who}@hello.test`, password: 'correct horse battery' })).data.accessToken;
    }
    projectId = (await post('/api/v1/projects', { name: 'greeted' }, tokens.owner)).data.id;
    tokens.reader = (await post('/api/v1/auth/api-keys', { name: 'read only', scopes: ['projects:read'] }, tokens.owner)).data.key;

    const def = protoLoader.loadSync(join(HELLO_PROTO_DIR, 'wanllmdb/hello/v1/hello.proto'), { includeDirs: [HELLO_PROTO_DIR, PROTO_DIR], keepCase: true, longs: String });
    const Service = (grpc.loadPackageDefinition(def) as any).wanllmdb.hello.v1.HelloService as grpc.ServiceClientConstructor;
    client = new Service(`127.0.0.1:${t.ports!.grpcPort}`, grpc.credentials.createInsecure()) as never;
  });
  afterAll(async () => {
    if (savedGreeting === undefined) delete process.env.WANLLMDB_HELLO_GREETING;
    else process.env.WANLLMDB_HELLO_GREETING = savedGreeting;
    client?.close();
    await t?.close();
  });

  it('answers over HTTP and gRPC, through its own migration and its setting (WANLLMDB_HELLO_GREETING)', async () => {
    const greeted = await http('POST', `/api/v1/hello/projects/${projectId}/greetings`, tokens.owner!, { name: 'Ada' });
    expect(greeted).toEqual({ status: 200, body: { message: 'Hi, Ada!', count: 1 } });
    expect(await greetOverGrpc(tokens.owner!, 'Grace')).toEqual({ message: 'Hi, Grace!', count: '2' });
    expect((await http('GET', `/api/v1/hello/projects/${projectId}/greetings`, tokens.owner!)).body.count).toBe(2);
  });

  it('refuses a caller without the permission the method declares, over both transports', async () => {
    // A key scoped to reading may read the count but not greet (projects:write).
    expect((await http('GET', `/api/v1/hello/projects/${projectId}/greetings`, tokens.reader!)).status).toBe(200);
    const refused = await http('POST', `/api/v1/hello/projects/${projectId}/greetings`, tokens.reader!, { name: 'Eve' });
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('WLDB_ERR_PERMISSION_DENIED');
    await expect(greetOverGrpc(tokens.reader!, 'Eve')).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    // Someone else's private project does not exist for the outsider.
    expect((await http('GET', `/api/v1/hello/projects/${projectId}/greetings`, tokens.outsider!)).status).toBe(404);
    await expect(greetOverGrpc(tokens.outsider!, 'Mallory')).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    expect((await http('GET', `/api/v1/hello/projects/${projectId}/greetings`, tokens.owner!)).body.count).toBe(2);
  });
});
