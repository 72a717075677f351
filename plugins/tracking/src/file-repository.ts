import type { MetadataStore } from '@wanllmdb/core';
import type { tracking } from '@wanllmdb/proto';

type RunFile = tracking.v1.RunFile;

interface FileRow {
  [k: string]: unknown;
  path: string;
  digest: string;
  size: number;
  created_at: number;
}

const toFile = (r: FileRow): RunFile => ({ path: r.path, digest: r.digest, size: Number(r.size), createdAt: new Date(Number(r.created_at)).toISOString() });

/** SQL for the files a run saved (the bytes are in the BlobStore); the only code that knows run_files. */
export class FileRepository {
  constructor(private readonly db: MetadataStore) {}

  /** Records the file, replacing an earlier one at the same path. */
  async put(runId: string, file: { path: string; digest: string; size: number }, now: number): Promise<RunFile> {
    await this.db.run(
      `INSERT INTO run_files (run_id, path, digest, size, created_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (run_id, path) DO UPDATE SET digest = excluded.digest, size = excluded.size, created_at = excluded.created_at`,
      [runId, file.path, file.digest, file.size, now],
    );
    return { path: file.path, digest: file.digest, size: file.size, createdAt: new Date(now).toISOString() };
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
