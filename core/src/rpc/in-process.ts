import { methodsOf, type ServiceRef, type UnaryClientOf } from '@wanllmdb/proto';
import { Errors } from '../errors.js';
import type { Principal } from './auth.js';
import type { CallContext } from './call-context.js';
import type { RpcHost } from './rpc-host.js';

/**
 * Calls to mounted services from inside the server — one plugin's API
 * serving another, a background job — through the same authorisation and
 * audit as a call over gRPC or HTTP. A plugin gets its own with
 * `deps: { rpc: coreServices.rpc }`.
 */
export interface InProcessRpc {
  /**
   * Calls the unary method `fullMethod` (`wanllmdb.tracking.v1.RunService/ListRuns`)
   * as `caller`: a handler's CallContext (the call acts for its caller and
   * ends with it), or a principal — `rpc.service` for the plugin's own work,
   * or one authenticated for this very call; never one kept from earlier (it
   * is not authenticated again, so a revoked key or disabled user would
   * still act). Refused exactly as the caller would be over the network.
   */
  call<Res = unknown>(caller: CallContext | Principal, fullMethod: string, request: unknown): Promise<Res>;
  /**
   * The typed client of a service for `caller` (`rpc.client(projects.v1.ProjectService, ctx).getProject({ id })`):
   * `call` with the method names and shapes the generated ref carries. Unary methods only.
   */
  client<H>(ref: ServiceRef<H>, caller: CallContext | Principal): UnaryClientOf<H>;
  /**
   * The plugin's own principal (`plugin:<id>`, a service): what background
   * work acts as. It may do everything, and what it changes is audited under
   * its name.
   */
  readonly service: Principal;
}

/** The service principal of a plugin's own work. */
export function pluginPrincipal(pluginId: string): Principal {
  return { id: `plugin:${pluginId}`, kind: 'service', name: `plugin ${pluginId}`, orgId: '', superuser: true, method: 'local' };
}

const isContext = (caller: CallContext | Principal): caller is CallContext => 'principal' in caller && 'requestId' in caller;

const unaryCache = new WeakMap<object, readonly (readonly [string, string])[]>();
/** A ref's unary methods as [handler name, full method name], worked out once per ref (clients are made per call). */
function unaryMethods(ref: ServiceRef<unknown>): readonly (readonly [string, string])[] {
  let list = unaryCache.get(ref);
  if (!list) {
    list = Object.entries(methodsOf(ref))
      .filter(([, m]) => m.kind === 'unary')
      .map(([handler, m]) => [handler, `${ref.fullName}/${m.name}`] as const);
    unaryCache.set(ref, list);
  }
  return list;
}

/** One plugin's InProcessRpc; the host is looked up per call (services are mounted after every plugin's init). */
export function inProcessRpc(pluginId: string, host: () => RpcHost): InProcessRpc {
  const service = Object.freeze(pluginPrincipal(pluginId));
  const rpc: InProcessRpc = {
    service,
    client<H>(ref: ServiceRef<H>, caller: CallContext | Principal): UnaryClientOf<H> {
      const client: Record<string, (request: unknown) => Promise<unknown>> = {};
      for (const [handler, fullMethod] of unaryMethods(ref)) client[handler] = (request) => rpc.call(caller, fullMethod, request ?? {});
      return client as UnaryClientOf<H>;
    },
    async call<Res>(caller: CallContext | Principal, fullMethod: string, request: unknown): Promise<Res> {
      const rpc = host();
      const method = rpc.method(fullMethod);
      if (!method) throw Errors.RPC_SERVICE_UNKNOWN(`No mounted method ${fullMethod}. Check the name, and that the plugin that serves it is loaded.`);
      if (method.requestStream || method.responseStream) {
        throw Errors.VALIDATION(`${fullMethod} is a stream; rpc.call takes unary methods. Call the plugin's API for it instead.`, [{ field: 'fullMethod', message: 'a streaming method' }]);
      }
      const context = isContext(caller) ? caller : undefined;
      const principal = context ? context.principal : (caller as Principal);
      return (await rpc.invoke(method, request, {
        transport: 'local',
        headers: {},
        principal,
        ...(context ? { requestId: context.requestId, signal: context.signal, address: context.address } : {}),
      })) as Res;
    },
  };
  return rpc;
}
