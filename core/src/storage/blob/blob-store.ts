import { Errors } from '../../errors.js';
import type { Readable } from 'node:stream';

/**
 * BlobStore: content-addressed objects. An object's key is the lowercase hex
 * sha256 of its bytes (64 chars). Writes stream (never a whole file in
 * memory) and are atomic: a reader never sees a partial object, even after
 * a crash mid-write.
 */
export interface BlobInfo {
  digest: string;
  size: number;
}

export type BlobSource = Readable | AsyncIterable<Uint8Array> | Uint8Array | string;

export interface ByteRange {
  /** First byte, inclusive. */
  start: number;
  /** Last byte, inclusive (as in HTTP Range). Omitted: to the end. */
  end?: number;
}

export interface BlobStore {
  readonly kind: 'file' | 's3';
  /**
   * Streams `source` in, hashing as it goes. If `expectedDigest` is given and
   * differs, nothing is stored and WLDB_ERR_BLOB_DIGEST_MISMATCH is thrown.
   */
  put(source: BlobSource, opts?: { expectedDigest?: string }): Promise<BlobInfo>;
  /** Streams the object (or a byte range of it). WLDB_ERR_BLOB_NOT_FOUND if absent. */
  get(digest: string, range?: ByteRange): Promise<Readable>;
  stat(digest: string): Promise<BlobInfo | null>;
  exists(digest: string): Promise<boolean>;
  /** Resolves true if an object was deleted, false if there was none. */
  delete(digest: string): Promise<boolean>;
  /** Every object whose digest starts with `prefix` (all when empty), in digest order. */
  list(prefix?: string): AsyncIterable<BlobInfo>;
  /**
   * A store of its own beside this one (same place, objects apart): a
   * plugin whose blobs are collected by rules of its own (artifacts) keeps
   * them out of reach of another plugin's collector. `name` is a
   * kebab-case word; the caller closes the child.
   */
  namespace(name: string): Promise<BlobStore>;
  /**
   * A URL from which a client reads the object directly, valid for
   * `expiresSeconds` (S3: a presigned GET). Absent on stores that cannot
   * hand one out (the folder), undefined for an object with no link of its
   * own: serve the bytes instead.
   */
  link?(digest: string, opts: BlobLinkOptions): Promise<string | undefined>;
  close(): Promise<void>;
}

export interface BlobLinkOptions {
  expiresSeconds: number;
  /** The name a browser saves it under (Content-Disposition). */
  filename?: string;
  /** The Content-Type the link answers with. */
  contentType?: string;
}

/** A namespace name: kebab-case, as plugin ids are. */
export const BLOB_NAMESPACE = /^[a-z][a-z0-9-]{0,62}$/;

/** WLDB_ERR_VALIDATION unless `name` is a namespace name. */
export function assertNamespace(name: string): string {
  if (typeof name !== 'string' || !BLOB_NAMESPACE.test(name)) {
    throw Errors.VALIDATION(`The blob namespace ${JSON.stringify(String(name).slice(0, 80))} is invalid: use a kebab-case word such as "artifacts".`, [{ field: 'namespace', message: 'must be kebab-case' }]);
  }
  return name;
}
