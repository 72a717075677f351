import { Errors, isoTime, newId, type MetadataStore } from '@wanllmdb/core';
import { versionName } from '../artifact-repository.js';
import type { artifacts } from '../gen/index.js';

type Annotation = artifacts.v1.Annotation;

type AnnotationRow = {
  id: string;
  artifact_id: string;
  version_id: string;
  version: number;
  path: string;
  row_index: number;
  label: string;
  note: string;
  author: string;
  created_at: number;
};

const COLUMNS = 'id, artifact_id, version_id, version, path, row_index, label, note, author, created_at';

const toAnnotation = (r: AnnotationRow): Annotation => ({
  id: r.id,
  datasetId: r.artifact_id,
  version: versionName(Number(r.version)),
  path: r.path,
  row: Number(r.row_index),
  label: r.label,
  note: r.note,
  author: r.author,
  createdAt: isoTime(Number(r.created_at)),
});

export interface NewAnnotation {
  artifactId: string;
  versionId: string;
  version: number;
  path: string;
  row: number;
  label: string;
  note: string;
  author: string;
  now: number;
}

/** Row-level annotations of dataset versions (migration 5): beside a version, never in its manifest; they go when the version goes. */
export class AnnotationRepository {
  constructor(readonly db: MetadataStore) {}

  /** Undefined when the version was deleted meanwhile. */
  async create(a: NewAnnotation): Promise<Annotation | undefined> {
    const id = newId();
    try {
      await this.db.run(`INSERT INTO artifact_annotations (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, [
        id, a.artifactId, a.versionId, a.version, a.path, a.row, a.label, a.note, a.author, a.now,
      ]);
    } catch (err) {
      if (Errors.DB_CONSTRAINT_VIOLATION.is(err)) return undefined; // the version (or the artifact) is gone
      throw err;
    }
    return this.get(a.artifactId, id);
  }

  async get(artifactId: string, id: string): Promise<Annotation | undefined> {
    const [row] = await this.db.query<AnnotationRow>(`SELECT ${COLUMNS} FROM artifact_annotations WHERE id = ? AND artifact_id = ?`, [id, artifactId]);
    return row && toAnnotation(row);
  }

  /** A page in (version, path, row, time) order. */
  async list(artifactId: string, filter: { versionId?: string; path?: string }, offset: number, limit: number): Promise<{ rows: Annotation[]; total: number }> {
    const where = ['artifact_id = ?'];
    const params: (string | number)[] = [artifactId];
    if (filter.versionId) where.push('version_id = ?'), params.push(filter.versionId);
    if (filter.path) where.push('path = ?'), params.push(filter.path);
    const clause = where.join(' AND ');
    const [{ n }] = (await this.db.query<{ n: number }>(`SELECT COUNT(*) AS n FROM artifact_annotations WHERE ${clause}`, params)) as [{ n: number }];
    const rows = await this.db.query<AnnotationRow>(
      `SELECT ${COLUMNS} FROM artifact_annotations WHERE ${clause} ORDER BY version DESC, path, row_index, created_at, id LIMIT ? OFFSET ?`,
      [...params, limit, offset],
    );
    return { rows: rows.map(toAnnotation), total: Number(n) };
  }

  async delete(artifactId: string, id: string): Promise<boolean> {
    return (await this.db.run('DELETE FROM artifact_annotations WHERE id = ? AND artifact_id = ?', [id, artifactId])).changes > 0;
  }
}
