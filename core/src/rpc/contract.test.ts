import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { Errors } from '../errors.js';
import { createLogger } from '../kernel/logger.js';
import { LocalAuth } from './auth.js';
import { Contract } from './contract.js';
import { RpcHost } from './rpc-host.js';

describe('the proto contract', () => {
  const contract = new Contract();

  it('declares a permission on every method of every service', () => {
    const names = contract.serviceNames();
    expect(names.length).toBeGreaterThan(0);
    const undeclared = names.flatMap((s) => contract.methods(s)).filter((m) => !m.permission).map((m) => m.fullName);
    expect(undeclared).toEqual([]);
  });

  /**
   * Methods with an area permission that name no resource: each either
   * lists/creates within what the caller may see (ctx.access) or authorises
   * the resource itself once it knows it (ctx.authorize). A new method lands
   * here only after a review of its handler.
   */
  const CHECKED_IN_HANDLER = new Set([
    'wanllmdb.projects.v1.ProjectService/CreateProject', // the caller's own org unless organization_id names one
    'wanllmdb.projects.v1.ProjectService/ListProjects',
    'wanllmdb.projects.v1.ProjectService/WatchProjects',
    'wanllmdb.tracking.v1.RunService/CreateRun', // may create the project, then runs:write on it
    'wanllmdb.tracking.v1.MetricService/StreamMetrics', // client stream: runs named in its messages
    'wanllmdb.tracking.v1.RunFileService/UploadFile', // client stream
    'wanllmdb.auth.v1.OrgService/CreateOrg',
    'wanllmdb.auth.v1.OrgService/ListOrgs',
    'wanllmdb.auth.v1.AuditService/ListAudit',
    'wanllmdb.auth.v1.AuditService/ExportAudit',
  ]);
  const SPECIAL = new Set(['public', 'self:read', 'self:write', 'site:admin']);

  it('names the resources of every method whose handler does not check them itself', () => {
    const methods = contract.serviceNames().flatMap((s) => contract.methods(s));
    const unscoped = methods.filter((m) => !SPECIAL.has(m.permission) && !m.resources.length && !CHECKED_IN_HANDLER.has(m.fullName));
    expect(unscoped.map((m) => m.fullName)).toEqual([]);
    const stale = [...CHECKED_IN_HANDLER].filter((n) => !methods.some((m) => m.fullName === n));
    expect(stale).toEqual([]);
  });

  it('reads google.api.http routes and success statuses', () => {
    const create = contract.methods('wanllmdb.projects.v1.ProjectService').find((m) => m.name === 'CreateProject')!;
    expect(create.httpRoutes).toEqual([{ verb: 'POST', template: '/api/v1/projects', body: '*' }]);
    expect(create.httpStatus).toBe(201);
    expect(create.permission).toBe('projects:create');
  });
});

describe('RpcHost.mount', () => {
  const source = `
    syntax = "proto3";
    package wanllmdb.demo.v1;
    message Req {}
    message Res {}
    service Demo {
      rpc Declared(Req) returns (Res) { option (wanllmdb.auth.v1.permission) = "demo:read"; }
      rpc Undeclared(Req) returns (Res);
    }`;
  const contract = new Contract(protobuf.parse(source, { keepCase: false }).root);
  const host = () => new RpcHost(new LocalAuth(), createLogger('silent'), contract);

  it('refuses a service with a method that declares no permission', () => {
    const handlers = { declared: async () => ({}), undeclared: async () => ({}) };
    try {
      host().mount('demo', 'wanllmdb.demo.v1.Demo', handlers);
      expect.unreachable();
    } catch (e) {
      expect(Errors.RPC_PERMISSION_UNDECLARED.is(e)).toBe(true);
      expect((e as Error).message).toMatch(/wanllmdb\.demo\.v1\.Demo\/Undeclared/);
    }
  });

  it('refuses unknown services and missing handlers', () => {
    expect(() => host().mount('demo', 'wanllmdb.nope.v1.Nope', {})).toThrowError(/No service "wanllmdb.nope.v1.Nope"/);
    const ok = new Contract(protobuf.parse(source.replace('rpc Undeclared(Req) returns (Res);', ''), { keepCase: false }).root);
    const h = new RpcHost(new LocalAuth(), createLogger('silent'), ok);
    expect(() => h.mount('demo', 'wanllmdb.demo.v1.Demo', {})).toThrowError(/without handler\(s\) declared/);
  });
});
