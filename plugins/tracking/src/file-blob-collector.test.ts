import { createHash, randomBytes } from 'node:crypto';
import { createLogger, localCallContext, newId, type BlobStore, type Clock, type MetadataStore } from '@wanllmdb/core';
import { blobBackends, metadataBackends } from '@wanllmdb/core/testing';
import type { tracking } from '@wanllmdb/proto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { FileBlobCollector } from './file-blob-collector.js';
import { FileRepository } from './file-repository.js';
import { fileHandlers } from './file-service.js';
import { rejection } from './fixtures/rejection.js';
import { startTrackingKernel, type TrackingKernel } from './fixtures/tracking-kernel.js';
import { trackingMigrations } from './migrations.js';
import { RunRepository } from './run-repository.js';
import { trackingApiRef } from './tracking-api.js';

type RunFile = tracking.v1.RunFile;
type UploadFileChunk = tracking.v1.UploadFileChunk;

const STALE_MS = 60_000;
const logger = createLogger('silent');
const combos = metadataBackends().flatMap((meta) => blobBackends().map((blob) => ({ meta, blob, name: `${meta.name} + ${blob.name}` })));

/** An upload's chunks: the first names run and path. */
async function* chunks(runId: string, path: string, bytes: Buffer): AsyncGenerator<UploadFileChunk> {
  const half = Math.ceil(bytes.length / 2);
  yield { runId, path, data: bytes.subarray(0, half) };
  yield { runId: '', path: '', data: bytes.subarray(half) };
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A gate a test opens: `wait()` resolves once `open()` is called. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { wait: () => opened, open };
}

/**
 * The blob store, with a pause a test can place after a put has stored (or
 * found) its object and before the upload records its row: the window in
 * which a collector must not delete that object.
 */
function pausable(inner: BlobStore): BlobStore & { pauseNextPut(): { reached: Promise<void>; resume: () => void } } {
  let pause: { reached: () => void; resume: Promise<void> } | undefined;
  return {
    kind: inner.kind,
    async put(source, opts) {
      const info = await inner.put(source, opts);
      const p = pause;
      pause = undefined;
      if (p) {
        p.reached();
        await p.resume;
      }
      return info;
    },
    get: (d, r) => inner.get(d, r),
    stat: (d) => inner.stat(d),
    exists: (d) => inner.exists(d),
    delete: (d) => inner.delete(d),
    list: (p) => inner.list(p),
    close: () => inner.close(),
    pauseNextPut() {
      const reached = gate();
      const resume = gate();
      pause = { reached: reached.open, resume: resume.wait() };
      return { reached: reached.wait(), resume: resume.open };
    },
  };
}

/** The collector and the upload path on one database and one blob store, without a kernel: nothing collects unless a test asks. */
describe.each(combos)('run-file blob collection on $name', ({ meta, blob }) => {
  let db: MetadataStore;
  let blobs: ReturnType<typeof pausable>;
  let files: FileRepository;
  let runs: RunRepository;
  let collector: FileBlobCollector;
  let handlers: ReturnType<typeof fileHandlers>;
  let now = 1_700_000_000_000;
  const clock: Clock = { now: () => now };

  beforeAll(async () => {
    db = await meta.create();
    await db.migrate('tracking', trackingMigrations);
    blobs = pausable(await blob.create());
    files = new FileRepository(db);
    runs = new RunRepository(db);
    collector = new FileBlobCollector(files, blobs, clock, logger, { intervalMs: 3_600_000, staleUploadMs: STALE_MS });
    handlers = fileHandlers({ files, runs, blobs, clock });
  });
  afterAll(async () => {
    await blobs?.close();
    await db?.close();
  });

  const newRun = async () => (await runs.insert({ id: newId(), projectId: 'p', name: 'r', group: '', jobType: '', tags: [], notes: '', config: {}, createdBy: 'u', now })).id;
  const upload = (runId: string, path: string, bytes: Buffer) =>
    handlers.uploadFile(chunks(runId, path, bytes), localCallContext('wanllmdb.tracking.v1.RunFileService/UploadFile', logger)) as Promise<{ data: RunFile }>;
  const download = async (runId: string, path: string) => {
    const parts: Buffer[] = [];
    await handlers.downloadFile({ runId, path }, localCallContext('wanllmdb.tracking.v1.RunFileService/DownloadFile', logger), async (m) => void parts.push(Buffer.from(m.data)));
    return Buffer.concat(parts);
  };

  it('deletes the blob of a replaced file, but not while another file has the same bytes', async () => {
    const [a, b] = [await newRun(), await newRun()];
    const x = randomBytes(3000);
    const y = randomBytes(2000);
    await upload(a, 'model.bin', x);
    await upload(b, 'copy.bin', x); // the same content: one blob
    await upload(a, 'model.bin', x); // the same bytes again: nothing released
    expect(await collector.collect()).toEqual({ deleted: 0, kept: 0, busy: 0 });
    await upload(a, 'model.bin', y);
    expect(await collector.collect()).toEqual({ deleted: 0, kept: 1, busy: 0 });
    expect(await blobs.exists(sha256(x))).toBe(true);
    expect(await download(b, 'copy.bin')).toEqual(x);
    await runs.delete(b); // its file rows go by cascade, and release their blobs
    expect(await collector.collect()).toEqual({ deleted: 1, kept: 0, busy: 0 });
    expect(await blobs.exists(sha256(x))).toBe(false);
    expect(await blobs.exists(sha256(y))).toBe(true);
    await runs.delete(a);
    expect(await collector.collect()).toEqual({ deleted: 1, kept: 0, busy: 0 });
    expect(await blobs.exists(sha256(y))).toBe(false);
    expect(await collector.collect()).toEqual({ deleted: 0, kept: 0, busy: 0 });
  });

  it('never deletes a blob an upload of the same bytes has found and not yet recorded', async () => {
    const [a, b] = [await newRun(), await newRun()];
    const x = randomBytes(4000);
    await upload(a, 'x.bin', x);
    const paused = blobs.pauseNextPut();
    const uploading = upload(b, 'again.bin', x);
    await paused.reached; // the store has found the object; the row is not written yet
    await runs.delete(a); // the only row referencing x goes
    expect(await collector.collect()).toEqual({ deleted: 0, kept: 0, busy: 1 });
    expect(await blobs.exists(sha256(x))).toBe(true);
    paused.resume();
    expect((await uploading).data.digest).toBe(sha256(x));
    expect(await collector.collect()).toEqual({ deleted: 0, kept: 1, busy: 0 });
    expect(await download(b, 'again.bin')).toEqual(x);
  });

  it('stores the blob afresh when the collector deleted it before the upload looked', async () => {
    const [a, b] = [await newRun(), await newRun()];
    const x = randomBytes(1500);
    await upload(a, 'x.bin', x);
    await runs.delete(a);
    expect((await collector.collect()).deleted).toBe(1);
    await upload(b, 'x.bin', x);
    expect(await download(b, 'x.bin')).toEqual(x);
  });

  it('releases the blob of an upload that failed after storing it', async () => {
    const a = await newRun();
    const x = randomBytes(1000);
    const paused = blobs.pauseNextPut();
    const uploading = upload(a, 'x.bin', x);
    await paused.reached;
    await runs.delete(a); // the run goes while its file uploads: the row cannot be written
    paused.resume();
    expect((await rejection(uploading)).code).toBe('WLDB_ERR_NOT_FOUND');
    expect(await collector.collect()).toEqual({ deleted: 1, kept: 0, busy: 0 });
    expect(await blobs.exists(sha256(x))).toBe(false);
  });

  it('releases the blob of an upload that died after pinning it, once its pin is stale', async () => {
    const x = randomBytes(800);
    const stored = await blobs.put(x);
    await files.pinUpload(newId(), stored.digest, now); // a process that pinned, stored and was killed
    await files.abandonUpload(newId(), stored.digest, now); // any release of the digest meanwhile
    expect(await collector.collect()).toEqual({ deleted: 0, kept: 0, busy: 1 });
    now += STALE_MS + 1;
    expect(await collector.collect()).toEqual({ deleted: 1, kept: 0, busy: 0 });
    expect(await blobs.exists(stored.digest)).toBe(false);
    // A stale pin alone (no release was ever queued) is released too.
    const y = await blobs.put(randomBytes(700));
    await files.pinUpload(newId(), y.digest, now);
    now += STALE_MS + 1;
    expect((await collector.collect()).deleted).toBe(1);
    expect(await blobs.exists(y.digest)).toBe(false);
  });

  it('is idempotent: a blob already gone (a crash after the delete) and collectors racing each other', async () => {
    const ids = await Promise.all(Array.from({ length: 6 }, () => newRun()));
    const contents = ids.map(() => randomBytes(600));
    for (const [i, id] of ids.entries()) await upload(id, 'f.bin', contents[i]!);
    for (const id of ids) await runs.delete(id);
    await blobs.delete(sha256(contents[0]!)); // deleted by a collector that crashed before dropping the release
    const other = new FileBlobCollector(new FileRepository(db), blobs, clock, logger, { intervalMs: 3_600_000, staleUploadMs: STALE_MS });
    const [one, two] = await Promise.all([collector.collect(), other.collect()]);
    expect(one.deleted + two.deleted).toBe(6);
    for (const c of contents) expect(await blobs.exists(sha256(c))).toBe(false);
    expect(await collector.collect()).toEqual({ deleted: 0, kept: 0, busy: 0 });
  });
});

/** The plugin collects by itself after each change: replaced files, deleted runs, deleted projects. */
describe.each(combos)('run-file blob collection in the tracking plugin on $name', ({ meta, blob }) => {
  let t: TrackingKernel;
  let blobs: BlobStore;

  beforeAll(async () => {
    blobs = await blob.create();
    t = await startTrackingKernel(meta, { services: { blobStore: blobs } });
  });
  afterAll(async () => {
    await t?.close();
    await blobs?.close();
  });

  const newRun = async (projectId: string) => (await t.call<{ data: tracking.v1.Run }>('RunService/CreateRun', { projectId })).data;
  const upload = async (runId: string, path: string, bytes: Buffer) => (await t.call<{ data: RunFile }>('RunFileService/UploadFile', chunks(runId, path, bytes))).data.digest;
  const gone = (digest: string) => vi.waitFor(async () => expect(await blobs.exists(digest)).toBe(false), { timeout: 10_000, interval: 20 });

  it('after a file is replaced, a run is deleted and a project is deleted', async () => {
    const run = await newRun('collect-a');
    const first = await upload(run.id, 'ckpt.bin', randomBytes(5000));
    const second = await upload(run.id, 'ckpt.bin', randomBytes(5000));
    await gone(first);
    await t.call('RunService/DeleteRun', { id: run.id });
    await gone(second);

    const [r1, r2] = [await newRun('collect-b'), await newRun('collect-b')];
    const digests = [await upload(r1.id, 'a.bin', randomBytes(100)), await upload(r2.id, 'b.bin', randomBytes(100))];
    const kept = await upload((await newRun('collect-c')).id, 'keep.bin', randomBytes(100));
    await t.kernel.call('wanllmdb.projects.v1.ProjectService/DeleteProject', { id: r1.projectId });
    for (const d of digests) await gone(d);
    expect(await blobs.exists(kept)).toBe(true);
    expect(await t.kernel.get(trackingApiRef).collectFileBlobs()).toEqual({ deleted: 0, kept: 0, busy: 0 });
  });
});
