import { spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { Errors, WldbError, type ErrorFactory } from '../../errors.js';
import { blobBackends } from '../../testing/blob-backends.js';
import type { BlobInfo, BlobStore } from './blob-store.js';
import { createBlobStore, parseBlobStoreUrl } from './create-blob-store.js';
import { CHUNKS, CHUNK_SIZE, PAUSE_AFTER_CHUNKS, crashContent } from './fixtures/crash-putter.js';
import { FsBlobStore } from './fs-blob-store.js';
import { S3BlobStore } from './s3-blob-store.js';

const MiB = 1024 * 1024;
const S3RVER_KEYS = 'accessKeyId=S3RVER&secretAccessKey=S3RVER';

const sha256 = (bytes: Uint8Array | string) => createHash('sha256').update(bytes).digest('hex');

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

async function listAll(store: BlobStore, prefix?: string): Promise<BlobInfo[]> {
  const found: BlobInfo[] = [];
  for await (const info of store.list(prefix)) found.push(info);
  return found;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.fail('expected a rejection'),
    (err: unknown) => err,
  );
}

async function expectCode(promise: Promise<unknown>, factory: ErrorFactory): Promise<WldbError> {
  const err = await rejection(promise);
  expect(err).toBeInstanceOf(WldbError);
  expect((err as WldbError).code).toBe(factory.code);
  return err as WldbError;
}

/** Yields `bytes` in two chunks, then fails like a dropped upload. */
async function* failingSource(bytes: number, error: Error): AsyncGenerator<Uint8Array> {
  yield Buffer.alloc(Math.floor(bytes / 2), 1);
  yield Buffer.alloc(Math.ceil(bytes / 2), 2);
  throw error;
}

async function filesUnder(dir: string): Promise<{ path: string; size: number }[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const files = entries.filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name));
  return Promise.all(files.map(async (path) => ({ path, size: (await stat(path)).size })));
}

/** A full GC, so memory samples count live bytes, not garbage awaiting collection. */
function fullGc(): () => void {
  const existing = (globalThis as { gc?: () => void }).gc;
  if (existing) return existing;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

describe.each(blobBackends())('BlobStore contract: $name', (backend) => {
  let store: BlobStore;
  beforeEach(async () => {
    store = await backend.create();
  });
  afterEach(async () => {
    await store.close();
  });

  it('puts from a Buffer, a string, a Readable and an async iterable, keyed by sha256', async () => {
    const text = 'héllo wörld ✓';
    const backing = Buffer.from('xxPARTyy');
    async function* iterable(): AsyncGenerator<Uint8Array> {
      yield new Uint8Array([1, 2, 3]);
      yield new Uint8Array(backing.buffer, backing.byteOffset + 2, 4); // a view into a larger buffer
    }
    const cases: [string, Parameters<BlobStore['put']>[0], Buffer][] = [
      ['buffer', Buffer.from('buffer bytes'), Buffer.from('buffer bytes')],
      ['string', text, Buffer.from(text, 'utf8')],
      ['readable', Readable.from([Buffer.from('read'), Buffer.from('able')]), Buffer.from('readable')],
      ['iterable', iterable(), Buffer.from([1, 2, 3, ...Buffer.from('PART')])],
    ];
    for (const [what, source, bytes] of cases) {
      const info = await store.put(source);
      expect(info, what).toEqual({ digest: sha256(bytes), size: bytes.length });
      expect(await readAll(await store.get(info.digest)), what).toEqual(bytes);
    }
    expect(await listAll(store)).toHaveLength(cases.length);
  });

  it('keeps the objects of a namespace apart from those of its parent, and refuses a bad name', async () => {
    const child = await store.namespace('artifacts');
    try {
      const inChild = await child.put('only in the namespace');
      const both = await store.put('in both');
      await child.put('in both');
      expect(await store.exists(inChild.digest)).toBe(false);
      expect((await listAll(store)).map((b) => b.digest)).toEqual([both.digest]);
      // The parent's collector deleting its copy leaves the namespace's.
      expect(await store.delete(both.digest)).toBe(true);
      expect(await readAll(await child.get(both.digest))).toEqual(Buffer.from('in both'));
      expect((await listAll(child)).map((b) => b.digest).sort()).toEqual([inChild.digest, both.digest].sort());
      const again = await store.namespace('artifacts');
      expect(await again.exists(inChild.digest)).toBe(true);
      await again.close();
      for (const bad of ['', '../x', 'Artifacts', 'a/b']) await expectCode(store.namespace(bad), Errors.VALIDATION);
    } finally {
      await child.close();
    }
  });

  it('stores the empty blob', async () => {
    const info = await store.put('');
    expect(info).toEqual({ digest: sha256(''), size: 0 });
    expect(await store.stat(info.digest)).toEqual(info);
    expect(await readAll(await store.get(info.digest))).toHaveLength(0);
    await expectCode(store.get(info.digest, { start: 0 }), Errors.BLOB_RANGE_INVALID);
  });

  it('puts the same bytes twice as one object', async () => {
    const first = await store.put('same bytes');
    const second = await store.put(Readable.from([Buffer.from('same '), Buffer.from('bytes')]));
    expect(second).toEqual(first);
    expect(await listAll(store)).toEqual([first]);
    expect((await readAll(await store.get(first.digest))).toString()).toBe('same bytes');
  });

  it('streams a 64 MiB put without holding it in memory', async () => {
    const gc = fullGc();
    const hash = createHash('sha256');
    gc();
    const liveBytes = () => {
      const { heapUsed, arrayBuffers } = process.memoryUsage();
      return heapUsed + arrayBuffers;
    };
    const baseline = liveBytes();
    let peakGrowth = 0;
    async function* generated(): AsyncGenerator<Buffer> {
      for (let i = 0; i < 64; i++) {
        const chunk = Buffer.alloc(MiB, i);
        chunk.writeUInt32BE(i * 2654435761 >>> 0, 0);
        hash.update(chunk);
        if (i % 2 === 0) {
          gc();
          peakGrowth = Math.max(peakGrowth, liveBytes() - baseline);
        }
        yield chunk;
      }
    }
    const info = await store.put(generated());
    expect(info).toEqual({ digest: hash.digest('hex'), size: 64 * MiB });
    // Holding the object whole would grow live memory by ~64 MiB by the last chunks.
    expect(peakGrowth).toBeLessThan(32 * MiB);
    expect(await store.stat(info.digest)).toEqual(info);
    const tail = await readAll(await store.get(info.digest, { start: 64 * MiB - 4 }));
    expect(tail).toEqual(Buffer.alloc(4, 63));
    expect(await store.delete(info.digest)).toBe(true);
  }, 60_000);

  it('reads byte ranges, end inclusive', async () => {
    const bytes = Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 7) % 256));
    const { digest } = await store.put(bytes);
    const read = async (start: number, end?: number) => readAll(await store.get(digest, { start, end }));
    expect(await read(0, 0)).toEqual(bytes.subarray(0, 1));
    expect(await read(10, 19)).toEqual(bytes.subarray(10, 20));
    expect(await read(999, 999)).toEqual(bytes.subarray(999));
    expect(await read(990)).toEqual(bytes.subarray(990));
    expect(await read(0)).toEqual(bytes);
    expect(await read(0, 999)).toEqual(bytes);
  });

  it('rejects ranges outside the object or malformed', async () => {
    const { digest } = await store.put(Buffer.alloc(100, 9));
    for (const range of [{ start: 100 }, { start: 500, end: 600 }, { start: 5, end: 100 }, { start: 5, end: 4 }, { start: -1 }, { start: 1.5 }]) {
      await expectCode(store.get(digest, range), Errors.BLOB_RANGE_INVALID);
    }
  });

  it('answers exists, stat and delete', async () => {
    const digest = sha256('to delete');
    expect(await store.exists(digest)).toBe(false);
    expect(await store.stat(digest)).toBeNull();
    expect(await store.delete(digest)).toBe(false);
    await store.put('to delete');
    expect(await store.exists(digest)).toBe(true);
    expect(await store.stat(digest)).toEqual({ digest, size: 9 });
    expect(await store.delete(digest)).toBe(true);
    expect(await store.exists(digest)).toBe(false);
    expect(await store.delete(digest)).toBe(false);
    await expectCode(store.get(digest), Errors.BLOB_NOT_FOUND);
  });

  it('throws BLOB_NOT_FOUND for a missing object', async () => {
    await expectCode(store.get(sha256('never stored')), Errors.BLOB_NOT_FOUND);
    await expectCode(store.get(sha256('never stored'), { start: 0, end: 0 }), Errors.BLOB_NOT_FOUND);
  });

  it('lists by prefix in digest order', async () => {
    const infos: BlobInfo[] = [];
    for (let i = 0; i < 24; i++) infos.push(await store.put(`blob ${i}`));
    const sorted = [...infos].sort((a, b) => (a.digest < b.digest ? -1 : 1));
    expect(await listAll(store)).toEqual(sorted);
    expect(await listAll(store, '')).toEqual(sorted);
    const target = infos[5]!.digest;
    for (const length of [1, 2, 3, 4, 5, 64]) {
      const prefix = target.slice(0, length);
      const matching = sorted.filter((info) => info.digest.startsWith(prefix));
      expect(matching.length).toBeGreaterThan(0);
      expect(await listAll(store, prefix), `prefix ${prefix}`).toEqual(matching);
    }
    const unused = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'a', 'b', 'c', 'd', 'e', 'f']
      .flatMap((a) => ['0', '8', 'f'].map((b) => a + b))
      .find((prefix) => !infos.some((info) => info.digest.startsWith(prefix)));
    expect(await listAll(store, unused)).toEqual([]);
  });

  it('stores nothing when the expected digest does not match', async () => {
    const err = await expectCode(store.put('actual bytes', { expectedDigest: sha256('other bytes') }), Errors.BLOB_DIGEST_MISMATCH);
    expect(err.message).toContain(sha256('actual bytes'));
    expect(await store.exists(sha256('actual bytes'))).toBe(false);
    expect(await listAll(store)).toEqual([]);
    expect(await store.put('actual bytes', { expectedDigest: sha256('actual bytes') })).toEqual({ digest: sha256('actual bytes'), size: 12 });
  });

  it('rejects malformed digests and prefixes', async () => {
    const valid = sha256('x');
    const bad: unknown[] = ['', 'abc', valid.toUpperCase(), `${valid}0`, 'g'.repeat(64), ` ${valid.slice(1)}`, 42];
    for (const digest of bad as string[]) {
      await expectCode(store.get(digest), Errors.BLOB_DIGEST_INVALID);
      await expectCode(store.stat(digest), Errors.BLOB_DIGEST_INVALID);
      await expectCode(store.exists(digest), Errors.BLOB_DIGEST_INVALID);
      await expectCode(store.delete(digest), Errors.BLOB_DIGEST_INVALID);
      await expectCode(store.put('x', { expectedDigest: digest }), Errors.BLOB_DIGEST_INVALID);
    }
    for (const prefix of ['ABC', 'xyz', '../', `${valid}0`]) {
      await expectCode(listAll(store, prefix), Errors.BLOB_DIGEST_INVALID);
    }
    expect(await listAll(store)).toEqual([]);
  });

  // 6 MiB crosses the S3 adapter's 5 MiB part size, so the multipart path fails too.
  it.each([['small', 1000], ['multipart-sized', 6 * MiB]])('leaves nothing when a %s source fails midway', async (_, bytes) => {
    const boom = new Error('source broke');
    expect(await rejection(store.put(failingSource(bytes, boom)))).toBe(boom);
    const partial = Buffer.alloc(Math.floor(bytes / 2), 1);
    expect(await store.exists(sha256(partial))).toBe(false);
    expect(await listAll(store)).toEqual([]);
    // The store still works afterwards.
    expect((await store.put('after')).digest).toBe(sha256('after'));
  });
});

describe('FsBlobStore', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'wldb-fs-blobs-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('keeps objects at sha256/<aa>/<bb>/<digest> and nothing in tmp/', async () => {
    const store = await FsBlobStore.open(root);
    const { digest } = await store.put('layout');
    expect((await stat(join(root, 'sha256', digest.slice(0, 2), digest.slice(2, 4), digest))).size).toBe(6);
    await rejection(store.put(failingSource(64 * 1024, new Error('broke'))));
    await store.put('layout');
    expect(await readdir(join(root, 'tmp'))).toEqual([]);
  });

  it('shows no partial object after a writer is killed mid-put, then accepts the same put', async () => {
    const fixture = fileURLToPath(new URL('./fixtures/crash-putter.ts', import.meta.url));
    const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url));
    // node --import tsx (not `npx tsx`, whose CLI runs the script in a child
    // process that a SIGKILL to the parent would orphan rather than kill).
    const child = spawn(process.execPath, ['--import', 'tsx', fixture, root], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
    const exited = once(child, 'exit');

    const paused = PAUSE_AFTER_CHUNKS * CHUNK_SIZE;
    const deadline = Date.now() + 20_000;
    let partial: string | undefined;
    while (!partial) {
      if (child.exitCode !== null || Date.now() > deadline) expect.fail(`crash-putter never got mid-write: ${stderr}`);
      partial = (await filesUnder(root)).find((file) => file.size === paused)?.path;
      if (!partial) await new Promise((r) => setTimeout(r, 25));
    }
    child.kill('SIGKILL');
    const [, signal] = await exited;
    expect(signal).toBe('SIGKILL');
    expect((await stat(partial)).size, 'the kill came mid-write').toBe(paused);

    const store = await FsBlobStore.open(root);
    expect(await listAll(store)).toEqual([]);
    expect(await filesUnder(root), 'the partial temp file is swept on open').toEqual([]);
    const written = createHash('sha256');
    let chunks = 0;
    for await (const chunk of crashContent()) {
      if (chunks++ === PAUSE_AFTER_CHUNKS) break;
      written.update(chunk);
    }
    await expectCode(store.get(written.digest('hex')), Errors.BLOB_NOT_FOUND);

    const whole = createHash('sha256');
    for await (const chunk of crashContent()) whole.update(chunk);
    const info = await store.put(crashContent());
    expect(info).toEqual({ digest: whole.digest('hex'), size: CHUNKS * CHUNK_SIZE });
    expect(await listAll(store)).toEqual([info]);
    expect(sha256(await readAll(await store.get(info.digest)))).toBe(info.digest);
  }, 30_000);
});

describe('S3BlobStore', () => {
  const endpoint = inject('s3Endpoint');
  const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
  const open = (bucket: string, extra: { prefix?: string; listPageSize?: number } = {}) =>
    S3BlobStore.open({ bucket, endpoint, region: 'us-east-1', forcePathStyle: true, credentials, ...extra });

  async function bucketKeys(bucket: string): Promise<string[]> {
    const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials });
    try {
      const page = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
      return (page.Contents ?? []).map((object) => object.Key ?? '');
    } finally {
      client.destroy();
    }
  }

  it('keeps only sha256/<digest> keys: temp uploads are removed, failed or not', async () => {
    const bucket = `wldb-test-${randomUUID()}`;
    const store = await open(bucket);
    try {
      const { digest } = await store.put('kept');
      await store.put('kept');
      await expectCode(store.put('mismatch', { expectedDigest: sha256('other') }), Errors.BLOB_DIGEST_MISMATCH);
      await rejection(store.put(failingSource(1000, new Error('broke'))));
      expect(await bucketKeys(bucket)).toEqual([`sha256/${digest}`]);
    } finally {
      await store.close();
    }
  });

  it('pages through long listings', async () => {
    const store = await open(`wldb-test-${randomUUID()}`, { listPageSize: 2 });
    try {
      const infos = await Promise.all(Array.from({ length: 7 }, (_, i) => store.put(`page ${i}`)));
      expect(await listAll(store)).toEqual([...infos].sort((a, b) => (a.digest < b.digest ? -1 : 1)));
    } finally {
      await store.close();
    }
  });

  it('keeps stores with different key prefixes apart in one bucket', async () => {
    const bucket = `wldb-test-${randomUUID()}`;
    const a = await open(bucket, { prefix: 'team-a' });
    const b = await open(bucket, { prefix: '/team-b/blobs/' });
    try {
      const info = await a.put('only in a');
      expect(await listAll(a)).toEqual([info]);
      expect(await listAll(b)).toEqual([]);
      expect(await b.exists(info.digest)).toBe(false);
      expect(await bucketKeys(bucket)).toEqual([`team-a/sha256/${info.digest}`]);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('createBlobStore', () => {
  it('opens a file store from a plain path and a file:/// URL', async () => {
    const root = await mkdtemp(join(tmpdir(), 'wldb-url-'));
    try {
      for (const url of [root, `file://${root}`]) {
        const store = await createBlobStore(url);
        expect(store.kind).toBe('file');
        const { digest } = await store.put(url);
        expect(await store.exists(digest)).toBe(true);
        await store.close();
      }
      expect(await readdir(join(root, 'sha256'))).toHaveLength(2);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('resolves relative file locations against the working directory', () => {
    expect(parseBlobStoreUrl('file://data/blobs')).toEqual({ kind: 'file', root: resolve('data/blobs') });
    expect(parseBlobStoreUrl('data/blobs')).toEqual({ kind: 'file', root: resolve('data/blobs') });
    expect(parseBlobStoreUrl('file:///srv/my%20blobs')).toEqual({ kind: 'file', root: '/srv/my blobs' });
  });

  it('opens an S3 store from an s3:// URL, creating the bucket', async () => {
    const bucket = `wldb-test-${randomUUID()}`;
    const store = await createBlobStore(`s3://${bucket}?endpoint=${inject('s3Endpoint')}&region=us-east-1&forcePathStyle=true&${S3RVER_KEYS}`);
    try {
      expect(store.kind).toBe('s3');
      const info = await store.put('via url');
      expect((await readAll(await store.get(info.digest))).toString()).toBe('via url');
    } finally {
      await store.close();
    }
  });

  it('takes S3 credentials from the URL, else leaves them to the AWS environment', () => {
    const withKeys = parseBlobStoreUrl('s3://my-bucket/pre/fix?endpoint=http://127.0.0.1:9000&accessKeyId=AK&secretAccessKey=SK');
    expect(withKeys).toEqual({
      kind: 's3',
      options: expect.objectContaining({
        bucket: 'my-bucket',
        prefix: 'pre/fix',
        endpoint: 'http://127.0.0.1:9000',
        forcePathStyle: true,
        credentials: { accessKeyId: 'AK', secretAccessKey: 'SK' },
      }),
    });
    const fromEnv = parseBlobStoreUrl('s3://my-bucket?region=eu-west-1');
    expect(fromEnv).toEqual({ kind: 's3', options: expect.objectContaining({ region: 'eu-west-1', forcePathStyle: false }) });
    expect(fromEnv.kind === 's3' && fromEnv.options.credentials).toBeUndefined();
  });

  it.each([
    '',
    '   ',
    'http://example.com/blobs',
    'gs://bucket',
    'file://',
    'file:///srv/blobs?x=1',
    's3://',
    's3://ab',
    's3://Upper-Case',
    's3://bucket?bogus=1',
    's3://bucket?endpoint=ftp://host',
    's3://bucket?endpoint=not a url',
    's3://bucket?forcePathStyle=yes',
    's3://bucket?accessKeyId=AK',
  ])('rejects %j with CONFIG_INVALID naming WANLLMDB_BLOBS', async (url) => {
    const err = await expectCode(createBlobStore(url), Errors.CONFIG_INVALID);
    expect(err.message).toContain('WANLLMDB_BLOBS');
    expect(err.message).toContain('s3://bucket');
    expect(err.details[0]?.field).toBe('WANLLMDB_BLOBS');
  });

  it('never repeats a secret in an error', async () => {
    const err = await expectCode(createBlobStore('s3://bucket?bogus=1&accessKeyId=AK&secretAccessKey=TOPSECRET'), Errors.CONFIG_INVALID);
    expect(JSON.stringify(err.toJSON())).not.toContain('TOPSECRET');
  });

  it('fails fast with BLOB_STORE_FAILED naming the endpoint when S3 is unreachable', async () => {
    const server = createServer();
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    const { port } = server.address() as { port: number };
    await new Promise((done) => server.close(done));
    const endpoint = `http://127.0.0.1:${port}`;
    const started = Date.now();
    const err = await expectCode(
      createBlobStore(`s3://bucket?endpoint=${endpoint}&accessKeyId=AK&secretAccessKey=TOPSECRET`),
      Errors.BLOB_STORE_FAILED,
    );
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(err.message).toContain(endpoint);
    expect(JSON.stringify(err.toJSON())).not.toContain('TOPSECRET');
  });
});
