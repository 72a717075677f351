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

  const SPECIAL = new Set(['public', 'self:read', 'self:write', 'site:admin']);

  it('names the resources of every method, or says how its handler authorises (no hand list)', () => {
    const methods = contract.serviceNames().flatMap((s) => contract.methods(s));
    const unscoped = methods.filter((m) => !SPECIAL.has(m.permission) && !m.resources.length && !m.authorizedInHandler);
    expect(unscoped.map((m) => m.fullName)).toEqual([]);
    expect(methods.find((m) => m.fullName === 'wanllmdb.projects.v1.ProjectService/ListProjects')!.authorizedInHandler).toMatch(/ctx.access/);
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
      rpc Declared(Req) returns (Res) { option (wanllmdb.auth.v1.permission) = "site:admin"; }
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

  it('refuses an area permission that names no resource and does not say how its handler authorises', () => {
    const unscoped = new Contract(protobuf.parse(source.replace('rpc Undeclared(Req) returns (Res);', 'rpc Listed(Req) returns (Res) { option (wanllmdb.auth.v1.permission) = "demo:read"; }'), { keepCase: false }).root);
    const h = new RpcHost(new LocalAuth(), createLogger('silent'), unscoped);
    expect(() => h.mount('demo', 'wanllmdb.demo.v1.Demo', { declared: async () => ({}), listed: async () => ({}) })).toThrowError(/Demo\/Listed name no resource.*authorized_in_handler/);
    const narrowed = new Contract(
      protobuf.parse(source.replace('rpc Undeclared(Req) returns (Res);', 'rpc Listed(Req) returns (Res) { option (wanllmdb.auth.v1.permission) = "demo:read"; option (wanllmdb.auth.v1.authorized_in_handler) = "lists what the caller may see"; }'), { keepCase: false }).root,
    );
    expect(() => new RpcHost(new LocalAuth(), createLogger('silent'), narrowed).mount('demo', 'wanllmdb.demo.v1.Demo', { declared: async () => ({}), listed: async () => ({}) })).not.toThrow();
  });

  it('refuses unknown services and missing handlers', () => {
    expect(() => host().mount('demo', 'wanllmdb.nope.v1.Nope', {})).toThrowError(/No service "wanllmdb.nope.v1.Nope"/);
    const ok = new Contract(protobuf.parse(source.replace('rpc Undeclared(Req) returns (Res);', ''), { keepCase: false }).root);
    const h = new RpcHost(new LocalAuth(), createLogger('silent'), ok);
    expect(() => h.mount('demo', 'wanllmdb.demo.v1.Demo', {})).toThrowError(/without handler\(s\) declared/);
  });
});
