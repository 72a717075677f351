import { jsonCall, metadataBackends, rejection } from '@wanllmdb/core/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { entryOf, sha256, useArtifactsKernel } from './fixtures/artifacts-kernel.js';
import type { artifacts } from './gen/index.js';
import { canonicalManifest } from './manifest.js';

type Artifact = artifacts.v1.Artifact;
type FileEntry = artifacts.v1.FileEntry;

const s3Ref = (path: string, key: string, etag: string, size = 100, versionId = ''): FileEntry => ({
  path,
  digest: '',
  size,
  mode: 0,
  chunks: [],
  ref: { uri: `s3://bucket/${key}`, checksum: 'etag', etag, versionId, sha256: '', lastModified: '2026-01-02T03:04:05.000Z' },
});
const fileRef = (path: string, bytes: Buffer): FileEntry => ({
  path,
  digest: '',
  size: bytes.length,
  mode: 0,
  chunks: [],
  ref: { uri: `file:///data/${path}`, checksum: 'sha256', etag: '', versionId: '', sha256: sha256(bytes), lastModified: '' },
});

/** References on the server: recorded, never uploaded, part of the version's digest, diffed, listed, refused for download, checked at the edge. */
describe.each(metadataBackends())('artifact references on $name', (backend) => {
  const t = useArtifactsKernel(backend, { listen: true });
  let projectId = '';
  const create = async (name: string) => (await t.call<{ data: Artifact }>('CreateArtifact', { projectId, name, type: 'dataset' })).data;

  /** A draft with `entries` (plus uploaded `bodies`), committed. */
  async function commit(artifactId: string, entries: FileEntry[], bodies: Buffer[] = []) {
    const draft = (await t.call<artifacts.v1.DraftResponse>('CreateDraft', { artifactId })).data!;
    const added = await t.call<artifacts.v1.AddFilesResponse>('AddFiles', { artifactId, draftId: draft.id, files: entries });
    for (const b of bodies) if (added.missing.includes(sha256(b))) await t.upload(artifactId, draft.id, b);
    return { missing: added.missing, commit: await t.call<artifacts.v1.CommitResponse>('Commit', { artifactId, draftId: draft.id }) };
  }

  beforeAll(async () => {
    projectId = (await t.kernel.call<{ data: { id: string } }>('wanllmdb.projects.v1.ProjectService/CreateProject', { name: 'refs' })).data.id;
  });

  it('records references beside uploaded files: never asked for, listed with what was recorded, refused by DownloadFile with the URI to fetch', async () => {
    const art = await create('mixed');
    const body = Buffer.from('an uploaded file');
    const local = Buffer.from('a local file, referenced');
    const entries = [entryOf('uploaded.txt', body), s3Ref('extra/a.bin', 'extra/a.bin', '"etag-a"', 100, 'v-123'), fileRef('local.txt', local)];
    const { missing, commit: done } = await commit(art.id, entries, [body]);
    expect(missing).toEqual([sha256(body)]); // references need no upload
    expect(done.data).toMatchObject({ version: 'v0', fileCount: 3, size: body.length + 100 + local.length });
    expect(done.data!.digest).toBe(
      canonicalManifest(
        entries.map((e) => ({ path: e.path, digest: e.digest, size: e.size, mode: e.mode, chunks: [], ...(e.ref ? { ref: e.ref as never } : {}) })),
      ).digest,
    );

    const listed = await t.call<artifacts.v1.ListVersionFilesResponse>('ListVersionFiles', { artifactId: art.id, version: 'v0' });
    expect(listed.data).toEqual([
      { path: 'extra/a.bin', digest: '', size: 100, mode: 0, chunks: [], ref: entries[1]!.ref },
      { path: 'local.txt', digest: '', size: local.length, mode: 0, chunks: [], ref: entries[2]!.ref },
      { path: 'uploaded.txt', digest: sha256(body), size: body.length, mode: 0o644, chunks: [] },
    ]);
    // Over HTTP the same, in JSON form.
    const http = await jsonCall(`http://127.0.0.1:${t.ports!.httpPort}`, 'GET', `/api/v1/artifacts/${art.id}/versions/v0/files?prefix=extra/`, undefined);
    expect(http.status).toBe(200);
    expect(http.body.data).toEqual([{ path: 'extra/a.bin', digest: '', size: 100, mode: 0, chunks: [], ref: { uri: 's3://bucket/extra/a.bin', checksum: 'etag', etag: '"etag-a"', versionId: 'v-123', sha256: '', lastModified: '2026-01-02T03:04:05.000Z' } }]);

    expect(await t.download(art.id, 'v0', 'uploaded.txt')).toEqual(body);
    const refused = await rejection(t.download(art.id, 'v0', 'extra/a.bin'));
    expect(refused.code).toBe('WLDB_ERR_BLOB_NOT_FOUND');
    expect(refused.message).toContain('s3://bucket/extra/a.bin');
    expect(refused.details).toContainEqual({ field: 'ref.uri', message: 's3://bucket/extra/a.bin' });

    // Over HTTP: a web reference is a 302 to its URL; any other is the same coded 404.
    const web = await create('web');
    await commit(web.id, [{ path: 'page.html', digest: '', size: 3, mode: 0, chunks: [], ref: { uri: 'https://example.com/page.html', checksum: 'etag', etag: '"p"', versionId: '', sha256: '', lastModified: '' } }]);
    const base = `http://127.0.0.1:${t.ports!.httpPort}/api/v1/artifacts`;
    const moved = await fetch(`${base}/${web.id}/versions/v0/files:download?path=page.html`, { redirect: 'manual' });
    expect(moved.status).toBe(302);
    expect(moved.headers.get('location')).toBe('https://example.com/page.html');
    const notMoved = await fetch(`${base}/${web.id}/versions/v0/files:download?path=page.html&noRedirect=true`, { redirect: 'manual' });
    expect(notMoved.status).toBe(404);
    expect((await notMoved.json()).error).toMatchObject({ code: 'WLDB_ERR_BLOB_NOT_FOUND' });
    const s3Over = await fetch(`${base}/${art.id}/versions/v0/files:download?path=extra/a.bin`, { redirect: 'manual' });
    expect(s3Over.status).toBe(404);
    expect((await s3Over.json()).error).toMatchObject({ code: 'WLDB_ERR_BLOB_NOT_FOUND', details: [{ field: 'path' }, { field: 'ref.uri', message: 's3://bucket/extra/a.bin' }] });

    // A version of references only.
    const only = await create('refs-only');
    const r = await commit(only.id, [s3Ref('x', 'x', '"x"')]);
    expect(r.missing).toEqual([]);
    expect(r.commit.data).toMatchObject({ version: 'v0', fileCount: 1, size: 100 });
  });

  it('puts the recorded fields in the version digest: the same reference makes no version, a changed ETag makes one and diffs as changed', async () => {
    const art = await create('moving');
    const v0 = (await commit(art.id, [s3Ref('a.bin', 'a.bin', '"one"'), s3Ref('b.bin', 'b.bin', '"b"', 7)])).commit;
    expect(v0.created).toBe(true);
    const same = (await commit(art.id, [s3Ref('a.bin', 'a.bin', '"one"'), s3Ref('b.bin', 'b.bin', '"b"', 7)])).commit;
    expect(same).toMatchObject({ created: false, data: { id: v0.data!.id } });
    const v1 = (await commit(art.id, [s3Ref('a.bin', 'a.bin', '"two"', 120), s3Ref('b.bin', 'b.bin', '"b"', 7), s3Ref('c.bin', 'c.bin', '"c"', 3)])).commit;
    expect(v1).toMatchObject({ created: true, data: { version: 'v1' } });
    expect(v1.data!.digest).not.toBe(v0.data!.digest);
    // Only the version id moving (same ETag, a new S3 version) is a change too.
    const v2 = (await commit(art.id, [s3Ref('a.bin', 'a.bin', '"two"', 120, 'ver-2'), s3Ref('b.bin', 'b.bin', '"b"', 7), s3Ref('c.bin', 'c.bin', '"c"', 3)])).commit;
    expect(v2).toMatchObject({ created: true, data: { version: 'v2' } });

    const diff = await t.call<artifacts.v1.DiffVersionsResponse>('DiffVersions', { artifactId: art.id, from: 'v0', to: 'v1' });
    expect(diff).toMatchObject({ added: 1, removed: 0, changed: 1, sizeDelta: 20 + 3 });
    expect(diff.data.map((d) => [d.path, d.status, d.fromSize, d.toSize])).toEqual([
      ['a.bin', 'changed', 100, 120],
      ['c.bin', 'added', 0, 3],
    ]);
    expect((await t.call<artifacts.v1.DiffVersionsResponse>('DiffVersions', { artifactId: art.id, from: 'v1', to: 'v2' })).data.map((d) => [d.path, d.status])).toEqual([['a.bin', 'changed']]);

    // A path that was a stored file and becomes a reference (same size) is changed as well.
    const swap = await create('swap');
    const bytes = Buffer.from('0123456789');
    await commit(swap.id, [entryOf('f.txt', bytes)], [bytes]);
    await commit(swap.id, [{ ...fileRef('f.txt', bytes), mode: 0o644 }]);
    expect((await t.call<artifacts.v1.DiffVersionsResponse>('DiffVersions', { artifactId: swap.id, from: 'v0', to: 'v1' })).data.map((d) => [d.path, d.status])).toEqual([['f.txt', 'changed']]);
  });

  it('leaves references out of garbage collection: nothing of theirs is collected, the version stays whole', async () => {
    const art = await create('gc');
    const body = Buffer.from('kept body');
    await commit(art.id, [entryOf('kept.txt', body), s3Ref('ref.bin', 'ref.bin', '"r"')], [body]);
    const gc = await t.call<artifacts.v1.CollectGarbageResponse>('CollectGarbage', { dryRun: false });
    expect(gc.deleted).toBe(0);
    expect(await t.download(art.id, 'latest', 'kept.txt')).toEqual(body);
    expect((await t.call<artifacts.v1.ListVersionFilesResponse>('ListVersionFiles', { artifactId: art.id, version: 'latest' })).data.map((f) => f.path)).toEqual(['kept.txt', 'ref.bin']);
  });

  it('refuses bad references at the edge, each problem named by its field (in process and as HTTP 400)', async () => {
    const art = await create('bad');
    const draft = (await t.call<artifacts.v1.DraftResponse>('CreateDraft', { artifactId: art.id })).data!;
    const ref = (over: Partial<artifacts.v1.FileReference>, entry: Partial<FileEntry> = {}): FileEntry => ({ ...s3Ref('ok.bin', 'ok.bin', '"e"'), ...entry, ref: { ...s3Ref('', 'ok.bin', '"e"').ref!, ...over } });
    const files = [
      ref({ uri: 'ftp://host/file' }),
      ref({ uri: 'javascript:alert(1)' }, { path: 'b' }),
      ref({ uri: 'https://user:secret@example.com/x' }, { path: 'c' }),
      ref({}, { path: 'd', digest: sha256('x') }),
      ref({}, { path: 'e', chunks: [{ digest: sha256('x'), size: 100 }] }),
      ref({}, { path: '../etc/passwd' }),
      ref({ uri: 's3://bucket/dir/' }, { path: 'g' }),
      ref({ checksum: 'sha256', sha256: '' }, { path: 'h' }),
      ref({ uri: 'not a uri' }, { path: 'i' }),
      ref({ uri: 'file://otherhost/x' }, { path: 'j' }),
      ref({ uri: 'https://example.com/k', checksum: 'mtime', lastModified: '2026-01-01T00:00:00Z' }, { path: 'k' }), // only file:// has a checkable mtime
      ref({ uri: 'https://example.com/l', versionId: 'v1' }, { path: 'l' }), // only S3 has object versions
    ];
    const bad = await rejection(t.call('AddFiles', { artifactId: art.id, draftId: draft.id, files }));
    expect(bad.code).toBe('WLDB_ERR_VALIDATION');
    expect(bad.details.map((d) => d.field)).toEqual([
      'files[0].ref.uri',
      'files[1].ref.uri',
      'files[2].ref.uri',
      'files[3].digest',
      'files[4].chunks',
      'files[5].path',
      'files[6].ref.uri',
      'files[7].ref.sha256',
      'files[8].ref.uri',
      'files[9].ref.uri',
      'files[10].ref.checksum',
      'files[11].ref.versionId',
    ]);
    expect(bad.details[0]!.message).toMatch(/s3:\/\/, file:\/\/, http:\/\/ or https:\/\//);
    // A checksum kind outside the closed set.
    const kind = await rejection(t.call('AddFiles', { artifactId: art.id, draftId: draft.id, files: [ref({ checksum: 'md5' as never })] }));
    expect(kind).toMatchObject({ code: 'WLDB_ERR_VALIDATION', details: [{ field: 'files[0].ref.checksum' }] });
    // Nothing of the refused calls is in the draft.
    expect((await t.call<artifacts.v1.AddFilesResponse>('AddFiles', { artifactId: art.id, draftId: draft.id, files: [] })).data).toMatchObject({ fileCount: 0 });

    const http = await jsonCall(`http://127.0.0.1:${t.ports!.httpPort}`, 'POST', `/api/v1/artifacts/${art.id}/files`, undefined, { draftId: draft.id, files: [ref({ uri: 'gopher://x/y' })] });
    expect(http.status).toBe(400);
    expect(http.body.error).toMatchObject({ code: 'WLDB_ERR_VALIDATION', details: [{ field: 'files[0].ref.uri' }] });
  });
});
