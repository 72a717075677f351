import { Errors, type MetadataStore } from '@wanllmdb/core';
import { INCONSISTENT } from './aggregate-batch.js';
import type { AggregationPool } from './aggregation-pool.js';
import { LIVE_FIELDS, Live, ROW_FIELDS, Row, STAT_FIELDS, Stat, type AggregationResult, type BatchLayout } from './aggregation-task.js';
import { pointsPerKey } from './batch-screening.js';
import type { MetricColumns } from './metric-batch.js';
import { CHUNK_HEADER_BYTES, RAW_COLUMNS, TILE_COLUMNS } from './metric-chunk.js';
import { num, type ChunkRow, type KeyRow, type KeyStatsRow, type MetricRepository } from './metric-repository.js';
import type { MetricKeyStats, MetricSeries, MetricsAppendedEvent } from './metric-store.js';
import { decodeStoredBatch } from './stored-batch.js';
import { RAW_CHUNK_POINTS, TILE_CHUNK_BUCKETS, itemsAt, lastChunkIndex, tileLevels } from './tile-levels.js';

/**
 * Aggregates stored batches into per-key history, exactly once, in seq order
 * per run — also when several processes share the database.
 *
 * For the run's oldest pending batch (or set of consecutive batches): read
 * the keys' state (statistics and the last chunk of every level) → compute
 * in a worker → in ONE transaction, under the run's lock: check the batches
 * are still pending (the claim), check the keys' rows against the state the
 * worker used, write chunks and statistics, mark the batches aggregated and
 * drop their bytes.
 *
 * Why the state read before the transaction can be trusted once the claim
 * succeeds: a run's batches are aggregated oldest first by everyone, so while
 * a batch is pending nothing else can change its keys' history. The
 * in-transaction check (a key's agg_seq and count) guards the rest: a key
 * that already holds the batches (an earlier attempt committed part of them)
 * is skipped, a key whose count moved makes the attempt start over.
 *
 * A batch whose keys' state is large (thousands of keys with long histories)
 * is aggregated in key groups of bounded size, one transaction each, so
 * memory stays bounded; the last group marks the batch aggregated. A crash
 * between groups leaves the batch pending and its finished keys marked by
 * agg_seq, so the retry completes exactly the rest.
 */
export interface AggregationCallbacks {
  /** State bytes per key group (default 32 MiB); tests make it tiny to exercise key groups. */
  groupBytes?: number;
  onAggregated?: (runId: string, changed: MetricKeyStats[]) => Promise<void>;
  onAppended?: (e: MetricsAppendedEvent) => void;
  logger: { warn(details: Record<string, unknown>, message: string): void; error(details: Record<string, unknown>, message: string): void };
}

/** A batch's columns in one buffer that this process owns (may be moved to a worker). */
export interface OwnedBatch extends BatchLayout {
  buffer: ArrayBuffer;
  keys: string[];
}

/** State plus output bytes per key group: bounds memory for batches touching thousands of long keys. */
const GROUP_BYTES = 32 * 1024 * 1024;
/** Attempts at one batch whose keys changed under it before giving up (a bug or a concurrent deleteRun). */
const MAX_ATTEMPTS = 5;
/** Consecutive pending batches aggregated together: at most this many, and this many points. */
const COALESCE_BATCHES = 64;
const COALESCE_POINTS = 1_000_000;

/**
 * The batch's columns as an owned buffer: the IPC bytes themselves when they
 * are a whole ArrayBuffer holding the decoded columns (no copy), else a packed
 * copy of the columns (bytes that are a slice of a bigger buffer must not be
 * moved: that would detach the rest).
 */
export function ownBatch(cols: MetricColumns, ipc: Uint8Array | undefined): OwnedBatch {
  const n = cols.length;
  const whole = ipc && ipc.buffer instanceof ArrayBuffer && ipc.byteOffset === 0 && ipc.byteLength === ipc.buffer.byteLength;
  const inside = whole && [cols.step, cols.value, cols.time, cols.keyIndex].every((a) => a.buffer === ipc.buffer);
  if (inside) {
    return {
      buffer: ipc.buffer as ArrayBuffer,
      keys: cols.keys,
      length: n,
      stepOffset: cols.step.byteOffset,
      valueOffset: cols.value.byteOffset,
      timeOffset: cols.time.byteOffset,
      keyIndexOffset: cols.keyIndex.byteOffset,
    };
  }
  const buffer = new ArrayBuffer(n * 28);
  new Float64Array(buffer, 0, n).set(cols.step.subarray(0, n));
  new Float64Array(buffer, n * 8, n).set(cols.value.subarray(0, n));
  new Float64Array(buffer, n * 16, n).set(cols.time.subarray(0, n));
  new Int32Array(buffer, n * 24, n).set(cols.keyIndex.subarray(0, n));
  return { buffer, keys: cols.keys, length: n, stepOffset: 0, valueOffset: n * 8, timeOffset: n * 16, keyIndexOffset: n * 24 };
}

/** Bytes of the last chunk of every level of a key of `count` points (what the worker reads and rewrites). */
function stateBytes(count: number): number {
  if (count === 0) return 0;
  let bytes = (count - lastChunkIndex(0, count) * RAW_CHUNK_POINTS) * RAW_COLUMNS * 8 + CHUNK_HEADER_BYTES;
  for (let level = 1; level <= tileLevels(count); level++) {
    bytes += (itemsAt(level, count) - lastChunkIndex(level, count) * TILE_CHUNK_BUCKETS) * TILE_COLUMNS * 8 + CHUNK_HEADER_BYTES;
  }
  return bytes;
}

/** Statistics as the API shows them: extremes of a key with only NaN values are NaN. */
export function keyStats(row: KeyRow): MetricKeyStats {
  const real = Number(row.count) - Number(row.nan_count) > 0;
  return {
    key: row.key,
    count: Number(row.count),
    last: num(row.last_value),
    lastStep: num(row.last_step),
    min: real ? num(row.min) : NaN,
    max: real ? num(row.max) : NaN,
    firstStep: num(row.first_step),
  };
}

type Outcome = 'claimed' | 'gone' | 'stale' | 'split';

export class BatchAggregator {
  constructor(
    private readonly db: MetadataStore,
    private readonly repo: MetricRepository,
    private readonly pool: AggregationPool,
    private readonly callbacks: AggregationCallbacks,
  ) {}

  /**
   * Aggregates the run's pending batches oldest first, up to and including
   * seq `upTo` (Infinity: all), whoever appended them. `held` has the columns
   * of batches this process still holds (they are moved to the worker);
   * others are read back from the database. Consecutive pending batches are
   * aggregated together (up to COALESCE_POINTS points, one transaction) —
   * when aggregation falls behind, that is what lets it catch up: one
   * read-modify-write of each key's last chunks per set instead of per batch.
   * Resolves to the seqs this call aggregated.
   */
  async drain(runId: string, upTo: number, held: Map<string, OwnedBatch> = new Map()): Promise<number[]> {
    const claimed: number[] = [];
    let single = false;
    let attempts = 0;
    for (;;) {
      const pending = await this.repo.pendingOfRun(runId, COALESCE_BATCHES);
      if (pending.length === 0 || pending[0]!.seq > upTo) return claimed;
      const set = [pending[0]!];
      let points = set[0]!.points;
      for (const next of single ? [] : pending.slice(1)) {
        if (next.seq > upTo || points + next.points > COALESCE_POINTS) break;
        set.push(next);
        points += next.points;
      }
      const missing = set.filter((b) => !held.has(b.batchId)).map((b) => b.batchId);
      const stored = missing.length > 0 ? await this.repo.pendingData(runId, missing) : new Map<string, Uint8Array>();
      const parts: OwnedBatch[] = [];
      for (const b of set) {
        const own = held.get(b.batchId);
        // Once handed to a worker a buffer may be gone; a retry reads the stored bytes.
        held.delete(b.batchId);
        const data = stored.get(b.batchId);
        if (own) parts.push(own);
        else if (data) parts.push(ownBatch(decodeStoredBatch(data), data));
      }
      if (parts.length < set.length) {
        // Aggregated meanwhile by someone else (the next read shows it); a pending batch without bytes would be a bug.
        if (++attempts >= MAX_ATTEMPTS) throw Errors.INTERNAL(`A pending metric batch of run ${runId} has no stored bytes; it cannot be aggregated. Report this.`);
        single = true;
        continue;
      }
      const outcome = await this.aggregate(runId, set, parts);
      if (outcome === 'claimed') {
        claimed.push(...set.map((b) => b.seq));
        single = false;
        attempts = 0;
      } else if (outcome === 'split') {
        single = true;
      } else if (outcome === 'stale') {
        single = true;
        if (++attempts >= MAX_ATTEMPTS) {
          throw Errors.INTERNAL(
            `Batch ${set[0]!.batchId} of run ${runId} could not be aggregated: its keys' history changed during each of ${MAX_ATTEMPTS} attempts. ` +
              'It stays stored and pending; restart the server to retry (recover), and report this if it repeats.',
          );
        }
      }
    }
  }

  /** Aggregates a set of consecutive batches (their columns in `parts`, in order), key group by key group. */
  private async aggregate(runId: string, set: { batchId: string; seq: number }[], parts: OwnedBatch[]): Promise<Outcome> {
    // Only keys with points: a batch's dictionary may hold others (the SDK sends all its keys).
    const added = new Map<string, number>();
    for (const p of parts) {
      const counts = pointsPerKey(new Int32Array(p.buffer, p.keyIndexOffset, p.length), p.length, p.keys.length);
      p.keys.forEach((key, e) => counts[e]! > 0 && added.set(key, (added.get(key) ?? 0) + counts[e]!));
    }
    const names = [...added.keys()];
    const before = await this.repo.keyRows(this.db, runId, names);
    const countOf = (key: string) => Number(before.get(key)?.count ?? 0);

    // Key groups of bounded state.
    const groups: string[][] = [];
    let bytes = Infinity;
    for (const key of names) {
      const size = stateBytes(countOf(key)) * 2 + added.get(key)! * 32;
      if (bytes + size > (this.callbacks.groupBytes ?? GROUP_BYTES)) (groups.push([]), (bytes = 0));
      groups.at(-1)!.push(key);
      bytes += size;
    }
    if (groups.length === 0) groups.push([]);
    // A set of batches must commit atomically (agg_seq could not tell which of them a key holds): big ones go one by one.
    if (groups.length > 1 && set.length > 1) return 'split';

    const live: MetricSeries[] = [];
    for (const [g, group] of groups.entries()) {
      const last = g === groups.length - 1;
      let result: AggregationResult | undefined;
      try {
        result = group.length > 0 ? await this.compute(runId, parts, group, before) : undefined;
      } catch (err) {
        // State read while another process committed these very batches can look torn; the next attempt sees them aggregated.
        if (err instanceof Error && err.message.startsWith(INCONSISTENT)) return 'stale';
        throw err;
      }
      result?.batches.forEach((buffer, i) => (parts[i]!.buffer = buffer));
      const outcome = await this.commit(runId, set, group, before, result, last);
      if (outcome !== 'claimed') return outcome;
      if (result && this.callbacks.onAppended) live.push(...liveSeries(runId, group, result));
    }
    if (this.callbacks.onAppended && live.length > 0) {
      const batchId = set.at(-1)!.batchId;
      try {
        this.callbacks.onAppended({ runId, batchId, series: live });
      } catch (err) {
        this.callbacks.logger.error({ err, runId, batchId }, 'A metrics.appended listener failed; live charts may miss these points.');
      }
    }
    return 'claimed';
  }

  /** Reads the group's last chunks and runs the worker. */
  private async compute(runId: string, parts: OwnedBatch[], group: string[], before: Map<string, KeyRow>): Promise<AggregationResult> {
    const stats = new Float64Array(group.length * STAT_FIELDS);
    // Which (level, chunk) each key needs, grouped so keys at the same position share one query.
    const wanted = new Map<string, { level: number; chunk: number; entries: number[] }>();
    group.forEach((key, i) => {
      const row = before.get(key);
      const count = Number(row?.count ?? 0);
      const base = i * STAT_FIELDS;
      stats[base + Stat.count] = count;
      stats[base + Stat.firstStep] = num(row?.first_step);
      stats[base + Stat.lastStep] = num(row?.last_step);
      stats[base + Stat.lastValue] = num(row?.last_value);
      stats[base + Stat.firstTime] = num(row?.first_time);
      stats[base + Stat.lastTime] = num(row?.last_time);
      stats[base + Stat.min] = count > 0 ? num(row?.min) : Infinity;
      stats[base + Stat.max] = count > 0 ? num(row?.max) : -Infinity;
      stats[base + Stat.nanCount] = Number(row?.nan_count ?? 0);
      if (count === 0) return;
      for (let level = 0; level <= tileLevels(count); level++) {
        const chunk = lastChunkIndex(level, count);
        const at = `${level}/${chunk}`;
        const slot = wanted.get(at) ?? { level, chunk, entries: [] };
        slot.entries.push(i);
        wanted.set(at, slot);
      }
    });
    const found: { i: number; level: number; data: Uint8Array }[] = [];
    const positions = [...wanted.values()];
    const chunks = await this.repo.chunksAt(runId, positions.map((p) => ({ level: p.level, chunk: p.chunk, keys: p.entries.map((i) => group[i]!) })));
    for (const { level, entries } of positions) {
      for (const i of entries) {
        const data = chunks.get(`${group[i]!}\u0000${level}`);
        if (data) found.push({ i, level, data });
      }
    }
    // Pack the chunks into one buffer to move (8-byte aligned entries for in-place views).
    let size = 0;
    for (const f of found) size += Math.ceil(f.data.byteLength / 8) * 8;
    const packed = new ArrayBuffer(size);
    const refs = new Int32Array(found.length * 4);
    let offset = 0;
    found.forEach((f, r) => {
      new Uint8Array(packed, offset, f.data.byteLength).set(f.data);
      refs.set([f.i, f.level, offset, f.data.byteLength], r * 4);
      offset += Math.ceil(f.data.byteLength / 8) * 8;
    });
    const entryOf = new Map(group.map((key, i) => [key, i]));
    return this.pool.run({
      batches: parts.map((p) => ({
        buffer: p.buffer,
        length: p.length,
        stepOffset: p.stepOffset,
        valueOffset: p.valueOffset,
        timeOffset: p.timeOffset,
        keyIndexOffset: p.keyIndexOffset,
        keyMap: Int32Array.from(p.keys, (key) => entryOf.get(key) ?? -1),
      })),
      keyCount: group.length,
      stats,
      chunkRefs: refs,
      chunks: packed,
      live: this.callbacks.onAppended !== undefined,
    });
  }

  /** Writes one group's result in one transaction, if the batch is still pending and its keys unchanged. */
  private commit(
    runId: string,
    set: { batchId: string; seq: number }[],
    groupKeys: string[],
    before: Map<string, KeyRow>,
    result: AggregationResult | undefined,
    last: boolean,
  ): Promise<Outcome> {
    return this.db.transaction(async (tx): Promise<Outcome> => {
      await this.repo.lockRun(tx, runId);
      const ids = set.map((b) => b.batchId);
      if ((await this.repo.countPending(tx, runId, ids)) !== ids.length) return 'gone';
      const firstSeq = set[0]!.seq;
      const seq = set.at(-1)!.seq;
      // The keys as they are now, under the lock: the usual answer (nothing changed) in one summary row per few hundred keys.
      const expected = groupKeys.reduce((sum, key) => sum + Number(before.get(key)?.count ?? 0), 0);
      const summary = await this.repo.keySummary(tx, runId, groupKeys);
      const write = new Set<number>();
      if (summary.newest < firstSeq && summary.total === expected) {
        groupKeys.forEach((_, i) => write.add(i));
      } else {
        const now = await this.repo.keyRows(tx, runId, groupKeys);
        for (const [i, key] of groupKeys.entries()) {
          const row = now.get(key);
          const aggSeq = Number(row?.agg_seq ?? 0);
          if (aggSeq >= seq) continue; // holds the whole set already (an earlier attempt committed this group)
          if (aggSeq >= firstSeq || Number(row?.count ?? 0) !== Number(before.get(key)?.count ?? 0)) return 'stale';
          write.add(i);
        }
      }
      // Keys without new points have nothing to write (and no row to create).
      for (const i of write) if (!result || result.points[i] === 0) write.delete(i);
      const changed: KeyStatsRow[] = [];
      if (result && write.size > 0) {
        const rows: ChunkRow[] = [];
        for (let r = 0; r < result.rows.length; r += ROW_FIELDS) {
          const i = result.rows[r + Row.key]!;
          if (!write.has(i)) continue;
          rows.push({
            key: groupKeys[i]!,
            level: result.rows[r + Row.level]!,
            chunk: result.rows[r + Row.chunk]!,
            firstStep: result.rows[r + Row.firstStep]!,
            lastStep: result.rows[r + Row.lastStep]!,
            firstTime: result.rows[r + Row.firstTime]!,
            lastTime: result.rows[r + Row.lastTime]!,
            n: result.rows[r + Row.n]!,
            data: new Uint8Array(result.rowBytes, result.rows[r + Row.byteOffset]!, result.rows[r + Row.byteLength]!),
          });
        }
        for (const i of write) {
          const s = (field: number) => result.stats[i * STAT_FIELDS + field]!;
          changed.push({
            key: groupKeys[i]!,
            count: s(Stat.count),
            firstStep: s(Stat.firstStep),
            lastStep: s(Stat.lastStep),
            lastValue: s(Stat.lastValue),
            firstTime: s(Stat.firstTime),
            lastTime: s(Stat.lastTime),
            min: s(Stat.min),
            max: s(Stat.max),
            nanCount: s(Stat.nanCount),
            aggSeq: seq,
          });
        }
        await this.repo.writeChunks(tx, runId, rows);
        await this.repo.writeKeyStats(tx, runId, changed);
      }
      if (last) await this.repo.markAggregated(tx, runId, ids);
      if (this.callbacks.onAggregated && changed.length > 0) await this.notifyAggregated(runId, changed);
      return 'claimed';
    }, { groupCommit: true }); // statements only (onAggregated must keep to statements too): may share its commit
  }

  /**
   * Runs onAggregated inside the aggregation transaction, as a savepoint: its
   * statements on the MetadataStore join the transaction (so a summary kept
   * from it is exactly as current as the history), and if it fails only its
   * own writes are rolled back — the history is still written and the
   * failure is logged.
   */
  private async notifyAggregated(runId: string, changed: KeyStatsRow[]): Promise<void> {
    const stats = changed.map((c) =>
      keyStats({
        key: c.key,
        count: c.count,
        first_step: c.firstStep,
        last_step: c.lastStep,
        last_value: c.lastValue,
        first_time: c.firstTime,
        last_time: c.lastTime,
        min: c.min,
        max: c.max,
        nan_count: c.nanCount,
        agg_seq: c.aggSeq,
      }),
    );
    try {
      await this.db.transaction(() => this.callbacks.onAggregated!(runId, stats));
    } catch (err) {
      this.callbacks.logger.error({ err, runId }, 'The onAggregated callback of the metric store failed; its writes were rolled back, the metric history was kept.');
    }
  }
}

/** The live points of a group's keys, as MetricSeries (x = step). */
function liveSeries(runId: string, group: string[], result: AggregationResult): MetricSeries[] {
  const out: MetricSeries[] = [];
  const total = result.liveTotal;
  const d = result.liveData;
  for (let l = 0; l < result.live.length; l += LIVE_FIELDS) {
    const i = result.live[l + Live.key]!;
    const from = result.live[l + Live.offset]!;
    const to = from + result.live[l + Live.n]!;
    const column = (c: number) => Array.from(d.subarray(c * total + from, c * total + to));
    out.push({
      runId,
      key: group[i]!,
      sampled: result.live[l + Live.sampled] === 1,
      x: column(0),
      value: column(1),
      min: column(2),
      max: column(3),
      count: column(4),
      // Live points carry no wall time (charts of live updates use step or their own clock).
      time: [],
    });
  }
  return out;
}

