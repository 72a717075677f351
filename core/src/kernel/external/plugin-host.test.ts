import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/config.js';
import { Errors } from '../../errors.js';
import { LocalAuth, type CallerInfo, type Principal } from '../../rpc/auth.js';
import { createLogger } from '../logger.js';
import { CALL_TOKEN_HEADER, PluginHost } from './plugin-host.js';

const alice: Principal = { id: 'u-alice', kind: 'user', name: 'alice', orgId: 'o1', superuser: false, method: 'password' };

describe('plugin credentials and call tokens', () => {
  const hosts: PluginHost[] = [];
  afterEach(async () => {
    for (const h of hosts.splice(0)) await h.close();
  });

  const setup = () => {
    const host = new PluginHost(() => {
      throw new Error('no RPC host in this test');
    }, loadConfig({ env: {} }), createLogger('silent'), () => []);
    hosts.push(host);
    const auth = host.wrapAuth(new LocalAuth());
    const socket = `unix:${join(host.socketDir(), 'kernel.sock')}`;
    const caller = (token: string, extra: Partial<CallerInfo> & { callToken?: string } = {}): CallerInfo => ({
      headers: { authorization: `Bearer ${token}`, ...(extra.callToken ? { [CALL_TOKEN_HEADER]: extra.callToken } : {}) },
      address: extra.address ?? socket,
      permission: 'projects:read',
      method: 'wanllmdb.projects.v1.ProjectService/ListProjects',
      streaming: extra.streaming,
    });
    return { host, auth, caller };
  };

  it('makes a credential its plugin’s principal, within the manifest’s permissions, on the plugin socket only', async () => {
    const { host, auth, caller } = setup();
    const token = host.issue('hello-py', ['projects:read']);
    const p = await auth.authenticate(caller(token));
    expect(p).toMatchObject({ id: 'plugin:hello-py', kind: 'service', scopes: ['projects:read'] });
    await expect(auth.authorize({ principal: p, permission: 'projects:read', method: 'm', resources: [] })).resolves.toEqual([]);
    await expect(auth.authorize({ principal: p, permission: 'projects:write', method: 'm', resources: [] })).rejects.toMatchObject({ code: Errors.PERMISSION_DENIED.code });
    await expect(auth.authenticate(caller(token, { address: '127.0.0.1' }))).rejects.toMatchObject({ code: Errors.UNAUTHENTICATED.code });
    host.revoke(token);
    await expect(auth.authenticate(caller(token))).rejects.toMatchObject({ code: Errors.UNAUTHENTICATED.code });
  });

  it('lets a call token act for its caller only while the call runs, only for its plugin, and only in unary calls', async () => {
    const { host, auth, caller } = setup();
    const mine = host.issue('hello-py', []);
    const other = host.issue('other', []);
    const call = host.delegate('hello-py', alice);
    expect(await auth.authenticate(caller(mine, { callToken: call.token }))).toBe(alice);
    await expect(auth.authenticate(caller(other, { callToken: call.token }))).rejects.toMatchObject({ code: Errors.UNAUTHENTICATED.code });
    await expect(auth.authenticate(caller(mine, { callToken: call.token, streaming: true }))).rejects.toMatchObject({ code: Errors.UNAUTHENTICATED.code });
    call.end();
    await expect(auth.authenticate(caller(mine, { callToken: call.token }))).rejects.toMatchObject({ code: Errors.UNAUTHENTICATED.code });
  });

  it('leaves every other caller to the kernel’s Auth', async () => {
    const { auth } = setup();
    expect(await auth.authenticate({ headers: {}, address: '127.0.0.1', permission: 'projects:read', method: 'm' })).toMatchObject({ id: 'local' });
  });
});
