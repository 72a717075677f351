/**
 * Errors the SDK hands to users are WldbErrors from the core catalogue
 * (`Errors` of @wanllmdb/core). The main thread never imports @wanllmdb/core
 * eagerly — it weighs ~50 MB and 1.5 s to load, and only the embedded sink
 * (in its worker) needs the kernel — so errors are made on the (async) paths
 * that fail, through a lazy import. Synchronous calls on the hot path
 * (`log()`, `summary.set()`) warn instead of throwing.
 */
import type { ErrorDetail, WldbError } from '@wanllmdb/core';
import type { ErrorPayload } from './protocol.js';

type Core = typeof import('@wanllmdb/core');
let core: Promise<Core> | undefined;
const loadCore = (): Promise<Core> => (core ??= import('@wanllmdb/core'));

export type ErrorName = keyof Core['Errors'];

/** Makes a catalogued error (loads the catalogue on first use). */
export async function sdkError(name: ErrorName, message: string, details: ErrorDetail[] = [], cause?: unknown): Promise<WldbError> {
  const { Errors } = await loadCore();
  return Errors[name](message, details, cause);
}

/** Rebuilds an error that crossed from the worker (or a server) as the catalogued WldbError. */
export async function fromPayload(p: ErrorPayload): Promise<WldbError> {
  const { Errors, WldbError: ErrorClass } = await loadCore();
  const factory = Object.values(Errors).find((f) => f.code === p.code);
  if (factory) return factory(p.message, p.details);
  return new ErrorClass(p.code, p.message, p.grpcStatus as never, p.httpStatus, p.details);
}

/** An error in the shape that crosses threads (works on WldbErrors, gRPC errors and anything else). */
export function toPayload(err: unknown): ErrorPayload {
  const e = err as { code?: unknown; message?: unknown; grpcStatus?: unknown; httpStatus?: unknown; details?: unknown; metadata?: unknown };
  if (e && typeof e.code === 'string' && typeof e.grpcStatus === 'number') {
    return {
      code: e.code,
      message: String(e.message),
      grpcStatus: e.grpcStatus,
      httpStatus: typeof e.httpStatus === 'number' ? e.httpStatus : 500,
      details: Array.isArray(e.details) ? (e.details as ErrorDetail[]) : [],
    };
  }
  return {
    code: 'WLDB_ERR_INTERNAL',
    message: err instanceof Error ? err.message : String(err),
    grpcStatus: 13,
    httpStatus: 500,
    details: [],
  };
}
