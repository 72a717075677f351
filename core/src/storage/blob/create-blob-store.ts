import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Errors, type WldbError } from '../../errors.js';
import type { BlobStore } from './blob-store.js';
import { FsBlobStore } from './fs-blob-store.js';
import type { S3BlobStoreOptions } from './s3-blob-store.js';

const SETTING = 'WANLLMDB_BLOBS';
const ACCEPTED =
  'a directory path, file:///abs/dir, file://relative/dir, or ' +
  's3://bucket[/prefix]?endpoint=http://host:9000&region=us-east-1&forcePathStyle=true' +
  '[&accessKeyId=…&secretAccessKey=…]';
const S3_PARAMS = new Set(['endpoint', 'region', 'forcePathStyle', 'accessKeyId', 'secretAccessKey', 'sessionToken']);
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

export type BlobStoreTarget = { kind: 'file'; root: string } | { kind: 's3'; options: S3BlobStoreOptions };

/** Opens the blob store named by a WANLLMDB_BLOBS value (see parseBlobStoreUrl for the forms). */
export async function createBlobStore(url: string): Promise<BlobStore> {
  const target = parseBlobStoreUrl(url);
  if (target.kind === 'file') return FsBlobStore.open(target.root);
  // The AWS SDK loads only when S3 is configured.
  const { S3BlobStore } = await import('./s3-blob-store.js');
  return S3BlobStore.open(target.options);
}

/**
 * Reads a WANLLMDB_BLOBS value without touching any storage:
 * a plain path, `file:///abs/dir`, `file://relative/dir` (relative to the
 * working directory), or `s3://bucket[/prefix]?endpoint=…&region=…&
 * forcePathStyle=true&accessKeyId=…&secretAccessKey=…`. Without keys in the
 * URL, S3 credentials come from the standard AWS environment variables.
 */
export function parseBlobStoreUrl(url: string): BlobStoreTarget {
  if (typeof url !== 'string' || url.trim() === '') throw invalid(String(url), 'it is empty');
  if (url.startsWith('file://')) return { kind: 'file', root: parseFileUrl(url) };
  if (url.startsWith('s3://')) return { kind: 's3', options: parseS3Url(url) };
  const isWindowsDrive = /^[A-Za-z]:[\\/]/.test(url);
  if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(url) && !isWindowsDrive) throw invalid(url, 'its scheme is not supported');
  return { kind: 'file', root: resolve(url) };
}

function parseFileUrl(url: string): string {
  const rest = url.slice('file://'.length);
  if (rest === '' || /[?#]/.test(rest)) throw invalid(url, 'a file URL needs a directory and nothing after it');
  try {
    return rest.startsWith('/') ? fileURLToPath(url) : resolve(decodeURIComponent(rest));
  } catch (err) {
    throw invalid(url, `it is not a valid file URL (${(err as Error).message})`);
  }
}

function parseS3Url(url: string): S3BlobStoreOptions {
  const match = /^s3:\/\/([^/?#]*)(\/[^?#]*)?(?:\?([^#]*))?$/.exec(url);
  const bucket = match?.[1] ?? '';
  if (!match || !BUCKET.test(bucket)) {
    throw invalid(url, 'the bucket name must be 3–63 lowercase letters, digits, dots or hyphens');
  }
  const prefix = decodeURIComponent(match[2] ?? '').replace(/^\/+|\/+$/g, '');
  const params = new URLSearchParams(match[3] ?? '');
  for (const name of params.keys()) {
    if (!S3_PARAMS.has(name)) throw invalid(url, `the parameter "${name}" is unknown (known: ${[...S3_PARAMS].join(', ')})`);
  }

  const endpoint = params.get('endpoint') ?? undefined;
  if (endpoint !== undefined && !isHttpUrl(endpoint)) throw invalid(url, 'endpoint must be an http:// or https:// URL');

  const pathStyle = params.get('forcePathStyle');
  if (pathStyle !== null && !['true', 'false'].includes(pathStyle)) throw invalid(url, 'forcePathStyle must be true or false');

  const accessKeyId = params.get('accessKeyId');
  const secretAccessKey = params.get('secretAccessKey');
  if ((accessKeyId === null) !== (secretAccessKey === null)) {
    throw invalid(url, 'accessKeyId and secretAccessKey must be given together');
  }
  const sessionToken = params.get('sessionToken') ?? undefined;

  return {
    bucket,
    ...(prefix ? { prefix } : {}),
    endpoint,
    region: params.get('region') ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
    // Path-style is what self-hosted S3-compatible servers expect by default.
    forcePathStyle: pathStyle === null ? endpoint !== undefined : pathStyle === 'true',
    ...(accessKeyId !== null && secretAccessKey !== null
      ? { credentials: { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) } }
      : {}),
  };
}

function isHttpUrl(value: string): boolean {
  try {
    const { protocol } = new URL(value);
    return protocol === 'http:' || protocol === 'https:';
  } catch {
    return false;
  }
}

function invalid(url: string, why: string): WldbError {
  return Errors.CONFIG_INVALID(`${SETTING} "${redact(url)}" is not a blob store location: ${why}. Use ${ACCEPTED}.`, [
    { field: SETTING, message: why },
  ]);
}

/** The URL with secrets masked, safe for messages and logs. */
function redact(url: string): string {
  return url
    .replace(/([?&](?:secretAccessKey|sessionToken)=)[^&#]*/g, '$1***')
    .replace(/(\/\/)[^/@?#]*@/g, '$1***@');
}
