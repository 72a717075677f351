import { Errors, type Problems } from '@wanllmdb/core';
import type { artifacts } from './gen/index.js';
import { DIGEST } from './manifest.js';

/**
 * References: manifest entries that name an object kept elsewhere (S3, a
 * local path, a web server) instead of a body the server stores. The
 * server records what the client saw (size, ETag, S3 version id, sha256,
 * modification time) and never reads, uploads or collects the object.
 */
export interface ManifestRef {
  uri: string;
  checksum: 'sha256' | 'etag' | 'mtime';
  etag: string;
  versionId: string;
  sha256: string;
  lastModified: string;
}

/** The schemes a reference may use. */
export const REFERENCE_SCHEMES = ['s3:', 'file:', 'http:', 'https:'] as const;
const MAX_URI = 4096;
const MAX_FIELD = 1024;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Checks a manifest entry's `ref` (every problem at once, under `at.ref…`); the entry's own fields are checked by the caller. */
export function checkReference(ref: artifacts.v1.FileReference, at: string, problems: Problems): ManifestRef {
  const uri = String(ref.uri ?? '');
  const field = `${at}.ref.uri`;
  if (!uri) problems.add(field, 'is required: the s3://, file://, http:// or https:// address of the referenced object');
  else if (uri.length > MAX_URI) problems.add(field, `is longer than ${MAX_URI} characters`);
  else if (CONTROL.test(uri)) problems.add(field, 'must not hold control characters');
  else {
    let url: URL | undefined;
    try {
      url = new URL(uri);
    } catch {
      problems.add(field, 'is not a URI: give s3://bucket/key, file:///absolute/path, or an http(s):// URL');
    }
    if (url) {
      if (!(REFERENCE_SCHEMES as readonly string[]).includes(url.protocol)) {
        problems.add(field, `uses the scheme "${url.protocol.slice(0, -1).slice(0, 20)}"; a reference is s3://, file://, http:// or https://`);
      } else if (url.username || url.password) {
        problems.add(field, 'must not carry a user name or password (they would be stored in the manifest); give credentials to the client instead');
      } else if (url.protocol === 's3:' && (!url.hostname || url.pathname.length <= 1 || url.pathname.endsWith('/'))) {
        problems.add(field, 'must name one object, s3://bucket/key (a prefix is expanded by the client into one entry per object)');
      } else if (url.protocol === 'file:' && ((url.hostname && url.hostname !== 'localhost') || url.pathname.endsWith('/'))) {
        problems.add(field, 'must name one file, file:///absolute/path (a folder is expanded by the client into one entry per file)');
      } else if ((url.protocol === 'http:' || url.protocol === 'https:') && !url.hostname) {
        problems.add(field, 'must name a host');
      }
    }
  }
  const checksum = String(ref.checksum ?? '') as ManifestRef['checksum'];
  const etag = String(ref.etag ?? '');
  const versionId = String(ref.versionId ?? '');
  const sha256 = String(ref.sha256 ?? '').toLowerCase();
  const lastModified = String(ref.lastModified ?? '');
  for (const [name, value] of [
    ['etag', etag],
    ['versionId', versionId],
    ['lastModified', lastModified],
  ] as const) {
    if (value.length > MAX_FIELD) problems.add(`${at}.ref.${name}`, `is longer than ${MAX_FIELD} characters`);
    else if (CONTROL.test(value)) problems.add(`${at}.ref.${name}`, 'must not hold control characters');
  }
  if (sha256 && !DIGEST.test(sha256)) problems.add(`${at}.ref.sha256`, 'must be the sha256 of the object, 64 hex digits');
  if (!checksum) problems.add(`${at}.ref.checksum`, 'is required: "sha256", "etag" or "mtime", how a download checks the object');
  else if (checksum === 'sha256' && !sha256) problems.add(`${at}.ref.sha256`, 'is required with checksum "sha256"');
  else if (checksum === 'etag' && !etag && !versionId) problems.add(`${at}.ref.etag`, 'is required with checksum "etag"');
  else if (checksum === 'mtime' && !lastModified) problems.add(`${at}.ref.lastModified`, 'is required with checksum "mtime"');
  // Only what a download can check for that kind of source.
  const scheme = uri.slice(0, Math.max(uri.indexOf(':'), 0)).toLowerCase();
  if (checksum === 'mtime' && scheme !== 'file') problems.add(`${at}.ref.checksum`, '"mtime" checks only file:// references; use "sha256" or "etag"');
  if (versionId && scheme !== 's3') problems.add(`${at}.ref.versionId`, 'names an S3 object version; only s3:// references have one');
  return { uri, checksum, etag, versionId, sha256, lastModified };
}

/** A reference as stored in a TEXT column ('' for a file with a body) and hashed into the manifest: fixed field order. */
export const encodeRef = (ref: ManifestRef | undefined): string =>
  ref ? JSON.stringify([ref.uri, ref.checksum, ref.etag, ref.versionId, ref.sha256, ref.lastModified]) : '';

export function decodeRef(text: string | null | undefined): ManifestRef | undefined {
  if (!text) return undefined;
  const [uri, checksum, etag, versionId, sha256, lastModified] = JSON.parse(text) as string[];
  return { uri: uri!, checksum: checksum as ManifestRef['checksum'], etag: etag!, versionId: versionId!, sha256: sha256!, lastModified: lastModified! };
}

/** DownloadFile on a reference: the server holds no bytes of it; the caller fetches the object from its URI (the SDK and CLI do, and verify it). */
export const referenceNotStored = (artifactName: string, version: string, path: string, uri: string) =>
  Errors.BLOB_NOT_FOUND(
    `${JSON.stringify(path.slice(0, 200))} of ${artifactName} ${version} is a reference to ${uri.slice(0, 1024)}; its bytes are not stored on this server. Fetch them from that address (the SDK's download and \`wanllmdb artifact get\` do, and check them against the version's manifest).`,
    [
      { field: 'path', message: 'a reference, not a stored file' },
      { field: 'ref.uri', message: uri.slice(0, 1024) },
    ],
  );
