import { createHash } from 'node:crypto';
import { checkFilePath, contentTypeOf, Errors, newId, type BlobStore, type CallContext, type Clock } from '@wanllmdb/core';
import type { tracking } from '@wanllmdb/proto';
import type { FileRepository } from './file-repository.js';
import { runId, runNotFound } from './request-checks.js';
import type { RunRepository } from './run-repository.js';

type Handlers = tracking.v1.RunFileServiceHandlers<CallContext>;
type UploadFileChunk = tracking.v1.UploadFileChunk;

const emptyChunkStream = () =>
  Errors.VALIDATION('The upload carried no chunks. Send at least one chunk; the first names runId and path.', [{ field: 'runId', message: 'no chunks' }]);

export interface FileServiceDeps {
  files: FileRepository;
  runs: RunRepository;
  blobs: BlobStore;
  clock: Clock;
  /** Told when an upload released a blob (it replaced a file with other bytes, or it failed after storing its blob). */
  released?: () => void;
}

export function fileHandlers(deps: FileServiceDeps): Handlers {
  const { files, runs, blobs, clock } = deps;

  return {
    async uploadFile(requests, ctx) {
      const chunks = requests[Symbol.asyncIterator]();
      const first = await chunks.next();
      if (first.done) throw emptyChunkStream();
      const head: UploadFileChunk = first.value;
      const id = runId(head.runId, 'runId');
      await ctx.authorize('runs:write', [{ type: 'run', id }]); // the stream names its run only in its first message
      const path = checkFilePath(head.path);
      if (!(await runs.projectOf(id))) throw runNotFound(id, 'runId');

      // The bytes go straight into the BlobStore, chunk by chunk: a file is never whole in memory.
      const uploadId = newId();
      const hash = createHash('sha256');
      let pinned: string | undefined;
      async function* bytes(): AsyncGenerator<Uint8Array> {
        if (head.data?.length) {
          hash.update(head.data);
          yield head.data;
        }
        for (let n = 1; ; n++) {
          if (ctx.signal.aborted) throw Errors.VALIDATION('The upload was cancelled before its last chunk; nothing was stored.');
          const next = await chunks.next();
          if (next.done) break;
          const chunk = next.value;
          if ((chunk.runId && chunk.runId.toLowerCase() !== id) || (chunk.path && chunk.path !== path)) {
            throw Errors.VALIDATION(`Chunk ${n} of the upload names another run or path than the first chunk. Upload one file per stream.`, [
              { field: chunk.path && chunk.path !== path ? 'path' : 'runId', message: 'differs from the first chunk' },
            ]);
          }
          if (chunk.data?.length) {
            hash.update(chunk.data);
            yield chunk.data;
          }
        }
        // The last byte is read and the blob store has not yet looked for an object with this digest:
        // pin it now, so that collecting an earlier file with the same bytes cannot delete that object
        // between the store finding it and our row (FileRepository has the protocol).
        pinned = hash.digest('hex');
        await files.pinUpload(uploadId, pinned, clock.now());
      }
      try {
        const blob = await blobs.put(bytes());
        if (blob.digest !== pinned) throw new Error(`the blob store stored ${blob.digest}, the upload hashed ${pinned}`);
        const stored = await files.put(id, { path, digest: blob.digest, size: blob.size }, uploadId, clock.now());
        if (stored.replaced) deps.released?.();
        return { data: stored.file };
      } catch (err) {
        if (pinned) {
          // Nothing may reference the blob now; a pin left behind (the database is down) turns stale and is released later.
          await files.abandonUpload(uploadId, pinned, clock.now()).then(deps.released, () => undefined);
        }
        if (Errors.DB_CONSTRAINT_VIOLATION.is(err)) throw runNotFound(id, 'runId'); // deleted while uploading
        throw err;
      }
    },

    async listFiles(req) {
      const id = runId(req.runId, 'runId');
      if (!(await runs.projectOf(id))) throw runNotFound(id, 'runId');
      return { data: await files.list(id) };
    },

    async downloadFile(req, ctx, send) {
      const id = runId(req.runId, 'runId');
      const path = checkFilePath(req.path);
      const file = await files.get(id, path);
      if (!file) {
        if (!(await runs.projectOf(id))) throw runNotFound(id, 'runId');
        throw Errors.NOT_FOUND(`Run ${id} has no file ${JSON.stringify(path)}. List its files with GET /api/v1/runs/${id}/files.`, [{ field: 'path', message: 'no such file' }]);
      }
      const contentType = contentTypeOf(path);
      const stream = await blobs.get(file.digest);
      const stop = () => stream.destroy();
      ctx.signal.addEventListener('abort', stop, { once: true });
      let sent = false;
      try {
        for await (const chunk of stream as AsyncIterable<Buffer>) {
          await send({ contentType, data: chunk });
          sent = true;
          if (ctx.signal.aborted) return;
        }
        if (!sent) await send({ contentType, data: new Uint8Array(0) });
      } catch (err) {
        if (!ctx.signal.aborted) throw err; // the caller left: not an error
      } finally {
        ctx.signal.removeEventListener('abort', stop);
        stream.destroy();
      }
    },
  };
}
