import { readdir, stat } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import type { JsonObject } from '@wanllmdb/proto';
import { sdkError } from '../errors.js';
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
}

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
    this.entries.set(path, { path, source, size: st.size, mode: st.mode & 0o7777 });
    return this;
  }

  /** Adds every file under a folder (recursively), at its path relative to the folder, under `prefix` if given. */
  async addDir(localDir: string, opts: { prefix?: string } = {}): Promise<this> {
    const root = resolve(localDir);
    const st = await stat(root).catch(() => undefined);
    if (!st?.isDirectory()) throw await sdkError('VALIDATION', `Artifact.addDir(): ${localDir} is not a folder.`, [{ field: 'path', message: 'not a folder' }]);
    const prefix = opts.prefix ? `${opts.prefix.replace(/\/+$/, '')}/` : '';
    for (const e of await readdir(root, { recursive: true, withFileTypes: true })) {
      if (!e.isFile()) continue;
      const source = join(e.parentPath, e.name);
      const fst = await stat(source);
      const path = prefix + relative(root, source).split(sep).join('/');
      this.entries.set(path, { path, source, size: fst.size, mode: fst.mode & 0o7777 });
    }
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
