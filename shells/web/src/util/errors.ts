import { ApiError } from '../api/client.js';

/** The message of anything thrown: an Error's (an ApiError's is the server's), else the thing itself as text. */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The words a person sees for a failed call: rate limits say so plainly. */
export function describeError(e: unknown): string {
  if (e instanceof ApiError && e.code === 'WLDB_ERR_RATE_LIMITED') return `Too many attempts. ${e.message}`;
  return errorMessage(e);
}
