import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

/** Files at least this large are stored as content-defined chunks. */
export const CHUNKED_FROM = 32 * 1024 * 1024;
const MIN_CHUNK = 2 * 1024 * 1024;
const MAX_CHUNK = 32 * 1024 * 1024;
/** 23 bits: a cut after MIN_CHUNK about every 8 MiB. */
const MASK = (1 << 23) - 1;

/** The gear table: fixed pseudo-random words (xorshift32 from a fixed seed), so every client cuts the same bytes at the same places. */
const GEAR = (() => {
  const t = new Uint32Array(256);
  let x = 0x9e3779b9;
  for (let i = 0; i < 256; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    t[i] = x >>> 0;
  }
  return t;
})();

export interface FileChunk {
  digest: string;
  size: number;
  offset: number;
}

export interface HashedFile {
  /** sha256 of the whole file, hex. */
  digest: string;
  size: number;
  /** Empty below CHUNKED_FROM; otherwise the content-defined chunks, in order. */
  chunks: FileChunk[];
}

/**
 * Reads a file once: its sha256 and, for a large file, content-defined
 * chunks (a gear rolling hash cuts where the content says, so an edit in the
 * middle of a file changes only the chunks around it, and an insertion does
 * not shift every later boundary as fixed-size chunks would).
 */
export async function hashFile(path: string, size: number): Promise<HashedFile> {
  const whole = createHash('sha256');
  if (size < CHUNKED_FROM) {
    for await (const buf of createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) whole.update(buf);
    return { digest: whole.digest('hex'), size, chunks: [] };
  }
  const chunks: FileChunk[] = [];
  let chunk = createHash('sha256');
  let chunkStart = 0;
  let pos = 0;
  let h = 0;
  for await (const buf of createReadStream(path, { highWaterMark: 4 << 20 }) as AsyncIterable<Buffer>) {
    whole.update(buf);
    let from = 0;
    for (let i = 0; i < buf.length; i++) {
      const len = pos + i - chunkStart + 1;
      if (len < MIN_CHUNK) {
        // No cut can come before MIN_CHUNK: skip ahead without hashing byte by byte.
        const skip = Math.min(buf.length - 1, i + (MIN_CHUNK - len));
        i = skip;
        h = 0;
        if (pos + i - chunkStart + 1 < MIN_CHUNK) continue;
      }
      h = ((h << 1) + GEAR[buf[i]!]!) >>> 0;
      if ((h & MASK) === 0 || pos + i - chunkStart + 1 >= MAX_CHUNK) {
        chunk.update(buf.subarray(from, i + 1));
        chunks.push({ digest: chunk.digest('hex'), size: pos + i + 1 - chunkStart, offset: chunkStart });
        chunk = createHash('sha256');
        chunkStart = pos + i + 1;
        from = i + 1;
        h = 0;
      }
    }
    chunk.update(buf.subarray(from));
    pos += buf.length;
  }
  if (pos > chunkStart) chunks.push({ digest: chunk.digest('hex'), size: pos - chunkStart, offset: chunkStart });
  return { digest: whole.digest('hex'), size: pos, chunks };
}
