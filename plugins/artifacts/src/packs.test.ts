import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { coreServices, type BlobStore } from '@wanllmdb/core';
import { blobBackends, metadataBackends, rejection } from '@wanllmdb/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { entryOf, sha256, startArtifactsKernel, type ArtifactsKernel } from './fixtures/artifacts-kernel.js';
import type { artifacts } from './gen/index.js';

const combos = metadataBackends().flatMap((db) => blobBackends().map((blobs) => ({ db, blobs, name: `${db.name} + ${blobs.name}` })));

async function drain(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r as AsyncIterable<Buffer>) parts.push(c);
  return Buffer.concat(parts);
}

/** Packs: many small bodies as one stored blob (ADR 0025), read, listed and collected body by body. */
describe.each(combos)('artifact packs on $name', ({ db, blobs: blobBackend }) => {
  let t: ArtifactsKernel;
  let store: BlobStore;
  beforeAll(async () => {
    store = await blobBackend.create();
    t = await startArtifactsKernel(db, { services: { blobStore: store }, plugin: { gcGraceSeconds: 0 } });
  });
  afterAll(async () => {
    await t?.close();
    await store?.close();
  });

  let n = 0;
  async function draftWith(files: Record<string, Buffer>) {
    const projectId = (await t.kernel.call<{ data: { id: string } }>('wanllmdb.projects.v1.ProjectService/CreateProject', { name: `packs-${++n}` })).data.id;
    const artifact = (await t.call<{ data: artifacts.v1.Artifact }>('CreateArtifact', { projectId, name: `p${n}`, type: 'dataset' })).data;
    const draft = (await t.call<{ data: { id: string } }>('CreateDraft', { artifactId: artifact.id })).data;
    const { missing } = await t.call<artifacts.v1.AddFilesResponse>('AddFiles', { artifactId: artifact.id, draftId: draft.id, files: Object.entries(files).map(([p, b]) => entryOf(p, b)) });
    return { artifactId: artifact.id, draftId: draft.id, missing };
  }
  /** UploadPack with `bodies` named and `data` sent (in 1,000-byte messages), as given. */
  const uploadPack = (artifactId: string, draftId: string, bodies: Buffer[], data = Buffer.concat(bodies), named = bodies.map((b) => ({ digest: sha256(b), size: b.length }))) =>
    t.call<artifacts.v1.UploadPackResponse>(
      'UploadPack',
      (async function* () {
        const digest = createHash('sha256').update(data).digest('hex');
        for (let at = 0; at < data.length || at === 0; at += 1000) {
          yield at === 0 ? { artifactId, draftId, digest, bodies: named, data: data.subarray(0, 1000) } : { artifactId: '', draftId: '', digest: '', bodies: [], data: data.subarray(at, at + 1000) };
          if (!data.length) break;
        }
      })(),
    );

  it('stores many bodies as one blob; each downloads, ranges and lists as a body of its own', async () => {
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 50; i++) files[`f/${i}.bin`] = randomBytes(100 + i * 37);
    files['empty.txt'] = Buffer.alloc(0);
    const { artifactId, draftId, missing } = await draftWith(files);
    const bodies = Object.values(files);
    expect(missing).toHaveLength(bodies.length);
    const packed = await uploadPack(artifactId, draftId, bodies);
    expect(packed).toMatchObject({ bodies: bodies.length, size: bodies.reduce((s, b) => s + b.length, 0) });
    await t.call('Commit', { artifactId, draftId });
    for (const [path, b] of Object.entries(files)) expect((await t.download(artifactId, 'latest', path)).equals(b), path).toBe(true);

    // The namespace shows bodies, not packs; a range of a packed body is a range of it, not of the pack.
    const { PackedBlobStore } = await import('./packs.js');
    const ns = new PackedBlobStore(await t.kernel.get(coreServices.blobs).namespace('artifacts'), t.kernel.get(coreServices.db));
    const listed = new Set<string>();
    for await (const b of ns.list()) listed.add(b.digest);
    for (const b of bodies) expect(listed.has(sha256(b))).toBe(true);
    expect(listed.has(packed.digest)).toBe(false);
    const one = files['f/7.bin']!;
    expect((await drain(await ns.get(sha256(one), { start: 10, end: 20 }))).equals(one.subarray(10, 21))).toBe(true);
    expect(await ns.stat(sha256(one))).toEqual({ digest: sha256(one), size: one.length });
    expect((await rejection(ns.get(sha256(one), { start: 0, end: one.length }))).code).toBe('WLDB_ERR_BLOB_RANGE_INVALID');
    expect(await ns.link(sha256(one), { expiresSeconds: 60 })).toBeUndefined();
    await ns.close();
  });

  it('refuses a pack with a wrong body, a body the draft does not name, a wrong size, or too few or too many bytes — keeping nothing', async () => {
    const a = randomBytes(300);
    const b = randomBytes(500);
    const { artifactId, draftId } = await draftWith({ 'a.bin': a, 'b.bin': b });
    const swapped = Buffer.concat([a, randomBytes(500)]);
    expect((await rejection(uploadPack(artifactId, draftId, [a, b], swapped))).details).toEqual([{ field: 'bodies[1].digest', message: 'bytes hash otherwise' }]);
    const stray = randomBytes(10);
    expect((await rejection(uploadPack(artifactId, draftId, [a, stray]))).details[0]).toMatchObject({ field: 'bodies[1].digest' });
    expect((await rejection(uploadPack(artifactId, draftId, [a, b], undefined, [{ digest: sha256(a), size: 300 }, { digest: sha256(b), size: 499 }]))).details).toEqual([
      { field: 'bodies[1].size', message: 'is 499, but the manifest gives 500' },
    ]);
    expect((await rejection(uploadPack(artifactId, draftId, [a, b], Buffer.concat([a, b.subarray(0, 200)])))).code).toBe('WLDB_ERR_VALIDATION');
    expect((await rejection(uploadPack(artifactId, draftId, [a, b], Buffer.concat([a, b, randomBytes(3)])))).code).toBe('WLDB_ERR_BODY_TOO_LARGE');
    // Nothing of it was kept: both bodies are still missing, and the commit says so.
    expect((await rejection(t.call('Commit', { artifactId, draftId }))).details).toEqual([{ field: 'draftId', message: '2 bodies missing' }]);
    await uploadPack(artifactId, draftId, [a, b]);
    expect((await t.call<{ data: { version: string } }>('Commit', { artifactId, draftId })).data.version).toBe('v0');
  });

  it('collects packed bodies one by one and deletes a pack with its last body', async () => {
    const keep = randomBytes(200);
    const gone = [randomBytes(210), randomBytes(220)];
    const first = await draftWith({ 'keep.bin': keep, 'g0.bin': gone[0]!, 'g1.bin': gone[1]! });
    const pack = await uploadPack(first.artifactId, first.draftId, [keep, ...gone]);
    await t.call('Commit', { artifactId: first.artifactId, draftId: first.draftId });
    // v1 keeps one body; deleting v0 leaves two packed bodies as garbage, the pack still needed.
    const second = (await t.call<{ data: { id: string } }>('CreateDraft', { artifactId: first.artifactId })).data;
    await t.call('AddFiles', { artifactId: first.artifactId, draftId: second.id, files: [entryOf('keep.bin', keep)] });
    await t.call('Commit', { artifactId: first.artifactId, draftId: second.id });
    await t.call('DeleteVersion', { artifactId: first.artifactId, version: 'v0' });
    const raw = await t.kernel.get(coreServices.blobs).namespace('artifacts');
    try {
      const dry = await t.call<{ deleted: number }>('CollectGarbage', { dryRun: true });
      const real = await t.call<{ deleted: number }>('CollectGarbage', { dryRun: false });
      expect(real.deleted).toBe(dry.deleted);
      expect(real.deleted).toBeGreaterThanOrEqual(2); // g0 and g1 (and v0's manifest)
      expect(await raw.exists(pack.digest)).toBe(true);
      expect((await t.download(first.artifactId, 'v1', 'keep.bin')).equals(keep)).toBe(true);
      // The last version goes: so do the last body and the pack's bytes.
      await t.call('DeleteArtifact', { id: first.artifactId });
      await t.call('CollectGarbage', { dryRun: false });
      expect(await raw.exists(pack.digest)).toBe(false);
    } finally {
      await raw.close();
    }
  });
});
