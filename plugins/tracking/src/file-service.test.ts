import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { checkFilePath, contentTypeOf } from '@wanllmdb/core';
import { metadataBackends } from '@wanllmdb/core/testing';
import type { tracking } from '@wanllmdb/proto';
import { beforeAll, describe, expect, it } from 'vitest';
import { rejection } from './fixtures/rejection.js';
import { useTrackingKernel } from './fixtures/tracking-kernel.js';

type RunFile = tracking.v1.RunFile;
type UploadFileChunk = tracking.v1.UploadFileChunk;

/** `size` pseudo-random bytes in 256 KiB chunks (the first carries run and path), and their sha256. */
function chunksOf(runId: string, path: string, size: number, seed = 1): { chunks: AsyncIterable<UploadFileChunk>; digest: () => string } {
  const hash = createHash('sha256');
  const block = randomBytes(256 * 1024);
  block[0] = seed;
  return {
    digest: () => hash.digest('hex'),
    chunks: (async function* () {
      let sent = 0;
      let first = true;
      while (sent < size || first) {
        const data = block.subarray(0, Math.min(block.length, size - sent));
        hash.update(data);
        yield first ? { runId, path, data } : { runId: '', path: '', data };
        first = false;
        sent += data.length;
        await new Promise((r) => setImmediate(r));
      }
    })(),
  };
}

describe('file paths and content types', () => {
  it('accepts relative paths and refuses traversal, absolute paths and odd characters', () => {
    for (const ok of ['model.pt', 'media/images/sample_1.png', 'a/b/c.d/e', '..hidden', 'x..y/z', 'ünïcode/файл.txt']) expect(checkFilePath(ok)).toBe(ok);
    const bad = ['', '/etc/passwd', '../secret', 'a/../../b', 'a/./b', 'a//b', 'a/', '..', '.', 'C:/Windows/x', 'a\\..\\b', 'a\u0000b', '%2e%2e/x', 'a%2Fb', 'a%5c..', 'x'.repeat(1025), 'line\nbreak'];
    for (const path of bad) expect(() => checkFilePath(path), path).toThrowError(/The file path .* is invalid/);
  });

  it('names content types by extension', () => {
    expect(contentTypeOf('a/b/metrics.CSV')).toBe('text/csv; charset=utf-8');
    expect(contentTypeOf('img.png')).toBe('image/png');
    expect(contentTypeOf('model.pt')).toBe('application/octet-stream');
    expect(contentTypeOf('page.html')).toBe('application/octet-stream');
    expect(contentTypeOf('.png')).toBe('application/octet-stream');
    expect(contentTypeOf('noext')).toBe('application/octet-stream');
  });
});

describe.each(metadataBackends())('RunFileService on $name', (backend) => {
  const t = useTrackingKernel(backend);
  let runId = '';

  const download = async (req: { runId: string; path: string }) => {
    const parts: Buffer[] = [];
    let contentType = '';
    await t.stream<{ contentType: string; data: Uint8Array }>('RunFileService/DownloadFile', req, (msg) => {
      contentType = msg.contentType;
      parts.push(Buffer.from(msg.data));
    });
    return { contentType, bytes: Buffer.concat(parts) };
  };

  beforeAll(async () => {
    runId = (await t.call<{ data: tracking.v1.Run }>('RunService/CreateRun', { projectId: 'files' })).data.id;
  });

  it('round-trips a multi-MiB file through the blob store', async () => {
    const size = 6 * 1024 * 1024 + 123;
    const upload = chunksOf(runId, 'checkpoints/model.bin', size);
    const stored = (await t.call<{ data: RunFile }>('RunFileService/UploadFile', upload.chunks)).data;
    expect(stored).toMatchObject({ path: 'checkpoints/model.bin', size, digest: upload.digest() });
    const got = await download({ runId, path: 'checkpoints/model.bin' });
    expect(got.contentType).toBe('application/octet-stream');
    expect(got.bytes.length).toBe(size);
    expect(createHash('sha256').update(got.bytes).digest('hex')).toBe(stored.digest);
  });

  it('replaces a file uploaded again at the same path, lists files by path, serves empty files', async () => {
    const first = (await t.call<{ data: RunFile }>('RunFileService/UploadFile', chunksOf(runId, 'notes.txt', 1000, 1).chunks)).data;
    const second = (await t.call<{ data: RunFile }>('RunFileService/UploadFile', chunksOf(runId, 'notes.txt', 2000, 2).chunks)).data;
    expect(second.digest).not.toBe(first.digest);
    await t.call('RunFileService/UploadFile', chunksOf(runId, 'empty.json', 0).chunks);
    const list = (await t.call<{ data: RunFile[] }>('RunFileService/ListFiles', { runId })).data;
    expect(list.map((f) => [f.path, f.size])).toEqual([
      ['checkpoints/model.bin', 6 * 1024 * 1024 + 123],
      ['empty.json', 0],
      ['notes.txt', 2000],
    ]);
    const notes = await download({ runId, path: 'notes.txt' });
    expect(notes.contentType).toBe('text/plain; charset=utf-8');
    expect(notes.bytes.length).toBe(2000);
    const empty = await download({ runId, path: 'empty.json' });
    expect(empty).toEqual({ contentType: 'application/json', bytes: Buffer.alloc(0) });
  });

  it('refuses traversal, missing runs and files, and mixed streams', async () => {
    for (const path of ['../../etc/passwd', '/abs', 'a/../b', 'C:\\x']) {
      expect((await rejection(t.call('RunFileService/UploadFile', chunksOf(runId, path, 10).chunks))).details[0]!.field).toBe('path');
      expect((await rejection(download({ runId, path }))).code).toBe('WLDB_ERR_VALIDATION');
    }
    expect((await rejection(t.call('RunFileService/UploadFile', chunksOf(randomUUID(), 'x.txt', 10).chunks))).code).toBe('WLDB_ERR_NOT_FOUND');
    expect((await rejection(t.call('RunFileService/UploadFile', chunksOf('bad-id', 'x.txt', 10).chunks))).code).toBe('WLDB_ERR_INVALID_ID');
    expect((await rejection(t.call('RunFileService/UploadFile', (async function* () {})()))).code).toBe('WLDB_ERR_VALIDATION');
    const mixed = (async function* () {
      yield { runId, path: 'a.txt', data: Buffer.from('a') };
      yield { runId, path: 'b.txt', data: Buffer.from('b') };
    })();
    expect((await rejection(t.call('RunFileService/UploadFile', mixed))).message).toMatch(/another run or path/);
    expect((await t.call<{ data: RunFile[] }>('RunFileService/ListFiles', { runId })).data.map((f) => f.path)).not.toContain('a.txt');
    expect((await rejection(download({ runId, path: 'missing.txt' }))).details[0]!.field).toBe('path');
    expect((await rejection(download({ runId: randomUUID(), path: 'x.txt' }))).code).toBe('WLDB_ERR_NOT_FOUND');
    expect((await rejection(t.call('RunFileService/ListFiles', { runId: randomUUID() }))).code).toBe('WLDB_ERR_NOT_FOUND');
  });

  it('stops a download when the caller goes away', async () => {
    const abort = new AbortController();
    let chunks = 0;
    await t.stream('RunFileService/DownloadFile', { runId, path: 'checkpoints/model.bin' }, () => {
      if (++chunks === 2) abort.abort();
    }, abort.signal);
    expect(chunks).toBeLessThan(10);
  });
});
