import { jsonCall, metadataBackends, startTestKernel, type TestKernel } from '@wanllmdb/core/testing';
import { createAuthPlugin } from '@wanllmdb/plugin-auth';
import { projectsPlugin } from '@wanllmdb/plugin-projects';
import { Contract } from '@wanllmdb/core';
import { grpcClient } from '@wanllmdb/core/grpc';
import { loadContractRoot } from '@wanllmdb/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hello } from './gen/index.js';
import { HELLO_PROTO_DIR, helloPlugin } from './index.js';

/** A third-party plugin with a contract of its own: served like core's, with the permissions it declares enforced. */
describe.each(metadataBackends())('the hello plugin (its own proto) on $name', (backend) => {
  let t: TestKernel;
  let base = '';
  const tokens: Record<string, string> = {};
  let projectId = '';

  const http = (method: string, path: string, token: string, body?: unknown) => jsonCall(base, method, path, token, body);
  // The template's generated ref gives a typed gRPC client (its own protos beside core's).
  const greetOverGrpc = async (token: string, name: string) => {
    const client = grpcClient(hello.v1.HelloService, { address: `127.0.0.1:${t.ports!.grpcPort}`, metadata: { authorization: `Bearer ${token}` }, contract: new Contract(loadContractRoot([{ dir: HELLO_PROTO_DIR }])) });
    try {
      return await client.greet({ projectId, name });
    } finally {
      client.close();
    }
  };

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
  });
  afterAll(async () => {
    if (savedGreeting === undefined) delete process.env.WANLLMDB_HELLO_GREETING;
    else process.env.WANLLMDB_HELLO_GREETING = savedGreeting;
    await t?.close();
  });

  it('answers over HTTP and gRPC, through its own migration and its setting (WANLLMDB_HELLO_GREETING)', async () => {
    const greeted = await http('POST', `/api/v1/hello/projects/${projectId}/greetings`, tokens.owner!, { name: 'Ada' });
    expect(greeted).toEqual({ status: 200, body: { message: 'Hi, Ada!', count: 1 } });
    expect(await greetOverGrpc(tokens.owner!, 'Grace')).toEqual({ message: 'Hi, Grace!', count: 2 });
    expect((await http('GET', `/api/v1/hello/projects/${projectId}/greetings`, tokens.owner!)).body.count).toBe(2);
  });

  it('refuses a caller without the permission the method declares, over both transports', async () => {
    // A key scoped to reading may read the count but not greet (projects:write).
    expect((await http('GET', `/api/v1/hello/projects/${projectId}/greetings`, tokens.reader!)).status).toBe(200);
    const refused = await http('POST', `/api/v1/hello/projects/${projectId}/greetings`, tokens.reader!, { name: 'Eve' });
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('WLDB_ERR_PERMISSION_DENIED');
    await expect(greetOverGrpc(tokens.reader!, 'Eve')).rejects.toMatchObject({ code: 'WLDB_ERR_PERMISSION_DENIED' });
    // Someone else's private project does not exist for the outsider.
    expect((await http('GET', `/api/v1/hello/projects/${projectId}/greetings`, tokens.outsider!)).status).toBe(404);
    await expect(greetOverGrpc(tokens.outsider!, 'Mallory')).rejects.toMatchObject({ code: 'WLDB_ERR_NOT_FOUND' });
    expect((await http('GET', `/api/v1/hello/projects/${projectId}/greetings`, tokens.owner!)).body.count).toBe(2);
  });
});
