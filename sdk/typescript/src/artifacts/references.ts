import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, mkdir, readdir, rename, rm, stat, utimes } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { S3Client } from '@aws-sdk/client-s3';
import type { artifacts } from '@wanllmdb/plugin-artifacts';
import { sdkError } from '../errors.js';

type FileEntry = artifacts.v1.FileEntry;
type FileReference = artifacts.v1.FileReference;

/**
 * References (`Artifact.addReference`): entries of a version that name an
 * object kept elsewhere — s3://, file://, http(s):// — recorded (size,
 * ETag, S3 version id, sha256 or modification time) when the artifact is
 * logged, never copied; a download fetches each from its source and checks
 * it against what was recorded.
 */

/** Where S3 references are read (default: the standard AWS environment — AWS_REGION, AWS_ACCESS_KEY_ID, AWS_ENDPOINT_URL_S3 …). */
export interface S3ReferenceOptions {
  /** An S3-compatible server (MinIO, …), e.g. http://127.0.0.1:9000. */
  endpoint?: string;
  region?: string;
  /** Path-style addressing (bucket in the path); default true when an endpoint is set. */
  forcePathStyle?: boolean;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

export interface ReferenceOptions {
  /**
   * The entry's path in the artifact. One object: its path (default: the
   * last segment of the URI). A prefix or folder: the folder its objects go
   * under (default: the artifact's root).
   */
  name?: string;
  /** file:// only: false records size and modification time instead of hashing (fast for large trees; a download then checks those). Default true. */
  checksum?: boolean;
  /** A prefix or folder may expand to at most this many objects (default 10,000); more is an error, not a silent cut. */
  maxObjects?: number;
}

/** A reference as added, resolved into entries when the artifact is logged. */
export interface PendingReference {
  uri: string;
  name?: string;
  checksum: boolean;
  maxObjects: number;
}

export const DEFAULT_MAX_OBJECTS = 10_000;
const SCHEMES = new Set(['s3:', 'file:', 'http:', 'https:']);

/** A reference URI, parsed; a coded VALIDATION error for anything but s3://, file://, http(s)://. */
async function parse(uri: string): Promise<URL> {
  let url: URL | undefined;
  try {
    url = new URL(uri);
  } catch {
    /* below */
  }
  if (!url || !SCHEMES.has(url.protocol)) {
    throw await sdkError('VALIDATION', `Artifact.addReference(): ${JSON.stringify(uri.slice(0, 200))} is not a reference; give s3://bucket/key-or-prefix/, file:///absolute/path or an http(s):// URL.`, [
      { field: 'uri', message: 'must be s3://, file://, http:// or https://' },
    ]);
  }
  try {
    decodeURIComponent(url.pathname); // paths are decoded below: a malformed escape is refused here, with a code
  } catch {
    throw await sdkError('VALIDATION', `Artifact.addReference(): ${JSON.stringify(uri.slice(0, 200))} has a malformed percent-escape in its path; write "%" as %25.`, [{ field: 'uri', message: 'malformed percent-escape' }]);
  }
  if (url.username || url.password) {
    throw await sdkError('VALIDATION', 'Artifact.addReference(): the URI carries a user name or password, which would be stored in the manifest. Give credentials to the client (AWS environment, or a URL the server accepts without them).', [
      { field: 'uri', message: 'no user:password@' },
    ]);
  }
  if (url.protocol === 's3:' && !url.hostname) throw await sdkError('VALIDATION', `Artifact.addReference(): ${uri} names no bucket; use s3://bucket/key.`, [{ field: 'uri', message: 'no bucket' }]);
  return url;
}

/** The last segment of a "/"-path, decoded. */
const lastSegment = (path: string) => decodeURIComponent(path.replace(/\/+$/, '').split('/').pop() ?? '');
const join2 = (prefix: string | undefined, rest: string) => (prefix ? `${prefix.replace(/\/+$/, '')}/${rest}` : rest);

const tooMany = (uri: string, max: number) =>
  sdkError('LIMIT_EXCEEDED', `${uri} holds more than ${max} objects. Reference a narrower prefix, or pass { maxObjects } to addReference() to allow more.`, [
    { field: 'maxObjects', message: `more than ${max} objects` },
  ]);

/** An S3 client for references: the options given, else the standard AWS environment. */
export async function s3Client(o: S3ReferenceOptions = {}): Promise<S3Client> {
  const { S3Client } = await import('@aws-sdk/client-s3');
  const endpoint = o.endpoint ?? process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL;
  return new S3Client({
    region: o.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
    ...(endpoint ? { endpoint } : {}),
    forcePathStyle: o.forcePathStyle ?? !!endpoint,
    ...(o.credentials ? { credentials: o.credentials } : {}),
  });
}

/** Runs `work` over `items`, at most `n` at a time. */
async function pool<T>(items: readonly T[], n: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) await work(items[next++]!);
  }));
}

const entry = (path: string, size: number, ref: Omit<FileReference, 'etag' | 'versionId' | 'sha256' | 'lastModified'> & Partial<FileReference>): FileEntry => ({
  path,
  digest: '',
  size,
  mode: 0,
  chunks: [],
  ref: { etag: '', versionId: '', sha256: '', lastModified: '', ...ref },
});

/** sha256 and byte count of a stream. */
async function hashStream(source: AsyncIterable<Uint8Array>): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of source) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { sha256: hash.digest('hex'), size };
}

const isNotFound = (err: unknown) => {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'NotFound' || e?.name === 'NoSuchKey' || e?.name === 'NoSuchVersion' || e?.$metadata?.httpStatusCode === 404;
};

async function sourceFailed(uri: string, err: unknown): Promise<Error> {
  const e = err as { name?: string; message?: string; code?: string };
  return sdkError('BLOB_STORE_FAILED', `Could not read the reference ${uri}: ${e?.name && e.name !== 'Error' ? `${e.name}: ` : ''}${e?.message ?? String(err)}. Check the address, the credentials (AWS environment or the client's s3 option) and that the source is up.`, [
    { field: 'uri', message: 'source unreachable' },
  ], err);
}

// ---------------------------------------------------------------- resolving (at log time)

/** The manifest entries of every reference of an artifact: S3 listed and looked up, files hashed (or stat'ed), URLs asked. */
export async function resolveReferences(refs: readonly PendingReference[], o: { s3?: S3ReferenceOptions; concurrency?: number } = {}): Promise<FileEntry[]> {
  const out: FileEntry[] = [];
  let s3: S3Client | undefined;
  try {
    for (const r of refs) {
      const url = await parse(r.uri);
      if (url.protocol === 's3:') out.push(...(await resolveS3(url, r, (s3 ??= await s3Client(o.s3)), o.concurrency ?? 8)));
      else if (url.protocol === 'file:') out.push(...(await resolveFile(url, r, o.concurrency ?? 4)));
      else out.push(await resolveHttp(url, r));
    }
  } finally {
    s3?.destroy();
  }
  return out;
}

async function resolveS3(url: URL, r: PendingReference, client: S3Client, concurrency: number): Promise<FileEntry[]> {
  const { HeadObjectCommand, ListObjectsV2Command } = await import('@aws-sdk/client-s3');
  const bucket = url.hostname;
  const key = decodeURIComponent(url.pathname.slice(1));
  const head = async (k: string) => {
    const h = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: k }));
    return { etag: h.ETag ?? '', versionId: h.VersionId ?? '', size: Number(h.ContentLength ?? 0), lastModified: h.LastModified?.toISOString() ?? '' };
  };
  const objectUri = (k: string) => `s3://${bucket}/${k.split('/').map(encodeURIComponent).join('/')}`;
  const one = (path: string, k: string, h: Awaited<ReturnType<typeof head>>) =>
    entry(path, h.size, { uri: objectUri(k), checksum: 'etag', etag: h.etag, versionId: h.versionId, lastModified: h.lastModified });

  if (key && !key.endsWith('/')) {
    try {
      return [one(r.name ?? lastSegment(key), key, await head(key))];
    } catch (err) {
      if (!isNotFound(err)) throw await sourceFailed(r.uri, err);
    }
  }
  // A prefix (or a key that is no object: the "folder" under it).
  const prefix = !key || key.endsWith('/') ? key : `${key}/`;
  const keys: string[] = [];
  try {
    let token: string | undefined;
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
      for (const obj of page.Contents ?? []) {
        if (!obj.Key || obj.Key.endsWith('/')) continue; // "folder" markers hold no data
        keys.push(obj.Key);
        if (keys.length > r.maxObjects) throw await tooMany(r.uri, r.maxObjects);
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  } catch (err) {
    if ((err as { code?: string }).code === 'WLDB_ERR_LIMIT_EXCEEDED') throw err;
    throw await sourceFailed(r.uri, err);
  }
  if (!keys.length) throw await sdkError('NOT_FOUND', `The reference ${r.uri} names no object and no prefix with objects in it.`, [{ field: 'uri', message: 'nothing there' }]);
  const out: FileEntry[] = [];
  await pool(keys, concurrency, async (k) => {
    try {
      out.push(one(join2(r.name, k.slice(prefix.length)), k, await head(k))); // head: the version id (a list does not give it)
    } catch (err) {
      throw await sourceFailed(objectUri(k), err);
    }
  });
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

async function resolveFile(url: URL, r: PendingReference, concurrency: number): Promise<FileEntry[]> {
  let root: string;
  try {
    root = fileURLToPath(url);
  } catch {
    throw await sdkError('VALIDATION', `${r.uri} is not a local path; use file:///absolute/path.`, [{ field: 'uri', message: 'not a local file URL' }]);
  }
  const st = await stat(root).catch(() => undefined);
  if (!st) throw await sdkError('NOT_FOUND', `The reference ${r.uri} names nothing: ${root} does not exist.`, [{ field: 'uri', message: 'no such file or folder' }]);
  const describe = async (path: string, file: string): Promise<FileEntry> => {
    const fileUri = pathToFileURL(file).href;
    if (!r.checksum) {
      const s = await stat(file);
      return entry(path, s.size, { uri: fileUri, checksum: 'mtime', lastModified: s.mtime.toISOString() });
    }
    const h = await hashStream(createReadStream(file));
    return entry(path, h.size, { uri: fileUri, checksum: 'sha256', sha256: h.sha256 });
  };
  if (st.isFile()) return [await describe(r.name ?? lastSegment(url.pathname), root)];
  if (!st.isDirectory()) throw await sdkError('VALIDATION', `The reference ${r.uri} is neither a file nor a folder.`, [{ field: 'uri', message: 'not a file' }]);
  const files: string[] = [];
  for (const e of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    files.push(join(e.parentPath, e.name));
    if (files.length > r.maxObjects) throw await tooMany(r.uri, r.maxObjects);
  }
  const out: FileEntry[] = [];
  await pool(files, concurrency, async (f) => {
    out.push(await describe(join2(r.name, relative(root, f).split(sep).join('/')), f));
  });
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** A strong ETag (a weak one, W/"…", promises equivalent content, not equal bytes: such a URL is hashed instead). */
const strongEtag = (h: Headers) => {
  const etag = h.get('etag') ?? '';
  return etag && !etag.startsWith('W/') ? etag : '';
};

async function resolveHttp(url: URL, r: PendingReference): Promise<FileEntry> {
  const path = r.name ?? lastSegment(url.pathname);
  if (!path) throw await sdkError('VALIDATION', `The reference ${r.uri} ends in no file name; pass { name } to addReference() to place it in the artifact.`, [{ field: 'name', message: 'required for this URL' }]);
  let res: Response;
  try {
    res = await fetch(url, { method: 'HEAD', redirect: 'follow' });
  } catch (err) {
    throw await sourceFailed(r.uri, err);
  }
  const length = res.headers.get('content-length');
  const etag = strongEtag(res.headers);
  if (res.ok && etag && length !== null && /^\d+$/.test(length)) {
    return entry(path, Number(length), { uri: url.href, checksum: 'etag', etag, lastModified: res.headers.get('last-modified') ?? '' });
  }
  // No ETag (or no HEAD): fetch the bytes and record their sha256.
  try {
    res = await fetch(url, { redirect: 'follow' });
  } catch (err) {
    throw await sourceFailed(r.uri, err);
  }
  if (!res.ok || !res.body) {
    await res.body?.cancel();
    throw await sdkError(res.status === 404 ? 'NOT_FOUND' : 'BLOB_STORE_FAILED', `The reference ${r.uri} answered HTTP ${res.status}.`, [{ field: 'uri', message: `HTTP ${res.status}` }]);
  }
  const h = await hashStream(Readable.fromWeb(res.body as never));
  return entry(path, h.size, { uri: url.href, checksum: 'sha256', sha256: h.sha256, lastModified: res.headers.get('last-modified') ?? '' });
}

// ---------------------------------------------------------------- fetching (at download time)

/** The coded error of a reference whose object is no longer what the version recorded. */
async function changed(f: FileEntry, how: string[]): Promise<Error> {
  return sdkError(
    'BLOB_DIGEST_MISMATCH',
    `${f.path} is a reference to ${f.ref!.uri}, and its target changed since the version was logged (${how.join('; ')}); nothing was written for it. Restore the object, or log a new version that records it as it is now.`,
    [
      { field: 'path', message: f.path },
      { field: 'ref', message: `changed: ${how.join('; ')}` },
    ],
  );
}

export interface FetchReferenceOptions {
  /** The download cache: a reference verified by sha256 is kept there (and found there) like any body. */
  cacheDir: string;
  s3?: S3ReferenceOptions;
  /** An S3 client to reuse (else one is made for the call). */
  s3Client?: () => Promise<S3Client>;
  moved?: (n: number) => void;
}

/** Counts bytes (and hashes them, when asked) as they pass. */
function meter(moved: ((n: number) => void) | undefined, hash?: ReturnType<typeof createHash>) {
  let bytes = 0;
  const t = new Transform({
    transform(chunk: Buffer, _enc, done) {
      bytes += chunk.length;
      hash?.update(chunk);
      moved?.(chunk.length);
      done(null, chunk);
    },
  });
  return { stream: t, bytes: () => bytes };
}

/**
 * Fetches a reference entry into `into` from its source and checks it
 * against what the version recorded: sha256 (file:// and hashed URLs —
 * then it goes through the cache), ETag and version id (S3, URLs with an
 * ETag) and size, or size and modification time (file:// without hashing).
 */
export async function fetchReference(f: FileEntry, into: string, o: FetchReferenceOptions): Promise<void> {
  const ref = f.ref!;
  const url = await parse(ref.uri);
  if (ref.checksum === 'sha256') {
    if (!/^[0-9a-f]{64}$/.test(ref.sha256)) throw await sdkError('VALIDATION', `The version records ${JSON.stringify(f.path)} with a sha256 that is not one; nothing was written for it.`, [{ field: 'ref.sha256', message: 'not a sha256' }]);
    const cached = join(o.cacheDir, 'sha256', ref.sha256.slice(0, 2), ref.sha256);
    const have = await stat(cached).catch(() => undefined);
    if (have?.size !== f.size) {
      // Fetched, hashed, and kept only when it is the recorded bytes.
      await mkdir(dirname(cached), { recursive: true });
      const tmp = `${cached}.${randomUUID()}.part`;
      try {
        const hash = createHash('sha256');
        const m = meter(o.moved, hash);
        await pipeline(await openSource(url, f, o), m.stream, createWriteStream(tmp));
        const got = hash.digest('hex');
        if (got !== ref.sha256 || m.bytes() !== f.size) {
          const how = [...(m.bytes() !== f.size ? [`size ${f.size} → ${m.bytes()} bytes`] : []), ...(got !== ref.sha256 ? [`sha256 ${ref.sha256.slice(0, 12)}… → ${got.slice(0, 12)}…`] : [])];
          throw await changed(f, how);
        }
        await rename(tmp, cached);
      } finally {
        await rm(tmp, { force: true });
      }
    } else {
      const now = new Date();
      await utimes(cached, now, now);
    }
    await copyFile(cached, into);
    return;
  }
  // Checked against ETag / version id / modification time: written straight to its place, never to the cache (no sha256 vouches for it).
  const tmp = join(dirname(into), `.${randomUUID()}.part`);
  try {
    const m = meter(o.moved);
    await pipeline(await openSource(url, f, o), m.stream, createWriteStream(tmp));
    if (m.bytes() !== f.size) throw await changed(f, [`size ${f.size} → ${m.bytes()} bytes`]);
    await rename(tmp, into);
  } finally {
    await rm(tmp, { force: true });
  }
}

/** The object's bytes, after checking what the source says of it (ETag, version, size, mtime) against the record. */
async function openSource(url: URL, f: FileEntry, o: FetchReferenceOptions): Promise<Readable> {
  const ref = f.ref!;
  if (url.protocol === 'file:') {
    const path = fileURLToPath(url);
    const st = await stat(path).catch(() => undefined);
    if (!st?.isFile()) throw await changed(f, ['the file is gone']);
    if (ref.checksum === 'mtime') {
      const how = [...(st.size !== f.size ? [`size ${f.size} → ${st.size} bytes`] : []), ...(st.mtime.toISOString() !== ref.lastModified ? [`modified ${ref.lastModified} → ${st.mtime.toISOString()}`] : [])];
      if (how.length) throw await changed(f, how);
    }
    return createReadStream(path);
  }
  if (url.protocol === 's3:') {
    const { GetObjectCommand } = await import('@aws-sdk/client-s3');
    const own = o.s3Client ? undefined : await s3Client(o.s3);
    const client = own ?? (await o.s3Client!());
    try {
      let res;
      try {
        res = await client.send(new GetObjectCommand({ Bucket: url.hostname, Key: decodeURIComponent(url.pathname.slice(1)), ...(ref.versionId ? { VersionId: ref.versionId } : {}) }));
      } catch (err) {
        if (isNotFound(err)) throw await changed(f, [ref.versionId ? `version ${ref.versionId} is gone` : 'the object is gone']);
        throw await sourceFailed(ref.uri, err);
      }
      const body = res.Body as Readable;
      const how = [
        ...(Number(res.ContentLength ?? -1) !== f.size ? [`size ${f.size} → ${res.ContentLength ?? '?'} bytes`] : []),
        ...(ref.etag && res.ETag !== ref.etag ? [`etag ${ref.etag} → ${res.ETag ?? 'none'}`] : []),
        ...(ref.versionId && res.VersionId && res.VersionId !== ref.versionId ? [`version ${ref.versionId} → ${res.VersionId}`] : []),
      ];
      if (how.length) {
        body.destroy();
        throw await changed(f, how);
      }
      if (own) body.once('close', () => own.destroy());
      return body;
    } catch (err) {
      own?.destroy();
      throw err;
    }
  }
  let res: Response;
  try {
    res = await fetch(url, { redirect: 'follow' });
  } catch (err) {
    throw await sourceFailed(ref.uri, err);
  }
  if (res.status === 404 || res.status === 410) {
    await res.body?.cancel();
    throw await changed(f, [`the URL answers HTTP ${res.status}`]);
  }
  if (!res.ok || !res.body) {
    await res.body?.cancel();
    throw await sdkError('BLOB_STORE_FAILED', `The reference ${ref.uri} answered HTTP ${res.status}; retry later.`, [{ field: 'uri', message: `HTTP ${res.status}` }]);
  }
  if (ref.checksum === 'etag') {
    const etag = res.headers.get('etag') ?? '';
    const length = res.headers.get('content-length');
    const how = [...(etag !== ref.etag ? [`etag ${ref.etag} → ${etag || 'none'}`] : []), ...(length !== null && Number(length) !== f.size ? [`size ${f.size} → ${length} bytes`] : [])];
    if (how.length) {
      await res.body.cancel();
      throw await changed(f, how);
    }
  }
  return Readable.fromWeb(res.body as never);
}
