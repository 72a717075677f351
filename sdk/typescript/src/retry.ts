import { RemoteCallError } from './transport/remote-error.js';

/** Codes of server answers worth retrying: the store or server is there but cannot take the call right now. */
const TRANSIENT_CODES = new Set(['WLDB_ERR_DB_UNAVAILABLE', 'WLDB_ERR_SHUTTING_DOWN', 'WLDB_ERR_BUS_UNAVAILABLE', 'WLDB_ERR_BLOB_STORE_FAILED']);
/** gRPC statuses of a call that got no answer from a handler (connection refused or cut, deadline …). */
const TRANSIENT_GRPC = new Set([1, 2, 4, 8, 10, 13, 14]);
const TRANSIENT_FS = new Set(['ENOSPC', 'EIO', 'EAGAIN', 'EBUSY', 'EMFILE', 'ENFILE', 'EDQUOT']);
const RATE_LIMITED = 'WLDB_ERR_RATE_LIMITED';

/** Whether a failure may go away by itself (worth retrying with backoff). Rate limits are not: see rateLimitDelay. */
export function isTransient(err: unknown): boolean {
  if (err instanceof RemoteCallError) return err.fromServer ? err.grpcStatus === 14 || TRANSIENT_CODES.has(err.code) : TRANSIENT_GRPC.has(err.grpcStatus);
  const e = err as { code?: unknown; grpcStatus?: unknown };
  if (typeof e?.code === 'string' && e.code.startsWith('WLDB_ERR_')) return e.grpcStatus === 14 || TRANSIENT_CODES.has(e.code);
  return typeof e?.code === 'string' && TRANSIENT_FS.has(e.code);
}

/** Delay before retry number `attempt` (from 0): 100 ms doubling to 5 s, ±25 % jitter. */
export const backoff = (attempt: number) => Math.min(5_000, 100 * 2 ** attempt) * (0.75 + Math.random() * 0.5);

/**
 * For a call the server refused with WLDB_ERR_RATE_LIMITED: how long to wait
 * before sending it again (ms); undefined for any other failure. The server
 * names the wait in the gRPC `retry-after` metadata (RemoteCallError) and in
 * the error's `retryAfter` detail (seconds). The call is sent no sooner than
 * asked, and up to 10 % (at most 1 s) later at random, so the runs sharing a
 * key do not all come back in the same instant and spend the new budget at once.
 */
export function rateLimitDelay(err: unknown): number | undefined {
  const e = err as { code?: unknown; retryAfterMs?: unknown; details?: unknown } | undefined;
  if (e?.code !== RATE_LIMITED) return undefined;
  let ms = typeof e.retryAfterMs === 'number' ? e.retryAfterMs : NaN;
  if (!(ms > 0) && Array.isArray(e.details)) {
    const detail = (e.details as { field?: unknown; message?: unknown }[]).find((d) => d?.field === 'retryAfter');
    ms = Number(detail?.message) * 1000;
  }
  if (!(ms > 0)) ms = 1_000;
  return ms + Math.random() * Math.min(1_000, ms * 0.1);
}
