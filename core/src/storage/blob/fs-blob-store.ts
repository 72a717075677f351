import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Errors, WldbError } from '../../errors.js';
import { assertNamespace, type BlobInfo, type BlobSource, type BlobStore, type ByteRange } from './blob-store.js';
import { assertRangeShape, resolveRange } from './byte-range.js';
import { DigestingSource, assertDigest, assertDigestPrefix, blobNotFound, digestMismatch, isDigest } from './digest.js';

const FAN_OUT = /^[0-9a-f]{2}$/;
/** A temp file not written for this long has no live writer, whoever made it. */
const STALE_TEMP_AGE_MS = 24 * 60 * 60 * 1000;
const HOST = hostname().replace(/[^A-Za-z0-9.-]/g, '_');

/**
 * BlobStore on a local directory:
 *
 *   <root>/sha256/<aa>/<bb>/<digest>   finished objects (aa, bb: the digest's first two bytes)
 *   <root>/tmp/<host>~<pid>~<uuid>     writes in progress
 *
 * A put writes and fsyncs a temp file, then renames it into sha256/, so a
 * finished object appears whole or not at all, even across a crash.
 */
export class FsBlobStore implements BlobStore {
  readonly kind = 'file' as const;
  readonly #objects: string;
  readonly #tmp: string;

  private constructor(readonly root: string) {
    this.#objects = join(root, 'sha256');
    this.#tmp = join(root, 'tmp');
  }

  /** Opens (creating if needed) the store at `root` and sweeps temp files left by crashed writers. */
  static async open(root: string): Promise<FsBlobStore> {
    const store = new FsBlobStore(resolve(root));
    try {
      await mkdir(store.#objects, { recursive: true });
      await mkdir(store.#tmp, { recursive: true });
      await store.#sweepAbandonedTemps();
    } catch (err) {
      throw store.#failed('open the blob directory', err);
    }
    return store;
  }

  async put(source: BlobSource, opts: { expectedDigest?: string } = {}): Promise<BlobInfo> {
    const expected = opts.expectedDigest === undefined ? undefined : assertDigest(opts.expectedDigest, 'expectedDigest');
    const digesting = new DigestingSource(source);
    const tmpPath = join(this.#tmp, `${HOST}~${process.pid}~${randomUUID()}`);
    try {
      await writeDurably(digesting, tmpPath);
      const info = digesting.result();
      if (expected !== undefined && info.digest !== expected) throw digestMismatch(expected, info.digest);
      await this.#install(tmpPath, info.digest);
      return info;
    } catch (err) {
      await rm(tmpPath, { force: true });
      if (digesting.sourceError !== undefined) throw digesting.sourceError;
      throw this.#failed('store a blob', err);
    }
  }

  async get(digest: string, range?: ByteRange): Promise<Readable> {
    assertDigest(digest);
    if (range) assertRangeShape(range);
    let file: FileHandle;
    try {
      file = await open(this.#pathOf(digest), 'r');
    } catch (err) {
      if (isCode(err, 'ENOENT')) throw blobNotFound(digest);
      throw this.#failed('read a blob', err);
    }
    try {
      // Reading through the open handle keeps the bytes readable even if
      // the object is deleted while the caller streams it.
      const { size } = await file.stat();
      const bounds = range ? resolveRange(range, size, digest) : {};
      // 1 MiB reads: a download is a few large messages, not thousands of 64 KiB ones.
      return file.createReadStream({ ...bounds, highWaterMark: 1 << 20 });
    } catch (err) {
      await file.close();
      throw this.#failed('read a blob', err);
    }
  }

  async stat(digest: string): Promise<BlobInfo | null> {
    assertDigest(digest);
    try {
      const { size } = await stat(this.#pathOf(digest));
      return { digest, size };
    } catch (err) {
      if (isCode(err, 'ENOENT')) return null;
      throw this.#failed('stat a blob', err);
    }
  }

  async exists(digest: string): Promise<boolean> {
    return (await this.stat(digest)) !== null;
  }

  async delete(digest: string): Promise<boolean> {
    assertDigest(digest);
    try {
      await rm(this.#pathOf(digest));
      return true;
    } catch (err) {
      if (isCode(err, 'ENOENT')) return false;
      throw this.#failed('delete a blob', err);
    }
  }

  async *list(prefix = ''): AsyncGenerator<BlobInfo> {
    assertDigestPrefix(prefix);
    try {
      // Only the fan-out directories that can hold a match are read.
      for (const aa of await this.#children(this.#objects, prefix.slice(0, 2), FAN_OUT)) {
        const aaDir = join(this.#objects, aa);
        for (const bb of await this.#children(aaDir, prefix.slice(2, 4), FAN_OUT)) {
          const bbDir = join(aaDir, bb);
          for (const digest of await this.#children(bbDir, prefix, /^/)) {
            if (!isDigest(digest)) continue;
            const size = await sizeOf(join(bbDir, digest));
            if (size !== null) yield { digest, size };
          }
        }
      }
    } catch (err) {
      throw this.#failed('list blobs', err);
    }
  }

  /** `<root>/ns/<name>`, a store of the same layout. */
  async namespace(name: string): Promise<BlobStore> {
    return FsBlobStore.open(join(this.root, 'ns', assertNamespace(name)));
  }

  async close(): Promise<void> {
    // Nothing is held open between calls.
  }

  #pathOf(digest: string): string {
    return join(this.#objects, digest.slice(0, 2), digest.slice(2, 4), digest);
  }

  /** Sorted names in `dir` that start with `prefix` and match `shape`; none if `dir` is absent. */
  async #children(dir: string, prefix: string, shape: RegExp): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      if (isCode(err, 'ENOENT')) return [];
      throw err;
    }
    return names.filter((name) => name.startsWith(prefix) && shape.test(name)).sort();
  }

  /** Moves a finished temp file to its digest's path, or drops it if that object already exists. */
  async #install(tmpPath: string, digest: string): Promise<void> {
    const finalPath = this.#pathOf(digest);
    if ((await sizeOf(finalPath)) !== null) {
      await rm(tmpPath, { force: true });
      return;
    }
    const bbDir = dirname(finalPath);
    const firstCreated = await mkdir(bbDir, { recursive: true });
    await rename(tmpPath, finalPath);
    // The rename (and any new fan-out directory) is durable only once the
    // directories holding the new entries are synced.
    await fsyncDirectory(bbDir);
    if (firstCreated !== undefined) {
      await fsyncDirectory(dirname(bbDir));
      await fsyncDirectory(this.#objects);
    }
  }

  /**
   * Removes temp files whose writer is gone: written by a dead process of
   * this host, or untouched for a day (writers on other hosts sharing the
   * directory, or a reused pid such as a container's pid 1).
   */
  async #sweepAbandonedTemps(): Promise<void> {
    for (const name of await readdir(this.#tmp)) {
      const [host, pid] = name.split('~');
      const path = join(this.#tmp, name);
      const writerDied = host === HOST && pid !== undefined && !isProcessAlive(Number(pid));
      if (writerDied || (await isOlderThan(path, STALE_TEMP_AGE_MS))) await rm(path, { force: true });
    }
  }

  #failed(action: string, err: unknown): WldbError {
    if (err instanceof WldbError) return err;
    const reason = err instanceof Error ? err.message : String(err);
    return Errors.BLOB_STORE_FAILED(
      `Could not ${action} in the blob store at ${this.root}: ${reason}. Check that the directory exists, is writable and has free space, then retry.`,
      [{ field: 'WANLLMDB_BLOBS', message: reason }],
      err,
    );
  }
}

/** Streams `source` into a new file at `path`; resolves once the file is fsynced and closed. */
async function writeDurably(source: AsyncIterable<Buffer>, path: string): Promise<void> {
  await pipeline(source, createWriteStream(path, { flags: 'wx', flush: true }));
}

async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } catch (err) {
    // Some platforms and file systems cannot fsync a directory; the rename
    // is then as durable as they allow.
    if (!isCode(err, 'EISDIR') && !isCode(err, 'EINVAL') && !isCode(err, 'EPERM')) throw err;
  } finally {
    await handle.close();
  }
}

async function sizeOf(path: string): Promise<number | null> {
  try {
    return (await stat(path)).size;
  } catch (err) {
    if (isCode(err, 'ENOENT')) return null;
    throw err;
  }
}

async function isOlderThan(path: string, ageMs: number): Promise<boolean> {
  try {
    return Date.now() - (await stat(path)).mtimeMs > ageMs;
  } catch (err) {
    if (isCode(err, 'ENOENT')) return false;
    throw err;
  }
}

function isProcessAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to another user.
    return isCode(err, 'EPERM');
  }
}

function isCode(err: unknown, code: string): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === code;
}
