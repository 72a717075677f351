import { advisoryLockKey, isoTime, type MetadataStore, type SqlExecutor } from '@wanllmdb/core';
import type { tracking } from '@wanllmdb/proto';

type RunFile = tracking.v1.RunFile;

interface FileRow {
  [k: string]: unknown;
  path: string;
  digest: string;
  size: number;
  created_at: number;
}

/** What collecting one released digest did. */
export type Collected =
  /** A row references the digest again: its blob stays, the release is dropped. */
  | 'kept'
  /** An upload of the same bytes is under way: left for a later pass. */
  | 'busy'
  /** No row, no upload: the blob was deleted and the release dropped. */
  | 'deleted'
  /** Another collector took care of it meanwhile. */
  | 'gone';

const toFile = (r: FileRow): RunFile => ({ path: r.path, digest: r.digest, size: Number(r.size), createdAt: isoTime(r.created_at) });

/** First key of the per-digest advisory locks ("WFIL"), apart from the kernel's and the metric engine's. */
const DIGEST_LOCK_CLASS = 0x5746494c;

/**
 * SQL for the files a run saved (the bytes are in the BlobStore, keyed by
 * digest and shared by every file with the same content); the only code
 * that knows run_files, run_file_releases and run_file_uploads.
 *
 * A blob may be deleted once no row references it, but an upload writes its
 * blob before its row, and the blob store keeps one object per content: an
 * upload of bytes that are already stored only finds the object there. So
 * the collector must never delete a blob between an upload's "the object is
 * there" and that upload's row. The protocol, per digest, under a lock
 * (PostgreSQL: an advisory lock; SQLite: its one writer):
 *
 *   upload:    hash the bytes → pin(digest) → blob store installs (or finds)
 *              the object → row + unpin, one transaction
 *   collector: lock → a row references it? keep : a live pin? later :
 *              delete the blob → drop the release
 *
 * The pin is committed before the store looks for the object, so a
 * collector either deleted it before (the upload then installs it afresh)
 * or sees the pin (and waits). A failed upload unpins and releases its
 * digest; a crashed one leaves a pin that turns stale and is released.
 */
export class FileRepository {
  constructor(private readonly db: MetadataStore) {}

  private async lockDigest(tx: SqlExecutor, digest: string): Promise<void> {
    if (tx.dialect === 'postgres') await tx.query('SELECT pg_advisory_xact_lock(?, ?)', [DIGEST_LOCK_CLASS, advisoryLockKey(digest)]);
  }

  /** Upload `id` has hashed its bytes to `digest`; its blob is not collected until the upload records or abandons it. */
  async pinUpload(id: string, digest: string, now: number): Promise<void> {
    await this.db.transaction(async (tx) => {
      await this.lockDigest(tx, digest);
      await tx.run('INSERT INTO run_file_uploads (id, digest, started_at) VALUES (?, ?, ?)', [id, digest, now]);
    });
  }

  /**
   * Records the file, replacing an earlier one at the same path (whose digest a trigger releases), and
   * unpins the upload. `replaced`: an earlier file with other bytes was replaced, so there is something to collect.
   */
  async put(runId: string, file: { path: string; digest: string; size: number }, uploadId: string, now: number): Promise<{ file: RunFile; replaced: boolean }> {
    const replaced = await this.db.transaction(async (tx) => {
      const [before] = await tx.query<{ digest: string }>('SELECT digest FROM run_files WHERE run_id = ? AND path = ?', [runId, file.path]);
      await tx.run(
        `INSERT INTO run_files (run_id, path, digest, size, created_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (run_id, path) DO UPDATE SET digest = excluded.digest, size = excluded.size, created_at = excluded.created_at`,
        [runId, file.path, file.digest, file.size, now],
      );
      await tx.run('DELETE FROM run_file_uploads WHERE id = ?', [uploadId]);
      return before !== undefined && before.digest !== file.digest;
    });
    return { file: { path: file.path, digest: file.digest, size: file.size, createdAt: isoTime(now) }, replaced };
  }

  /** An upload failed after pinning: nothing may reference its blob, so the digest is released for collection. */
  async abandonUpload(id: string, digest: string, now: number): Promise<void> {
    await this.db.transaction(async (tx) => {
      await this.lockDigest(tx, digest);
      await tx.run('DELETE FROM run_file_uploads WHERE id = ?', [id]);
      await tx.run('INSERT INTO run_file_releases (digest, released_at) VALUES (?, ?) ON CONFLICT (digest) DO NOTHING', [digest, now]);
    });
  }

  /** Pins of uploads that started before `before` belong to uploads that died: their digests are released. Resolves to how many. */
  async releaseStalePins(before: number, now: number): Promise<number> {
    // Read first: the usual answer is none, and then no write transaction (SQLite's one write lock) is taken.
    if (!(await this.db.query('SELECT 1 AS one FROM run_file_uploads WHERE started_at < ? LIMIT 1', [before])).length) return 0;
    return this.db.transaction(async (tx) => {
      const stale = await tx.query<{ id: string; digest: string }>('SELECT id, digest FROM run_file_uploads WHERE started_at < ? ORDER BY id', [before]);
      for (const pin of stale) {
        await tx.run('INSERT INTO run_file_releases (digest, released_at) VALUES (?, ?) ON CONFLICT (digest) DO NOTHING', [pin.digest, now]);
        await tx.run('DELETE FROM run_file_uploads WHERE id = ?', [pin.id]);
      }
      return stale.length;
    });
  }

  /** Up to `limit` released digests after `after` (digest order, for a pass that skips the busy ones). */
  async releasedDigests(after: string, limit: number): Promise<string[]> {
    const rows = await this.db.query<{ digest: string }>('SELECT digest FROM run_file_releases WHERE digest > ? ORDER BY digest LIMIT ?', [after, limit]);
    return rows.map((r) => r.digest);
  }

  /**
   * Collects one released digest under its lock (see the class comment).
   * `deleteBlob` runs while the lock is held, so no upload can pin the
   * digest and find the object meanwhile; pins started before
   * `staleBefore` do not count. A failure leaves the release for a retry;
   * deleting is idempotent, so a crash after the delete only repeats it.
   */
  async collect(digest: string, staleBefore: number, deleteBlob: () => Promise<unknown>): Promise<Collected> {
    return this.db.transaction(async (tx) => {
      await this.lockDigest(tx, digest);
      if (!(await tx.query('SELECT 1 AS one FROM run_file_releases WHERE digest = ?', [digest])).length) return 'gone';
      // Pins first, then rows: an upload drops its pin in the transaction that adds its row, so once
      // no pin shows, its row does (PostgreSQL gives each statement a fresh snapshot).
      if ((await tx.query('SELECT 1 AS one FROM run_file_uploads WHERE digest = ? AND started_at >= ? LIMIT 1', [digest, staleBefore])).length) return 'busy';
      const referenced = (await tx.query('SELECT 1 AS one FROM run_files WHERE digest = ? LIMIT 1', [digest])).length > 0;
      if (!referenced) await deleteBlob();
      await tx.run('DELETE FROM run_file_releases WHERE digest = ?', [digest]);
      return referenced ? 'kept' : 'deleted';
    });
  }

  async get(runId: string, path: string): Promise<RunFile | undefined> {
    const rows = await this.db.query<FileRow>('SELECT path, digest, size, created_at FROM run_files WHERE run_id = ? AND path = ?', [runId, path]);
    return rows[0] && toFile(rows[0]);
  }

  async list(runId: string): Promise<RunFile[]> {
    const rows = await this.db.query<FileRow>('SELECT path, digest, size, created_at FROM run_files WHERE run_id = ? ORDER BY path', [runId]);
    return rows.map(toFile);
  }
}
