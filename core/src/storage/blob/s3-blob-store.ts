import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
  UploadPartCopyCommand,
  type CompletedPart,
  type GetObjectCommandOutput,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { Errors, WldbError } from '../../errors.js';
import { attachmentDisposition } from '../../validation/content-types.js';
import { assertNamespace, type BlobInfo, type BlobLinkOptions, type BlobSource, type BlobStore, type ByteRange } from './blob-store.js';
import { assertRangeShape, formatRange, resolveRange } from './byte-range.js';
import { DigestingSource, assertDigest, assertDigestPrefix, blobNotFound, digestMismatch, isDigest } from './digest.js';

export interface S3BlobStoreOptions {
  bucket: string;
  /** Key prefix inside the bucket, so several stores can share one bucket. */
  prefix?: string;
  /** An S3-compatible server, e.g. `http://127.0.0.1:9000`; omitted: AWS S3. */
  endpoint?: string;
  region: string;
  /** `bucket` in the path instead of the host name, as most S3-compatible servers need. */
  forcePathStyle?: boolean;
  /** Omitted: the AWS SDK's default chain (AWS_* environment variables, profiles, instance roles). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Bytes per multipart part (at least 5 MiB); a put holds up to about (queueSize + 3) × partSize in memory. */
  partSize?: number;
  /** Parts uploaded at once by one put. */
  queueSize?: number;
  /** Keys per ListObjectsV2 page. */
  listPageSize?: number;
}

const MIN_PART_SIZE = 5 * 1024 * 1024;
/** The largest object a single CopyObject may copy; larger ones are copied in parts. */
const MAX_COPY_OBJECT_SIZE = 5 * 1024 ** 3;
const COPY_PART_SIZE = 512 * 1024 * 1024;
const CONNECT_TIMEOUT_MS = 5_000;

/**
 * BlobStore on an S3 bucket: finished objects at `<prefix>sha256/<digest>`.
 * The digest is known only after the bytes have streamed, so a put uploads
 * to `<prefix>tmp/<uuid>` while hashing, then copies server-side to the
 * digest key. Each S3 write is atomic, so readers never see a partial
 * object; a crash can leave only tmp/ objects or unfinished multipart
 * uploads, which list() never shows (expire them with a bucket lifecycle rule).
 */
export class S3BlobStore implements BlobStore {
  readonly kind = 's3' as const;
  readonly #client: S3Client;
  readonly #bucket: string;
  readonly #objectsPrefix: string;
  readonly #tmpPrefix: string;
  readonly #where: string;
  readonly #partSize: number;
  readonly #queueSize: number;
  readonly #listPageSize: number;
  readonly #options: S3BlobStoreOptions;

  private constructor(options: S3BlobStoreOptions) {
    this.#options = options;
    const root = options.prefix ? `${options.prefix.replace(/^\/+|\/+$/g, '')}/` : '';
    this.#bucket = options.bucket;
    this.#objectsPrefix = `${root}sha256/`;
    this.#tmpPrefix = `${root}tmp/`;
    this.#where = options.endpoint
      ? `bucket "${options.bucket}" at ${safeOrigin(options.endpoint)}`
      : `bucket "${options.bucket}" (AWS S3, ${options.region})`;
    this.#partSize = Math.max(options.partSize ?? MIN_PART_SIZE, MIN_PART_SIZE);
    this.#queueSize = options.queueSize ?? 2;
    this.#listPageSize = options.listPageSize ?? 1000;
    this.#client = new S3Client({
      region: options.region,
      endpoint: options.endpoint,
      forcePathStyle: options.forcePathStyle ?? false,
      credentials: options.credentials,
      followRegionRedirects: true,
      requestHandler: { connectionTimeout: CONNECT_TIMEOUT_MS },
      // S3-compatible servers often reject the SDK's default aws-chunked
      // checksum trailers; every object is verified by its sha256 anyway.
      ...(options.endpoint ? { requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' } : {}),
    });
  }

  /** Connects, creating the bucket if it does not exist; fails fast if S3 cannot be reached. */
  static async open(options: S3BlobStoreOptions): Promise<S3BlobStore> {
    const store = new S3BlobStore(options);
    try {
      await store.#ensureBucket();
    } catch (err) {
      store.#client.destroy();
      throw err;
    }
    return store;
  }

  async put(source: BlobSource, opts: { expectedDigest?: string } = {}): Promise<BlobInfo> {
    const expected = opts.expectedDigest === undefined ? undefined : assertDigest(opts.expectedDigest, 'expectedDigest');
    const digesting = new DigestingSource(source);
    const tmpKey = `${this.#tmpPrefix}${randomUUID()}`;
    try {
      await new Upload({
        client: this.#client,
        params: { Bucket: this.#bucket, Key: tmpKey, Body: Readable.from(digesting, { objectMode: false }), ContentType: 'application/octet-stream' },
        partSize: this.#partSize,
        queueSize: this.#queueSize,
      }).done();
      const info = digesting.result();
      if (expected !== undefined && info.digest !== expected) throw digestMismatch(expected, info.digest);
      const key = this.#keyOf(info.digest);
      if ((await this.#headSize(key)) === null) await this.#copy(tmpKey, key, info.size);
      return info;
    } catch (err) {
      if (digesting.sourceError !== undefined) throw digesting.sourceError;
      throw this.#failed('store a blob', err);
    } finally {
      await this.#deleteTemp(tmpKey);
    }
  }

  async get(digest: string, range?: ByteRange): Promise<Readable> {
    assertDigest(digest);
    if (range) assertRangeShape(range);
    let out: GetObjectCommandOutput;
    try {
      out = await this.#client.send(
        new GetObjectCommand({ Bucket: this.#bucket, Key: this.#keyOf(digest), Range: range && `bytes=${formatRange(range)}` }),
      );
    } catch (err) {
      if (isNoSuchKey(err)) throw blobNotFound(digest);
      if (range && errorName(err) === 'InvalidRange') {
        throw Errors.BLOB_RANGE_INVALID(
          `Byte range ${formatRange(range)} starts past the end of blob ${digest}; stat the blob for its size and ask for start < size.`,
          [{ field: 'range', message: 'start is past the end' }],
        );
      }
      throw this.#failed('read a blob', err);
    }
    if (!(out.Body instanceof Readable)) throw this.#failed('read a blob', new Error('the response has no readable body'));
    if (!range) return out.Body;
    try {
      return this.#cutToRange(out.Body, out, range, digest);
    } catch (err) {
      out.Body.destroy();
      throw this.#failed('read a blob', err);
    }
  }

  /**
   * A presigned GET of the object, valid `expiresSeconds`: the caller reads
   * straight from S3. Signing is local (no request); a missing object is
   * the link's 404, so check first when it matters.
   */
  async link(digest: string, opts: BlobLinkOptions): Promise<string> {
    assertDigest(digest);
    const disposition = opts.filename === undefined ? undefined : attachmentDisposition(opts.filename);
    try {
      return await getSignedUrl(
        this.#client,
        new GetObjectCommand({ Bucket: this.#bucket, Key: this.#keyOf(digest), ResponseContentType: opts.contentType, ResponseContentDisposition: disposition }),
        { expiresIn: opts.expiresSeconds },
      );
    } catch (err) {
      throw this.#failed('sign a link to a blob', err);
    }
  }

  async stat(digest: string): Promise<BlobInfo | null> {
    assertDigest(digest);
    try {
      const size = await this.#headSize(this.#keyOf(digest));
      return size === null ? null : { digest, size };
    } catch (err) {
      throw this.#failed('stat a blob', err);
    }
  }

  async exists(digest: string): Promise<boolean> {
    return (await this.stat(digest)) !== null;
  }

  async delete(digest: string): Promise<boolean> {
    // S3 deletes are idempotent and do not say whether anything was there,
    // so ask first; a concurrent delete may make both callers see true.
    if (!(await this.exists(digest))) return false;
    try {
      await this.#client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: this.#keyOf(digest) }));
      return true;
    } catch (err) {
      throw this.#failed('delete a blob', err);
    }
  }

  async *list(prefix = ''): AsyncGenerator<BlobInfo> {
    assertDigestPrefix(prefix);
    let token: string | undefined;
    do {
      let page;
      try {
        page = await this.#client.send(
          new ListObjectsV2Command({
            Bucket: this.#bucket,
            Prefix: this.#objectsPrefix + prefix,
            ContinuationToken: token,
            MaxKeys: this.#listPageSize,
          }),
        );
      } catch (err) {
        throw this.#failed('list blobs', err);
      }
      // S3 lists keys in byte order, which is digest order under one prefix.
      for (const object of page.Contents ?? []) {
        const digest = object.Key?.slice(this.#objectsPrefix.length);
        if (isDigest(digest)) yield { digest, size: object.Size ?? 0 };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  /** The same bucket under `<prefix>ns/<name>/`; a client of its own, closed with the child. */
  async namespace(name: string): Promise<BlobStore> {
    const root = (this.#options.prefix ?? '').replace(/^\/+|\/+$/g, '');
    return S3BlobStore.open({ ...this.#options, prefix: `${root ? `${root}/` : ''}ns/${assertNamespace(name)}` });
  }

  async close(): Promise<void> {
    this.#client.destroy();
  }

  #keyOf(digest: string): string {
    return this.#objectsPrefix + digest;
  }

  async #ensureBucket(): Promise<void> {
    try {
      await this.#client.send(new HeadBucketCommand({ Bucket: this.#bucket }));
      return;
    } catch (err) {
      if (httpStatus(err) === 403) {
        throw Errors.BLOB_STORE_FAILED(
          `S3 denied access to ${this.#where}; check the credentials (accessKeyId/secretAccessKey in WANLLMDB_BLOBS or AWS_* variables) and the bucket's policy.`,
          [{ field: 'WANLLMDB_BLOBS', message: 'access denied' }],
          err,
        );
      }
      if (httpStatus(err) !== 404) {
        throw Errors.BLOB_STORE_FAILED(
          `Cannot reach S3 for ${this.#where}: ${reasonOf(err)}. Check the endpoint and region in WANLLMDB_BLOBS and that the server is running.`,
          [{ field: 'WANLLMDB_BLOBS', message: 'S3 unreachable' }],
          err,
        );
      }
    }
    try {
      await this.#client.send(new CreateBucketCommand({ Bucket: this.#bucket }));
    } catch (err) {
      // Another process may have created it since the check.
      const name = errorName(err);
      if (name !== 'BucketAlreadyOwnedByYou' && name !== 'BucketAlreadyExists') throw this.#failed('create the bucket', err);
    }
  }

  /** Size of the object at `key`, or null if there is none. */
  async #headSize(key: string): Promise<number | null> {
    try {
      const head = await this.#client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key: key }));
      return head.ContentLength ?? 0;
    } catch (err) {
      if (isNoSuchKey(err)) return null;
      throw err;
    }
  }

  async #copy(from: string, to: string, size: number): Promise<void> {
    const copySource = `${this.#bucket}/${from.split('/').map(encodeURIComponent).join('/')}`;
    if (size <= MAX_COPY_OBJECT_SIZE) {
      await this.#client.send(new CopyObjectCommand({ Bucket: this.#bucket, Key: to, CopySource: copySource }));
      return;
    }
    const { UploadId } = await this.#client.send(new CreateMultipartUploadCommand({ Bucket: this.#bucket, Key: to }));
    try {
      const parts: CompletedPart[] = [];
      for (let start = 0, partNumber = 1; start < size; start += COPY_PART_SIZE, partNumber++) {
        const end = Math.min(start + COPY_PART_SIZE, size) - 1;
        const { CopyPartResult } = await this.#client.send(
          new UploadPartCopyCommand({
            Bucket: this.#bucket,
            Key: to,
            UploadId,
            PartNumber: partNumber,
            CopySource: copySource,
            CopySourceRange: `bytes=${start}-${end}`,
          }),
        );
        parts.push({ PartNumber: partNumber, ETag: CopyPartResult?.ETag });
      }
      await this.#client.send(
        new CompleteMultipartUploadCommand({ Bucket: this.#bucket, Key: to, UploadId, MultipartUpload: { Parts: parts } }),
      );
    } catch (err) {
      await this.#client.send(new AbortMultipartUploadCommand({ Bucket: this.#bucket, Key: to, UploadId })).catch(() => {});
      throw err;
    }
  }

  /** Best effort: a leftover tmp/ object is invisible to readers and expires by lifecycle rule. */
  async #deleteTemp(key: string): Promise<void> {
    await this.#client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: key })).catch(() => {});
  }

  /**
   * Checks the served range against the object's size (S3 clamps an end past
   * the object instead of refusing it) and trims bytes a server sent beyond
   * the request (some S3-compatible servers ignore `bytes=0-0`).
   */
  #cutToRange(body: Readable, out: GetObjectCommandOutput, range: ByteRange, digest: string): Readable {
    const served = parseContentRange(out.ContentRange) ?? wholeObject(out.ContentLength);
    if (!served) throw new Error('the ranged response carries neither Content-Range nor Content-Length');
    const wanted = resolveRange(range, served.size, digest);
    if (served.start > wanted.start || served.end < wanted.end) {
      throw new Error(`the server sent bytes ${served.start}-${served.end} for a request of ${wanted.start}-${wanted.end}`);
    }
    if (served.start === wanted.start && served.end === wanted.end) return body;
    return Readable.from(slice(body, wanted.start - served.start, wanted.end - wanted.start + 1), { objectMode: false });
  }

  #failed(action: string, err: unknown): WldbError {
    if (err instanceof WldbError) return err;
    return Errors.BLOB_STORE_FAILED(
      `Could not ${action} in S3 ${this.#where}: ${reasonOf(err)}. Check that the S3 server is reachable and the credentials allow it, then retry.`,
      [{ field: 'WANLLMDB_BLOBS', message: reasonOf(err) }],
      err,
    );
  }
}

interface ServedRange {
  start: number;
  end: number;
  size: number;
}

function parseContentRange(header: string | undefined): ServedRange | undefined {
  const match = header && /^bytes (\d+)-(\d+)\/(\d+)$/.exec(header);
  return match ? { start: Number(match[1]), end: Number(match[2]), size: Number(match[3]) } : undefined;
}

function wholeObject(length: number | undefined): ServedRange | undefined {
  return length === undefined ? undefined : { start: 0, end: length - 1, size: length };
}

/** `length` bytes of `source` after skipping `skip`; stops reading (and so closes the source) when done. */
async function* slice(source: AsyncIterable<Buffer>, skip: number, length: number): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    const from = Math.min(skip, chunk.length);
    skip -= from;
    const part = chunk.subarray(from, from + length);
    length -= part.length;
    if (part.length > 0) yield part;
    if (length === 0) return;
  }
}

/** The endpoint without any user:password it might carry. */
function safeOrigin(endpoint: string): string {
  try {
    return new URL(endpoint).origin;
  } catch {
    return '(invalid endpoint)';
  }
}

function errorName(err: unknown): string | undefined {
  return err instanceof Error ? err.name : undefined;
}

function httpStatus(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
}

function isNoSuchKey(err: unknown): boolean {
  // HEAD responses have no body, so a missing key is only a bare 404 "NotFound".
  const name = errorName(err);
  return name === 'NoSuchKey' || name === 'NotFound';
}

function reasonOf(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  // Node reports some connection failures as an AggregateError with no message.
  if (err instanceof AggregateError && err.errors.length > 0) return reasonOf(err.errors[0]);
  return err.message || (err as NodeJS.ErrnoException).code || err.name;
}
