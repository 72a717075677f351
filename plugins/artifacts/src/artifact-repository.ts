import { Errors, isoTime, newId, type MetadataStore, type SqlExecutor } from '@wanllmdb/core';
import type { JsonObject } from '@wanllmdb/proto';
import type { artifacts } from './gen/index.js';
import { IN_BATCH, marks, slices } from './sql.js';
import { decodeChunks, encodeChunks, type ManifestFile } from './manifest.js';
import { decodeRef, encodeRef } from './references.js';

type Artifact = artifacts.v1.Artifact;
type Version = artifacts.v1.Version;

type ArtifactRow = {
  id: string;
  project_id: string;
  name: string;
  type: string;
  description: string;
  metadata: string;
  tags: string;
  version_count: number;
  created_by: string;
  created_at: number;
  updated_at: number;
  latest: number | null;
};

type VersionRow = {
  id: string;
  artifact_id: string;
  version: number;
  digest: string;
  size: number;
  file_count: number;
  description: string;
  metadata: string;
  run_id: string | null;
  created_by: string;
  created_at: number;
};

type FileRow = {
  path: string;
  digest: string;
  size: number;
  mode: number;
  chunks: string;
  /** '' for a stored body; a reference's recorded fields otherwise (references.ts). */
  ref: string;
};

export type DraftRow = {
  id: string;
  artifact_id: string;
  created_by: string;
  description: string;
  metadata: string;
  revision: number;
  created_at: number;
};

export type EdgeRow = {
  run_id: string;
  run_project_id: string;
  version_id: string;
  artifact_id: string;
  project_id: string;
  artifact_name: string;
  artifact_type: string;
  version: number;
  direction: 'input' | 'output';
  created_at: number;
};

const LATEST = 'latest';

const ARTIFACT_COLUMNS = `a.id, a.project_id, a.name, a.type, a.description, a.metadata, a.tags, a.version_count, a.created_by, a.created_at, a.updated_at,
  (SELECT v.version FROM artifact_aliases al JOIN artifact_versions v ON v.id = al.version_id WHERE al.artifact_id = a.id AND al.alias = '${LATEST}') AS latest`;
const VERSION_COLUMNS = 'v.id, v.artifact_id, v.version, v.digest, v.size, v.file_count, v.description, v.metadata, v.run_id, v.created_by, v.created_at';

export const versionName = (n: number): string => `v${n}`;

const toArtifact = (r: ArtifactRow): Artifact => ({
  id: r.id,
  projectId: r.project_id,
  name: r.name,
  type: r.type,
  description: r.description,
  metadata: JSON.parse(r.metadata) as JsonObject,
  tags: JSON.parse(r.tags) as string[],
  versionCount: Number(r.version_count),
  latestVersion: r.latest === null || r.latest === undefined ? '' : versionName(Number(r.latest)),
  createdBy: r.created_by,
  createdAt: isoTime(r.created_at),
  updatedAt: isoTime(r.updated_at),
});

const toFile = (r: FileRow): ManifestFile => {
  const ref = decodeRef(r.ref);
  return { path: r.path, digest: r.digest, size: Number(r.size), mode: Number(r.mode), chunks: decodeChunks(r.chunks), ...(ref ? { ref } : {}) };
};


export interface NewArtifact {
  projectId: string;
  name: string;
  type: string;
  description: string;
  metadata: JsonObject;
  tags: string[];
  createdBy: string;
  now: number;
}

export interface NewVersion {
  artifactId: string;
  projectId: string;
  /** Every body the version needs (files, chunks, the manifest). */
  bodies: string[];
  draft: DraftRow;
  digest: string;
  size: number;
  fileCount: number;
  aliases: string[];
  runId: string | null;
  actor: string;
  now: number;
}

/** SQL of the artifacts plugin. Every multi-statement change runs in one transaction, locked on its artifact's row. */
export class ArtifactRepository {
  constructor(readonly db: MetadataStore) {}

  // ---------------------------------------------------------------- artifacts

  async create(a: NewArtifact): Promise<Artifact | undefined> {
    const id = newId();
    try {
      await this.db.run(
        'INSERT INTO artifacts (id, project_id, name, type, description, metadata, tags, version_count, created_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)',
        [id, a.projectId, a.name, a.type, a.description, JSON.stringify(a.metadata), JSON.stringify(a.tags), a.createdBy, a.now, a.now],
      );
    } catch (err) {
      if (Errors.DB_CONSTRAINT_VIOLATION.is(err)) return undefined; // the name is taken in the project
      throw err;
    }
    return (await this.get(id))!;
  }

  async get(id: string, tx: SqlExecutor = this.db): Promise<Artifact | undefined> {
    const [row] = await tx.query<ArtifactRow>(`SELECT ${ARTIFACT_COLUMNS} FROM artifacts a WHERE a.id = ?`, [id]);
    return row && toArtifact(row);
  }

  async byName(projectId: string, name: string): Promise<Artifact | undefined> {
    const [row] = await this.db.query<ArtifactRow>(`SELECT ${ARTIFACT_COLUMNS} FROM artifacts a WHERE a.project_id = ? AND a.name = ?`, [projectId, name]);
    return row && toArtifact(row);
  }

  async projectOf(id: string): Promise<string | undefined> {
    return (await this.db.query<{ project_id: string }>('SELECT project_id FROM artifacts WHERE id = ?', [id]))[0]?.project_id;
  }

  async list(projectId: string, filter: { type: string; search: string; name?: string }, offset: number, limit: number): Promise<{ rows: Artifact[]; total: number }> {
    const where = ['a.project_id = ?'];
    const params: (string | number)[] = [projectId];
    if (filter.type) {
      where.push('a.type = ?');
      params.push(filter.type);
    }
    if (filter.name) {
      where.push('a.name = ?');
      params.push(filter.name);
    }
    if (filter.search) {
      where.push("LOWER(a.name) LIKE ? ESCAPE '\\'");
      params.push(`%${filter.search.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
    }
    const clause = where.join(' AND ');
    const [{ n }] = (await this.db.query<{ n: number }>(`SELECT COUNT(*) AS n FROM artifacts a WHERE ${clause}`, params)) as [{ n: number }];
    const rows = await this.db.query<ArtifactRow>(`SELECT ${ARTIFACT_COLUMNS} FROM artifacts a WHERE ${clause} ORDER BY a.type, a.name LIMIT ? OFFSET ?`, [...params, limit, offset]);
    return { rows: rows.map(toArtifact), total: Number(n) };
  }

  async update(id: string, change: { description?: string; metadata?: JsonObject; tags?: string[] }, now: number): Promise<void> {
    const sets: string[] = ['updated_at = ?'];
    const params: (string | number)[] = [now];
    if (change.description !== undefined) sets.push('description = ?'), params.push(change.description);
    if (change.metadata !== undefined) sets.push('metadata = ?'), params.push(JSON.stringify(change.metadata));
    if (change.tags !== undefined) sets.push('tags = ?'), params.push(JSON.stringify(change.tags));
    await this.db.run(`UPDATE artifacts SET ${sets.join(', ')} WHERE id = ?`, [...params, id]);
  }

  /** Everything of a deleted project: its artifacts (with, by cascade, their versions, files, aliases and drafts) and its claims on bodies. */
  async deleteProject(projectId: string): Promise<number> {
    return this.db.transaction(async (tx) => {
      const n = (await tx.run('DELETE FROM artifacts WHERE project_id = ?', [projectId])).changes;
      await tx.run('DELETE FROM artifact_project_blobs WHERE project_id = ?', [projectId]);
      await tx.run('DELETE FROM artifact_type_retention WHERE project_id = ?', [projectId]); // its per-type retention defaults (retention.ts)
      return n;
    });
  }

  /** Removes the artifact and, by cascade, its versions, files, aliases, history and drafts. */
  async delete(id: string): Promise<boolean> {
    return (await this.db.run('DELETE FROM artifacts WHERE id = ?', [id])).changes > 0;
  }

  // ---------------------------------------------------------------- drafts

  async createDraft(artifactId: string, createdBy: string, description: string, metadata: JsonObject, now: number): Promise<DraftRow> {
    const id = newId();
    await this.db.run(
      'INSERT INTO artifact_drafts (id, artifact_id, created_by, description, metadata, revision, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 0, ?, ?)',
      [id, artifactId, createdBy, description, JSON.stringify(metadata), now, now],
    );
    return { id, artifact_id: artifactId, created_by: createdBy, description, metadata: JSON.stringify(metadata), revision: 0, created_at: now };
  }

  async draft(id: string, tx: SqlExecutor = this.db): Promise<DraftRow | undefined> {
    return (await tx.query<DraftRow>('SELECT id, artifact_id, created_by, description, metadata, revision, created_at FROM artifact_drafts WHERE id = ?', [id]))[0];
  }

  /** The manifest a commit of the draft is about to store: needed (not collected) while the draft lives. */
  async setDraftManifest(id: string, digest: string, now: number): Promise<void> {
    await this.db.run('UPDATE artifact_drafts SET manifest = ?, updated_at = ? WHERE id = ?', [digest, now, id]);
  }

  /** A draft in use is not abandoned. */
  async touchDraft(id: string, now: number): Promise<void> {
    await this.db.run('UPDATE artifact_drafts SET updated_at = ? WHERE id = ?', [now, id]);
  }

  async draftStats(id: string): Promise<{ files: number; size: number }> {
    const [r] = await this.db.query<{ n: number; size: number | null }>('SELECT COUNT(*) AS n, SUM(size) AS size FROM artifact_draft_files WHERE draft_id = ?', [id]);
    return { files: Number(r?.n ?? 0), size: Number(r?.size ?? 0) };
  }

  /** Adds entries to a draft (a path given again replaces its entry) and moves its revision, in one transaction. */
  /** Adds (or, for paths it has, replaces) files of a draft. */
  async addDraftFiles(draftId: string, files: readonly ManifestFile[], now: number): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const moved = await tx.run('UPDATE artifact_drafts SET revision = revision + 1, updated_at = ? WHERE id = ?', [now, draftId]);
      if (!moved.changes) return false; // committed or deleted meanwhile
      // Under the draft's row lock: an empty draft (the first call) has no paths to replace.
      const [any] = await tx.query('SELECT 1 AS x FROM artifact_draft_files WHERE draft_id = ? LIMIT 1', [draftId]);
      if (any) for (const slice of slices(files)) {
        await tx.run(`DELETE FROM artifact_draft_files WHERE draft_id = ? AND path IN (${marks(slice.length)})`, [draftId, ...slice.map((f) => f.path)]);
      }
      await tx.insertMany(
        'artifact_draft_files',
        ['draft_id', 'path', 'digest', 'size', 'mode', 'chunks', 'ref'],
        files.map((f) => [draftId, f.path, f.digest, f.size, f.mode, encodeChunks(f.chunks), encodeRef(f.ref)]),
      );
      return true;
    });
  }

  async draftFiles(draftId: string): Promise<ManifestFile[]> {
    return (await this.db.query<FileRow>('SELECT path, digest, size, mode, chunks, ref FROM artifact_draft_files WHERE draft_id = ?', [draftId])).map(toFile);
  }

  /** The size of body `digest` (a whole file or one chunk) when the draft's manifest names it. */
  async draftBodySize(draftId: string, digest: string): Promise<number | undefined> {
    const [whole] = await this.db.query<{ size: number | string }>('SELECT size FROM artifact_draft_files WHERE draft_id = ? AND digest = ? AND chunks = ? LIMIT 1', [draftId, digest, '']);
    if (whole) return Number(whole.size);
    const chunked = await this.db.query<{ chunks: string }>("SELECT chunks FROM artifact_draft_files WHERE draft_id = ? AND chunks <> ''", [draftId]);
    for (const r of chunked) {
      if (!r.chunks.includes(`"${digest}"`)) continue;
      const chunk = decodeChunks(r.chunks).find((c) => c.digest === digest);
      if (chunk) return chunk.size;
    }
    return undefined;
  }

  // ---------------------------------------------------------------- bodies a project holds

  /** Of `digests`, those the project does not hold (it must be sent the bytes: knowing a digest is no proof of having them). */
  async missingBodies(projectId: string, digests: Iterable<string>, tx: SqlExecutor = this.db): Promise<string[]> {
    const wanted = [...new Set(digests)];
    const held = await this.heldBodies(projectId, wanted, tx);
    return wanted.filter((d) => !held.has(d));
  }

  /** Of `digests`, those the project holds, with their sizes as stored. */
  async heldBodies(projectId: string, digests: Iterable<string>, tx: SqlExecutor = this.db): Promise<Map<string, number>> {
    const held = new Map<string, number>();
    for (const slice of slices([...new Set(digests)])) {
      const rows = await tx.query<{ digest: string; size: number | string }>(
        `SELECT digest, size FROM artifact_project_blobs WHERE project_id = ? AND confirmed = 1 AND digest IN (${marks(slice.length)})`,
        [projectId, ...slice],
      );
      for (const r of rows) held.set(r.digest, Number(r.size));
    }
    return held;
  }

  /**
   * Before a body is stored: the project's claim on `digest`, pinned now, so
   * the collector (which spares pins younger than its grace) cannot delete
   * the object between the blob store finding it and the claim's
   * confirmation. Not yet a proof of having the bytes (`confirmBody`).
   */
  async pinBody(projectId: string, digest: string, size: number, now: number, remove: () => Promise<unknown>): Promise<void> {
    await this.db.transaction(async (tx) => {
      await this.lockDigest(tx, digest); // waits while a collection decides this digest
      // A collection decided to delete this body and has not finished: finish it first, so the upload stores the bytes anew.
      await this.finishTombstone(tx, digest, remove);
      await tx.run(
        `INSERT INTO artifact_project_blobs (project_id, digest, size, confirmed, pinned_at) VALUES (?, ?, ?, 0, ?)
         ON CONFLICT (project_id, digest) DO UPDATE SET pinned_at = excluded.pinned_at`,
        [projectId, digest, size, now],
      );
      await tx.run('DELETE FROM artifact_gc_locks WHERE digest = ?', [digest]);
    });
  }

  /** Of `digests`, the whole-file bodies the draft's manifest names, with their sizes. */
  async draftBodySizes(draftId: string, digests: readonly string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const slice of slices([...new Set(digests)])) {
      const rows = await this.db.query<{ digest: string; size: number | string }>(
        `SELECT digest, size FROM artifact_draft_files WHERE draft_id = ? AND chunks = '' AND ref = '' AND digest IN (${marks(slice.length)})`,
        [draftId, ...slice],
      );
      for (const r of rows) out.set(r.digest, Number(r.size));
    }
    return out;
  }

  /**
   * pinBody for many bodies at once (a pack's): in digest order, a slice per
   * transaction, each digest locked, tombstones finished, claims pinned
   * with their sizes.
   */
  async pinBodies(projectId: string, bodies: readonly { digest: string; size: number }[], now: number, remove: (digest: string) => Promise<unknown>): Promise<void> {
    const sorted = [...new Map(bodies.map((b) => [b.digest, b])).values()].sort((a, b) => (a.digest < b.digest ? -1 : 1));
    for (const slice of slices(sorted)) {
      const digests = slice.map((b) => b.digest);
      await this.db.transaction(async (tx) => {
        await tx.run(`INSERT INTO artifact_gc_locks (digest) VALUES ${slice.map(() => '(?)').join(', ')} ON CONFLICT (digest) DO NOTHING`, digests);
        for (const t of await tx.query<{ digest: string }>(`SELECT digest FROM artifact_gc_tombstones WHERE digest IN (${marks(slice.length)})`, digests)) {
          await this.finishTombstone(tx, t.digest, () => remove(t.digest));
        }
        await tx.run(
          `INSERT INTO artifact_project_blobs (project_id, digest, size, confirmed, pinned_at) VALUES ${slice.map(() => '(?, ?, ?, 0, ?)').join(', ')}
           ON CONFLICT (project_id, digest) DO UPDATE SET pinned_at = excluded.pinned_at`,
          slice.flatMap((b) => [projectId, b.digest, b.size, now]),
        );
        await tx.run(`DELETE FROM artifact_gc_locks WHERE digest IN (${marks(slice.length)})`, digests);
      });
    }
  }

  /**
   * After a pack's bytes were stored and verified: where each body lies, and
   * the project's claims on them confirmed (the pack's own claim, which kept
   * it from the collector until now, goes). A body already in another pack
   * stays there. Resolves to the bodies whose claim a collection took
   * meanwhile, and whether no body is indexed in this pack (so it is dead).
   */
  async indexPack(projectId: string, pack: { digest: string; size: number }, bodies: readonly { digest: string; size: number; offset: number }[], now: number): Promise<{ lost: string[]; unused: boolean }> {
    return this.db.transaction(async (tx) => {
      await tx.run('INSERT INTO artifact_packs (digest, size, created_at, dead) VALUES (?, ?, ?, 0) ON CONFLICT (digest) DO UPDATE SET dead = 0', [pack.digest, pack.size, now]);
      const unique = [...new Map(bodies.map((b) => [b.digest, b])).values()];
      for (const slice of slices(unique)) {
        await tx.run(
          `INSERT INTO artifact_packed_bodies (digest, pack, pos, size) VALUES ${slice.map(() => '(?, ?, ?, ?)').join(', ')} ON CONFLICT (digest) DO NOTHING`,
          slice.flatMap((b) => [b.digest, pack.digest, b.offset, b.size]),
        );
      }
      let confirmed = 0;
      for (const slice of slices(unique.map((b) => b.digest))) {
        confirmed += (await tx.run(`UPDATE artifact_project_blobs SET confirmed = 1 WHERE project_id = ? AND digest IN (${marks(slice.length)})`, [projectId, ...slice])).changes;
      }
      await tx.run('DELETE FROM artifact_project_blobs WHERE project_id = ? AND digest = ? AND confirmed = 0', [projectId, pack.digest]);
      const lost = confirmed === unique.length ? [] : (await this.missingBodies(projectId, unique.map((b) => b.digest), tx));
      const [used] = await tx.query('SELECT 1 AS x FROM artifact_packed_bodies WHERE pack = ? LIMIT 1', [pack.digest]);
      if (!used) await tx.run('UPDATE artifact_packs SET dead = 1 WHERE digest = ?', [pack.digest]);
      return { lost, unused: !used };
    });
  }

  /** Under the digest's lock: deletes the body a collection tombstoned, then the tombstone. */
  private async finishTombstone(tx: SqlExecutor, digest: string, remove: () => Promise<unknown>): Promise<boolean> {
    const [t] = await tx.query('SELECT digest FROM artifact_gc_tombstones WHERE digest = ?', [digest]);
    if (!t) return false;
    await remove();
    await tx.run('DELETE FROM artifact_gc_tombstones WHERE digest = ?', [digest]);
    return true;
  }

  /**
   * Inside a transaction: one digest's lock, held until the transaction ends
   * (a row of artifact_gc_locks inserted and deleted again by its holder; a
   * second inserter waits on the row's unique key). SQLite has one writer.
   */
  private async lockDigest(tx: SqlExecutor, digest: string): Promise<void> {
    await tx.run('INSERT INTO artifact_gc_locks (digest) VALUES (?) ON CONFLICT (digest) DO NOTHING', [digest]);
  }

  /** After the body's bytes were stored and verified: the project holds it. False when a collection took the claim meanwhile. */
  async confirmBody(projectId: string, digest: string, size: number): Promise<boolean> {
    return (await this.db.run('UPDATE artifact_project_blobs SET confirmed = 1, size = ? WHERE project_id = ? AND digest = ?', [size, projectId, digest])).changes > 0;
  }

  /**
   * Inside a transaction: locks the project's claims on `digests` (the
   * collector locks the same rows before it deletes a body, so one waits
   * for the other) and answers those it does not hold.
   */
  async lockHeld(tx: SqlExecutor, projectId: string, digests: readonly string[], now: number): Promise<string[]> {
    // In digest order: two commits locking overlapping claims take them in the same order (no deadlock).
    for (const slice of slices([...new Set(digests)].sort())) {
      await tx.run(`UPDATE artifact_project_blobs SET pinned_at = ? WHERE project_id = ? AND confirmed = 1 AND digest IN (${marks(slice.length)})`, [now, projectId, ...slice]);
    }
    return this.missingBodies(projectId, digests, tx);
  }

  // ---------------------------------------------------------------- versions

  /**
   * Commits a draft as the artifact's next version, all or nothing, under
   * the artifact's row lock (so concurrent commits number v0, v1 … without
   * gaps): the version row, its files copied from the draft, "latest" and
   * the asked aliases moved (with history), the draft removed. When the
   * manifest equals the latest version's, no version is made: the aliases
   * move to that one. Undefined when the draft changed or went meanwhile.
   */
  async commit(v: NewVersion): Promise<{ version: Version; created: boolean } | { missing: string[] } | undefined> {
    return this.db.transaction(async (tx) => {
      await tx.run('UPDATE artifacts SET updated_at = ? WHERE id = ?', [v.now, v.artifactId]); // the lock
      // The draft's row lock: AddFiles and the collector's expiry wait for this commit, which copies exactly the files checked.
      const held = await tx.run('UPDATE artifact_drafts SET revision = revision WHERE id = ? AND revision = ?', [v.draft.id, v.draft.revision]);
      if (!held.changes) return undefined;
      const draft = (await this.draft(v.draft.id, tx))!;
      // Every body and the manifest stay held until this commits: a collector deleting one waits, then sees the version.
      const missing = await this.lockHeld(tx, v.projectId, v.bodies, v.now);
      if (missing.length) return { missing };
      const latest = await this.versionRowByAlias(v.artifactId, LATEST, tx);
      let row: VersionRow;
      let created = false;
      if (latest && latest.digest === v.digest) {
        row = latest;
      } else {
        const [{ version_count: next }] = (await tx.query<{ version_count: number }>('SELECT version_count FROM artifacts WHERE id = ?', [v.artifactId])) as [{ version_count: number }];
        row = {
          id: newId(),
          artifact_id: v.artifactId,
          version: Number(next),
          digest: v.digest,
          size: v.size,
          file_count: v.fileCount,
          description: draft.description,
          metadata: draft.metadata,
          run_id: v.runId,
          created_by: v.actor,
          created_at: v.now,
        };
        await tx.run(
          `INSERT INTO artifact_versions (id, artifact_id, version, digest, size, file_count, description, metadata, run_id, created_by, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          [row.id, row.artifact_id, row.version, row.digest, row.size, row.file_count, row.description, row.metadata, row.run_id, row.created_by, row.created_at],
        );
        await tx.run(
          'INSERT INTO artifact_files (version_id, path, digest, size, mode, chunks, ref) SELECT ?, path, digest, size, mode, chunks, ref FROM artifact_draft_files WHERE draft_id = ?',
          [row.id, draft.id],
        );
        await tx.run('UPDATE artifacts SET version_count = version_count + 1 WHERE id = ?', [v.artifactId]);
        await this.pointAlias(tx, v.artifactId, LATEST, row, v.actor, v.now);
        created = true;
      }
      for (const alias of v.aliases) await this.pointAlias(tx, v.artifactId, alias, row, v.actor, v.now);
      await tx.run('DELETE FROM artifact_drafts WHERE id = ?', [draft.id]);
      return { version: (await this.toVersions([row], tx))[0]!, created };
    });
  }

  private async versionRowByAlias(artifactId: string, alias: string, tx: SqlExecutor = this.db): Promise<VersionRow | undefined> {
    return (
      await tx.query<VersionRow>(
        `SELECT ${VERSION_COLUMNS} FROM artifact_aliases al JOIN artifact_versions v ON v.id = al.version_id WHERE al.artifact_id = ? AND al.alias = ?`,
        [artifactId, alias],
      )
    )[0];
  }

  private async versionRow(artifactId: string, ref: { number: number } | { alias: string }, tx: SqlExecutor = this.db): Promise<VersionRow | undefined> {
    if ('alias' in ref) return this.versionRowByAlias(artifactId, ref.alias, tx);
    return (await tx.query<VersionRow>(`SELECT ${VERSION_COLUMNS} FROM artifact_versions v WHERE v.artifact_id = ? AND v.version = ?`, [artifactId, ref.number]))[0];
  }

  async version(artifactId: string, ref: { number: number } | { alias: string }): Promise<Version | undefined> {
    const row = await this.versionRow(artifactId, ref);
    return row && (await this.toVersions([row]))[0];
  }

  async versions(artifactId: string, offset: number, limit: number): Promise<{ rows: Version[]; total: number }> {
    const [{ n }] = (await this.db.query<{ n: number }>('SELECT COUNT(*) AS n FROM artifact_versions WHERE artifact_id = ?', [artifactId])) as [{ n: number }];
    const rows = await this.db.query<VersionRow>(`SELECT ${VERSION_COLUMNS} FROM artifact_versions v WHERE v.artifact_id = ? ORDER BY v.version DESC LIMIT ? OFFSET ?`, [artifactId, limit, offset]);
    return { rows: await this.toVersions(rows), total: Number(n) };
  }

  private async toVersions(rows: VersionRow[], tx: SqlExecutor = this.db): Promise<Version[]> {
    const aliases = new Map<string, string[]>();
    for (const slice of slices(rows.map((r) => r.id))) {
      if (!slice.length) continue;
      const found = await tx.query<{ version_id: string; alias: string }>(`SELECT version_id, alias FROM artifact_aliases WHERE version_id IN (${marks(slice.length)}) ORDER BY alias`, slice);
      for (const a of found) aliases.set(a.version_id, [...(aliases.get(a.version_id) ?? []), a.alias]);
    }
    return rows.map((r) => ({
      id: r.id,
      artifactId: r.artifact_id,
      version: versionName(Number(r.version)),
      digest: r.digest,
      size: Number(r.size),
      fileCount: Number(r.file_count),
      aliases: aliases.get(r.id) ?? [],
      description: r.description,
      metadata: JSON.parse(r.metadata) as JsonObject,
      runId: r.run_id ?? '',
      createdBy: r.created_by,
      createdAt: isoTime(r.created_at),
    }));
  }

  /** A page of a version's files in path order (keyset: paths after `after`). */
  async files(versionId: string, prefix: string, after: string, limit: number): Promise<ManifestFile[]> {
    const where = ['version_id = ?'];
    const params: (string | number)[] = [versionId];
    if (prefix) where.push('substr(path, 1, ?) = ?'), params.push([...prefix].length, prefix); // both databases count characters, not UTF-16 units
    if (after) where.push('path > ?'), params.push(after);
    const rows = await this.db.query<FileRow>(`SELECT path, digest, size, mode, chunks, ref FROM artifact_files WHERE ${where.join(' AND ')} ORDER BY path LIMIT ?`, [...params, limit]);
    return rows.map(toFile);
  }

  async file(versionId: string, path: string): Promise<ManifestFile | undefined> {
    const [row] = await this.db.query<FileRow>('SELECT path, digest, size, mode, chunks, ref FROM artifact_files WHERE version_id = ? AND path = ?', [versionId, path]);
    return row && toFile(row);
  }

  /** Files added, removed and changed (by digest, mode or reference) from one version to another, computed in the database. */
  async diff(fromId: string, toId: string, limit: number): Promise<{ entries: artifacts.v1.DiffEntry[]; added: number; removed: number; changed: number; sizeDelta: number }> {
    const one = async (status: 'added' | 'removed' | 'changed') => {
      const body =
        status === 'added'
          ? 'FROM artifact_files t WHERE t.version_id = ? AND NOT EXISTS (SELECT 1 FROM artifact_files f WHERE f.version_id = ? AND f.path = t.path)'
          : status === 'removed'
            ? 'FROM artifact_files f WHERE f.version_id = ? AND NOT EXISTS (SELECT 1 FROM artifact_files t WHERE t.version_id = ? AND t.path = f.path)'
            : 'FROM artifact_files f JOIN artifact_files t ON t.path = f.path AND t.version_id = ? WHERE f.version_id = ? AND (t.digest <> f.digest OR t.mode <> f.mode OR t.ref <> f.ref)';
      const params = status === 'added' ? [toId, fromId] : status === 'removed' ? [fromId, toId] : [toId, fromId];
      const cols =
        status === 'added'
          ? "t.path AS path, 0 AS from_size, t.size AS to_size, '' AS from_digest, t.digest AS to_digest"
          : status === 'removed'
            ? "f.path AS path, f.size AS from_size, 0 AS to_size, f.digest AS from_digest, '' AS to_digest"
            : 't.path AS path, f.size AS from_size, t.size AS to_size, f.digest AS from_digest, t.digest AS to_digest';
      const [agg] = await this.db.query<{ n: number; delta: number | null }>(`SELECT COUNT(*) AS n, SUM(${status === 'added' ? 't.size' : status === 'removed' ? '-f.size' : 't.size - f.size'}) AS delta ${body}`, params);
      const rows = await this.db.query<{ path: string; from_size: number; to_size: number; from_digest: string; to_digest: string }>(`SELECT ${cols} ${body} ORDER BY path LIMIT ?`, [...params, limit]);
      return {
        n: Number(agg?.n ?? 0),
        delta: Number(agg?.delta ?? 0),
        rows: rows.map((r) => ({ path: r.path, status, fromSize: Number(r.from_size), toSize: Number(r.to_size), fromDigest: r.from_digest, toDigest: r.to_digest })),
      };
    };
    const [a, r, c] = [await one('added'), await one('removed'), await one('changed')];
    const entries = [...a.rows, ...r.rows, ...c.rows].sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0)).slice(0, limit);
    return { entries, added: a.n, removed: r.n, changed: c.n, sizeDelta: a.delta + r.delta + c.delta };
  }

  /** Deletes a version; "latest" moves to the newest left. False when it was not there. */
  async deleteVersion(artifactId: string, ref: { number: number } | { alias: string }, actor: string, now: number): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      await tx.run('UPDATE artifacts SET updated_at = ? WHERE id = ?', [now, artifactId]);
      const row = await this.versionRow(artifactId, ref, tx);
      if (!row) return false;
      await this.deleteVersionRows(tx, artifactId, [row], actor, now);
      return true;
    });
  }

  /**
   * Inside a transaction holding the artifact's lock (`UPDATE artifacts SET
   * updated_at`): deletes these versions of the artifact, a few statements
   * per 500. Their aliases go with a history event each; "latest", if it was
   * one of them, moves to the newest version left. Lineage edges stay (they
   * show the version deleted); the number is never given again (version_count
   * does not move); bodies are freed by the next collection. The one path
   * of DeleteVersion, DeleteVersions and retention (retention.ts).
   */
  async deleteVersionRows(tx: SqlExecutor, artifactId: string, rows: readonly { id: string; version: number | string }[], actor: string, now: number): Promise<void> {
    const numberOf = new Map(rows.map((r) => [r.id, Number(r.version)]));
    let latestWas: number | undefined;
    for (const slice of slices(rows.map((r) => r.id))) {
      if (!slice.length) continue;
      const m = marks(slice.length);
      const aliases = await tx.query<{ version_id: string; alias: string }>(`SELECT version_id, alias FROM artifact_aliases WHERE version_id IN (${m}) ORDER BY alias`, slice);
      for (const a of aliases) {
        if (a.alias === LATEST) latestWas = numberOf.get(a.version_id);
        else await this.recordAlias(tx, artifactId, a.alias, '', versionName(numberOf.get(a.version_id)!), actor, now);
      }
      await tx.run(`DELETE FROM artifact_aliases WHERE version_id IN (${m})`, slice);
      await tx.run(`DELETE FROM artifact_files WHERE version_id IN (${m})`, slice);
      await tx.run(`DELETE FROM artifact_versions WHERE id IN (${m})`, slice);
    }
    if (latestWas !== undefined) {
      const [newest] = await tx.query<VersionRow>(`SELECT ${VERSION_COLUMNS} FROM artifact_versions v WHERE v.artifact_id = ? ORDER BY v.version DESC LIMIT 1`, [artifactId]);
      if (newest) await tx.run('INSERT INTO artifact_aliases (artifact_id, alias, version_id, updated_at) VALUES (?, ?, ?, ?)', [artifactId, LATEST, newest.id, now]);
      await this.recordAlias(tx, artifactId, LATEST, newest ? versionName(Number(newest.version)) : '', versionName(latestWas), actor, now);
    }
  }

  // ---------------------------------------------------------------- aliases

  /** Points an alias at a version (resolved under the artifact's lock); undefined when the version is not there. */
  async setAlias(artifactId: string, alias: string, ref: { number: number } | { alias: string }, actor: string, now: number): Promise<Version | undefined> {
    return this.db.transaction(async (tx) => {
      await tx.run('UPDATE artifacts SET updated_at = ? WHERE id = ?', [now, artifactId]);
      const row = await this.versionRow(artifactId, ref, tx);
      if (!row) return undefined;
      await this.pointAlias(tx, artifactId, alias, row, actor, now);
      return (await this.toVersions([row], tx))[0];
    });
  }

  async deleteAlias(artifactId: string, alias: string, actor: string, now: number): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      await tx.run('UPDATE artifacts SET updated_at = ? WHERE id = ?', [now, artifactId]);
      const before = await this.versionRowByAlias(artifactId, alias, tx);
      if (!before) return false;
      await tx.run('DELETE FROM artifact_aliases WHERE artifact_id = ? AND alias = ?', [artifactId, alias]);
      await this.recordAlias(tx, artifactId, alias, '', versionName(Number(before.version)), actor, now);
      return true;
    });
  }

  async aliasHistory(artifactId: string, alias: string): Promise<artifacts.v1.AliasEvent[]> {
    const rows = await this.db.query<{ alias: string; version: string; previous_version: string; actor: string; at: number }>(
      `SELECT alias, version, previous_version, actor, at FROM artifact_alias_events WHERE artifact_id = ?${alias ? ' AND alias = ?' : ''} ORDER BY seq`,
      alias ? [artifactId, alias] : [artifactId],
    );
    return rows.map((r) => ({ alias: r.alias, version: r.version, previousVersion: r.previous_version, actor: r.actor, at: isoTime(r.at) }));
  }

  /** Inside a transaction holding the artifact's lock: the alias names `row` from now on, and the change is kept. */
  private async pointAlias(tx: SqlExecutor, artifactId: string, alias: string, row: VersionRow, actor: string, now: number): Promise<void> {
    const before = await this.versionRowByAlias(artifactId, alias, tx);
    if (before?.id === row.id) return;
    if (before) await tx.run('UPDATE artifact_aliases SET version_id = ?, updated_at = ? WHERE artifact_id = ? AND alias = ?', [row.id, now, artifactId, alias]);
    else await tx.run('INSERT INTO artifact_aliases (artifact_id, alias, version_id, updated_at) VALUES (?, ?, ?, ?)', [artifactId, alias, row.id, now]);
    await this.recordAlias(tx, artifactId, alias, versionName(Number(row.version)), before ? versionName(Number(before.version)) : '', actor, now);
  }

  private async recordAlias(tx: SqlExecutor, artifactId: string, alias: string, version: string, previous: string, actor: string, now: number): Promise<void> {
    await tx.run(
      `INSERT INTO artifact_alias_events (id, artifact_id, alias, version, previous_version, actor, at, seq)
       SELECT ?, ?, ?, ?, ?, ?, ?, COALESCE(MAX(seq), 0) + 1 FROM artifact_alias_events WHERE artifact_id = ?`,
      [newId(), artifactId, alias, version, previous, actor, now, artifactId],
    );
  }

  // ---------------------------------------------------------------- lineage

  /** Records an edge once (a run using or logging the same version again adds nothing). */
  async recordEdge(e: Omit<EdgeRow, 'created_at'>, now: number): Promise<void> {
    await this.db.run(
      `INSERT INTO artifact_edges (run_id, run_project_id, version_id, artifact_id, project_id, artifact_name, artifact_type, version, direction, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, version_id, direction) DO NOTHING`,
      [e.run_id, e.run_project_id, e.version_id, e.artifact_id, e.project_id, e.artifact_name, e.artifact_type, e.version, e.direction, now],
    );
  }

  /** Edges of a direction that touch any of these versions (`by: 'version'`) or runs (`by: 'run'`). */
  async edges(by: 'run' | 'version', ids: readonly string[], direction: 'input' | 'output'): Promise<EdgeRow[]> {
    const out: EdgeRow[] = [];
    for (const slice of slices(ids)) {
      if (!slice.length) continue;
      out.push(
        ...(await this.db.query<EdgeRow>(
          `SELECT run_id, run_project_id, version_id, artifact_id, project_id, artifact_name, artifact_type, version, direction, created_at
           FROM artifact_edges WHERE ${by === 'run' ? 'run_id' : 'version_id'} IN (${marks(slice.length)}) AND direction = ? ORDER BY created_at, run_id, version_id`,
          [...slice, direction],
        )),
      );
    }
    return out;
  }

  /** Of these version ids, the ones that still exist. */
  async existingVersions(ids: readonly string[]): Promise<Set<string>> {
    const found = new Set<string>();
    for (const slice of slices(ids)) {
      if (!slice.length) continue;
      for (const r of await this.db.query<{ id: string }>(`SELECT id FROM artifact_versions WHERE id IN (${marks(slice.length)})`, slice)) found.add(r.id);
    }
    return found;
  }

  // ---------------------------------------------------------------- collection

  /** Drafts untouched since `before` (abandoned uploads); deleted unless `dryRun`. */
  async expireDrafts(before: number, dryRun: boolean): Promise<number> {
    if (dryRun) return Number((await this.db.query<{ n: number }>('SELECT COUNT(*) AS n FROM artifact_drafts WHERE updated_at < ?', [before]))[0]?.n ?? 0);
    return (await this.db.run('DELETE FROM artifact_drafts WHERE updated_at < ?', [before])).changes;
  }

  /** Every digest a chunked file of a version, or of a draft touched since `draftsAfter`, names. */
  async chunkDigests(draftsAfter: number): Promise<Set<string>> {
    const out = new Set<string>();
    const rows = await this.db.query<{ chunks: string }>(
      `SELECT chunks FROM artifact_files WHERE chunks <> ''
       UNION ALL SELECT f.chunks FROM artifact_draft_files f JOIN artifact_drafts d ON d.id = f.draft_id WHERE f.chunks <> '' AND d.updated_at >= ?`,
      [draftsAfter],
    );
    for (const r of rows) for (const c of decodeChunks(r.chunks)) out.add(c.digest);
    return out;
  }

  /**
   * Of `digests`, those something needs: a version's file, a file or the
   * manifest being committed of a draft touched since `draftsAfter` (older
   * drafts are abandoned), a version's manifest, or a claim pinned after
   * `pinnedAfter`.
   */
  async referenced(digests: readonly string[], pinnedAfter: number, draftsAfter: number, tx: SqlExecutor = this.db): Promise<Set<string>> {
    const out = new Set<string>();
    for (const slice of slices(digests)) {
      if (!slice.length) continue;
      const m = marks(slice.length);
      const rows = await tx.query<{ digest: string }>(
        `SELECT digest FROM artifact_files WHERE chunks = '' AND digest IN (${m})
         UNION SELECT f.digest FROM artifact_draft_files f JOIN artifact_drafts d ON d.id = f.draft_id WHERE f.chunks = '' AND d.updated_at >= ? AND f.digest IN (${m})
         UNION SELECT substr(digest, 8) AS digest FROM artifact_versions WHERE digest IN (${m})
         UNION SELECT manifest AS digest FROM artifact_drafts WHERE updated_at >= ? AND manifest IN (${m})
         UNION SELECT digest FROM artifact_project_blobs WHERE pinned_at > ? AND digest IN (${m})`,
        [...slice, draftsAfter, ...slice, ...slice.map((d) => `sha256:${d}`), draftsAfter, ...slice, pinnedAfter, ...slice],
      );
      for (const r of rows) out.add(r.digest);
    }
    return out;
  }

  /**
   * Deletes one body nothing needs. First, under the digest's lock, with
   * the project claims on it locked too (a commit holding them makes this
   * wait, then see its version): recheck, delete the claims and leave a
   * tombstone, and commit — so the claims are gone for good before any byte
   * is. Then the blob goes and the tombstone with it, again under the lock
   * (an upload pinning the digest finishes a tombstone it meets first, and
   * a collection finishes any a crash left).
   */
  async reclaim(digest: string, pinnedAfter: number, draftsAfter: number, remove: () => Promise<unknown>): Promise<boolean> {
    const decided = await this.db.transaction(async (tx) => {
      await this.lockDigest(tx, digest);
      await tx.run('UPDATE artifact_project_blobs SET pinned_at = pinned_at WHERE digest = ?', [digest]);
      const needed =
        (await this.referenced([digest], pinnedAfter, draftsAfter, tx)).size > 0 ||
        (await tx.query('SELECT 1 AS x FROM artifact_files WHERE chunks LIKE ? UNION SELECT 1 AS x FROM artifact_draft_files WHERE chunks LIKE ?', [`%"${digest}"%`, `%"${digest}"%`])).length > 0;
      if (!needed) {
        await tx.run('DELETE FROM artifact_project_blobs WHERE digest = ?', [digest]);
        await tx.run('INSERT INTO artifact_gc_tombstones (digest, at) VALUES (?, ?) ON CONFLICT (digest) DO NOTHING', [digest, Date.now()]);
      }
      await tx.run('DELETE FROM artifact_gc_locks WHERE digest = ?', [digest]);
      return !needed;
    });
    if (decided) await this.finish(digest, remove);
    return decided;
  }

  /** Deletes a tombstoned body (if the tombstone is still there) and its tombstone, under the digest's lock. */
  async finish(digest: string, remove: () => Promise<unknown>): Promise<void> {
    await this.db.transaction(async (tx) => {
      await this.lockDigest(tx, digest);
      await this.finishTombstone(tx, digest, remove);
      await tx.run('DELETE FROM artifact_gc_locks WHERE digest = ?', [digest]);
    });
  }

  /** Tombstones a crash left (their blob may or may not be gone). */
  async tombstones(): Promise<string[]> {
    return (await this.db.query<{ digest: string }>('SELECT digest FROM artifact_gc_tombstones ORDER BY digest')).map((r) => r.digest);
  }
}
