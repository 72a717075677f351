import type { Migration } from '@wanllmdb/core';

/** Namespace of the metric tables' migrations, apart from the run tables' ('tracking'). */
export const METRIC_MIGRATIONS_NAMESPACE = 'tracking.metrics';

const bytes = { sqlite: 'BLOB', postgres: 'BYTEA' } as const;

const tables = (dialect: keyof typeof bytes) => `
  -- One row per appended batch: the durable write-ahead record (the Arrow IPC
  -- bytes until aggregated, then NULL) and the idempotency record of its id.
  CREATE TABLE metric_batches (
    run_id TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    points BIGINT NOT NULL,
    data ${bytes[dialect]},
    aggregated INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (run_id, batch_id)
  );
  CREATE UNIQUE INDEX idx_metric_batches_seq ON metric_batches (run_id, seq);
  CREATE INDEX idx_metric_batches_pending ON metric_batches (run_id, seq) WHERE aggregated = 0;

  -- Per-key statistics. append_step is the last step accepted by append (it
  -- runs ahead of last_step while batches wait for aggregation); agg_seq is
  -- the seq of the last batch aggregated into the key (re-aggregating a batch
  -- skips keys that already have it). min/max are of the non-NaN values.
  CREATE TABLE metric_keys (
    run_id TEXT NOT NULL,
    key TEXT NOT NULL,
    count BIGINT NOT NULL DEFAULT 0,
    first_step DOUBLE PRECISION,
    last_step DOUBLE PRECISION,
    last_value DOUBLE PRECISION,
    first_time DOUBLE PRECISION,
    last_time DOUBLE PRECISION,
    min DOUBLE PRECISION,
    max DOUBLE PRECISION,
    nan_count BIGINT NOT NULL DEFAULT 0,
    append_step DOUBLE PRECISION NOT NULL,
    agg_seq BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, key)
  );

  -- History: level 0 = raw chunks, levels 1.. = tile chunks (see metric-chunk.ts).
  CREATE TABLE metric_chunks (
    run_id TEXT NOT NULL,
    key TEXT NOT NULL,
    level INTEGER NOT NULL,
    chunk BIGINT NOT NULL,
    first_step DOUBLE PRECISION NOT NULL,
    last_step DOUBLE PRECISION NOT NULL,
    first_time DOUBLE PRECISION NOT NULL,
    last_time DOUBLE PRECISION NOT NULL,
    n INTEGER NOT NULL,
    data ${bytes[dialect]} NOT NULL,
    PRIMARY KEY (run_id, key, level, chunk)
  );
  CREATE INDEX idx_metric_chunks_steps ON metric_chunks (run_id, key, level, last_step, first_step)
`;

/** The metric tables, applied by SqlMetricStore.open under METRIC_MIGRATIONS_NAMESPACE. */
export const metricMigrations: Migration[] = [
  { version: 1, name: 'create metric batches, keys and chunks', up: { sqlite: tables('sqlite'), postgres: tables('postgres') } },
  {
    // The number of distinct keys of each run, kept by append under the run's lock, so the per-run key limit
    // costs one primary-key read when a batch brings new keys instead of a count over metric_keys.
    version: 2,
    name: 'count metric keys per run',
    up: `
      CREATE TABLE metric_run_keys (
        run_id TEXT PRIMARY KEY,
        key_count BIGINT NOT NULL
      );
      INSERT INTO metric_run_keys (run_id, key_count) SELECT run_id, COUNT(*) FROM metric_keys GROUP BY run_id
    `,
  },
];
