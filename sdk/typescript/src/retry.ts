import { RemoteCallError } from './transport/remote-error.js';

/** Codes of server answers worth retrying: the store or server is there but cannot take the call right now. */
const TRANSIENT_CODES = new Set(['WLDB_ERR_DB_UNAVAILABLE', 'WLDB_ERR_SHUTTING_DOWN', 'WLDB_ERR_BUS_UNAVAILABLE', 'WLDB_ERR_BLOB_STORE_FAILED']);
/** gRPC statuses of a call that got no answer from a handler (connection refused or cut, deadline …). */
const TRANSIENT_GRPC = new Set([1, 2, 4, 8, 10, 13, 14]);
const TRANSIENT_FS = new Set(['ENOSPC', 'EIO', 'EAGAIN', 'EBUSY', 'EMFILE', 'ENFILE', 'EDQUOT']);

/** Whether a failure may go away by itself (worth retrying with backoff). */
export function isTransient(err: unknown): boolean {
  if (err instanceof RemoteCallError) return err.fromServer ? err.grpcStatus === 14 || TRANSIENT_CODES.has(err.code) : TRANSIENT_GRPC.has(err.grpcStatus);
  const e = err as { code?: unknown; grpcStatus?: unknown };
  if (typeof e?.code === 'string' && e.code.startsWith('WLDB_ERR_')) return e.grpcStatus === 14 || TRANSIENT_CODES.has(e.code);
  return typeof e?.code === 'string' && TRANSIENT_FS.has(e.code);
}

/** Delay before retry number `attempt` (from 0): 100 ms doubling to 5 s, ±25 % jitter. */
export const backoff = (attempt: number) => Math.min(5_000, 100 * 2 ** attempt) * (0.75 + Math.random() * 0.5);
