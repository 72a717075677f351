import type { OwnedBatch } from './batch-aggregator.js';

/**
 * Schedules aggregation after appends are acknowledged: batches of one run
 * strictly one after another in seq order, different runs side by side (up to
 * `concurrency`, taking turns), and never more than `budgetBytes` of batch
 * bytes held in memory — an append waits for room (`reserve`) before it
 * writes, which is the backpressure that keeps memory flat however fast
 * points arrive. A run's turn takes every item waiting for it (so batches
 * that queued up while it was busy can be aggregated together).
 */
export interface QueuedBatch {
  runId: string;
  /** The batch to aggregate up to; absent for "every pending batch of the run" (recover). */
  batchId?: string;
  seq: number;
  /** The batch's columns while this process holds them (else they are read back from the database). */
  batch?: OwnedBatch | undefined;
  /** Budget bytes this item holds until it is done. */
  bytes: number;
}

interface Entry {
  item: QueuedBatch;
  done: (claimed: number) => void;
}

export interface AggregationQueueOptions {
  budgetBytes: number;
  concurrency: number;
  /**
   * Turns started per second at most (a token bucket holding a second's
   * worth): below it a run's batches are aggregated as soon as they are
   * stored; above it runs wait for their turn, and a turn takes every batch
   * that arrived meanwhile — so the work per batch falls as the load rises.
   * Infinity: no limit.
   */
  turnsPerSecond: number;
  logger: { error(details: Record<string, unknown>, message: string): void };
}

export class AggregationQueue {
  private readonly waiting = new Map<string, Entry[]>();
  /** Runs with waiting entries and no entry running, in turn order. */
  private readonly turns: string[] = [];
  private readonly running = new Set<string>();
  private readonly inFlight = new Set<Promise<void>>();
  private held = 0;
  private roomWaiters: (() => void)[] = [];
  private idleWaiters: (() => void)[] = [];
  private stopped = false;
  private tokens: number;
  private refilledAt = performance.now();
  private refill: ReturnType<typeof setTimeout> | undefined;

  constructor(
    /** Aggregates the run's batches up to the items' highest seq; resolves to the seqs it aggregated. */
    private readonly work: (runId: string, items: QueuedBatch[]) => Promise<number[]>,
    private readonly options: AggregationQueueOptions,
  ) {
    this.tokens = options.turnsPerSecond;
  }

  /** Takes `bytes` of the memory budget, waiting while it is used up (one item is always let through). */
  async reserve(bytes: number): Promise<void> {
    while (!this.stopped && this.held > 0 && this.held + bytes > this.options.budgetBytes) {
      await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
    }
    this.held += bytes;
  }

  release(bytes: number): void {
    if (bytes === 0) return;
    this.held -= bytes;
    const waiters = this.roomWaiters;
    this.roomWaiters = [];
    for (const wake of waiters) wake();
  }

  /** Queues an item (its bytes already reserved); resolves with the batches it aggregated, once it ran or was dropped. */
  push(item: QueuedBatch): Promise<number> {
    return new Promise<number>((done) => {
      if (this.stopped) {
        this.release(item.bytes);
        return done(0);
      }
      const entries = this.waiting.get(item.runId) ?? [];
      entries.push({ item, done });
      this.waiting.set(item.runId, entries);
      if (entries.length === 1 && !this.running.has(item.runId)) this.turns.push(item.runId);
      this.pump();
    });
  }

  /** Drops the waiting items of a run (deleted); one already running finds its batch gone. */
  dropRun(runId: string): void {
    const entries = this.waiting.get(runId) ?? [];
    this.waiting.delete(runId);
    const turn = this.turns.indexOf(runId);
    if (turn >= 0) this.turns.splice(turn, 1);
    for (const { item, done } of entries) {
      this.release(item.bytes);
      done(0);
    }
    this.settle();
  }

  /** Resolves once nothing is waiting or running. */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops: waiting items are dropped (their batches stay pending in the database), running ones finish. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.refill);
    for (const runId of [...this.waiting.keys()]) this.dropRun(runId);
    await Promise.allSettled([...this.inFlight]);
    const waiters = this.roomWaiters;
    this.roomWaiters = [];
    for (const wake of waiters) wake();
    this.settle();
  }

  private isIdle(): boolean {
    return this.running.size === 0 && this.turns.length === 0;
  }

  /** Takes a token for a turn; without one, pumps again once the next is due. */
  private takeToken(): boolean {
    const rate = this.options.turnsPerSecond;
    if (rate === Infinity) return true;
    const now = performance.now();
    this.tokens = Math.min(rate, this.tokens + ((now - this.refilledAt) * rate) / 1000);
    this.refilledAt = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    this.refill ??= setTimeout(
      () => {
        this.refill = undefined;
        this.pump();
      },
      Math.ceil(((1 - this.tokens) * 1000) / rate),
    );
    return false;
  }

  private pump(): void {
    while (!this.stopped && this.running.size < this.options.concurrency && this.turns.length > 0 && this.takeToken()) {
      const runId = this.turns.shift()!;
      const entries = this.waiting.get(runId);
      if (!entries || entries.length === 0) continue;
      this.waiting.delete(runId);
      this.running.add(runId);
      const task = this.run(runId, entries).finally(() => {
        this.inFlight.delete(task);
        this.running.delete(runId);
        // The run takes its next turn behind the others.
        if (this.waiting.has(runId)) this.turns.push(runId);
        this.pump();
        this.settle();
      });
      this.inFlight.add(task);
    }
  }

  private async run(runId: string, entries: Entry[]): Promise<void> {
    let claimed: number[] = [];
    try {
      claimed = await this.work(
        runId,
        entries.map((e) => e.item),
      );
    } catch (err) {
      this.options.logger.error(
        { err, runId, batchIds: entries.map((e) => e.item.batchId).filter(Boolean) },
        "Aggregating metric batches failed; they stay stored and pending, and are retried with the run's next batch or by recover() at start.",
      );
    } finally {
      // Each item is answered with the batches aggregated up to its seq (and after the previous item's).
      const seqs = claimed.sort((a, b) => a - b);
      let next = 0;
      for (const { item, done } of [...entries].sort((a, b) => a.item.seq - b.item.seq)) {
        let mine = 0;
        while (next < seqs.length && seqs[next]! <= item.seq) (next++, mine++);
        item.batch = undefined;
        this.release(item.bytes);
        done(mine);
      }
    }
  }

  private settle(): void {
    if (!this.isIdle()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
