/** A failed call, as the worker's retry policy sees it. */
export class RemoteCallError extends Error {
  override readonly name = 'RemoteCallError';
  constructor(
    message: string,
    /** The server's WLDB_ERR code, or '' when the call failed in transport (no answer). */
    readonly code: string,
    readonly grpcStatus: number,
    readonly details: { field?: string; message: string }[],
    /** A rate-limited refusal: how long the server asked the caller to wait (its `retry-after` metadata), in ms. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
  get fromServer(): boolean {
    return this.code !== '';
  }
}
