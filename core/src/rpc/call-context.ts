import type { Logger } from '../kernel/logger.js';
import type { Principal } from './auth.js';

/** What a handler knows about the call it serves, the same over gRPC and HTTP. */
export interface CallContext {
  readonly transport: 'grpc' | 'http' | 'local';
  /** Full method name, e.g. `wanllmdb.projects.v1.ProjectService/GetProject`. */
  readonly method: string;
  readonly permission: string;
  readonly principal: Principal;
  readonly requestId: string;
  /** Aborted when the caller goes away or the server drains (end streams promptly). */
  readonly signal: AbortSignal;
  readonly logger: Logger;
  /** A request header / metadata value (lower-case name). */
  header(name: string): string | undefined;
}
