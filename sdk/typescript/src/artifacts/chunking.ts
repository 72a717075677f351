import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';

/** Files at least this large are stored as content-defined chunks. */
export const CHUNKED_FROM = 32 * 1024 * 1024;
const MIN_CHUNK = 4 * 1024 * 1024;
const MAX_CHUNK = 32 * 1024 * 1024;
/** 22 bits: past MIN_CHUNK a cut about every 4 MiB, so chunks of about 8 MiB, and only half of each chunk is scanned. */
const MASK = (1 << 22) - 1;

/** The gear table: fixed pseudo-random words (xorshift32 from a fixed seed), so every client cuts the same bytes at the same places. */
const GEAR = (() => {
  const t = new Int32Array(256); // int32 all through: the hash never leaves small integers (no heap numbers in the loop)
  let x = 0x9e3779b9;
  for (let i = 0; i < 256; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    t[i] = x | 0;
  }
  return t;
})();

/**
 * The gear hash over bytes[i..limit): the index of the first byte after
 * which the chunk may end, or -1. A plain synchronous loop (an async
 * function's locals live on the heap across awaits; this one's stay in registers).
 */
function scan(bytes: Uint8Array, i: number, limit: number, state: { h: number }): number {
  let h = state.h;
  for (let j = i; j < limit; j++) {
    h = ((h << 1) + GEAR[bytes[j]!]!) | 0;
    if ((h & MASK) === 0) {
      state.h = h;
      return j;
    }
  }
  state.h = h;
  return -1;
}

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
/** Files up to this size are read whole. */
const SMALL_FILE = 1 << 20;

export async function hashFile(path: string, size: number): Promise<HashedFile> {
  const whole = createHash('sha256');
  // A small file is read in one call: a stream's buffers and ticks cost more than its bytes.
  if (size <= SMALL_FILE) {
    const bytes = await readFile(path);
    return { digest: whole.update(bytes).digest('hex'), size: bytes.length, chunks: [] };
  }
  if (size < CHUNKED_FROM) {
    for await (const buf of createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) whole.update(buf);
    return { digest: whole.digest('hex'), size, chunks: [] };
  }
  const chunks: FileChunk[] = [];
  let chunk = createHash('sha256');
  let chunkStart = 0;
  let pos = 0;
  const state = { h: 0 };
  for await (const buf of createReadStream(path, { highWaterMark: 4 << 20 }) as AsyncIterable<Buffer>) {
    whole.update(buf);
    const n = buf.length;
    const bytes = new Uint8Array(buf.buffer, buf.byteOffset, n);
    let from = 0;
    let i = 0;
    while (i < n) {
      // L: the chunk's length once byte i is in it. No cut comes before MIN_CHUNK, so those bytes are not hashed at all.
      const L = pos + i - chunkStart + 1;
      if (L < MIN_CHUNK) {
        i += Math.min(n - i, MIN_CHUNK - L);
        continue;
      }
      const limit = Math.min(n, i + (MAX_CHUNK - L) + 1);
      let j = scan(bytes, i, limit, state);
      let cut = j >= 0;
      if (!cut) j = limit;
      if (!cut && pos + limit - chunkStart === MAX_CHUNK) {
        cut = true;
        j = limit - 1;
      }
      if (!cut) {
        i = limit;
        continue;
      }
      chunk.update(buf.subarray(from, j + 1));
      chunks.push({ digest: chunk.digest('hex'), size: pos + j + 1 - chunkStart, offset: chunkStart });
      chunk = createHash('sha256');
      chunkStart = pos + j + 1;
      from = j + 1;
      state.h = 0;
      i = j + 1;
    }
    chunk.update(buf.subarray(from));
    pos += n;
  }
  if (pos > chunkStart) chunks.push({ digest: chunk.digest('hex'), size: pos - chunkStart, offset: chunkStart });
  return { digest: whole.digest('hex'), size: pos, chunks };
}
