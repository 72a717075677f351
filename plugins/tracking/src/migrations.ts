import type { Dialect, Migration } from '@wanllmdb/core';

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
 * jsonb(?) / CAST(? AS JSONB) and reads them back as JSON text.
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

const perDialect = (make: (json: string) => string): Record<Dialect, string> => ({ sqlite: make('BLOB'), postgres: make('JSONB') });

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
];

