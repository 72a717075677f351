import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CreateBucketCommand, DeleteObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Artifact, init, openArtifactClient, type ArtifactClient } from '../index.js';

const root = mkdtempSync(join(tmpdir(), 'wldb-sdk-refs-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const data = join(root, 'data');
const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** s3rver's built-in account. */
const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
const bucket = `wldb-refs-${randomUUID()}`;

/** A tiny web server whose objects the test changes: `/etag/…` answers a strong ETag (HEAD and GET); `/plain/…` none, so the SDK hashes it. */
const web = new Map<string, Buffer>();
let server: Server;
let base = '';

async function rejection(p: Promise<unknown>): Promise<{ code: string; message: string; details: { field?: string; message: string }[] }> {
  try {
    await p;
  } catch (err) {
    return err as never;
  }
  throw new Error('expected a rejection');
}

describe('artifact references from the SDK (embedded store, loopback S3, file://, http)', () => {
  let s3: S3Client;
  let client: ArtifactClient;
  let close: () => Promise<void>;
  let n = 0;
  /** A client with an empty cache of its own, so nothing is served from an earlier download. */
  const freshClient = async () => openArtifactClient({ mode: 'embedded', dataDir: data }, { cacheDir: join(root, `cache-${++n}`), s3: { endpoint: inject('s3Endpoint'), credentials } });
  const put = (key: string, body: string) => s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: Buffer.from(body) }));
  const files = async (c: ArtifactClient, artifactId: string, version: string) => (await (c as unknown as { call: (m: string, r: unknown) => Promise<{ data: { path: string; digest: string; size: number; ref?: Record<string, string> }[] }> }).call('ListVersionFiles', { artifactId, version })).data;

  beforeAll(async () => {
    s3 = new S3Client({ endpoint: inject('s3Endpoint'), region: 'us-east-1', forcePathStyle: true, credentials });
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    server = createServer((req, res) => {
      const [, kind, ...rest] = (req.url ?? '').split('/');
      const body = web.get(rest.join('/'));
      if (!body) return void res.writeHead(404).end();
      const headers: Record<string, string | number> = { 'content-length': body.length, 'last-modified': 'Tue, 01 Dec 2026 00:00:00 GMT' };
      if (kind === 'etag') headers.etag = `"${sha256(body).slice(0, 16)}"`;
      res.writeHead(200, headers);
      res.end(req.method === 'HEAD' ? undefined : body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    ({ client, close } = await freshClient());
  });
  afterAll(async () => {
    await close?.();
    s3?.destroy();
    await new Promise((resolve) => server?.close(resolve));
  });

  it('logs references of every kind beside an uploaded file, sends only the uploaded body, and downloads all of them verified', async () => {
    await put('extra/a.txt', 'alpha from s3');
    await put('extra/sub/b.txt', 'bravo from s3');
    await put('extra/', ''); // a "folder" marker: no entry
    await put('models/w.bin', 'weights');
    const dir = join(root, 'local');
    mkdirSync(join(dir, 'nested'), { recursive: true });
    writeFileSync(join(dir, 'one.txt'), 'local one');
    writeFileSync(join(dir, 'nested', 'two.txt'), 'local two');
    writeFileSync(join(root, 'single.csv'), 'a,b\n1,2\n');
    web.set('page.html', Buffer.from('<p>with an etag</p>'));
    web.set('plain.txt', Buffer.from('no etag here'));
    writeFileSync(join(root, 'uploaded.txt'), 'uploaded bytes');

    const art = new Artifact('mixed', 'dataset');
    await art.addFile(join(root, 'uploaded.txt'));
    art
      .addReference(`s3://${bucket}/extra/`)
      .addReference(`s3://${bucket}/models/w.bin`, { name: 'model/weights.bin' })
      .addReference(pathToFileURL(join(root, 'single.csv')).href)
      .addReference(pathToFileURL(dir).href, { name: 'local', checksum: false })
      .addReference(`${base}/etag/page.html`)
      .addReference(`${base}/plain/plain.txt`, { name: 'web/plain.txt' });
    const logged = await client.log('refs', art);
    expect(logged).toMatchObject({ created: true, uploadedBytes: 'uploaded bytes'.length, version: { version: 'v0', fileCount: 9 } });

    const a = (await client.find('refs', 'mixed'))!;
    const listed = await files(client, a.id, 'v0');
    expect(listed.map((f) => [f.path, f.ref?.checksum ?? 'body'])).toEqual([
      ['a.txt', 'etag'],
      ['local/nested/two.txt', 'mtime'],
      ['local/one.txt', 'mtime'],
      ['model/weights.bin', 'etag'],
      ['page.html', 'etag'],
      ['single.csv', 'sha256'],
      ['sub/b.txt', 'etag'],
      ['uploaded.txt', 'body'],
      ['web/plain.txt', 'sha256'],
    ]);
    const byPath = new Map(listed.map((f) => [f.path, f]));
    expect(byPath.get('a.txt')).toMatchObject({ digest: '', size: 13, ref: { uri: `s3://${bucket}/extra/a.txt`, etag: expect.stringMatching(/^".+"$/) } });
    expect(byPath.get('single.csv')!.ref).toMatchObject({ sha256: sha256('a,b\n1,2\n'), uri: pathToFileURL(join(root, 'single.csv')).href });
    expect(byPath.get('web/plain.txt')!.ref).toMatchObject({ sha256: sha256('no etag here'), uri: `${base}/plain/plain.txt` });
    expect(byPath.get('local/one.txt')!.ref).toMatchObject({ lastModified: statSync(join(dir, 'one.txt')).mtime.toISOString(), sha256: '' });

    const got = await client.download(a.id, logged.version, join(root, 'got'));
    const expected: Record<string, string> = {
      'a.txt': 'alpha from s3',
      'sub/b.txt': 'bravo from s3',
      'model/weights.bin': 'weights',
      'single.csv': 'a,b\n1,2\n',
      'local/one.txt': 'local one',
      'local/nested/two.txt': 'local two',
      'page.html': '<p>with an etag</p>',
      'web/plain.txt': 'no etag here',
      'uploaded.txt': 'uploaded bytes',
    };
    for (const [path, text] of Object.entries(expected)) expect(readFileSync(join(got, path), 'utf8')).toBe(text);

    // The same references, unchanged: no new version.
    const again = await client.log('refs', art);
    expect(again).toMatchObject({ created: false, uploadedBytes: 0, version: { version: 'v0' } });
  });

  it('fails a download with a coded error naming the entry and how its target changed — S3 ETag, file sha256, file mtime, URL ETag, URL sha256, a vanished object', async () => {
    const { client: c, close: done } = await freshClient();
    try {
      await put('moving/obj.txt', 'first');
      writeFileSync(join(root, 'hashed.txt'), 'first');
      writeFileSync(join(root, 'stamped.txt'), 'first');
      web.set('moving-etag.txt', Buffer.from('first'));
      web.set('moving-plain.txt', Buffer.from('first'));
      await put('moving/resized.txt', 'here today');
      await put('moving/gone.txt', 'here today');
      const cases = [
        { name: 's3-moving', uri: `s3://${bucket}/moving/obj.txt`, change: () => put('moving/obj.txt', 'fresh'), how: /etag "[^"]+" → "[^"]+"/ },
        { name: 'file-hashed', uri: pathToFileURL(join(root, 'hashed.txt')).href, change: async () => writeFileSync(join(root, 'hashed.txt'), 'second!'), how: /size 5 → 7 bytes; sha256/ },
        {
          name: 'file-stamped',
          uri: pathToFileURL(join(root, 'stamped.txt')).href,
          opts: { checksum: false },
          change: async () => utimesSync(join(root, 'stamped.txt'), new Date('2020-01-01T00:00:00Z'), new Date('2020-01-01T00:00:00Z')),
          how: /modified .* → 2020-01-01T00:00:00.000Z/,
        },
        { name: 'web-etag', uri: `${base}/etag/moving-etag.txt`, change: async () => web.set('moving-etag.txt', Buffer.from('fresh')), how: /etag "[0-9a-f]+" → "[0-9a-f]+"/ },
        { name: 'web-plain', uri: `${base}/plain/moving-plain.txt`, change: async () => web.set('moving-plain.txt', Buffer.from('fresh')), how: /sha256 [0-9a-f]{12}… → [0-9a-f]{12}…/ },
        { name: 's3-resized', uri: `s3://${bucket}/moving/resized.txt`, change: () => put('moving/resized.txt', 'here tomorrow, and longer'), how: /size 10 → 25 bytes/ },
        { name: 's3-gone', uri: `s3://${bucket}/moving/gone.txt`, change: () => s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'moving/gone.txt' })), how: /the object is gone/ },
      ];
      const versions = [];
      for (const k of cases) versions.push((await c.log('refs', new Artifact(k.name, 'dataset').addReference(k.uri, k.opts ?? {}))).version);
      // Before any change every one downloads.
      for (const [i, k] of cases.entries()) await c.download((await c.find('refs', k.name))!.id, versions[i]!, join(root, 'before', k.name));
      for (const k of cases) await k.change();
      const { client: cold, close: closeCold } = await freshClient(); // nothing cached: every source is asked
      try {
        for (const [i, k] of cases.entries()) {
          const id = (await c.find('refs', k.name))!.id;
          const err = await rejection(cold.download(id, versions[i]!, join(root, 'after', k.name)));
          expect(err.code, k.name).toBe('WLDB_ERR_BLOB_DIGEST_MISMATCH');
          expect(err.message, k.name).toMatch(/target changed since the version was logged/);
          expect(err.message, k.name).toMatch(k.how);
          expect(err.details[0], k.name).toEqual({ field: 'path', message: k.uri.split('/').pop() });
        }
      } finally {
        await closeCold();
      }
      // A file verified by sha256 on an earlier download is in the cache: that client still has the recorded bytes.
      const hashed = (await c.find('refs', 'file-hashed'))!.id;
      await c.download(hashed, versions[1]!, join(root, 'cached'));
      expect(readFileSync(join(root, 'cached', 'hashed.txt'), 'utf8')).toBe('first');
      // …but never one checked only by ETag or mtime.
      await expect(c.download((await c.find('refs', 's3-moving'))!.id, versions[0]!, join(root, 'uncached'))).rejects.toMatchObject({ code: 'WLDB_ERR_BLOB_DIGEST_MISMATCH' });

      // Logging again records the new target: a new version, and the diff calls the entry changed.
      const next = await c.log('refs', new Artifact('s3-moving', 'dataset').addReference(`s3://${bucket}/moving/obj.txt`));
      expect(next).toMatchObject({ created: true, version: { version: 'v1' } });
      const diff = await c.diff((await c.find('refs', 's3-moving'))!.id, 'v0', 'v1');
      expect(diff).toMatchObject({ added: 0, removed: 0, changed: 1, data: [{ path: 'obj.txt', status: 'changed', fromSize: 5, toSize: 5 }] });
    } finally {
      await done();
    }
  });

  it('expands a prefix up to maxObjects and refuses more; refuses bad schemes, credentials in URIs and colliding paths before anything is made', async () => {
    for (let i = 0; i < 3; i++) await put(`many/f${i}.txt`, `file ${i}`);
    const three = await client.log('refs', new Artifact('many', 'dataset').addReference(`s3://${bucket}/many`, { name: 'shards', maxObjects: 3 }));
    expect(three.version.fileCount).toBe(3);
    expect((await files(client, (await client.find('refs', 'many'))!.id, 'v0')).map((f) => f.path)).toEqual(['shards/f0.txt', 'shards/f1.txt', 'shards/f2.txt']);
    const over = await rejection(client.log('refs', new Artifact('too-many', 'dataset').addReference(`s3://${bucket}/many/`, { maxObjects: 2 })));
    expect(over).toMatchObject({ code: 'WLDB_ERR_LIMIT_EXCEEDED', details: [{ field: 'maxObjects' }] });
    expect(over.message).toMatch(/more than 2 objects/);

    for (const uri of ['ftp://example.com/x', 'gs://bucket/x', 'not a uri', `https://user:pw@127.0.0.1/x`, 's3://bucket/bad%zzescape']) {
      const bad = await rejection(client.log('refs', new Artifact('bad-scheme', 'dataset').addReference(uri)));
      expect(bad.code, uri).toBe('WLDB_ERR_VALIDATION');
    }
    const missing = await rejection(client.log('refs', new Artifact('bad-scheme', 'dataset').addReference(`s3://${bucket}/no/such/thing`)));
    expect(missing.code).toBe('WLDB_ERR_NOT_FOUND');
    writeFileSync(join(root, 'clash.txt'), 'x');
    const clash = await rejection(client.log('refs', (await new Artifact('bad-scheme', 'dataset').addFile(join(root, 'clash.txt'))).addReference(`s3://${bucket}/models/w.bin`, { name: 'clash.txt' })));
    expect(clash).toMatchObject({ code: 'WLDB_ERR_VALIDATION', details: [{ field: 'path', message: 'repeated' }] });
    expect(await client.find('refs', 'bad-scheme')).toBeUndefined(); // nothing was made
    expect(await client.find('refs', 'too-many')).toBeUndefined();
  });

  it('a run logs a reference (S3 from the standard AWS environment) and another run downloads it through useArtifact', async () => {
    const saved = { ...process.env };
    Object.assign(process.env, { AWS_ENDPOINT_URL_S3: inject('s3Endpoint'), AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1', WANLLMDB_CACHE_DIR: join(root, 'run-cache') });
    try {
      await put('runs/table.csv', 'x,y\n1,2\n');
      const opts = { dir: data, project: 'refs', captureConsole: false, systemMetrics: false, git: false, handleExit: false } as const;
      const prepare = await init({ ...opts, name: 'prepare' });
      const v = await prepare.logArtifact(new Artifact('run-table', 'dataset').addReference(`s3://${bucket}/runs/table.csv`));
      expect(v).toMatchObject({ version: 'v0', fileCount: 1, size: 8 });
      await prepare.finish();
      const train = await init({ ...opts, name: 'train' });
      const dir = await train.useArtifact('run-table:latest').download(join(root, 'run-got'));
      expect(readFileSync(join(dir, 'table.csv'), 'utf8')).toBe('x,y\n1,2\n');
      await train.finish();
    } finally {
      for (const k of ['AWS_ENDPOINT_URL_S3', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_REGION', 'WANLLMDB_CACHE_DIR']) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
    }
  });
});
