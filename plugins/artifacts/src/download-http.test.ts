import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { BlobStore } from '@wanllmdb/core';
import { blobBackends, metadataBackends } from '@wanllmdb/core/testing';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256, startArtifactsKernel, type ArtifactsKernel } from './fixtures/artifacts-kernel.js';

/** Everything in a tar stream, by entry name. */
async function untar(bytes: Buffer): Promise<Map<string, { data: Buffer; mode: number }>> {
  const out = new Map<string, { data: Buffer; mode: number }>();
  const extract = tar.extract();
  Readable.from([bytes]).pipe(extract);
  for await (const entry of extract) {
    const parts: Buffer[] = [];
    for await (const chunk of entry as AsyncIterable<Buffer>) parts.push(chunk);
    out.set(entry.header.name, { data: Buffer.concat(parts), mode: entry.header.mode ?? 0 });
  }
  return out;
}

/** HTTP downloads: lengths, ETags, byte ranges across chunks, 416, the whole version as a tar, and S3's 302 to a presigned link. */
describe.each(blobBackends())('artifact downloads over HTTP, blobs in $name', (blobBackend) => {
  let t: ArtifactsKernel;
  let store: BlobStore;
  beforeAll(async () => {
    store = await blobBackend.create();
    t = await startArtifactsKernel(metadataBackends()[0]!, { listen: true, services: { blobStore: store } });
  });
  afterAll(async () => {
    await t?.close();
    await store?.close();
  });
  const base = () => `http://127.0.0.1:${t.ports!.httpPort}`;

  /** A version holding `small` as one blob and `big` as three chunks. */
  async function setup(name: string) {
    const { data: project } = await t.kernel.call<{ data: { id: string } }>('wanllmdb.projects.v1.ProjectService/CreateProject', { name: `dl-${name}-${blobBackend.name}` });
    const { data: artifact } = await t.call<{ data: { id: string } }>('CreateArtifact', { projectId: project.id, name, type: 'dataset' });
    const small = Buffer.from('{"hello": "world"}\n');
    const chunks = [randomBytes(70_000), randomBytes(1), randomBytes(50_000)];
    const big = Buffer.concat(chunks);
    const { data: draft } = await t.call<{ data: { id: string } }>('CreateDraft', { artifactId: artifact.id });
    await t.call('AddFiles', {
      artifactId: artifact.id,
      draftId: draft.id,
      files: [
        { path: 'data/small.json', digest: sha256(small), size: small.length, mode: 0o644, chunks: [] },
        { path: 'model/big.bin', digest: sha256(big), size: big.length, mode: 0o600, chunks: chunks.map((c) => ({ digest: sha256(c), size: c.length })) },
      ],
    });
    for (const b of [small, ...chunks]) await t.upload(artifact.id, draft.id, b);
    await t.call('Commit', { artifactId: artifact.id, draftId: draft.id });
    return { id: artifact.id, small, big };
  }
  const url = (id: string, path?: string, extra = '') => `${base()}/api/v1/artifacts/${id}/versions/latest/download${path ? `?path=${encodeURIComponent(path)}${extra}` : ''}`;

  it('serves a file whole, then any byte range of it (206), across chunk boundaries; past the end is a 416', async () => {
    const { id, big } = await setup('ranges');
    const whole = await fetch(url(id, 'model/big.bin'));
    expect(whole.status).toBe(200);
    expect(whole.headers.get('content-length')).toBe(String(big.length));
    expect(whole.headers.get('accept-ranges')).toBe('bytes');
    expect(whole.headers.get('etag')).toBe(`"${sha256(big)}"`);
    expect(Buffer.from(await whole.arrayBuffer()).equals(big)).toBe(true);

    for (const [header, start, end] of [
      ['bytes=69990-70010', 69_990, 70_010], // crosses chunk 1 → 2 → 3
      ['bytes=70000-70000', 70_000, 70_000], // exactly the one-byte chunk
      ['bytes=100000-', 100_000, big.length - 1],
      ['bytes=-7', big.length - 7, big.length - 1],
      [`bytes=5-${big.length + 100}`, 5, big.length - 1], // an end past the end is cut to it
    ] as const) {
      const res = await fetch(url(id, 'model/big.bin'), { headers: { range: header } });
      expect(res.status, header).toBe(206);
      expect(res.headers.get('content-range')).toBe(`bytes ${start}-${end}/${big.length}`);
      expect(Buffer.from(await res.arrayBuffer()).equals(big.subarray(start, end + 1)), header).toBe(true);
    }
    const past = await fetch(url(id, 'model/big.bin'), { headers: { range: `bytes=${big.length}-` } });
    expect(past.status).toBe(416);
    expect(past.headers.get('content-range')).toBe(`bytes */${big.length}`);
    // If-Range with another body's ETag: the whole body, not a piece of the wrong one.
    const stale = await fetch(url(id, 'model/big.bin'), { headers: { range: 'bytes=0-9', 'if-range': '"0000"' } });
    expect(stale.status).toBe(200);
    expect((await stale.arrayBuffer()).byteLength).toBe(big.length);
  });

  it('answers the whole version, without a path, as one tar with modes kept', async () => {
    const { id, small, big } = await setup('archive');
    const res = await fetch(url(id));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-tar');
    const files = await untar(Buffer.from(await res.arrayBuffer()));
    expect([...files.keys()]).toEqual(['archive-v0/data/small.json', 'archive-v0/model/big.bin']);
    expect(files.get('archive-v0/data/small.json')!.data.equals(small)).toBe(true);
    expect(files.get('archive-v0/model/big.bin')!.data.equals(big)).toBe(true);
    expect(files.get('archive-v0/model/big.bin')!.mode).toBe(0o600);
  });

  it(blobBackend.name === 's3' ? 'redirects a one-blob file to a presigned S3 link (302), unless asked to stream' : 'streams a file itself: a folder has no links', async () => {
    const { id, small, big } = await setup('links');
    const res = await fetch(url(id, 'data/small.json'), { redirect: 'manual' });
    if (blobBackend.name === 's3') {
      expect(res.status).toBe(302);
      const location = res.headers.get('location')!;
      expect(location).toMatch(/X-Amz-Signature=/);
      const direct = await fetch(location);
      expect(direct.status).toBe(200);
      expect(Buffer.from(await direct.arrayBuffer()).equals(small)).toBe(true);
      // A chunked file has no one object to point at: it is streamed.
      expect((await fetch(url(id, 'model/big.bin'), { redirect: 'manual' })).status).toBe(200);
    } else {
      expect(res.status).toBe(200);
      expect(Buffer.from(await res.arrayBuffer()).equals(small)).toBe(true);
    }
    const streamed = await fetch(url(id, 'data/small.json', '&noRedirect=true'), { redirect: 'manual' });
    expect(streamed.status).toBe(200);
    expect(Buffer.from(await streamed.arrayBuffer()).equals(small)).toBe(true);
    // Over gRPC and in process the bytes always come through the server.
    expect((await t.download(id, 'latest', 'model/big.bin')).equals(big)).toBe(true);
  });
});
