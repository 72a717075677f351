import { randomUUID } from 'node:crypto';
import type { StreamSender } from '@wanllmdb/proto';
import { Errors, toWldbError, type WldbError } from '../errors.js';
import type { Logger } from '../kernel/logger.js';
import { ANONYMOUS_PRINCIPAL, isReadPermission, type Auth, type AuditRecord, type Principal, type ResolvedResource, type ResourceRef } from './auth.js';
import type { CallContext, HttpAnswer } from './call-context.js';
import { storageErrorForCaller } from '../storage/metadata/sql-errors.js';
import { checkClosedSets } from './closed-sets.js';
import { checkRequestObject, UndecodableRequest, withDefaults } from './codec.js';
import { Contract, type MethodInfo } from './contract.js';

export type AnyHandler = (request: any, ctx: CallContext, send?: StreamSender<any>) => Promise<unknown>;

export interface MountedMethod extends MethodInfo {
  plugin: string;
  handler: AnyHandler;
}

/** Permissions that name no area: checked without resources (auth.proto's options say how). */
const SPECIAL_PERMISSIONS: ReadonlySet<string> = new Set(['public', 'self:read', 'self:write', 'site:admin']);

/** The resources a request names, from the method's `(wanllmdb.auth.v1.resource)`; empty values name none. */
function resourcesNamed(method: MethodInfo, request: unknown): ResourceRef[] {
  const out: ResourceRef[] = [];
  const req = (request ?? {}) as Record<string, unknown>;
  for (const spec of method.resources) {
    const v = req[spec.field];
    for (const id of Array.isArray(v) ? v : [v]) if (typeof id === 'string' && id) out.push({ type: spec.type, id });
  }
  return out;
}

/** What a transport knows about a call before dispatch. */
export interface CallOrigin {
  transport: CallContext['transport'];
  headers: Readonly<Record<string, string | undefined>>;
  requestId?: string;
  /** The peer's IP address ('' in process). */
  address?: string;
  /** Aborted by the transport when the caller goes away. */
  signal?: AbortSignal;
  /**
   * In process only: the caller is already known (a handler calling on behalf
   * of its own caller, or a plugin's service principal), so the call is not
   * authenticated again — but it is authorised and audited like any other.
   * Transports never set it.
   */
  principal?: Principal;
  /** HTTP only: takes what a raw answer's handler sets (CallContext.respond). */
  respond?: (answer: HttpAnswer) => void;
}

/**
 * The dispatcher all transports share: it owns the mounted services, checks
 * that every method declares a permission, authenticates and authorises each
 * call, tracks calls in flight, and drains them on shutdown. gRPC, HTTP and
 * in-process callers all come through `invoke`, so a handler is written once.
 */
export class RpcHost {
  readonly contract: Contract;
  private readonly methods = new Map<string, MountedMethod>();
  private readonly services = new Map<string, string>();
  private readonly inflight = new Set<{ done: Promise<unknown>; abort: AbortController; streaming: boolean }>();
  private draining = false;

  constructor(
    readonly auth: Auth,
    private readonly logger: Logger,
    contract?: Contract,
  ) {
    this.contract = contract ?? new Contract();
  }

  /**
   * Mounts a service. Refused — the server does not start — when the service
   * is not in the contract, a method declares no permission, or a handler is
   * missing.
   */
  mount(plugin: string, serviceFullName: string, handlers: Record<string, unknown>): void {
    if (this.services.has(serviceFullName)) {
      throw Errors.PLUGIN_DUPLICATE(`Service ${serviceFullName} is mounted by both "${this.services.get(serviceFullName)}" and "${plugin}". Mount each service once.`);
    }
    const methods = this.contract.methods(serviceFullName);
    const undeclared = methods.filter((m) => !m.permission);
    if (undeclared.length) {
      throw Errors.RPC_PERMISSION_UNDECLARED(
        `Plugin "${plugin}": ${undeclared.map((m) => m.fullName).join(', ')} declare no permission. Add option (wanllmdb.auth.v1.permission) = "<area>:<verb>" to each method in the .proto.`,
        undeclared.map((m) => ({ field: m.fullName, message: 'no (wanllmdb.auth.v1.permission) option' })),
      );
    }
    // An area permission with no resource named checks only that the caller signed in: the method must say how its handler narrows.
    const unscoped = methods.filter((m) => !SPECIAL_PERMISSIONS.has(m.permission) && !m.resources.length && !m.authorizedInHandler);
    if (unscoped.length) {
      throw Errors.RPC_PERMISSION_UNDECLARED(
        `Plugin "${plugin}": ${unscoped.map((m) => m.fullName).join(', ')} name no resource. Add option (wanllmdb.auth.v1.resource) = "<type>:<field>", or, when the handler narrows what it returns (ctx.access) or authorises itself (ctx.authorize), option (wanllmdb.auth.v1.authorized_in_handler) = "<how>".`,
        unscoped.map((m) => ({ field: m.fullName, message: 'no (wanllmdb.auth.v1.resource) or (wanllmdb.auth.v1.authorized_in_handler) option' })),
      );
    }
    const missing = methods.filter((m) => typeof handlers[m.handlerName] !== 'function');
    if (missing.length) {
      throw Errors.RPC_HANDLER_MISSING(
        `Plugin "${plugin}" mounts ${serviceFullName} without handler(s) ${missing.map((m) => m.handlerName).join(', ')}. Implement every method of the service.`,
      );
    }
    const bidi = methods.find((m) => m.requestStream && m.responseStream);
    if (bidi) throw Errors.RPC_HANDLER_MISSING(`${bidi.fullName} is a bidirectional stream, which the RPC host does not serve yet.`);
    this.services.set(serviceFullName, plugin);
    for (const m of methods) {
      const fn = handlers[m.handlerName] as AnyHandler;
      this.methods.set(m.fullName, { ...m, plugin, handler: fn.bind(handlers) });
    }
  }

  /** Every mounted method (transports build their routes from this). */
  mounted(): MountedMethod[] {
    return [...this.methods.values()];
  }

  serviceNames(): string[] {
    return [...this.services.keys()];
  }

  method(fullName: string): MountedMethod | undefined {
    return this.methods.get(fullName);
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /**
   * Runs one call: authenticate, authorise against the method's declared
   * permission, then the handler. `request` is already in object form (or
   * the UndecodableRequest a transport made of bytes it could not decode).
   * Errors come out as WldbErrors safe to show the caller.
   */
  async invoke(method: MountedMethod, request: unknown, origin: CallOrigin, send?: StreamSender<unknown>): Promise<unknown> {
    // A plugin's in-process call (principal given) may be part of work finishing during the drain.
    if (this.draining && !(origin.transport === 'local' && origin.principal)) throw Errors.SHUTTING_DOWN('The server is shutting down and takes no new calls. Retry against another replica or after it restarts.');
    if (request instanceof UndecodableRequest) throw request.error;
    // gRPC and HTTP requests were checked as they were decoded; an in-process request is an object nothing has walked yet.
    if (origin.transport === 'local' && !method.requestStream) {
      checkRequestObject(method.requestType, request);
      // The handler sees what it would over gRPC or HTTP: absent fields hold their defaults.
      request = withDefaults(method.requestType, (request ?? {}) as Record<string, unknown>);
    }
    const abort = new AbortController();
    const onCallerGone = () => abort.abort(origin.signal?.reason);
    origin.signal?.addEventListener('abort', onCallerGone, { once: true });
    const requestId = origin.requestId ?? randomUUID();
    const address = origin.address ?? '';
    let principal: Principal | undefined;
    let named: ResourceRef[] = [];
    const resolved: ResolvedResource[] = [];
    const run = async () => {
      principal =
        origin.transport === 'local' && origin.principal
          ? origin.principal
          : await this.auth.authenticate({ headers: origin.headers, address, permission: method.permission, method: method.fullName, ingest: method.ingest, streaming: method.requestStream || method.responseStream });
      named = method.requestStream ? [] : resourcesNamed(method, request);
      await this.auth.authorize({ principal, permission: method.permission, method: method.fullName, resources: named, resolved });
      // The contract's closed sets (ADR 0020), checked for callers who may call: a refusal is audited like the handler's.
      if (!method.requestStream) checkClosedSets(method.requestType, request);
      const who = principal;
      const ctx: CallContext = {
        transport: origin.transport,
        method: method.fullName,
        permission: method.permission,
        principal: who,
        resources: resolved,
        address,
        requestId,
        signal: abort.signal,
        logger: this.logger,
        header: (name) => origin.headers[name.toLowerCase()],
        authorize: async (permission, resources) => {
          named.push(...resources);
          return this.auth.authorize({ principal: who, permission, method: method.fullName, resources, resolved });
        },
        access: (permission) => this.auth.access(who, permission ?? method.permission),
        respond: (answer) => origin.respond?.(answer),
      };
      return method.handler(request, ctx, send);
    };
    const done = run();
    const entry = { done, abort, streaming: method.responseStream };
    this.inflight.add(entry);
    let result = 'ok';
    try {
      return await done;
    } catch (err) {
      const e = this.publicError(err, method.fullName, requestId);
      result = e.code;
      throw e;
    } finally {
      // Run ingest that succeeded is the run logging, thousands of times an hour: its run's creation and finish are
      // recorded, its batches are not. A refused or failed one is, like any other call.
      if (this.auth.audit && !isReadPermission(method.permission) && !(method.ingest && result === 'ok')) {
        const record: AuditRecord = {
          at: Date.now(),
          principal: principal ?? ANONYMOUS_PRINCIPAL,
          method: method.fullName,
          permission: method.permission,
          targets: (resolved.length ? resolved : named).map((r) => `${r.type}:${r.id}`),
          orgId: resolved.find((r) => r.orgId)?.orgId ?? '',
          address,
          transport: origin.transport,
          result,
          requestId,
        };
        // The call's outcome stands even if the audit write fails; the failure is logged.
        await this.auth.audit(record).catch((e) => this.logger.error({ err: e, method: method.fullName, requestId }, 'audit record was not written'));
      }
      this.inflight.delete(entry);
      origin.signal?.removeEventListener('abort', onCallerGone);
    }
  }

  /** Logs what the caller must not see (a bug, a database's SQL and words), returns what it may. */
  publicError(err: unknown, where: string, requestId: string): WldbError {
    const e = toWldbError(err);
    const storage = storageErrorForCaller(e, requestId);
    if (storage) this.logger.error({ err, method: where, requestId }, 'database error in a call');
    else if (e.code === Errors.INTERNAL.code) this.logger.error({ err, method: where, requestId }, 'unexpected error in a call');
    return storage ?? e;
  }

  /**
   * Stops taking calls, tells streams to end (their signal aborts), and waits
   * for calls in flight, at most `timeoutMs`. Resolves to the number of calls
   * that were still running when it gave up.
   */
  async drain(timeoutMs: number): Promise<number> {
    this.draining = true;
    // Unary calls finish their work; streams never end by themselves, so they are told to stop.
    for (const c of this.inflight) if (c.streaming) c.abort.abort(Errors.SHUTTING_DOWN('The server is shutting down.'));
    const all = Promise.allSettled([...this.inflight].map((c) => c.done));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs)));
    const outcome = await Promise.race([all, timedOut]);
    clearTimeout(timer);
    return outcome === 'timeout' ? this.inflight.size : 0;
  }
}
