import { createHash } from 'node:crypto';
import { Errors, type WldbError } from '../../errors.js';
import type { BlobInfo, BlobSource } from './blob-store.js';

const DIGEST = /^[0-9a-f]{64}$/;
const DIGEST_PREFIX = /^[0-9a-f]{0,64}$/;

export function isDigest(value: unknown): value is string {
  return typeof value === 'string' && DIGEST.test(value);
}

/** Returns `value` if it is a lowercase hex sha256, else throws WLDB_ERR_BLOB_DIGEST_INVALID. */
export function assertDigest(value: unknown, field = 'digest'): string {
  if (isDigest(value)) return value;
  throw Errors.BLOB_DIGEST_INVALID(
    `${field} ${describe(value)} is not a blob digest; pass the lowercase hex sha256 of the bytes (64 characters 0-9a-f).`,
    [{ field, message: 'must be 64 lowercase hex characters' }],
  );
}

/** Returns `prefix` if it can begin a digest (0–64 lowercase hex characters), else throws. */
export function assertDigestPrefix(prefix: unknown): string {
  if (typeof prefix === 'string' && DIGEST_PREFIX.test(prefix)) return prefix;
  throw Errors.BLOB_DIGEST_INVALID(
    `List prefix ${describe(prefix)} cannot begin a blob digest; pass up to 64 lowercase hex characters (0-9a-f), or nothing to list all.`,
    [{ field: 'prefix', message: 'must be at most 64 lowercase hex characters' }],
  );
}

function describe(value: unknown): string {
  if (typeof value !== 'string') return `of type ${typeof value}`;
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
}

/**
 * One pass over a BlobSource that yields its bytes while hashing and counting
 * them, so an adapter learns the digest from the same stream it writes.
 * `sourceError` tells the caller's own failure (rethrown as is) from the
 * store's (wrapped as WLDB_ERR_BLOB_STORE_FAILED).
 */
export class DigestingSource implements AsyncIterable<Buffer> {
  readonly #source: AsyncIterable<unknown> | Iterable<unknown>;
  readonly #hash = createHash('sha256');
  #size = 0;
  #info: BlobInfo | undefined;
  #started = false;
  sourceError: unknown;

  constructor(source: BlobSource) {
    this.#source = toIterable(source);
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    if (this.#started) throw new Error('DigestingSource can be read only once');
    this.#started = true;
    try {
      for await (const chunk of this.#source) {
        const bytes = toBuffer(chunk);
        this.#hash.update(bytes);
        this.#size += bytes.length;
        yield bytes;
      }
    } catch (err) {
      this.sourceError = err;
      throw err;
    }
    this.#info = { digest: this.#hash.digest('hex'), size: this.#size };
  }

  /** Digest and size of everything read; only once the source is exhausted. */
  result(): BlobInfo {
    if (!this.#info) throw new Error('DigestingSource was not read to the end');
    return this.#info;
  }
}

function toIterable(source: BlobSource): AsyncIterable<unknown> | Iterable<unknown> {
  // A Buffer is itself iterable (of numbers), so whole values are wrapped.
  if (typeof source === 'string' || source instanceof Uint8Array) return [source];
  if (source !== null && typeof source === 'object' && Symbol.asyncIterator in source) return source;
  throw new TypeError('A blob source must be a Readable, an async iterable of Uint8Array, a Uint8Array or a string');
}

function toBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (typeof chunk === 'string') return Buffer.from(chunk, 'utf8');
  throw new TypeError(`A blob source yielded a chunk of type ${typeof chunk}; yield Uint8Array or string chunks`);
}

export function blobNotFound(digest: string): WldbError {
  return Errors.BLOB_NOT_FOUND(`No blob with digest ${digest} is stored; check the digest, or put the blob first.`, [
    { field: 'digest', message: 'not found' },
  ]);
}

export function digestMismatch(expected: string, actual: string): WldbError {
  return Errors.BLOB_DIGEST_MISMATCH(
    `The bytes received hash to sha256 ${actual}, not the expected ${expected}; nothing was stored. Resend the right bytes or fix the expected digest.`,
    [{ field: 'expectedDigest', message: `actual digest is ${actual}` }],
  );
}
