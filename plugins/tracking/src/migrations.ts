import { accessEpochTriggers, JSON_DOC_TYPE, type Dialect, type Migration } from '@wanllmdb/core';

/**
 * The tracking plugin's tables (metric history has its own, applied by the
 * metrics engine under "tracking.metrics").
 *
 * Portable conventions: TEXT ids, BIGINT epoch-ms times, JSON as TEXT —
 * except the three JSON documents run lists filter and sort on
 * (runs.tags, runs.config, runs.summary), which are stored in each
 * dialect's binary JSON (SQLite JSONB in a BLOB, PostgreSQL jsonb) so a
 * filter over 10,000 runs does not parse 10,000 JSON texts per condition
 * (see docs/adr/0007-run-queries.md). The repository writes them with
 * core's toJsonDoc / fromJsonDoc (JSON_DOC_TYPE).
 *
 * The summary lives beside the run: run_summaries keeps its two parts —
 * `metrics`, the last value of each logged key (kept up to date by the
 * metrics engine's aggregation), and `user_values`, what the user set —
 * and runs.summary holds the two overlaid, the document lists filter and
 * sort on, so they read one table and never touch metric history.
 */
const runsTable = (json: string) => `
  CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    group_name TEXT NOT NULL DEFAULT '',
    job_type TEXT NOT NULL DEFAULT '',
    tags ${json} NOT NULL,
    notes TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'finished', 'crashed', 'killed')),
    exit_code INTEGER,
    timed_out INTEGER NOT NULL DEFAULT 0,
    config ${json} NOT NULL,
    summary ${json} NOT NULL,
    config_version INTEGER NOT NULL DEFAULT 1,
    git TEXT,
    environment TEXT,
    created_by TEXT NOT NULL DEFAULT '',
    log_seq BIGINT NOT NULL DEFAULT 0,
    started_at BIGINT NOT NULL,
    finished_at BIGINT,
    heartbeat_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
  );
  CREATE INDEX idx_runs_project_created ON runs (project_id, created_at, id);
  CREATE INDEX idx_runs_state_heartbeat ON runs (state, heartbeat_at);
  CREATE TABLE run_summaries (
    run_id TEXT PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    metrics TEXT NOT NULL DEFAULT '{}',
    user_values TEXT NOT NULL DEFAULT '{}',
    updated_at BIGINT NOT NULL
  );
  CREATE TABLE run_config_versions (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    config TEXT NOT NULL,
    changed_at BIGINT NOT NULL,
    PRIMARY KEY (run_id, version)
  )
`;

/** A migration text per dialect, with the type of the documents run lists look into (core's JSON-column rule). */
const perDialect = (make: (json: string) => string): Record<Dialect, string> => ({ sqlite: make(JSON_DOC_TYPE.sqlite), postgres: make(JSON_DOC_TYPE.postgres) });

/**
 * run_file_releases: digests a run_files row stopped referencing, waiting
 * for the collector. Triggers fill it in the same transaction as the row
 * change, whatever made it: a replaced file, a deleted run (the cascade), a
 * deleted project (its runs). run_file_uploads: uploads that have hashed
 * their bytes and not yet recorded their row; the collector leaves those
 * digests' blobs alone (file-repository.ts has the protocol).
 */
const fileBlobCollection = (d: Dialect) => {
  const tables = `
    CREATE INDEX idx_run_files_digest ON run_files (digest);
    CREATE TABLE run_file_releases (
      digest TEXT PRIMARY KEY,
      released_at BIGINT NOT NULL
    );
    CREATE TABLE run_file_uploads (
      id TEXT PRIMARY KEY,
      digest TEXT NOT NULL,
      started_at BIGINT NOT NULL
    );
    CREATE INDEX idx_run_file_uploads_digest ON run_file_uploads (digest);
    CREATE INDEX idx_run_file_uploads_started ON run_file_uploads (started_at);
  `;
  if (d === 'sqlite') {
    // Foreign-key cascades fire these too (SQLite runs them as deletes of the child rows).
    const release = `INSERT OR IGNORE INTO run_file_releases (digest, released_at) VALUES (OLD.digest, CAST(unixepoch('subsec') * 1000 AS INTEGER))`;
    return `${tables}
      CREATE TRIGGER run_files_release_deleted AFTER DELETE ON run_files BEGIN ${release}; END;
      CREATE TRIGGER run_files_release_replaced AFTER UPDATE OF digest ON run_files WHEN OLD.digest <> NEW.digest BEGIN ${release}; END;
    `;
  }
  return `${tables}
    CREATE FUNCTION run_files_release_blob() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO run_file_releases (digest, released_at)
      VALUES (OLD.digest, CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT))
      ON CONFLICT (digest) DO NOTHING;
      RETURN NULL;
    END $$;
    CREATE TRIGGER run_files_release_deleted AFTER DELETE ON run_files FOR EACH ROW EXECUTE FUNCTION run_files_release_blob();
    CREATE TRIGGER run_files_release_replaced AFTER UPDATE OF digest ON run_files FOR EACH ROW
      WHEN (OLD.digest IS DISTINCT FROM NEW.digest) EXECUTE FUNCTION run_files_release_blob();
  `;
};

export const trackingMigrations: Migration[] = [
  { version: 1, name: 'create runs, run summaries and config history', up: perDialect(runsTable) },
  {
    version: 2,
    name: 'create run console logs',
    up: `
      CREATE TABLE run_logs (
        run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        seq BIGINT NOT NULL,
        time BIGINT NOT NULL,
        stream TEXT NOT NULL CHECK (stream IN ('stdout', 'stderr')),
        line TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
      )
    `,
  },
  {
    version: 3,
    name: 'create run files',
    up: `
      CREATE TABLE run_files (
        run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        path TEXT NOT NULL,
        digest TEXT NOT NULL,
        size BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (run_id, path)
      )
    `,
  },
  {
    // Saved workspaces (the web UI's panel layouts), personal or shared per project.
    version: 4,
    name: 'create saved views',
    up: `
      CREATE TABLE views (
        id TEXT PRIMARY KEY,
        project_id TEXT NOT NULL,
        name TEXT NOT NULL,
        scope TEXT NOT NULL CHECK (scope IN ('personal', 'shared')),
        owner_id TEXT NOT NULL,
        spec TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
      );
      CREATE INDEX idx_views_project ON views (project_id, scope, owner_id)
    `,
  },
  {
    // Run-file blob collection (file-blob-collector.ts): a blob no run_files row references is deleted.
    version: 5,
    name: 'collect unreferenced run-file blobs',
    up: { sqlite: fileBlobCollection('sqlite'), postgres: fileBlobCollection('postgres') },
  },
  {
    // AppendLogs batch ids: a batch sent again (a retry whose answer was lost, a re-run sync) is stored once.
    version: 6,
    name: 'create run log batches',
    up: `
      CREATE TABLE run_log_batches (
        run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        batch_id TEXT NOT NULL,
        lines INTEGER NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (run_id, batch_id)
      )
    `,
  },
  {
    version: 7,
    // A run is placed in its project once and for ever; only its removal changes where it sits (ADR 0015).
    name: 'run removal moves the access epoch',
    up: accessEpochTriggers({ runs: ['DELETE'] }),
  },
];
