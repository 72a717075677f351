import { accessEpochTriggers, type Migration } from '@wanllmdb/core';

/**
 * The artifacts tables (design schema 000 §artifacts, in MetadataStore's
 * portable conventions). A version's files are rows (for listing, diffs and
 * GC); its manifest is also a blob, so the version digest names real bytes.
 */
export const artifactMigrations: Migration[] = [
  {
    version: 1,
    name: 'artifacts, versions, files, aliases, drafts',
    up: `
      CREATE TABLE artifacts (
        id TEXT PRIMARY KEY,
        project_id TEXT NOT NULL,
        name TEXT NOT NULL,
        type TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        metadata TEXT NOT NULL DEFAULT '{}',
        tags TEXT NOT NULL DEFAULT '[]',
        version_count BIGINT NOT NULL DEFAULT 0,
        created_by TEXT NOT NULL DEFAULT '',
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        UNIQUE (project_id, name)
      );
      CREATE INDEX idx_artifacts_project_type ON artifacts (project_id, type, name);
      CREATE TABLE artifact_versions (
        id TEXT PRIMARY KEY,
        artifact_id TEXT NOT NULL REFERENCES artifacts (id) ON DELETE CASCADE,
        version BIGINT NOT NULL,
        digest TEXT NOT NULL,
        size BIGINT NOT NULL,
        file_count BIGINT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        metadata TEXT NOT NULL DEFAULT '{}',
        run_id TEXT,
        created_by TEXT NOT NULL DEFAULT '',
        created_at BIGINT NOT NULL,
        UNIQUE (artifact_id, version)
      );
      CREATE TABLE artifact_files (
        version_id TEXT NOT NULL REFERENCES artifact_versions (id) ON DELETE CASCADE,
        path TEXT NOT NULL,
        digest TEXT NOT NULL,
        size BIGINT NOT NULL,
        mode INTEGER NOT NULL DEFAULT 0,
        chunks TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (version_id, path)
      );
      CREATE INDEX idx_artifact_files_digest ON artifact_files (digest);
      CREATE TABLE artifact_aliases (
        artifact_id TEXT NOT NULL REFERENCES artifacts (id) ON DELETE CASCADE,
        alias TEXT NOT NULL,
        version_id TEXT NOT NULL REFERENCES artifact_versions (id) ON DELETE CASCADE,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (artifact_id, alias)
      );
      CREATE INDEX idx_artifact_aliases_version ON artifact_aliases (version_id);
      CREATE TABLE artifact_alias_events (
        id TEXT PRIMARY KEY,
        artifact_id TEXT NOT NULL REFERENCES artifacts (id) ON DELETE CASCADE,
        alias TEXT NOT NULL,
        version TEXT NOT NULL DEFAULT '',
        previous_version TEXT NOT NULL DEFAULT '',
        actor TEXT NOT NULL DEFAULT '',
        at BIGINT NOT NULL,
        seq BIGINT NOT NULL
      );
      CREATE INDEX idx_artifact_alias_events ON artifact_alias_events (artifact_id, seq);
      CREATE TABLE artifact_drafts (
        id TEXT PRIMARY KEY,
        artifact_id TEXT NOT NULL REFERENCES artifacts (id) ON DELETE CASCADE,
        created_by TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        metadata TEXT NOT NULL DEFAULT '{}',
        revision BIGINT NOT NULL DEFAULT 0,
        manifest TEXT NOT NULL DEFAULT '',
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
      );
      CREATE TABLE artifact_draft_files (
        draft_id TEXT NOT NULL REFERENCES artifact_drafts (id) ON DELETE CASCADE,
        path TEXT NOT NULL,
        digest TEXT NOT NULL,
        size BIGINT NOT NULL,
        mode INTEGER NOT NULL DEFAULT 0,
        chunks TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (draft_id, path)
      );
      CREATE INDEX idx_artifact_draft_files_digest ON artifact_draft_files (digest);
      CREATE INDEX idx_artifact_versions_digest ON artifact_versions (digest);
      CREATE TABLE artifact_project_blobs (
        project_id TEXT NOT NULL,
        digest TEXT NOT NULL,
        size BIGINT NOT NULL,
        confirmed INTEGER NOT NULL DEFAULT 0,
        pinned_at BIGINT NOT NULL,
        PRIMARY KEY (project_id, digest)
      );
      CREATE INDEX idx_artifact_project_blobs_digest ON artifact_project_blobs (digest);
      CREATE TABLE artifact_gc_locks (
        digest TEXT PRIMARY KEY
      );
      CREATE TABLE artifact_gc_tombstones (
        digest TEXT PRIMARY KEY,
        at BIGINT NOT NULL
      )
    `,
  },
  {
    version: 2,
    // Placement of an artifact (its project) is reused between calls while the epoch stands (ADR 0015).
    name: 'artifact removals move the access epoch',
    up: accessEpochTriggers({ artifacts: ['DELETE'] }),
  },
  {
    version: 3,
    // Edges outlive what they join: a deleted run or version keeps its place in the history.
    name: 'lineage edges',
    up: `
      CREATE TABLE artifact_edges (
        run_id TEXT NOT NULL,
        run_project_id TEXT NOT NULL,
        version_id TEXT NOT NULL,
        artifact_id TEXT NOT NULL,
        project_id TEXT NOT NULL,
        artifact_name TEXT NOT NULL,
        artifact_type TEXT NOT NULL,
        version BIGINT NOT NULL,
        direction TEXT NOT NULL CHECK (direction IN ('input', 'output')),
        created_at BIGINT NOT NULL,
        PRIMARY KEY (run_id, version_id, direction)
      );
      CREATE INDEX idx_artifact_edges_version ON artifact_edges (version_id, direction)
    `,
  },
  {
    version: 4,
    // A file that is a reference (s3://, file://, http(s)://) carries what was recorded of its object, as a JSON array; '' for a stored body.
    name: 'artifact file references',
    up: `
      ALTER TABLE artifact_files ADD COLUMN ref TEXT NOT NULL DEFAULT '';
      ALTER TABLE artifact_draft_files ADD COLUMN ref TEXT NOT NULL DEFAULT ''
    `,
  },
  {
    version: 5,
    // Row-level dataset annotations live beside a version (not in its manifest) and go with it.
    name: 'dataset annotations',
    up: `
      CREATE TABLE artifact_annotations (
        id TEXT PRIMARY KEY,
        artifact_id TEXT NOT NULL REFERENCES artifacts (id) ON DELETE CASCADE,
        version_id TEXT NOT NULL REFERENCES artifact_versions (id) ON DELETE CASCADE,
        version BIGINT NOT NULL,
        path TEXT NOT NULL,
        row_index BIGINT NOT NULL,
        label TEXT NOT NULL,
        note TEXT NOT NULL DEFAULT '',
        author TEXT NOT NULL,
        created_at BIGINT NOT NULL
      );
      CREATE INDEX idx_artifact_annotations_version ON artifact_annotations (version_id, path, row_index);
      CREATE INDEX idx_artifact_annotations_artifact ON artifact_annotations (artifact_id, version, path, row_index)
    `,
  },
  {
    version: 6,
    // Retention (retention.ts): an artifact's own rule goes with it; a project's per-type defaults go with the project (deleteProject).
    name: 'artifact retention rules',
    up: `
      CREATE TABLE artifact_retention (
        artifact_id TEXT PRIMARY KEY REFERENCES artifacts (id) ON DELETE CASCADE,
        keep_last BIGINT NOT NULL DEFAULT 0,
        keep_aliased INTEGER NOT NULL DEFAULT 1,
        max_age_seconds BIGINT NOT NULL DEFAULT 0,
        updated_by TEXT NOT NULL DEFAULT '',
        updated_at BIGINT NOT NULL
      );
      CREATE TABLE artifact_type_retention (
        project_id TEXT NOT NULL,
        type TEXT NOT NULL,
        keep_last BIGINT NOT NULL DEFAULT 0,
        keep_aliased INTEGER NOT NULL DEFAULT 1,
        max_age_seconds BIGINT NOT NULL DEFAULT 0,
        updated_by TEXT NOT NULL DEFAULT '',
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (project_id, type)
      );
      CREATE INDEX idx_artifact_versions_age ON artifact_versions (artifact_id, created_at)
    `,
  },
  {
    version: 7,
    // Packs (packs.ts, ADR 0025): many small bodies stored as one blob, and where each lies in it.
    name: 'artifact packs',
    up: `
      CREATE TABLE artifact_packs (
        digest TEXT PRIMARY KEY,
        size BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        dead INTEGER NOT NULL DEFAULT 0
      );
      CREATE TABLE artifact_packed_bodies (
        digest TEXT PRIMARY KEY,
        pack TEXT NOT NULL,
        pos BIGINT NOT NULL,
        size BIGINT NOT NULL
      );
      CREATE INDEX idx_artifact_packed_bodies_pack ON artifact_packed_bodies (pack)
    `,
  },
  {
    version: 8,
    // A pack upload looks its bodies up by digest within one draft (draftBodySizes); the planners otherwise walk the whole draft.
    name: 'artifact draft files by draft and digest',
    up: `CREATE INDEX idx_artifact_draft_files_draft_digest ON artifact_draft_files (draft_id, digest)`,
  },
];
