import { blobBackends, metadataBackends, rejection } from '@wanllmdb/core/testing';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256, startArtifactsKernel, useArtifactsKernel, type ArtifactsKernel } from '../fixtures/artifacts-kernel.js';
import type { artifacts } from '../gen/index.js';

const DATASETS = 'wanllmdb.artifacts.v1.DatasetService';
const jsonl = (rows: unknown[]) => Buffer.from(rows.map((r) => (typeof r === 'string' ? r : JSON.stringify(r))).join('\n') + '\n');

const alpaca = jsonl([
  { instruction: 'Add 1 and 1', input: '', output: '2' },
  '{"instruction": "broken", "output": ',
  { instruction: 'Name a colour', input: '' },
  { instruction: 'Count', input: 3, output: 'three' },
]);
const sharegpt = jsonl([
  { conversations: [{ from: 'human', value: 'hi' }, { from: 'gpt', value: 'hello' }] },
  { conversations: [] },
]);
const messages = jsonl([{ messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }] }]);
const text = jsonl([{ text: 'one' }, { text: 'three' }]);
const csv = Buffer.from('instruction,input,output\nsay hi,,hello\ntoo,few\n');
const parquet = Buffer.from(
  parquetWriteBuffer({
    columnData: [
      { name: 'text', data: ['a', 'bb', null, 'dddd'], type: 'STRING' },
      { name: 'n', data: [1, 2, 3, 4], type: 'INT32' },
    ],
  }),
);
const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]);

describe.each(metadataBackends())('DatasetService on $name', (backend) => {
  const t = useArtifactsKernel(backend);
  const ds = <T = any>(method: string, req: unknown) => t.kernel.call<T>(`${DATASETS}/${method}`, req);
  const dsAs = <T = any>(who: string, method: string, req: unknown) => {
    const host = t.kernel.rpcHost;
    const principal = { id: who, kind: 'user' as const, name: who, orgId: '', superuser: false, method: 'password' as const };
    return host.invoke(host.method(`${DATASETS}/${method}`)!, req, { transport: 'local', headers: {}, principal }, async () => undefined) as Promise<T>;
  };
  let projectId = '';
  let id = '';

  beforeAll(async () => {
    projectId = (await t.kernel.call<{ data: { id: string } }>('wanllmdb.projects.v1.ProjectService/CreateProject', { name: 'chat-data' })).data.id;
    id = (await ds<{ data: artifacts.v1.Artifact }>('CreateDataset', { projectId, name: 'sft-mix', description: 'instruction data' })).data.id;
    await t.logVersion(id, { 'alpaca.jsonl': alpaca, 'chat/sharegpt.jsonl': sharegpt, 'chat/messages.jsonl': messages, 'text.jsonl': text, 'table.csv': csv, 'table.parquet': parquet, 'README.md': Buffer.from('# SFT mix\nline 2\n'), 'img.png': png });
    await t.logVersion(id, { 'text.jsonl': text }, { aliases: ['clean'] });
  });

  it('creates and lists datasets as artifacts of type dataset, and answers only datasets', async () => {
    const model = (await t.call<{ data: artifacts.v1.Artifact }>('CreateArtifact', { projectId, name: 'a-model', type: 'model' })).data;
    const listed = await ds('ListDatasets', { projectId });
    expect(listed.data.map((a: artifacts.v1.Artifact) => a.name)).toEqual(['sft-mix']);
    expect(listed.meta.total).toBe(1);
    const got = await ds('GetDataset', { id });
    expect(got.data).toMatchObject({ name: 'sft-mix', type: 'dataset', latestVersion: 'v1' });
    expect(got.latest).toMatchObject({ version: 'v1', aliases: ['clean', 'latest'] });
    expect(await rejection(ds('GetDataset', { id: model.id }))).toMatchObject({ code: 'WLDB_ERR_NOT_FOUND', message: expect.stringMatching(/of type "model", not a dataset/) });
    expect((await ds('ListDatasetVersions', { id })).data.map((v: artifacts.v1.Version) => v.version)).toEqual(['v1', 'v0']);
    const empty = (await ds('CreateDataset', { projectId, name: 'empty' })).data;
    expect((await ds('GetDataset', { id: empty.id })).latest).toBeUndefined();
    expect((await rejection(ds('CreateDataset', { projectId, name: 'sft-mix' }))).code).toBe('WLDB_ERR_ALREADY_EXISTS');
  });

  it('validates every data file of a version, auto-detecting each schema, with path, row, line and reason', async () => {
    const report = await ds<artifacts.v1.ValidationReport>('ValidateDataset', { id, version: 'v0' });
    expect(report).toMatchObject({ version: 'v0', valid: false, files: 6, skipped: ['README.md', 'img.png'] });
    const byPath = Object.fromEntries(report.fileResults.map((f) => [f.path, f]));
    expect(byPath['alpaca.jsonl']).toMatchObject({ fileFormat: 'jsonl', format: 'alpaca', rows: 4, invalidRows: 3 });
    expect(byPath['chat/sharegpt.jsonl']).toMatchObject({ format: 'sharegpt', rows: 2, invalidRows: 1 });
    expect(byPath['chat/messages.jsonl']).toMatchObject({ format: 'messages', rows: 1, invalidRows: 0 });
    expect(byPath['text.jsonl']).toMatchObject({ format: 'text', rows: 2, invalidRows: 0 });
    expect(byPath['table.csv']).toMatchObject({ fileFormat: 'csv', format: 'alpaca', rows: 2, invalidRows: 1, columns: ['instruction', 'input', 'output'] });
    expect(byPath['table.parquet']).toMatchObject({ fileFormat: 'parquet', format: 'text', rows: 4, invalidRows: 1, columns: ['text', 'n'] });
    expect(report.errors).toEqual([
      { path: 'alpaca.jsonl', row: 1, line: 2, field: '', reason: expect.stringMatching(/^invalid JSON/) },
      { path: 'alpaca.jsonl', row: 2, line: 3, field: 'output', reason: 'is missing' },
      { path: 'alpaca.jsonl', row: 3, line: 4, field: 'input', reason: 'must be a string, not a number' },
      { path: 'chat/sharegpt.jsonl', row: 1, line: 2, field: 'conversations', reason: expect.stringMatching(/^is empty/) },
      { path: 'table.csv', row: 1, line: 3, field: '', reason: 'has 2 columns, the header has 3' },
      { path: 'table.parquet', row: 2, line: 0, field: 'text', reason: 'is missing' },
    ]);
    expect(report).toMatchObject({ rows: 15, invalidRows: 6, errorCount: 6, errorsTruncated: false });

    // One file, a named schema, a capped list; "latest", "1" and an alias name versions.
    const capped = await ds<artifacts.v1.ValidationReport>('ValidateDataset', { id, version: '0', path: 'alpaca.jsonl', maxErrors: 1 });
    expect(capped).toMatchObject({ files: 1, errorCount: 3, errorsTruncated: true, errors: [expect.objectContaining({ row: 1 })] });
    const asText = await ds<artifacts.v1.ValidationReport>('ValidateDataset', { id, version: 'v0', path: 'chat/messages.jsonl', format: 'text' });
    expect(asText.errors).toEqual([expect.objectContaining({ field: 'text', reason: 'is missing' })]);
    expect(await ds('ValidateDataset', { id, version: 'clean' })).toMatchObject({ version: 'v1', valid: true, files: 1, rows: 2, errors: [] });
    expect(await ds('ValidateDataset', { id })).toMatchObject({ version: 'v1', valid: true });

    expect(await rejection(ds('ValidateDataset', { id, format: 'yaml' }))).toMatchObject({ code: 'WLDB_ERR_VALIDATION', details: [expect.objectContaining({ field: 'format' })] });
    expect(await rejection(ds('ValidateDataset', { id, maxErrors: 0 }))).toMatchObject({ code: 'WLDB_ERR_VALIDATION', details: [expect.objectContaining({ field: 'maxErrors' })] });
    expect(await rejection(ds('ValidateDataset', { id, version: 'v0', path: 'README.md' }))).toMatchObject({ code: 'WLDB_ERR_VALIDATION', details: [{ field: 'path', message: 'not a data file' }] });
    expect(await rejection(ds('ValidateDataset', { id, version: 'v0', path: 'nope.jsonl' }))).toMatchObject({ code: 'WLDB_ERR_NOT_FOUND' });
    expect(await rejection(ds('ValidateDataset', { id, version: 'v9' }))).toMatchObject({ code: 'WLDB_ERR_NOT_FOUND', details: [{ field: 'version' }] });
  });

  it('previews pages of rows, text lines, and says what a binary file is', async () => {
    const first = await ds<artifacts.v1.PreviewResponse>('PreviewDataset', { id, version: 'v0', path: 'alpaca.jsonl', limit: 2 });
    expect(first).toMatchObject({ kind: 'table', fileFormat: 'jsonl', offset: 0, limit: 2, hasMore: true, totalRows: -1, columns: ['instruction', 'input', 'output'] });
    expect(first.rows).toEqual([
      { row: 0, line: 1, data: { instruction: 'Add 1 and 1', input: '', output: '2' }, error: '', raw: '' },
      { row: 1, line: 2, data: {}, error: expect.stringMatching(/^invalid JSON/), raw: '{"instruction": "broken", "output": ' },
    ]);
    const second = await ds<artifacts.v1.PreviewResponse>('PreviewDataset', { id, version: 'v0', path: 'alpaca.jsonl', limit: 2, page: 2 });
    expect(second.rows.map((r) => r.row)).toEqual([2, 3]);
    expect(second).toMatchObject({ offset: 2, hasMore: false });
    const parquetPage = await ds<artifacts.v1.PreviewResponse>('PreviewDataset', { id, version: 'v0', path: 'table.parquet', offset: 1, limit: 2 });
    expect(parquetPage).toMatchObject({ totalRows: 4, hasMore: true, columns: ['text', 'n'] });
    expect(parquetPage.rows.map((r) => r.data)).toEqual([{ text: 'bb', n: 2 }, { text: null, n: 3 }]);
    expect(await ds('PreviewDataset', { id, version: 'v0', path: 'README.md', offset: 1 })).toMatchObject({ kind: 'text', lines: ['line 2'], hasMore: false });
    expect(await ds('PreviewDataset', { id, version: 'v0', path: 'img.png' })).toMatchObject({ kind: 'binary', contentType: 'image/png', size: png.length, rows: [], lines: [] });
    // No path: the first data file by path.
    expect(await ds('PreviewDataset', { id, version: 'v0' })).toMatchObject({ path: 'alpaca.jsonl', kind: 'table' });
    const both = await rejection(ds('PreviewDataset', { id, page: 2, offset: 3, limit: 5000 }));
    expect(both.details.map((d) => d.field)).toEqual(['limit', 'page']);
  });

  it('profiles rows, columns, nulls and text lengths', async () => {
    const profile = await ds<artifacts.v1.ProfileResponse>('ProfileDataset', { id, version: 'v0', path: 'table.parquet' });
    expect(profile).toMatchObject({ version: 'v0', rows: 4 });
    expect(profile.files[0]).toMatchObject({ fileFormat: 'parquet', format: 'text', rows: 4, unreadableRows: 0, textMin: 0, textMax: 4, truncated: false });
    expect(profile.files[0]!.textMean).toBeCloseTo(7 / 4);
    expect(profile.files[0]!.columns).toEqual([
      { name: 'text', nulls: 1, nonNull: 3, types: ['string'], minLength: 1, maxLength: 4, meanLength: 7 / 3 },
      { name: 'n', nulls: 0, nonNull: 4, types: ['number'], minLength: 0, maxLength: 0, meanLength: 0 },
    ]);
    expect(profile.files[0]!.textLengthHistogram).toEqual([
      { min: 0, max: 0, count: 1 },
      { min: 1, max: 1, count: 1 },
      { min: 2, max: 3, count: 1 },
      { min: 4, max: 7, count: 1 },
    ]);
    const all = await ds<artifacts.v1.ProfileResponse>('ProfileDataset', { id, version: 'v0' });
    expect(all.files.map((f) => f.path)).toEqual(['alpaca.jsonl', 'chat/messages.jsonl', 'chat/sharegpt.jsonl', 'table.csv', 'table.parquet', 'text.jsonl']);
    expect(all.rows).toBe(15);
    expect(all.files.find((f) => f.path === 'alpaca.jsonl')).toMatchObject({ rows: 4, unreadableRows: 1 });
    expect(all.files.find((f) => f.path === 'chat/messages.jsonl')).toMatchObject({ textMin: 15, textMax: 15 }); // "be brief" + "hi" + "hello"
    expect((await ds<artifacts.v1.ProfileResponse>('ProfileDataset', { id, version: 'v0', path: 'alpaca.jsonl', maxRows: 2 })).files[0]).toMatchObject({ rows: 2, truncated: true });
  });

  it('keeps row annotations beside a version: create, list by version and path with paging, delete by author or writer', async () => {
    const made = await dsAs<artifacts.v1.AnnotationResponse>('ada', 'CreateAnnotation', { id, version: 'v0', path: 'alpaca.jsonl', row: 2, label: 'missing-output', note: 'drop it' });
    expect(made.data).toMatchObject({ datasetId: id, version: 'v0', path: 'alpaca.jsonl', row: 2, label: 'missing-output', note: 'drop it', author: 'ada' });
    expect(Date.parse(made.data!.createdAt)).not.toBeNaN();
    await dsAs('ada', 'CreateAnnotation', { id, version: 'v0', path: 'alpaca.jsonl', row: 0, label: 'good' });
    await dsAs('bob', 'CreateAnnotation', { id, version: 'v0', path: 'table.csv', row: 1, label: 'bad-row' });
    const latest = await dsAs<artifacts.v1.AnnotationResponse>('bob', 'CreateAnnotation', { id, path: 'text.jsonl', row: 1, label: 'good' });
    expect(latest.data!.version).toBe('v1'); // "latest", resolved when it was made

    const v0 = await ds<artifacts.v1.ListAnnotationsResponse>('ListAnnotations', { id, version: 'v0' });
    expect(v0.data.map((a) => [a.path, a.row, a.label])).toEqual([
      ['alpaca.jsonl', 0, 'good'],
      ['alpaca.jsonl', 2, 'missing-output'],
      ['table.csv', 1, 'bad-row'],
    ]);
    expect(v0.meta).toMatchObject({ total: 3 });
    const paged = await ds<artifacts.v1.ListAnnotationsResponse>('ListAnnotations', { id, version: 'v0', path: 'alpaca.jsonl', page: 2, pageSize: 1 });
    expect(paged.data.map((a) => a.row)).toEqual([2]);
    expect(paged.meta).toMatchObject({ total: 2, page: 2, pageSize: 1, totalPages: 2 });
    expect((await ds<artifacts.v1.ListAnnotationsResponse>('ListAnnotations', { id })).meta!.total).toBe(4);

    // Not in the manifest: the version's digest and files are what they were.
    const files = await t.call<artifacts.v1.ListVersionFilesResponse>('ListVersionFiles', { artifactId: id, version: 'v0' });
    expect(files.data.map((f) => f.path)).not.toContain(expect.stringMatching(/annotation/));

    const bad = await rejection(dsAs('ada', 'CreateAnnotation', { id, version: 'v0', path: '', row: -1, label: '' }));
    expect(bad.details.map((d) => d.field)).toEqual(['path', 'row', 'label']);
    expect(await rejection(dsAs('ada', 'CreateAnnotation', { id, version: 'v0', path: 'nope.jsonl', label: 'x' }))).toMatchObject({ code: 'WLDB_ERR_NOT_FOUND', details: [{ field: 'path' }] });

    // The author deletes their own; deleting another's needs artifacts:write (granted here: no auth plugin; the HTTP suite denies a viewer).
    await dsAs('ada', 'DeleteAnnotation', { id, annotationId: made.data!.id });
    expect(await rejection(dsAs('ada', 'DeleteAnnotation', { id, annotationId: made.data!.id }))).toMatchObject({ code: 'WLDB_ERR_NOT_FOUND' });
    expect((await ds<artifacts.v1.ListAnnotationsResponse>('ListAnnotations', { id, version: 'v0' })).meta!.total).toBe(2);

    // Deleting a version takes its annotations with it.
    await t.call('DeleteVersion', { artifactId: id, version: 'v1' });
    expect((await ds<artifacts.v1.ListAnnotationsResponse>('ListAnnotations', { id })).data.map((a) => a.version)).toEqual(['v0', 'v0']);
  });

  it('answers the lineage of a version of the dataset (latest by default)', async () => {
    const lineage = await ds<artifacts.v1.LineageResponse>('GetDatasetLineage', { id });
    expect(lineage.nodes).toEqual([expect.objectContaining({ kind: 'version', artifactId: id, version: 'v0' })]);
    expect(lineage.edges).toEqual([]);
  });
});

/** Files split into chunks are read across chunk bounds, from the folder and from S3 (range reads for Parquet). */
describe.each(blobBackends())('dataset files in chunks on the $name blob store', (blobBackend) => {
  let t: ArtifactsKernel;
  let close: () => Promise<void> = async () => {};
  beforeAll(async () => {
    const blobStore = await blobBackend.create();
    t = await startArtifactsKernel(metadataBackends()[0]!, { services: { blobStore } });
    close = async () => {
      await t.close();
      await blobStore.close();
    };
  });
  afterAll(() => close());

  /** Logs one file as chunks of `size` bytes. */
  async function logChunked(artifactId: string, path: string, bytes: Buffer, size: number) {
    const chunks: Buffer[] = [];
    for (let at = 0; at < bytes.length; at += size) chunks.push(bytes.subarray(at, at + size));
    const draft = (await t.call<{ data: artifacts.v1.Draft }>('CreateDraft', { artifactId })).data;
    const entry = { path, digest: sha256(bytes), size: bytes.length, mode: 0o644, chunks: chunks.map((c) => ({ digest: sha256(c), size: c.length })) };
    const { missing } = await t.call<artifacts.v1.AddFilesResponse>('AddFiles', { artifactId, draftId: draft.id, files: [entry] });
    for (const c of chunks) if (missing.includes(sha256(c))) await t.upload(artifactId, draft.id, c);
    return (await t.call<artifacts.v1.CommitResponse>('Commit', { artifactId, draftId: draft.id })).data!;
  }

  it('validates, previews and profiles JSONL and Parquet bodies split into chunks', async () => {
    const projectId = (await t.kernel.call<{ data: { id: string } }>('wanllmdb.projects.v1.ProjectService/CreateProject', { name: 'chunks' })).data.id;
    const id = (await t.kernel.call<{ data: artifacts.v1.Artifact }>(`${DATASETS}/CreateDataset`, { projectId, name: 'big' })).data.id;
    const n = 3000;
    const lines = jsonl(Array.from({ length: n }, (_, i) => (i === 2500 ? { text: '' } : { text: `row ${i} ${'x'.repeat(i % 50)}` })));
    await logChunked(id, 'train.jsonl', lines, 4099);
    const report = await t.kernel.call<artifacts.v1.ValidationReport>(`${DATASETS}/ValidateDataset`, { id });
    expect(report).toMatchObject({ rows: n, invalidRows: 1, errors: [{ path: 'train.jsonl', row: 2500, line: 2501, field: 'text', reason: 'is empty' }] });
    const page = await t.kernel.call<artifacts.v1.PreviewResponse>(`${DATASETS}/PreviewDataset`, { id, offset: 2998, limit: 5 });
    expect(page.rows.map((r) => r.data)).toEqual([{ text: `row 2998 ${'x'.repeat(2998 % 50)}` }, { text: `row 2999 ${'x'.repeat(2999 % 50)}` }]);

    const pq = Buffer.from(parquetWriteBuffer({ columnData: [{ name: 'text', data: Array.from({ length: n }, (_, i) => `t${i}`), type: 'STRING' }], rowGroupSize: 1000 }));
    await logChunked(id, 'train.parquet', pq, 1021);
    const pqPage = await t.kernel.call<artifacts.v1.PreviewResponse>(`${DATASETS}/PreviewDataset`, { id, path: 'train.parquet', offset: 1999, limit: 2 });
    expect(pqPage.rows.map((r) => r.data)).toEqual([{ text: 't1999' }, { text: 't2000' }]);
    const profile = await t.kernel.call<artifacts.v1.ProfileResponse>(`${DATASETS}/ProfileDataset`, { id, path: 'train.parquet' });
    expect(profile.files[0]).toMatchObject({ rows: n, columns: [{ name: 'text', nulls: 0, nonNull: n }] });
  });
});
