import { Errors, newId, type MetadataStore, type SqlExecutor } from '@wanllmdb/core';
import { AggregationPool } from './aggregation-pool.js';
import { AggregationQueue, type QueuedBatch } from './aggregation-queue.js';
import { AppendStepCache } from './append-step-cache.js';
import { BatchAggregator, keyStats, ownBatch, type AggregationCallbacks, type OwnedBatch } from './batch-aggregator.js';
import { MAX_BATCH_BYTES, MAX_BATCH_POINTS, MAX_KEY_LENGTH, pointsPerKey, screenBatch, type ScreenedBatch } from './batch-screening.js';
import { DEFAULT_MAX_KEYS_PER_RUN, keyLimitExceeded } from './key-limit.js';
import { decodeMetricBatch, type MetricColumns } from './metric-batch.js';
import { exportHistory } from './metric-export.js';
import { METRIC_MIGRATIONS_NAMESPACE, metricMigrations } from './metric-migrations.js';
import { MetricRepository } from './metric-repository.js';
import type { AppendResult, MetricKeyStats, MetricQuery, MetricSeries, MetricStore, MetricsAppendedEvent, PointInput } from './metric-store.js';
import { querySeries } from './series-query.js';
import { packMetricBatch } from './stored-batch.js';

/**
 * The MetricStore over the MetadataStore port (SQLite or PostgreSQL); see
 * docs/adr/0006-metric-history.md for the design.
 *
 * append: validate → one transaction under the run's lock (duplicate check,
 * backwards steps against each key's last step, the batch as ONE row of
 * metric_batches) → commit → answer. Then, in the background, the batch is
 * aggregated into per-key raw chunks and min/max/mean tile levels by a
 * piscina worker, exactly once, oldest batch of a run first (BatchAggregator).
 */
export interface SqlMetricStoreOptions {
  /**
   * Called with the statistics of the keys a batch changed, inside the
   * aggregation transaction (as a savepoint): statements on the MetadataStore
   * made from it join that transaction, so a run summary kept from it commits
   * together with the history. Keep it short, and to statements on the store
   * (the transaction may share its commit, TransactionOptions.groupCommit:
   * awaiting anything else could deadlock). If it throws, its writes are
   * rolled back, the error is logged and the history is still written.
   */
  onAggregated?: (runId: string, changed: MetricKeyStats[]) => Promise<void>;
  /** Called after a batch is aggregated with its new points per key (≤ LIVE_POINTS_PER_KEY each), for live charts. */
  onAppended?: (e: MetricsAppendedEvent) => void;
  logger?: AggregationCallbacks['logger'];
  /**
   * Aggregate in the background after each append (default true). With false,
   * batches are stored and wait for recover() — for tools that only append,
   * and for tests of crash recovery.
   */
  autoAggregate?: boolean;
  /**
   * Aggregations (a run's turn: every batch of it waiting then) this store
   * starts per second at most (default: no limit; the tracking plugin's
   * setting WANLLMDB_METRIC_AGGREGATIONS_PER_SECOND). Below it batches are
   * aggregated as soon as they are stored; above it a run's batches wait
   * their turn and are aggregated together, so the work per batch falls as
   * the load rises (docs/adr/0021-postgresql-appends-and-aggregation-under-load.md).
   */
  aggregationsPerSecond?: number;
  /** Batch bytes held in memory for aggregation before appends wait (default 128 MiB). */
  memoryBudgetBytes?: number;
  /**
   * Distinct keys a run may have (default 10,000, WANLLMDB_MAX_METRIC_KEYS_PER_RUN in the
   * tracking plugin). A batch that would take a run past it is refused whole: WLDB_ERR_LIMIT_EXCEEDED.
   */
  maxKeysPerRun?: number;
  /** @internal Key-group size of aggregation (default 32 MiB of state); tests shrink it. */
  aggregationGroupBytes?: number;
}

const DEFAULT_MEMORY_BUDGET = 128 * 1024 * 1024;
/** Runs aggregated side by side; the pool has at most two threads, and SQLite writes one at a time. */
const AGGREGATION_CONCURRENCY = 4;
const MAX_ID_LENGTH = 200;

const consoleLogger: AggregationCallbacks['logger'] = {
  warn: (details, message) => console.warn(message, details),
  error: (details, message) => console.error(message, details),
};

function checkId(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_ID_LENGTH) {
    throw Errors.VALIDATION(`${field} must be a non-empty string of at most ${MAX_ID_LENGTH} characters.`, [{ field, message: 'missing or too long' }]);
  }
  return value;
}

function tooLarge(what: string): Error {
  return Errors.BODY_TOO_LARGE(
    `The metric batch is too large: ${what}. A batch may hold at most ${MAX_BATCH_POINTS.toLocaleString('en')} points and ${MAX_BATCH_BYTES / 1024 / 1024} MiB; split it into smaller batches.`,
  );
}

/** How many keys of `gained` get their first point (`known` holds -Infinity, or nothing, for a key without points so far). */
function newKeys(gained: ReadonlyMap<string, number>, known: ReadonlyMap<string, number>): number {
  let added = 0;
  for (const key of gained.keys()) if (!((known.get(key) ?? -Infinity) > -Infinity)) added++;
  return added;
}

export class SqlMetricStore implements MetricStore {
  private readonly repo: MetricRepository;
  private readonly pool = new AggregationPool();
  private readonly aggregator: BatchAggregator;
  private readonly queue: AggregationQueue;
  private readonly steps = new AppendStepCache();
  private readonly autoAggregate: boolean;
  private readonly maxKeysPerRun: number;
  private closed = false;

  /** Applies the metric tables' migrations (namespace 'tracking.metrics') and returns the store. */
  static async open(db: MetadataStore, opts: SqlMetricStoreOptions = {}): Promise<SqlMetricStore> {
    await db.migrate(METRIC_MIGRATIONS_NAMESPACE, metricMigrations);
    return new SqlMetricStore(db, opts);
  }

  private constructor(
    private readonly db: MetadataStore,
    opts: SqlMetricStoreOptions,
  ) {
    const logger = opts.logger ?? consoleLogger;
    this.repo = new MetricRepository(db);
    this.autoAggregate = opts.autoAggregate ?? true;
    this.maxKeysPerRun = opts.maxKeysPerRun ?? DEFAULT_MAX_KEYS_PER_RUN;
    this.aggregator = new BatchAggregator(db, this.repo, this.pool, {
      logger,
      ...(opts.onAggregated ? { onAggregated: opts.onAggregated } : {}),
      ...(opts.onAppended ? { onAppended: opts.onAppended } : {}),
      ...(opts.aggregationGroupBytes ? { groupBytes: opts.aggregationGroupBytes } : {}),
    });
    const work = (runId: string, items: QueuedBatch[]) => {
      const held = new Map<string, OwnedBatch>();
      for (const item of items) if (item.batchId !== undefined && item.batch) held.set(item.batchId, item.batch);
      return this.aggregator.drain(runId, Math.max(...items.map((i) => i.seq)), held);
    };
    this.queue = new AggregationQueue(work, {
      budgetBytes: opts.memoryBudgetBytes ?? DEFAULT_MEMORY_BUDGET,
      concurrency: AGGREGATION_CONCURRENCY,
      turnsPerSecond: opts.aggregationsPerSecond ?? Infinity,
      logger,
    });
  }

  async append(runId: string, batchId: string, arrowIpc: Uint8Array): Promise<AppendResult> {
    this.checkOpen();
    checkId(runId, 'runId');
    checkId(batchId, 'batchId');
    if (!(arrowIpc instanceof Uint8Array)) throw Errors.VALIDATION('The metric batch must be Arrow IPC bytes.', [{ field: 'arrow_ipc', message: 'not bytes' }]);
    if (arrowIpc.byteLength > MAX_BATCH_BYTES) throw tooLarge(`${arrowIpc.byteLength.toLocaleString('en')} bytes`);
    const cols = decodeMetricBatch(arrowIpc);
    if (cols.length > MAX_BATCH_POINTS) throw tooLarge(`${cols.length.toLocaleString('en')} points`);
    return this.store(runId, batchId, cols, arrowIpc);
  }

  async appendPoints(runId: string, points: PointInput[], batchId?: string): Promise<AppendResult> {
    this.checkOpen();
    checkId(runId, 'runId');
    if (batchId !== undefined) checkId(batchId, 'batchId');
    if (!Array.isArray(points)) throw Errors.VALIDATION('points must be a list of {key, step, value, time}.', [{ field: 'points', message: 'not a list' }]);
    if (points.length > MAX_BATCH_POINTS) throw tooLarge(`${points.length.toLocaleString('en')} points`);
    const problems: { field: string; message: string }[] = [];
    const n = points.length;
    const cols: MetricColumns = { length: n, step: new Float64Array(n), value: new Float64Array(n), time: new Float64Array(n), keyIndex: new Int32Array(n), keys: [] };
    const slots = new Map<string, number>();
    points.forEach((p, i) => {
      if (problems.length >= 20) return;
      const bad = (field: string, message: string) => problems.push({ field: `points[${i}].${field}`, message });
      if (typeof p !== 'object' || p === null) return void problems.push({ field: `points[${i}]`, message: 'must be an object {key, step, value, time}' });
      if (typeof p.key !== 'string') bad('key', 'must be a string');
      if (typeof p.step !== 'number') bad('step', 'must be a number');
      if (typeof p.value !== 'number') bad('value', 'must be a number');
      if (p.time !== undefined && p.time !== null && typeof p.time !== 'number') bad('time', 'must be a number (epoch ms) or absent');
      let slot = slots.get(p.key);
      if (slot === undefined) slots.set(p.key, (slot = cols.keys.push(p.key) - 1));
      cols.keyIndex[i] = slot;
      cols.step[i] = p.step;
      cols.value[i] = p.value;
      cols.time[i] = p.time ?? 0;
    });
    if (problems.length > 0) {
      throw Errors.VALIDATION(`${problems.length === 20 ? 'At least 20' : problems.length} metric point(s) are malformed: ${problems.map((p) => `${p.field} ${p.message}`).join('; ')}.`, problems);
    }
    return this.store(runId, batchId ?? newId(), cols, undefined);
  }

  query(q: MetricQuery): Promise<MetricSeries[]> {
    this.checkOpen();
    return querySeries(this.repo, q);
  }

  async keys(runId: string): Promise<MetricKeyStats[]> {
    this.checkOpen();
    return (await this.repo.runKeys(runId)).map(keyStats);
  }

  async export(runId: string, keys: string[], format: 'csv' | 'arrow', send: (chunk: Uint8Array) => Promise<void>): Promise<void> {
    this.checkOpen();
    if (format !== 'csv' && format !== 'arrow') throw Errors.VALIDATION(`Export format must be "csv" or "arrow", got ${JSON.stringify(format)}.`, [{ field: 'format', message: 'csv or arrow' }]);
    // Everything appended so far belongs in the export: aggregate what is pending first.
    if (this.autoAggregate) await this.queue.push({ runId, seq: Infinity, bytes: 0 });
    const names = keys.length > 0 ? keys : (await this.repo.runKeys(runId)).map((r) => r.key);
    await exportHistory(this.repo, runId, names, format, send);
  }

  async deleteRun(runId: string): Promise<void> {
    this.checkOpen();
    this.queue.dropRun(runId);
    try {
      await this.db.transaction(async (tx) => {
        await this.repo.lockRun(tx, runId);
        await this.repo.deleteRun(tx, runId);
      });
    } finally {
      this.steps.forget(runId);
    }
  }

  idle(): Promise<void> {
    return this.queue.idle();
  }

  async recover(olderThanMs = 0): Promise<number> {
    this.checkOpen();
    const runs = await this.repo.runsWithPending(Date.now() - olderThanMs);
    const claimed = await Promise.all(runs.map((runId) => this.queue.push({ runId, seq: Infinity, bytes: 0 })));
    return claimed.reduce((a, b) => a + b, 0);
  }

  /** Waits for the aggregations running now, then stops the workers. Batches not yet aggregated stay pending for recover(). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue.stop();
    await this.pool.destroy();
  }

  /** Stores a screened batch durably; queues it for aggregation once committed. */
  private async store(runId: string, batchId: string, cols: MetricColumns, ipc: Uint8Array | undefined): Promise<AppendResult> {
    const reserved = this.autoAggregate ? (ipc?.byteLength ?? cols.length * 28) : 0;
    await this.queue.reserve(reserved);
    const used = pointsPerKey(cols.keyIndex, cols.length, cols.keys.length);
    // Keys whose last step must be known to screen the batch: those with points, and not refused anyway.
    const screenedKeys = (known: ReadonlyMap<string, number>) => cols.keys.filter((k, e) => used[e]! > 0 && !known.has(k) && k.length > 0 && k.length <= MAX_KEY_LENGTH);
    let queued: QueuedBatch | undefined;
    let result: AppendResult | undefined;
    // The cache learns a batch's steps once it committed: no other append may screen against steps that could roll back.
    let learned: { seq: number; known: Map<string, number>; steps: ReadonlyMap<string, number> } | undefined;
    try {
      const now = Date.now();
      // Points given as objects are packed before the transaction (the writer is shared): usually all are kept as given.
      const encoded = ipc ?? packMetricBatch(cols);
      const row = (seq: number, screened: ScreenedBatch) => {
        const bytes = screened.accepted === 0 ? null : screened.changed ? packMetricBatch(screened.cols) : encoded;
        if (bytes && this.autoAggregate) {
          // Bytes as received move to the worker as they are; re-encoded ones are not decoded again: the columns are packed (n × 28 bytes).
          const batch = bytes === ipc ? ownBatch(cols, ipc) : ownBatch(screened.cols, undefined);
          queued = { runId, batchId, seq, batch, bytes: reserved };
        }
        return { runId, batchId, seq, points: screened.accepted, data: bytes, aggregated: bytes === null, createdAt: now };
      };
      const answer = (screened: ScreenedBatch): AppendResult => ({ batchId, accepted: screened.accepted, duplicate: false, warnings: screened.warnings });

      // PostgreSQL, when this process wrote the run's last batch and knows the last step of every key in this one, and it
      // brings no new key (nothing to count against the limit): one statement (MetricRepository.appendAfter). Its round
      // trips, not the work in them, are most of an append's cost there.
      const cached = this.db.dialect === 'postgres' ? this.steps.latest(runId) : undefined;
      if (cached && screenedKeys(cached.steps).length === 0) {
        const screened = screenBatch(cols, (key) => cached.steps.get(key), now);
        if (newKeys(screened.lastSteps, cached.steps) === 0) {
          const seq = cached.seq + 1;
          if (await this.repo.appendAfter(cached.seq, row(seq, screened), screened.lastSteps)) {
            this.steps.advance(runId, seq, cached.steps, screened.lastSteps);
            result = answer(screened);
          } else {
            // Another writer (or a retry): while others write the run, guessing would cost a round trip each time.
            this.steps.missed(runId);
          }
        }
      }

      result ??= await this.db.transaction(async (tx) => {
        queued = undefined;
        learned = undefined;
        await this.repo.lockRun(tx, runId);
        const { exists, lastSeq } = await this.repo.appendState(tx, runId, batchId);
        if (exists) return { batchId, accepted: 0, duplicate: true, warnings: [] } satisfies AppendResult;
        const seq = lastSeq + 1;
        const known = this.steps.at(runId, lastSeq);
        const unknown = screenedKeys(known);
        if (unknown.length > 0) {
          const loaded = await this.repo.appendSteps(tx, runId, unknown);
          for (const key of unknown) known.set(key, loaded.get(key) ?? -Infinity);
        }
        const screened = screenBatch(cols, (key) => known.get(key), now);
        await this.countNewKeys(tx, runId, screened.lastSteps, known);
        await this.repo.insertBatch(tx, row(seq, screened));
        if (screened.lastSteps.size > 0) await this.repo.upsertAppendSteps(tx, runId, screened.lastSteps);
        learned = { seq, known, steps: screened.lastSteps };
        return answer(screened);
      }, { groupCommit: true }); // statements only: may share its commit with other appends and aggregations
    } catch (err) {
      // The cache may hold the steps of a batch that did not commit.
      this.steps.forget(runId);
      this.queue.release(reserved);
      throw err;
    }
    if (learned) this.steps.advance(runId, learned.seq, learned.known, learned.steps);
    if (queued) void this.queue.push(queued);
    else this.queue.release(reserved);
    return result;
  }

  /**
   * Counts the keys that get their first point from this batch into the run's
   * key count, refusing the batch (the transaction rolls back: nothing of it is
   * stored) when that would pass the limit. `known` holds -Infinity (or
   * nothing) for a key without points so far; only a batch with new keys
   * reads the count.
   */
  private async countNewKeys(tx: SqlExecutor, runId: string, gained: ReadonlyMap<string, number>, known: ReadonlyMap<string, number>): Promise<void> {
    const added = newKeys(gained, known);
    if (added === 0) return;
    const has = await this.repo.keyCount(tx, runId);
    if (has + added > this.maxKeysPerRun) throw keyLimitExceeded('metric', runId, this.maxKeysPerRun, has, added);
    await this.repo.addKeys(tx, runId, added);
  }

  private checkOpen(): void {
    if (this.closed) throw Errors.SHUTTING_DOWN('The metric store is closed; it accepts no more work. Retry against a running server.');
  }
}
