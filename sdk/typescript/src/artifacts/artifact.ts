import { readdir, stat } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import type { JsonObject } from '@wanllmdb/proto';
import { sdkError } from '../errors.js';
import type { FileStamp } from './hash-cache.js';
import { DEFAULT_MAX_OBJECTS, type PendingReference, type ReferenceOptions } from './references.js';

export interface ArtifactOptions {
  description?: string;
  metadata?: JsonObject;
  tags?: string[];
}

/** A local file to store under a path of the artifact. */
export interface LocalEntry {
  path: string;
  source: string;
  size: number;
  mode: number;
  /** What the file looked like when added: an unchanged file is not hashed again (HashCache). */
  stamp?: FileStamp;
}

/** A local file's entry, from its stat. */
async function localEntry(path: string, source: string): Promise<LocalEntry> {
  const st = await stat(source, { bigint: true });
  return { path, source, size: Number(st.size), mode: Number(st.mode) & 0o7777, stamp: { size: Number(st.size), mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, ino: st.ino } };
}

/** Files stat'ed at once by addDir. */
const STAT_CONCURRENCY = 32;

/**
 * A new version of an artifact, built locally and stored by
 * `run.logArtifact(artifact)` (or `wanllmdb artifact put`): files and whole
 * folders under the paths they will have in the version.
 *
 *   const art = new Artifact('mnist-clean', 'dataset', { metadata: { rows: 60000 } });
 *   await art.addDir('./clean');
 *   await run.logArtifact(art, { aliases: ['v1.0'] });
 */
export class Artifact {
  readonly entries = new Map<string, LocalEntry>();
  /** References added (resolved into entries when the artifact is logged). */
  readonly references: PendingReference[] = [];

  constructor(
    readonly name: string,
    readonly type: string,
    readonly options: ArtifactOptions = {},
  ) {}

  /** Adds one file, as `name` (default: its file name). */
  async addFile(localPath: string, opts: { name?: string } = {}): Promise<this> {
    const source = resolve(localPath);
    const st = await stat(source).catch(() => undefined);
    if (!st?.isFile()) throw await sdkError('VALIDATION', `Artifact.addFile(): ${localPath} is not a file.`, [{ field: 'path', message: 'not a file' }]);
    const path = opts.name ?? source.split(sep).pop()!;
    this.entries.set(path, await localEntry(path, source));
    return this;
  }

  /** Adds every file under a folder (recursively), at its path relative to the folder, under `prefix` if given. */
  async addDir(localDir: string, opts: { prefix?: string } = {}): Promise<this> {
    const root = resolve(localDir);
    const st = await stat(root).catch(() => undefined);
    if (!st?.isDirectory()) throw await sdkError('VALIDATION', `Artifact.addDir(): ${localDir} is not a folder.`, [{ field: 'path', message: 'not a folder' }]);
    const prefix = opts.prefix ? `${opts.prefix.replace(/\/+$/, '')}/` : '';
    const files = (await readdir(root, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
    const found: LocalEntry[] = new Array<LocalEntry>(files.length);
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(STAT_CONCURRENCY, files.length) }, async () => {
        for (let i = next++; i < files.length; i = next++) found[i] = await localEntry(prefix + relative(root, files[i]!).split(sep).join('/'), files[i]!);
      }),
    );
    for (const e of found) this.entries.set(e.path, e);
    return this;
  }

  /**
   * Adds a reference: entries recorded in the version without copying their
   * bytes — `s3://bucket/key`, `s3://bucket/prefix/` (one entry per object),
   * `file:///path` (a file or a folder), `http(s)://…`. What each object is
   * (size, ETag and S3 version id, or sha256, or size and modification
   * time with `checksum: false` on file://) is looked up when the artifact
   * is logged; a download fetches it from its source and fails with
   * WLDB_ERR_BLOB_DIGEST_MISMATCH if it changed since.
   */
  addReference(uri: string, opts: ReferenceOptions = {}): this {
    this.references.push({ uri: String(uri), ...(opts.name !== undefined ? { name: opts.name } : {}), checksum: opts.checksum ?? true, maxObjects: opts.maxObjects ?? DEFAULT_MAX_OBJECTS });
    return this;
  }
}
