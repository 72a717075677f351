import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { HashedFile } from './chunking.js';

/**
 * What a local file looked like when it was hashed: size, modification and
 * change times in nanoseconds, inode. A file whose stamp is unchanged has
 * not been written since (as git's index assumes).
 */
export interface FileStamp {
  size: number;
  mtimeNs: bigint;
  ctimeNs: bigint;
  ino: bigint;
}

const stampText = (s: FileStamp) => `${s.size}:${s.mtimeNs}:${s.ctimeNs}:${s.ino}`;

/** A file modified this close to its hashing may change again within the same time stamp: not remembered. */
const RACY_NS = 2_000_000_000n;
/** Files remembered; the oldest entries go first beyond it. */
const MAX_ENTRIES = 1_000_000;

interface Entry {
  stamp: string;
  digest: string;
  size: number;
  chunks: [string, number, number][];
}

/**
 * The digests of local files already hashed, by path and stamp, kept in the
 * cache folder (`hashes.json`) so logging a large folder again hashes only
 * the files that changed. A cache: lost or stale, it costs a re-hash, never
 * a wrong digest (the server verifies every body it is sent).
 */
export class HashCache {
  readonly #file: string;
  #loading: Promise<Map<string, Entry>> | undefined;
  #dirty = false;

  constructor(cacheDir: string) {
    this.#file = join(cacheDir, 'hashes.json');
  }

  /** Loaded once, however many lookups start at once. */
  #load(): Promise<Map<string, Entry>> {
    this.#loading ??= readFile(this.#file, 'utf8').then(
      (text) => new Map(Object.entries(JSON.parse(text) as Record<string, Entry>)),
      () => new Map<string, Entry>(), // absent: start afresh
    ).catch(() => new Map<string, Entry>()); // unreadable: start afresh
    return this.#loading;
  }

  async get(source: string, stamp: FileStamp): Promise<HashedFile | undefined> {
    const e = (await this.#load()).get(source);
    if (!e || e.stamp !== stampText(stamp)) return undefined;
    return { digest: e.digest, size: e.size, chunks: e.chunks.map(([digest, offset, size]) => ({ digest, offset, size })) };
  }

  /** Remembers a hash made at `hashedAtNs` (wall clock), unless the file changed too recently to trust its stamp. */
  async set(source: string, stamp: FileStamp, hashed: HashedFile, hashedAtNs: bigint): Promise<void> {
    if (hashedAtNs - stamp.mtimeNs < RACY_NS || hashedAtNs - stamp.ctimeNs < RACY_NS) return;
    const entries = await this.#load();
    entries.delete(source);
    entries.set(source, { stamp: stampText(stamp), digest: hashed.digest, size: hashed.size, chunks: hashed.chunks.map((c) => [c.digest, c.offset, c.size]) });
    this.#dirty = true;
  }

  /** Writes the cache (whole, atomically: a crash leaves the old one or the new one). */
  async save(): Promise<void> {
    if (!this.#dirty || !this.#loading) return;
    const entries = [...(await this.#loading)];
    const kept = entries.length > MAX_ENTRIES ? entries.slice(entries.length - MAX_ENTRIES) : entries;
    const tmp = `${this.#file}.${randomUUID()}.tmp`;
    await mkdir(join(this.#file, '..'), { recursive: true });
    try {
      await writeFile(tmp, JSON.stringify(Object.fromEntries(kept)));
      await rename(tmp, this.#file);
      this.#dirty = false;
    } finally {
      await rm(tmp, { force: true });
    }
  }
}
