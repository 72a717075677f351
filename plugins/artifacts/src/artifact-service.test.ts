import { randomBytes } from 'node:crypto';
import { blobBackends, metadataBackends, rejection } from '@wanllmdb/core/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { entryOf, sha256, startArtifactsKernel, useArtifactsKernel, type ArtifactsKernel } from './fixtures/artifacts-kernel.js';
import type { artifacts } from './gen/index.js';
import { canonicalManifest } from './manifest.js';

type Artifact = artifacts.v1.Artifact;
type Version = artifacts.v1.Version;

const bytes = (text: string) => Buffer.from(text);

describe.each(metadataBackends())('ArtifactService on $name', (backend) => {
  const t = useArtifactsKernel(backend);
  let projectId = '';
  const create = async (name: string, type = 'dataset', extra: Record<string, unknown> = {}) =>
    (await t.call<{ data: Artifact }>('CreateArtifact', { projectId, name, type, ...extra })).data;

  beforeAll(async () => {
    projectId = (await t.kernel.call<{ data: { id: string } }>('wanllmdb.projects.v1.ProjectService/CreateProject', { name: 'mnist' })).data.id;
  });

  it('creates an artifact once per name, answers the same one with existOk, and checks every field', async () => {
    const made = await create('mnist-raw', 'dataset', { description: 'raw digits', metadata: { rows: 60000 }, tags: ['vision', 'vision', 'raw'] });
    expect(made).toMatchObject({ name: 'mnist-raw', type: 'dataset', metadata: { rows: 60000 }, tags: ['vision', 'raw'], versionCount: 0, latestVersion: '' });
    expect((await t.call<{ data: Artifact }>('CreateArtifact', { projectId: 'mnist', name: 'mnist-raw', type: 'dataset', existOk: true })).data.id).toBe(made.id);
    const taken = await rejection(create('mnist-raw'));
    expect(taken.code).toBe('WLDB_ERR_ALREADY_EXISTS');
    const otherType = await rejection(t.call('CreateArtifact', { projectId, name: 'mnist-raw', type: 'model', existOk: true }));
    expect(otherType).toMatchObject({ code: 'WLDB_ERR_ALREADY_EXISTS', details: [{ field: 'type', message: 'taken' }] });
    const bad = await rejection(t.call('CreateArtifact', { projectId, name: '../etc', type: 'Data Set', tags: [''] }));
    expect(bad.code).toBe('WLDB_ERR_VALIDATION');
    expect(bad.details.map((d) => d.field)).toEqual(['name', 'type', 'tags[0]']);
    const listed = await t.call<{ data: Artifact[]; meta: { total: number } }>('ListArtifacts', { projectId, type: 'dataset' });
    expect(listed.data.map((a) => a.name)).toEqual(['mnist-raw']);
    expect((await t.call<{ data: Artifact[] }>('ListArtifacts', { projectId, type: 'model' })).data).toEqual([]);
  });

  it('commits a draft as v0 with a content-addressed manifest, aliases and downloadable files', async () => {
    const art = await create('clean');
    const files = { 'train/a.txt': bytes('alpha'), 'train/b.txt': bytes('bravo'), 'README.md': bytes('# clean\n') };
    const { commit, sent } = await t.logVersion(art.id, files, { aliases: ['latest', 'v1.0'] });
    expect(sent.sort()).toEqual(Object.values(files).map(sha256).sort());
    expect(commit.created).toBe(true);
    const expectedDigest = canonicalManifest(Object.entries(files).map(([path, b]) => ({ ...entryOf(path, b), mode: 0o644, chunks: [] }))).digest;
    expect(commit.data).toMatchObject({ version: 'v0', digest: expectedDigest, size: 18, fileCount: 3, aliases: ['latest', 'v1.0'] });
    expect(commit.data.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect((await t.call<{ data: Artifact }>('GetArtifact', { id: art.id })).data).toMatchObject({ versionCount: 1, latestVersion: 'v0' });
    for (const ref of ['v0', '0', 'latest', 'v1.0']) expect((await t.call<{ data: Version }>('GetVersion', { artifactId: art.id, version: ref })).data.id).toBe(commit.data.id);
    expect(await t.download(art.id, 'latest', 'train/b.txt')).toEqual(bytes('bravo'));
    // Files page in path order, by cursor.
    const page1 = await t.call<artifacts.v1.ListVersionFilesResponse>('ListVersionFiles', { artifactId: art.id, version: 'v0', limit: 2 });
    expect(page1.data.map((f) => f.path)).toEqual(['README.md', 'train/a.txt']);
    const page2 = await t.call<artifacts.v1.ListVersionFilesResponse>('ListVersionFiles', { artifactId: art.id, version: 'v0', limit: 2, cursor: page1.nextCursor });
    expect(page2).toMatchObject({ data: [{ path: 'train/b.txt', size: 5, mode: 0o644 }], nextCursor: '' });
    expect((await t.call<artifacts.v1.ListVersionFilesResponse>('ListVersionFiles', { artifactId: art.id, version: 'v0', prefix: 'train/' })).data).toHaveLength(2);
    const missing = await rejection(t.download(art.id, 'v0', 'nope.txt'));
    expect(missing.code).toBe('WLDB_ERR_NOT_FOUND');
    expect((await rejection(t.call('GetVersion', { artifactId: art.id, version: 'v7' }))).code).toBe('WLDB_ERR_NOT_FOUND');
  });

  it('makes no version for an unchanged manifest, sends only changed bodies, and diffs versions on the server', async () => {
    const art = await create('dedup');
    const base = { 'a.txt': bytes('same a'), 'b.txt': bytes('same b'), 'c.txt': bytes('gone soon') };
    const v0 = (await t.logVersion(art.id, base)).commit.data;
    const again = await t.logVersion(art.id, base, { aliases: ['stable'] });
    expect(again.sent).toEqual([]);
    expect(again.commit).toMatchObject({ created: false, data: { id: v0.id, version: 'v0', aliases: ['latest', 'stable'] } });
    const next = { 'a.txt': bytes('same a'), 'b.txt': bytes('b, changed'), 'd.txt': bytes('new d') };
    const v1 = await t.logVersion(art.id, next);
    expect(v1.sent.sort()).toEqual([sha256(next['b.txt']), sha256(next['d.txt'])].sort());
    expect(v1.commit.data).toMatchObject({ version: 'v1', aliases: ['latest'] });
    // The same bodies under another artifact of the project are not sent again.
    expect((await t.logVersion((await create('dedup-copy')).id, next)).sent).toEqual([]);

    const diff = await t.call<artifacts.v1.DiffVersionsResponse>('DiffVersions', { artifactId: art.id, from: 'v0', to: 'latest' });
    expect(diff).toMatchObject({ added: 1, removed: 1, changed: 1, sizeDelta: 5 + 10 - 6 - 9 });
    expect(diff.data).toEqual([
      { path: 'b.txt', status: 'changed', fromSize: 6, toSize: 10, fromDigest: sha256(base['b.txt']), toDigest: sha256(next['b.txt']) },
      { path: 'c.txt', status: 'removed', fromSize: 9, toSize: 0, fromDigest: sha256(base['c.txt']), toDigest: '' },
      { path: 'd.txt', status: 'added', fromSize: 0, toSize: 5, fromDigest: '', toDigest: sha256(next['d.txt']) },
    ]);
  });

  it('numbers concurrent commits v0, v1, … without gaps or repeats', async () => {
    const art = await create('racing');
    const n = 8;
    const commits = await Promise.all(Array.from({ length: n }, (_, i) => t.logVersion(art.id, { 'x.txt': bytes(`writer ${i}`) })));
    expect(commits.map((c) => c.commit.data.version).sort((a, b) => Number(a.slice(1)) - Number(b.slice(1)))).toEqual(Array.from({ length: n }, (_, i) => `v${i}`));
    const listed = await t.call<{ data: Version[]; meta: { total: number } }>('ListVersions', { artifactId: art.id, pageSize: 100 });
    expect(listed.meta.total).toBe(n);
    expect(listed.data[0]).toMatchObject({ version: `v${n - 1}`, aliases: ['latest'] });
  });

  it('refuses bad manifests and bodies with coded errors, and shows nothing half-committed', async () => {
    const art = await create('guarded');
    const draft = (await t.call<{ data: { id: string } }>('CreateDraft', { artifactId: art.id })).data;
    const good = entryOf('ok.txt', bytes('ok'));
    const bad = await rejection(
      t.call('AddFiles', {
        artifactId: art.id,
        draftId: draft.id,
        files: [
          { ...good, path: '../escape' },
          { ...good, path: '/etc/passwd' },
          { ...good, path: 'C:\\win' },
          { ...good, path: 'nul\u0000byte' },
          { ...good, path: '%2e%2e/encoded' },
          good,
          good,
          { ...good, path: 'short.txt', digest: 'abc' },
          { ...good, path: 'neg.txt', size: -1 },
          { ...good, path: 'chunks.txt', size: 3, chunks: [{ digest: sha256('ab'), size: 2 }] },
        ],
      }),
    );
    expect(bad.code).toBe('WLDB_ERR_VALIDATION');
    expect(bad.details.map((d) => d.field)).toEqual(['files[0].path', 'files[1].path', 'files[2].path', 'files[3].path', 'files[4].path', 'files[6].path', 'files[7].digest', 'files[8].size', 'files[9].chunks']);

    const { missing } = await t.call<artifacts.v1.AddFilesResponse>('AddFiles', { artifactId: art.id, draftId: draft.id, files: [good] });
    expect(missing).toEqual([good.digest]);
    // Bytes that hash otherwise are refused, and the body is still missing.
    const wrong = await rejection(t.upload(art.id, draft.id, bytes('no'), good.digest));
    expect(wrong.code).toBe('WLDB_ERR_BLOB_DIGEST_MISMATCH');
    // More bytes than the manifest declares are refused as they arrive.
    expect((await rejection(t.upload(art.id, draft.id, bytes('not ok'), good.digest))).code).toBe('WLDB_ERR_BODY_TOO_LARGE');
    // Fewer bytes than declared (here none) are refused too, whatever they hash to.
    expect((await rejection(t.upload(art.id, draft.id, bytes(''), good.digest))).details).toEqual([{ field: 'data', message: '0 of 2 bytes' }]);
    // A body the manifest does not name is not taken.
    expect((await rejection(t.upload(art.id, draft.id, bytes('stray')))).details).toEqual([{ field: 'digest', message: 'not in the draft' }]);
    const early = await rejection(t.call('Commit', { artifactId: art.id, draftId: draft.id }));
    expect(early).toMatchObject({ code: 'WLDB_ERR_VALIDATION', details: [{ field: 'draftId', message: '1 bodies missing' }] });
    expect((await t.call<{ meta: { total: number } }>('ListVersions', { artifactId: art.id })).meta.total).toBe(0);
    await t.upload(art.id, draft.id, bytes('ok'));
    expect((await t.call<{ data: Version }>('Commit', { artifactId: art.id, draftId: draft.id })).data.version).toBe('v0');
    // A committed draft is gone.
    expect((await rejection(t.call('Commit', { artifactId: art.id, draftId: draft.id }))).code).toBe('WLDB_ERR_NOT_FOUND');
    // A size is part of a body: one the project holds cannot be named with another size, nor one digest with two sizes in a manifest.
    const next = (await t.call<{ data: { id: string } }>('CreateDraft', { artifactId: art.id })).data;
    const sized = await rejection(t.call('AddFiles', { artifactId: art.id, draftId: next.id, files: [{ ...good, path: 'big.txt', size: 3 }] }));
    expect(sized.details).toEqual([{ field: 'files[0].size', message: `is 3, but body ${good.digest} has 2 bytes` }]);
    const fresh = entryOf('x.txt', bytes('xyz'));
    const twice = await rejection(t.call('AddFiles', { artifactId: art.id, draftId: next.id, files: [fresh, { ...fresh, path: 'y.txt', size: 4 }] }));
    expect(twice.details).toEqual([{ field: 'files[1].size', message: `is 4, but body ${fresh.digest} has 3 bytes` }]);
    expect((await rejection(t.call('CreateDraft', { artifactId: '11111111-1111-4111-8111-111111111111' }))).code).toBe('WLDB_ERR_NOT_FOUND');
  });

  it("keeps a draft its creator's: another writer of the artifact cannot add to it, upload to it or commit it", async () => {
    const art = await create('two-writers');
    const draft = (await t.callAs<{ data: { id: string } }>('ada', 'CreateDraft', { artifactId: art.id })).data;
    const file = entryOf('f.txt', bytes('ada'));
    for (const [method, req] of [
      ['AddFiles', { artifactId: art.id, draftId: draft.id, files: [file] }],
      ['Commit', { artifactId: art.id, draftId: draft.id }],
    ] as const) {
      expect(await rejection(t.callAs('bob', method, req))).toMatchObject({ code: 'WLDB_ERR_NOT_FOUND', details: [{ field: 'draftId', message: 'no such draft' }] });
    }
    await t.callAs('ada', 'AddFiles', { artifactId: art.id, draftId: draft.id, files: [file] });
    expect((await t.callAs<{ data: Version }>('ada', 'Commit', { artifactId: art.id, draftId: draft.id }).catch((e) => e)).code).toBe('WLDB_ERR_VALIDATION'); // its body is not uploaded
  });

  it('stores large files as chunks and gives back their bytes in order', async () => {
    const art = await create('chunked');
    const parts = [randomBytes(200_000), randomBytes(100_000), randomBytes(1)];
    const whole = Buffer.concat(parts);
    const draft = (await t.call<{ data: { id: string } }>('CreateDraft', { artifactId: art.id })).data;
    const entry = { path: 'model.bin', digest: sha256(whole), size: whole.length, mode: 0, chunks: parts.map((p) => ({ digest: sha256(p), size: p.length })) };
    const { missing } = await t.call<artifacts.v1.AddFilesResponse>('AddFiles', { artifactId: art.id, draftId: draft.id, files: [entry] });
    expect(missing).toEqual(parts.map((p) => sha256(p)));
    for (const p of parts) await t.upload(art.id, draft.id, p);
    await t.call('Commit', { artifactId: art.id, draftId: draft.id });
    expect((await t.download(art.id, 'latest', 'model.bin')).equals(whole)).toBe(true);
  });

  it('moves aliases with history, keeps "latest" its own, and moves it back when the newest version goes', async () => {
    const art = await create('aliased');
    await t.logVersion(art.id, { 'f.txt': bytes('one') });
    await t.logVersion(art.id, { 'f.txt': bytes('two') });
    expect((await t.call<{ data: Version }>('SetAlias', { artifactId: art.id, alias: 'production', version: 'v0' })).data.aliases).toEqual(['production']);
    await t.call('SetAlias', { artifactId: art.id, alias: 'production', version: 'v1' });
    for (const [alias, field] of [['latest', 'alias'], ['v3', 'alias'], ['bad alias', 'alias']] as const) {
      expect((await rejection(t.call('SetAlias', { artifactId: art.id, alias, version: 'v0' }))).details[0]!.field).toBe(field);
    }
    expect((await rejection(t.call('SetAlias', { artifactId: art.id, alias: 'staging', version: 'v9' }))).code).toBe('WLDB_ERR_NOT_FOUND');
    await t.call('DeleteVersion', { artifactId: art.id, version: 'latest' });
    expect((await t.call<{ data: Artifact }>('GetArtifact', { id: art.id })).data).toMatchObject({ latestVersion: 'v0', versionCount: 2 });
    // The next commit is v2: a deleted number is never given again.
    expect((await t.logVersion(art.id, { 'f.txt': bytes('three') })).commit.data.version).toBe('v2');
    await t.call('SetAlias', { artifactId: art.id, alias: 'production', version: 'v2' });
    await t.call('DeleteAlias', { artifactId: art.id, alias: 'production' });
    const history = (await t.call<{ data: artifacts.v1.AliasEvent[] }>('ListAliasHistory', { artifactId: art.id, alias: 'production' })).data;
    expect(history.map((e) => [e.previousVersion, e.version])).toEqual([
      ['', 'v0'],
      ['v0', 'v1'],
      ['v1', ''],
      ['', 'v2'],
      ['v2', ''],
    ]);
    expect((await t.call<{ data: artifacts.v1.AliasEvent[] }>('ListAliasHistory', { artifactId: art.id, alias: 'latest' })).data.map((e) => [e.previousVersion, e.version])).toEqual([
      ['', 'v0'],
      ['v0', 'v1'],
      ['v1', 'v0'],
      ['v0', 'v2'],
    ]);
  });

  it('deletes an artifact with its versions', async () => {
    const art = await create('doomed');
    await t.logVersion(art.id, { 'f.txt': bytes('bye') });
    await t.call('DeleteArtifact', { id: art.id });
    expect((await rejection(t.call('GetArtifact', { id: art.id }))).code).toBe('WLDB_ERR_NOT_FOUND');
    expect((await rejection(t.call('ListVersions', { artifactId: art.id }))).code).toBe('WLDB_ERR_NOT_FOUND');
  });
});

describe.each(blobBackends())('artifact bodies on the $name blob store', (blobBackend) => {
  let t: ArtifactsKernel;
  beforeAll(async () => {
    const blobStore = await blobBackend.create();
    const started = await startArtifactsKernel(metadataBackends()[0]!, { services: { blobStore } });
    t = { ...started, close: async () => (await started.close(), await blobStore.close()) };
    return () => t.close();
  });

  it('round-trips a multi-MiB version and keeps its bodies apart from the root store', async () => {
    const projectId = (await t.kernel.call<{ data: { id: string } }>('wanllmdb.projects.v1.ProjectService/CreateProject', { name: 'blobs' })).data.id;
    const art = (await t.call<{ data: Artifact }>('CreateArtifact', { projectId, name: 'weights', type: 'model' })).data;
    const big = randomBytes(3 * 1024 * 1024 + 7);
    await t.logVersion(art.id, { 'weights.bin': big, 'config.json': bytes('{"layers":2}') });
    expect((await t.download(art.id, 'latest', 'weights.bin')).equals(big)).toBe(true);
    const { coreServices } = await import('@wanllmdb/core');
    expect(await t.kernel.get(coreServices.blobs).exists(sha256(big))).toBe(false);
  });
});
