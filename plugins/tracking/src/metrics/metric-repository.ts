import { advisoryLockKey, type MetadataStore, type SqlExecutor, type SqlValue } from '@wanllmdb/core';

/**
 * SQL for the metric tables (metric-migrations.ts); the only code that knows
 * them. Statements that touch many keys or chunks are batched: multi-row
 * upserts and `IN (…)` lists, so a batch of 10,000 keys costs a handful of
 * round trips, not 10,000.
 */
export interface KeyRow {
  [k: string]: unknown;
  key: string;
  count: number;
  first_step: number | null;
  last_step: number | null;
  last_value: number | null;
  first_time: number | null;
  last_time: number | null;
  min: number | null;
  max: number | null;
  nan_count: number;
  agg_seq: number;
}

export interface BatchRow {
  runId: string;
  batchId: string;
  seq: number;
  points: number;
  data: Uint8Array | null;
  aggregated: boolean;
  createdAt: number;
}

export interface ChunkRow {
  key: string;
  level: number;
  chunk: number;
  firstStep: number;
  lastStep: number;
  firstTime: number;
  lastTime: number;
  n: number;
  data: Uint8Array;
}

export interface KeyStatsRow {
  key: string;
  count: number;
  firstStep: number;
  lastStep: number;
  lastValue: number;
  firstTime: number;
  lastTime: number;
  min: number;
  max: number;
  nanCount: number;
  aggSeq: number;
}

export interface SeriesRow {
  [k: string]: unknown;
  run_id: string;
  key: string;
  count: number;
  first_step: number;
  last_step: number;
  first_time: number;
  last_time: number;
}

export interface QueryChunkRow {
  [k: string]: unknown;
  run_id: string;
  key: string;
  chunk: number;
  data: Uint8Array;
}

/** Which column pair bounds a chunk in a query's domain. */
export type ChunkDomain = 'step' | 'time';

const KEY_COLUMNS = 'key, count, first_step, last_step, last_value, first_time, last_time, min, max, nan_count, agg_seq';
/** Keys per `IN (…)` list: far below both dialects' parameter limits. */
const IN_LIST = 500;
/** Rows per multi-row upsert, and bytes of chunk data per statement. */
const UPSERT_ROWS = 500;
const UPSERT_BYTES = 16 * 1024 * 1024;
/** First key of the per-run advisory locks ("WMET"), apart from the kernel's migration locks. */
const RUN_LOCK_CLASS = 0x574d4554;


const placeholders = (n: number) => new Array<string>(n).fill('?').join(', ');

function* slices<T>(items: readonly T[], size: number): Generator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}

/** SQLite keeps NaN as NULL (PostgreSQL keeps it): read both back as NaN. */
export const num = (v: unknown): number => (v === null || v === undefined ? NaN : Number(v));

/** Runs `INSERT … VALUES (…),(…) ON CONFLICT … DO UPDATE` over rows, a few hundred (or 16 MiB) per statement. */
async function upsertMany(
  tx: SqlExecutor,
  head: string,
  width: number,
  tail: string,
  rows: readonly SqlValue[][],
  bytesOf: (row: SqlValue[]) => number = () => 0,
): Promise<void> {
  const tuple = `(${placeholders(width)})`;
  let from = 0;
  while (from < rows.length) {
    let to = from;
    let bytes = 0;
    while (to < rows.length && to - from < UPSERT_ROWS && (to === from || bytes + bytesOf(rows[to]!) <= UPSERT_BYTES)) bytes += bytesOf(rows[to++]!);
    const params: SqlValue[] = [];
    for (let r = from; r < to; r++) params.push(...rows[r]!);
    await tx.run(`${head} VALUES ${new Array<string>(to - from).fill(tuple).join(',')} ${tail}`, params);
    from = to;
  }
}

export class MetricRepository {
  constructor(private readonly db: MetadataStore) {}

  /**
   * Serialises writers of one run until the transaction ends: appends (seq,
   * backwards-step checks) and aggregations (chunk read-modify-write). SQLite
   * needs nothing: its transactions take the database write lock up front.
   */
  async lockRun(tx: SqlExecutor, runId: string): Promise<void> {
    if (tx.dialect === 'postgres') await tx.query('SELECT pg_advisory_xact_lock(?, ?)', [RUN_LOCK_CLASS, advisoryLockKey(runId)]);
  }

  /** Whether the run has a batch with this id, and its highest batch seq (0 before its first batch): one statement, two index lookups. */
  async appendState(tx: SqlExecutor, runId: string, batchId: string): Promise<{ exists: boolean; lastSeq: number }> {
    const [row] = await tx.query<{ last_seq: number | null; own_seq: number | null }>(
      'SELECT (SELECT MAX(seq) FROM metric_batches WHERE run_id = ?) AS last_seq, (SELECT seq FROM metric_batches WHERE run_id = ? AND batch_id = ?) AS own_seq',
      [runId, runId, batchId],
    );
    return { exists: row?.own_seq !== null && row?.own_seq !== undefined, lastSeq: Number(row?.last_seq ?? 0) };
  }

  /**
   * PostgreSQL: appends a batch in ONE statement — one round trip and its own
   * transaction instead of six (BEGIN, lock, state, insert, steps, COMMIT) —
   * under the run's lock, provided the run's last batch is still `lastSeq`
   * (what the caller screened the batch against) and the batch id is new.
   * False, with nothing written, when either is not so (another writer, a
   * retried batch, a re-created run): the caller then takes the locked path,
   * which tells those apart. The writes come after the run's lock (they read
   * from it), so this waits for an aggregation of the run like any append.
   * The last-seq check may run before the lock (PostgreSQL evaluates it once,
   * up front) and reads the statement's snapshot either way: seqs have no
   * gaps, so a batch another writer committed after that snapshot holds
   * `lastSeq + 1`, and the unique seq refuses this one.
   */
  async appendAfter(lastSeq: number, b: BatchRow, steps: ReadonlyMap<string, number>): Promise<boolean> {
    const params: SqlValue[] = [RUN_LOCK_CLASS, advisoryLockKey(b.runId)];
    params.push(b.runId, b.batchId, lastSeq + 1, b.points, b.data, b.aggregated ? 1 : 0, b.createdAt, b.runId, lastSeq);
    let upsert = '';
    if (steps.size > 0) {
      params.push(b.runId);
      const tuples: string[] = [];
      for (const [key, step] of steps) {
        tuples.push(tuples.length === 0 ? '(CAST(? AS TEXT), CAST(? AS DOUBLE PRECISION))' : '(?, ?)');
        params.push(key, step);
      }
      upsert = `, steps AS (
        INSERT INTO metric_keys (run_id, key, append_step)
        SELECT ?, k.key, k.step FROM batch, (VALUES ${tuples.join(', ')}) AS k(key, step)
        ON CONFLICT (run_id, key) DO UPDATE SET append_step = excluded.append_step)`;
    }
    const rows = await this.db.query<{ seq: number }>(
      `WITH held AS (SELECT pg_advisory_xact_lock(?, ?) AS locked),
      batch AS (
        INSERT INTO metric_batches (run_id, batch_id, seq, points, data, aggregated, created_at)
        SELECT ?, ?, ?, ?, CAST(? AS BYTEA), ?, ? FROM held
        WHERE (SELECT COALESCE(MAX(seq), 0) FROM metric_batches WHERE run_id = ?) = ?
        ON CONFLICT DO NOTHING
        RETURNING seq)${upsert}
      SELECT seq FROM batch`,
      params,
    );
    return rows.length === 1;
  }

  /** The last step append accepted for each of `keys` that has one. */
  async appendSteps(tx: SqlExecutor, runId: string, keys: readonly string[]): Promise<Map<string, number>> {
    const steps = new Map<string, number>();
    for (const part of slices(keys, IN_LIST)) {
      const rows = await tx.query<{ key: string; append_step: number }>(
        `SELECT key, append_step FROM metric_keys WHERE run_id = ? AND key IN (${placeholders(part.length)})`,
        [runId, ...part],
      );
      for (const row of rows) steps.set(row.key, Number(row.append_step));
    }
    return steps;
  }

  async insertBatch(tx: SqlExecutor, b: BatchRow): Promise<void> {
    await tx.run('INSERT INTO metric_batches (run_id, batch_id, seq, points, data, aggregated, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)', [
      b.runId,
      b.batchId,
      b.seq,
      b.points,
      b.data,
      b.aggregated ? 1 : 0,
      b.createdAt,
    ]);
  }

  async upsertAppendSteps(tx: SqlExecutor, runId: string, steps: ReadonlyMap<string, number>): Promise<void> {
    const rows = [...steps].map(([key, step]): SqlValue[] => [runId, key, step]);
    await upsertMany(tx, 'INSERT INTO metric_keys (run_id, key, append_step)', 3, 'ON CONFLICT (run_id, key) DO UPDATE SET append_step = excluded.append_step', rows);
  }

  /** The run's oldest batches that are not aggregated yet, in seq order. */
  async pendingOfRun(runId: string, limit: number): Promise<{ batchId: string; seq: number; points: number }[]> {
    const rows = await this.db.query<{ batch_id: string; seq: number; points: number }>(
      'SELECT batch_id, seq, points FROM metric_batches WHERE run_id = ? AND aggregated = 0 ORDER BY seq LIMIT ?',
      [runId, limit],
    );
    return rows.map((r) => ({ batchId: r.batch_id, seq: Number(r.seq), points: Number(r.points) }));
  }

  /** The bytes of those of `batchIds` still pending, by batch id. */
  async pendingData(runId: string, batchIds: readonly string[]): Promise<Map<string, Uint8Array>> {
    const out = new Map<string, Uint8Array>();
    for (const part of slices(batchIds, IN_LIST)) {
      const rows = await this.db.query<{ batch_id: string; data: Uint8Array | null }>(
        `SELECT batch_id, data FROM metric_batches WHERE run_id = ? AND aggregated = 0 AND batch_id IN (${placeholders(part.length)})`,
        [runId, ...part],
      );
      for (const row of rows) if (row.data) out.set(row.batch_id, row.data);
    }
    return out;
  }

  /** The runs with batches waiting for aggregation, the one waiting longest first. */
  async runsWithPending(storedBefore = Number.MAX_SAFE_INTEGER): Promise<string[]> {
    const rows = await this.db.query<{ run_id: string }>(
      'SELECT run_id, MIN(created_at) AS oldest FROM metric_batches WHERE aggregated = 0 AND created_at <= ? GROUP BY run_id ORDER BY oldest, run_id',
      [storedBefore],
    );
    return rows.map((r) => r.run_id);
  }

  /** How many of `batchIds` are still waiting for aggregation (read inside the claiming transaction). */
  async countPending(tx: SqlExecutor, runId: string, batchIds: readonly string[]): Promise<number> {
    let pending = 0;
    for (const part of slices(batchIds, IN_LIST)) {
      const [row] = await tx.query<{ n: number }>(
        `SELECT COUNT(*) AS n FROM metric_batches WHERE run_id = ? AND aggregated = 0 AND batch_id IN (${placeholders(part.length)})`,
        [runId, ...part],
      );
      pending += Number(row?.n ?? 0);
    }
    return pending;
  }

  /** Marks batches aggregated and drops their bytes (the rows stay as the record of their ids). */
  async markAggregated(tx: SqlExecutor, runId: string, batchIds: readonly string[]): Promise<void> {
    for (const part of slices(batchIds, IN_LIST)) {
      await tx.run(`UPDATE metric_batches SET aggregated = 1, data = NULL WHERE run_id = ? AND batch_id IN (${placeholders(part.length)})`, [runId, ...part]);
    }
  }

  async keyRows(exec: SqlExecutor, runId: string, keys: readonly string[]): Promise<Map<string, KeyRow>> {
    const out = new Map<string, KeyRow>();
    for (const part of slices(keys, IN_LIST)) {
      const rows = await exec.query<KeyRow>(`SELECT ${KEY_COLUMNS} FROM metric_keys WHERE run_id = ? AND key IN (${placeholders(part.length)})`, [runId, ...part]);
      for (const row of rows) out.set(row.key, row);
    }
    return out;
  }

  /**
   * The sum of the keys' counts and their newest agg_seq: one row per few
   * hundred keys instead of one per key, for the aggregation's in-transaction
   * check in the usual case where nothing changed.
   */
  async keySummary(tx: SqlExecutor, runId: string, keys: readonly string[]): Promise<{ total: number; newest: number }> {
    let total = 0;
    let newest = 0;
    for (const part of slices(keys, IN_LIST)) {
      const [row] = await tx.query<{ total: number | string | null; newest: number | null }>(
        `SELECT CAST(SUM(count) AS BIGINT) AS total, MAX(agg_seq) AS newest FROM metric_keys WHERE run_id = ? AND key IN (${placeholders(part.length)})`,
        [runId, ...part],
      );
      total += Number(row?.total ?? 0);
      newest = Math.max(newest, Number(row?.newest ?? 0));
    }
    return { total, newest };
  }

  /**
   * Chunks by position: for each (level, chunk) the given keys' chunk there,
   * in one statement for up to a few hundred keys (an OR of positions, each
   * an index lookup). Resolves to a map from `${key}\u0000${level}` to bytes.
   */
  async chunksAt(runId: string, positions: readonly { level: number; chunk: number; keys: readonly string[] }[]): Promise<Map<string, Uint8Array>> {
    const out = new Map<string, Uint8Array>();
    const terms: { level: number; chunk: number; keys: string[] }[] = [];
    for (const p of positions) for (const part of slices(p.keys, IN_LIST)) terms.push({ level: p.level, chunk: p.chunk, keys: part });
    // Several positions per statement while the parameters stay few.
    for (let from = 0; from < terms.length; ) {
      let to = from;
      let params = 0;
      while (to < terms.length && (to === from || params + terms[to]!.keys.length + 2 <= IN_LIST)) params += terms[to++]!.keys.length + 2;
      const part = terms.slice(from, to);
      const rows = await this.db.query<{ key: string; level: number; data: Uint8Array }>(
        `SELECT key, level, data FROM metric_chunks WHERE run_id = ? AND (${part.map((t) => `(level = ? AND chunk = ? AND key IN (${placeholders(t.keys.length)}))`).join(' OR ')})`,
        [runId, ...part.flatMap((t) => [t.level, t.chunk, ...t.keys])],
      );
      for (const row of rows) out.set(`${row.key}\u0000${Number(row.level)}`, row.data);
      from = to;
    }
    return out;
  }

  async writeChunks(tx: SqlExecutor, runId: string, rows: readonly ChunkRow[]): Promise<void> {
    const values = rows.map((r): SqlValue[] => [runId, r.key, r.level, r.chunk, r.firstStep, r.lastStep, r.firstTime, r.lastTime, r.n, r.data]);
    await upsertMany(
      tx,
      'INSERT INTO metric_chunks (run_id, key, level, chunk, first_step, last_step, first_time, last_time, n, data)',
      10,
      'ON CONFLICT (run_id, key, level, chunk) DO UPDATE SET first_step = excluded.first_step, last_step = excluded.last_step, ' +
        'first_time = excluded.first_time, last_time = excluded.last_time, n = excluded.n, data = excluded.data',
      values,
      (row) => (row[9] as Uint8Array).byteLength,
    );
  }

  async writeKeyStats(tx: SqlExecutor, runId: string, rows: readonly KeyStatsRow[]): Promise<void> {
    const values = rows.map((r): SqlValue[] => [
      runId,
      r.key,
      r.count,
      r.firstStep,
      r.lastStep,
      r.lastValue,
      r.firstTime,
      r.lastTime,
      r.min,
      r.max,
      r.nanCount,
      r.lastStep,
      r.aggSeq,
    ]);
    await upsertMany(
      tx,
      'INSERT INTO metric_keys (run_id, key, count, first_step, last_step, last_value, first_time, last_time, min, max, nan_count, append_step, agg_seq)',
      13,
      'ON CONFLICT (run_id, key) DO UPDATE SET count = excluded.count, first_step = excluded.first_step, last_step = excluded.last_step, ' +
        'last_value = excluded.last_value, first_time = excluded.first_time, last_time = excluded.last_time, min = excluded.min, ' +
        'max = excluded.max, nan_count = excluded.nan_count, agg_seq = excluded.agg_seq',
      values,
    );
  }

  /** Keys of a run that have aggregated points, by key. */
  async runKeys(runId: string): Promise<KeyRow[]> {
    return this.db.query<KeyRow>(`SELECT ${KEY_COLUMNS} FROM metric_keys WHERE run_id = ? AND count > 0 ORDER BY key`, [runId]);
  }

  /** The series (run, key) with points among `runIds` (and `keys`, when given). */
  async series(runIds: readonly string[], keys: readonly string[]): Promise<SeriesRow[]> {
    const out: SeriesRow[] = [];
    const keyFilter = keys.length > 0 && keys.length <= IN_LIST ? ` AND key IN (${placeholders(keys.length)})` : '';
    const keyParams = keyFilter ? keys : [];
    const wanted = keys.length > IN_LIST ? new Set(keys) : undefined;
    for (const part of slices(runIds, IN_LIST)) {
      const rows = await this.db.query<SeriesRow>(
        `SELECT run_id, key, count, first_step, last_step, first_time, last_time FROM metric_keys WHERE run_id IN (${placeholders(part.length)}) AND count > 0${keyFilter}`,
        [...part, ...keyParams],
      );
      for (const row of rows) if (!wanted || wanted.has(row.key)) out.push(row);
    }
    return out;
  }

  /** The time of each run's first point (over all its keys), for "_relative" x. */
  async runFirstTimes(runIds: readonly string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const part of slices(runIds, IN_LIST)) {
      const rows = await this.db.query<{ run_id: string; first: number }>(
        `SELECT run_id, MIN(first_time) AS first FROM metric_keys WHERE run_id IN (${placeholders(part.length)}) AND count > 0 GROUP BY run_id`,
        part,
      );
      for (const row of rows) out.set(row.run_id, Number(row.first));
    }
    return out;
  }

  /**
   * Chunks of one level overlapping [lo, hi] of `domain`, for the series
   * `runIds` × `keys` (callers group series so the product is what they want).
   */
  async chunksInRange(level: number, runIds: readonly string[], keys: readonly string[], domain: ChunkDomain, lo: number, hi: number): Promise<QueryChunkRow[]> {
    const [first, last] = domain === 'step' ? ['first_step', 'last_step'] : ['first_time', 'last_time'];
    const out: QueryChunkRow[] = [];
    for (const runPart of slices(runIds, IN_LIST)) {
      for (const keyPart of slices(keys, IN_LIST)) {
        const rows = await this.db.query<QueryChunkRow>(
          `SELECT run_id, key, chunk, data FROM metric_chunks WHERE run_id IN (${placeholders(runPart.length)}) AND key IN (${placeholders(keyPart.length)}) ` +
            `AND level = ? AND ${last} >= ? AND ${first} <= ? ORDER BY run_id, key, chunk`,
          [...runPart, ...keyPart, level, lo, hi],
        );
        out.push(...rows);
      }
    }
    return out;
  }

  /** Up to `limit` raw chunks of a key from chunk `from` on, in order (export pages through them). */
  async rawChunks(runId: string, key: string, from: number, limit: number): Promise<{ chunk: number; data: Uint8Array }[]> {
    const rows = await this.db.query<{ chunk: number; data: Uint8Array }>(
      'SELECT chunk, data FROM metric_chunks WHERE run_id = ? AND key = ? AND level = 0 AND chunk >= ? ORDER BY chunk LIMIT ?',
      [runId, key, from, limit],
    );
    return rows.map((r) => ({ chunk: Number(r.chunk), data: r.data }));
  }

  async deleteRun(tx: SqlExecutor, runId: string): Promise<void> {
    await tx.run('DELETE FROM metric_chunks WHERE run_id = ?', [runId]);
    await tx.run('DELETE FROM metric_keys WHERE run_id = ?', [runId]);
    await tx.run('DELETE FROM metric_batches WHERE run_id = ?', [runId]);
    await tx.run('DELETE FROM metric_run_keys WHERE run_id = ?', [runId]);
  }

  /** How many distinct keys the run has (0 before its first point). Read under the run's lock. */
  async keyCount(tx: SqlExecutor, runId: string): Promise<number> {
    const [row] = await tx.query<{ key_count: number }>('SELECT key_count FROM metric_run_keys WHERE run_id = ?', [runId]);
    return Number(row?.key_count ?? 0);
  }

  /** Adds `added` new keys to the run's count. */
  async addKeys(tx: SqlExecutor, runId: string, added: number): Promise<void> {
    await tx.run(
      'INSERT INTO metric_run_keys (run_id, key_count) VALUES (?, ?) ON CONFLICT (run_id) DO UPDATE SET key_count = metric_run_keys.key_count + excluded.key_count',
      [runId, added],
    );
  }
}
