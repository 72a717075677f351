/**
 * The one catalogue of errors a user can meet. Every error that crosses a
 * package line or the API is a WldbError made here: it has a stable
 * `WLDB_ERR_…` code, a gRPC status, an HTTP status, and a message that says
 * what happened and what to do. Add new codes here, nowhere else.
 */

/** gRPC status codes (numerically identical to @grpc/grpc-js `status`). */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;
export type GrpcStatusCode = (typeof GrpcStatus)[keyof typeof GrpcStatus];

const HTTP_BY_GRPC: Record<GrpcStatusCode, number> = {
  0: 200, 1: 499, 2: 500, 3: 400, 4: 504, 5: 404, 6: 409, 7: 403,
  8: 429, 9: 412, 10: 409, 11: 400, 12: 501, 13: 500, 14: 503, 15: 500, 16: 401,
};

export interface ErrorDetail {
  /** The field or setting the detail is about, e.g. `name` or `WANLLMDB_DB`. */
  field?: string;
  message: string;
}

export interface ErrorJson {
  code: string;
  message: string;
  details: ErrorDetail[];
}

export class WldbError extends Error {
  override readonly name = 'WldbError';
  constructor(
    readonly code: string,
    message: string,
    readonly grpcStatus: GrpcStatusCode,
    readonly httpStatus: number,
    readonly details: ErrorDetail[] = [],
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  toJSON(): ErrorJson {
    return { code: this.code, message: this.message, details: this.details };
  }
}

export interface ErrorFactory {
  (message: string, details?: ErrorDetail[], cause?: unknown): WldbError;
  readonly code: string;
  /** True when `err` was made by this factory. */
  is(err: unknown): err is WldbError;
}

function define(code: string, grpcStatus: GrpcStatusCode, httpStatus = HTTP_BY_GRPC[grpcStatus]): ErrorFactory {
  const make = (message: string, details: ErrorDetail[] = [], cause?: unknown) =>
    new WldbError(code, message, grpcStatus, httpStatus, details, cause === undefined ? undefined : { cause });
  return Object.assign(make, {
    code,
    is: (err: unknown): err is WldbError => err instanceof WldbError && err.code === code,
  });
}

const S = GrpcStatus;

export const Errors = {
  // Configuration and start-up
  CONFIG_INVALID: define('WLDB_ERR_CONFIG_INVALID', S.INVALID_ARGUMENT),
  // Kernel and plugins
  KERNEL_STATE: define('WLDB_ERR_KERNEL_STATE', S.FAILED_PRECONDITION),
  PLUGIN_INVALID: define('WLDB_ERR_PLUGIN_INVALID', S.INVALID_ARGUMENT),
  PLUGIN_DUPLICATE: define('WLDB_ERR_PLUGIN_DUPLICATE', S.ALREADY_EXISTS),
  PLUGIN_MISSING_DEPENDENCY: define('WLDB_ERR_PLUGIN_MISSING_DEPENDENCY', S.FAILED_PRECONDITION),
  PLUGIN_CYCLE: define('WLDB_ERR_PLUGIN_CYCLE', S.FAILED_PRECONDITION),
  PLUGIN_FAILED: define('WLDB_ERR_PLUGIN_FAILED', S.INTERNAL),
  /** An out-of-process plugin's program did not start the way the protocol says (no handshake line, a wrong one, no health). */
  PLUGIN_HANDSHAKE: define('WLDB_ERR_PLUGIN_HANDSHAKE', S.FAILED_PRECONDITION),
  /** An out-of-process plugin is not running (it died and is being restarted, or the server is stopping it). Retryable. */
  PLUGIN_UNAVAILABLE: define('WLDB_ERR_PLUGIN_UNAVAILABLE', S.UNAVAILABLE),
  // Metadata store
  DB_UNAVAILABLE: define('WLDB_ERR_DB_UNAVAILABLE', S.UNAVAILABLE),
  DB_QUERY_FAILED: define('WLDB_ERR_DB_QUERY_FAILED', S.INTERNAL),
  DB_CONSTRAINT_VIOLATION: define('WLDB_ERR_DB_CONSTRAINT_VIOLATION', S.FAILED_PRECONDITION),
  MIGRATION_FAILED: define('WLDB_ERR_MIGRATION_FAILED', S.INTERNAL),
  MIGRATION_INVALID: define('WLDB_ERR_MIGRATION_INVALID', S.INVALID_ARGUMENT),
  // Blob store
  BLOB_NOT_FOUND: define('WLDB_ERR_BLOB_NOT_FOUND', S.NOT_FOUND),
  BLOB_DIGEST_INVALID: define('WLDB_ERR_BLOB_DIGEST_INVALID', S.INVALID_ARGUMENT),
  BLOB_DIGEST_MISMATCH: define('WLDB_ERR_BLOB_DIGEST_MISMATCH', S.DATA_LOSS, 422),
  BLOB_RANGE_INVALID: define('WLDB_ERR_BLOB_RANGE_INVALID', S.OUT_OF_RANGE, 416),
  BLOB_STORE_FAILED: define('WLDB_ERR_BLOB_STORE_FAILED', S.UNAVAILABLE),
  // Event bus and job queue
  BUS_UNAVAILABLE: define('WLDB_ERR_BUS_UNAVAILABLE', S.UNAVAILABLE),
  BUS_SUBJECT_INVALID: define('WLDB_ERR_BUS_SUBJECT_INVALID', S.INVALID_ARGUMENT),
  BUS_PAYLOAD_INVALID: define('WLDB_ERR_BUS_PAYLOAD_INVALID', S.INVALID_ARGUMENT),
  JOB_QUEUE_INVALID: define('WLDB_ERR_JOB_QUEUE_INVALID', S.INVALID_ARGUMENT),
  // RPC host
  RPC_SERVICE_UNKNOWN: define('WLDB_ERR_RPC_SERVICE_UNKNOWN', S.INVALID_ARGUMENT),
  RPC_PERMISSION_UNDECLARED: define('WLDB_ERR_RPC_PERMISSION_UNDECLARED', S.FAILED_PRECONDITION),
  RPC_HANDLER_MISSING: define('WLDB_ERR_RPC_HANDLER_MISSING', S.UNIMPLEMENTED),
  // Requests (what API callers meet)
  VALIDATION: define('WLDB_ERR_VALIDATION', S.INVALID_ARGUMENT),
  MALFORMED_JSON: define('WLDB_ERR_MALFORMED_JSON', S.INVALID_ARGUMENT),
  BODY_TOO_LARGE: define('WLDB_ERR_BODY_TOO_LARGE', S.RESOURCE_EXHAUSTED, 413),
  /** The request line and headers (a long URL, mostly) are over node:http's limit, 16 KiB by default. */
  HEADERS_TOO_LARGE: define('WLDB_ERR_HEADERS_TOO_LARGE', S.RESOURCE_EXHAUSTED, 431),
  /**
   * A configured limit on what is stored (e.g. metric keys per run); the detail's field names the setting.
   * HTTP 422, not 429: retrying the same request never succeeds, so clients must not treat it as "slow down".
   */
  LIMIT_EXCEEDED: define('WLDB_ERR_LIMIT_EXCEEDED', S.RESOURCE_EXHAUSTED, 422),
  UNSUPPORTED_MEDIA_TYPE: define('WLDB_ERR_UNSUPPORTED_MEDIA_TYPE', S.INVALID_ARGUMENT, 415),
  ROUTE_NOT_FOUND: define('WLDB_ERR_ROUTE_NOT_FOUND', S.UNIMPLEMENTED, 404),
  METHOD_NOT_ALLOWED: define('WLDB_ERR_METHOD_NOT_ALLOWED', S.UNIMPLEMENTED, 405),
  INVALID_ID: define('WLDB_ERR_INVALID_ID', S.INVALID_ARGUMENT),
  NOT_FOUND: define('WLDB_ERR_NOT_FOUND', S.NOT_FOUND),
  ALREADY_EXISTS: define('WLDB_ERR_ALREADY_EXISTS', S.ALREADY_EXISTS),
  /** What the request acts on changed while it ran (e.g. a draft edited during its commit); nothing was changed, retrying is safe. */
  CONFLICT: define('WLDB_ERR_CONFLICT', S.ABORTED, 409),
  UNAUTHENTICATED: define('WLDB_ERR_UNAUTHENTICATED', S.UNAUTHENTICATED),
  PERMISSION_DENIED: define('WLDB_ERR_PERMISSION_DENIED', S.PERMISSION_DENIED),
  /** Carries a detail { field: 'retryAfter', message: '<seconds>' }; HTTP adds Retry-After. */
  RATE_LIMITED: define('WLDB_ERR_RATE_LIMITED', S.RESOURCE_EXHAUSTED, 429),
  SHUTTING_DOWN: define('WLDB_ERR_SHUTTING_DOWN', S.UNAVAILABLE),
  /** A request (headers, body or a gRPC message) did not arrive whole within the server's time bound. */
  REQUEST_TIMEOUT: define('WLDB_ERR_REQUEST_TIMEOUT', S.DEADLINE_EXCEEDED, 408),
  /** A connection refused because its address, or the whole server, holds as many as allowed. */
  TOO_MANY_CONNECTIONS: define('WLDB_ERR_TOO_MANY_CONNECTIONS', S.UNAVAILABLE),
  SERVER_UNAVAILABLE: define('WLDB_ERR_SERVER_UNAVAILABLE', S.UNAVAILABLE),
  INTERNAL: define('WLDB_ERR_INTERNAL', S.INTERNAL),
} as const;

/**
 * Turns anything thrown into a WldbError that is safe to show a caller:
 * a WldbError passes through, everything else becomes WLDB_ERR_INTERNAL
 * without its message or stack (those go to the log, not the wire).
 */
export function toWldbError(err: unknown): WldbError {
  if (err instanceof WldbError) return err;
  return Errors.INTERNAL('The server met an unexpected error. It has been logged; retry, and report it if it persists.', [], err);
}

const WIRE_CODE = /^WLDB_ERR_[A-Z0-9_]+$/;

/**
 * A WldbError that another process made (an out-of-process plugin's answer):
 * its code, if it is one of ours in form, with the gRPC status it came with.
 * Undefined when `code` is not a `WLDB_ERR_…` code.
 */
export function errorFromWire(code: string, grpcStatus: number, message: string, details: ErrorDetail[] = []): WldbError | undefined {
  if (!WIRE_CODE.test(code) || !(grpcStatus in HTTP_BY_GRPC) || grpcStatus === 0) return undefined;
  const status = grpcStatus as GrpcStatusCode;
  return new WldbError(code, message, status, HTTP_BY_GRPC[status], details);
}

/** The seconds a RATE_LIMITED error asks the caller to wait ('' when it names none). */
export function retryAfterSeconds(e: WldbError): string {
  const s = e.details.find((d) => d.field === 'retryAfter')?.message ?? '';
  return /^\d+$/.test(s) ? s : '';
}
