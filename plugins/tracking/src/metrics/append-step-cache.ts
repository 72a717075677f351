/**
 * The last accepted step of each key of recently written runs, so that an
 * append checks backwards steps without reading metric_keys every time.
 *
 * An entry is only trusted for the run state it was built from: it records
 * the seq of the run's last batch, and the append (under the run's lock)
 * compares it with the database's. Another process appending to the run, a
 * deleted run or a failed commit all show up as a different seq, and the
 * entry is rebuilt from metric_keys. Bounded: at most `maxKeys` keys over all
 * runs, the least recently used runs evicted first.
 */
export class AppendStepCache {
  /** Insertion order is recency: a used entry is moved to the end. */
  private readonly runs = new Map<string, { seq: number; steps: Map<string, number>; counted: number; shared: boolean }>();
  /** Keys counted over all entries (an entry's keys are counted when it advances). */
  private size = 0;

  constructor(
    private readonly maxKeys = 100_000,
    private readonly maxRuns = 1024,
  ) {}

  /**
   * The known last steps of `runId` as of its batch `seq`: the cached map when
   * it was built at that seq, else a new empty one (to fill from the
   * database). -Infinity marks a key known to have no points.
   */
  at(runId: string, seq: number): Map<string, number> {
    const entry = this.runs.get(runId);
    this.runs.delete(runId);
    if (entry && entry.seq === seq) {
      // Nobody else wrote since this process did: the run is its own again.
      entry.shared = false;
      this.runs.set(runId, entry);
      return entry.steps;
    }
    if (entry) this.size -= entry.counted;
    const fresh = { seq, steps: new Map<string, number>(), counted: 0, shared: entry !== undefined && entry.shared };
    this.runs.set(runId, fresh);
    return fresh.steps;
  }

  /**
   * The entry of `runId` as it stands (the seq it was built at and its map),
   * not checked against the database; none while the run is `shared`.
   */
  latest(runId: string): { seq: number; steps: Map<string, number> } | undefined {
    const entry = this.runs.get(runId);
    if (!entry || entry.shared) return undefined;
    this.runs.delete(runId);
    this.runs.set(runId, entry);
    return { seq: entry.seq, steps: entry.steps };
  }

  /**
   * Marks `runId` as written by others too (a guess on the entry's seq
   * missed): latest() answers nothing until an append finds the entry
   * current again (at() with its seq).
   */
  missed(runId: string): void {
    const entry = this.runs.get(runId);
    if (entry) entry.shared = true;
  }

  /** Records that the batch `seq` was written with these new last steps, into the map `at()` returned. */
  advance(runId: string, seq: number, steps: Map<string, number>, changes: ReadonlyMap<string, number>): void {
    const entry = this.runs.get(runId);
    // The entry must still be the one that was read, at the seq before this batch.
    if (!entry || entry.steps !== steps || entry.seq !== seq - 1) return;
    for (const [key, step] of changes) steps.set(key, step);
    entry.seq = seq;
    this.size += steps.size - entry.counted;
    entry.counted = steps.size;
    for (const [oldest, old] of this.runs) {
      if (this.size <= this.maxKeys && this.runs.size <= this.maxRuns) break;
      this.runs.delete(oldest);
      this.size -= old.counted;
    }
  }

  forget(runId: string): void {
    const entry = this.runs.get(runId);
    if (entry) this.size -= entry.counted;
    this.runs.delete(runId);
  }
}
