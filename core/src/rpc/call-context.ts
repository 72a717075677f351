import type { Logger } from '../kernel/logger.js';
import { randomUUID } from 'node:crypto';
import { FULL_ACCESS, LOCAL_PRINCIPAL, type AccessScope, type Principal, type ResolvedResource, type ResourceRef } from './auth.js';

/** What a handler knows about the call it serves, the same over gRPC and HTTP. */
export interface CallContext {
  readonly transport: 'grpc' | 'http' | 'local';
  /** Full method name, e.g. `wanllmdb.projects.v1.ProjectService/GetProject`. */
  readonly method: string;
  readonly permission: string;
  readonly principal: Principal;
  /** The resources the method's `(wanllmdb.auth.v1.resource)` named, as authorisation resolved them. */
  readonly resources: readonly ResolvedResource[];
  /** The caller's IP address ('' in process). */
  readonly address: string;
  readonly requestId: string;
  /** Aborted when the caller goes away or the server drains (end streams promptly). */
  readonly signal: AbortSignal;
  readonly logger: Logger;
  /** A request header / metadata value (lower-case name). */
  header(name: string): string | undefined;
  /**
   * Checks a permission on resources the handler only learns while it runs
   * (the run of a client stream's first message). Throws as the host would.
   */
  authorize(permission: string, resources: ResourceRef[]): Promise<ResolvedResource[]>;
  /** What the caller may see, for handlers that list: narrow the query to it. */
  access(permission?: string): Promise<AccessScope>;
  /**
   * The status and headers of a raw answer (google.api.HttpBody) served over
   * HTTP — a 206 for a byte range, a 302 to a presigned link — set before its
   * first message. Over gRPC and in process it does nothing: check
   * `transport` before answering in a way only HTTP can carry.
   */
  respond(answer: HttpAnswer): void;
}

/** What a handler may set on a raw HTTP answer. */
export interface HttpAnswer {
  status?: number;
  headers?: Record<string, string>;
}

/**
 * A context that allows everything, as the local user, for tools and tests
 * that call handlers directly (benchmarks). Plugin code calls other
 * services through `coreServices.rpc` instead, as its caller (ADR 0017).
 */
export function localCallContext(method: string, logger: Logger, principal: Principal = LOCAL_PRINCIPAL): CallContext {
  return {
    transport: 'local',
    method,
    permission: '',
    principal,
    resources: [],
    address: '',
    requestId: randomUUID(),
    signal: new AbortController().signal,
    logger,
    header: () => undefined,
    authorize: async (_permission, resources) => resources.map((r) => ({ type: r.type, id: r.id })),
    access: async () => FULL_ACCESS,
    respond: () => {},
  };
}
