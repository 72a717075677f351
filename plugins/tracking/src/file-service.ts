import { createHash } from 'node:crypto';
import { checkFilePath, chunkData, contentTypeOf, Errors, sendBlobs, newId, type BlobStore, type CallContext, type Clock } from '@wanllmdb/core';
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
      const sameFile = (chunk: UploadFileChunk, n: number) => {
        if ((chunk.runId && chunk.runId.toLowerCase() !== id) || (chunk.path && chunk.path !== path)) {
          throw Errors.VALIDATION(`Chunk ${n} of the upload names another run or path than the first chunk. Upload one file per stream.`, [
            { field: chunk.path && chunk.path !== path ? 'path' : 'runId', message: 'differs from the first chunk' },
          ]);
        }
      };
      async function* bytes(): AsyncGenerator<Uint8Array> {
        for await (const data of chunkData(head, chunks, ctx.signal, sameFile)) {
          hash.update(data);
          yield data;
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
      await sendBlobs(blobs, [file.digest], contentTypeOf(path), send, ctx.signal);
    },
  };
}
