import type { Readable } from 'node:stream';
import { Errors, type BlobStore } from '@wanllmdb/core';
import { bodyDigests, bodyParts, type ManifestFile } from '../manifest.js';

/** A version's file as the dataset readers see it: its bytes come from the blob store, chunk by chunk. */
export interface FileSource {
  path: string;
  size: number;
  /** The file's bytes from the start, streamed (each body blob in turn); stops reading when the consumer stops. */
  stream(signal?: AbortSignal): AsyncIterable<Buffer>;
  /** Bytes [start, end) of the file (end exclusive, as ArrayBuffer.slice), across chunk bounds. */
  slice(start: number, end?: number): Promise<ArrayBuffer>;
}

/** The file of a manifest entry; a reference (an object kept elsewhere) has no bytes here. */
export function fileSource(blobs: BlobStore, file: ManifestFile): FileSource {
  const { ref } = file;
  if (ref) {
    throw Errors.VALIDATION(`${file.path} is a reference to ${ref.uri ?? 'an object kept elsewhere'}; its bytes are not stored here, so it cannot be read on the server. Download it with the SDK, or log the file itself.`, [
      { field: 'path', message: 'a reference, not a stored file' },
    ]);
  }
  const parts = bodyParts(file);
  const digests = bodyDigests(file);
  return {
    path: file.path,
    size: file.size,
    async *stream(signal) {
      for (const digest of digests) {
        const stream: Readable = await blobs.get(digest);
        const stop = () => stream.destroy();
        signal?.addEventListener('abort', stop, { once: true });
        try {
          for await (const chunk of stream as AsyncIterable<Buffer>) {
            if (signal?.aborted) return;
            yield chunk;
          }
        } finally {
          signal?.removeEventListener('abort', stop);
          stream.destroy();
        }
      }
    },
    async slice(start, end = file.size) {
      const from = Math.max(0, Math.min(start, file.size));
      const to = Math.max(from, Math.min(end, file.size));
      const out = Buffer.alloc(to - from);
      let at = 0; // offset of the current part in the file
      for (let i = 0; i < parts.length && at < to; at += parts[i]!.size, i++) {
        const part = parts[i]!;
        const lo = Math.max(from, at);
        const hi = Math.min(to, at + part.size);
        if (lo >= hi) continue;
        const stream = await blobs.get(part.digest, { start: lo - at, end: hi - at - 1 });
        let w = lo - from;
        try {
          for await (const chunk of stream as AsyncIterable<Buffer>) {
            chunk.copy(out, w);
            w += chunk.length;
          }
        } finally {
          stream.destroy();
        }
      }
      return out.buffer.slice(out.byteOffset, out.byteOffset + out.length) as ArrayBuffer;
    },
  };
}
