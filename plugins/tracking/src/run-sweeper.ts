import type { Clock, Logger } from '@wanllmdb/core';
import type { RunEvents } from './run-events.js';
import type { RunRepository } from './run-repository.js';

export interface SweeperOptions {
  /** How often to look for silent runs. */
  intervalMs: number;
  /** A running run without a heartbeat for this long is marked crashed. */
  timeoutMs: number;
  /**
   * Also run on every tick: aggregating metric batches that a writer stored
   * but never aggregated (an embedded writer killed mid-way), so a running
   * server picks them up without a restart.
   */
  recoverStaleBatches?: () => Promise<number>;
}

/**
 * Marks running runs whose process stopped sending heartbeats as crashed.
 * One UPDATE … RETURNING per sweep, so with several replicas each run is
 * marked once, by whichever gets there first. A heartbeat that arrives
 * later brings the run back to running (see RunRepository.heartbeat).
 */
export class RunSweeper {
  private timer?: NodeJS.Timeout;
  private running?: Promise<unknown>;

  constructor(
    private readonly repo: RunRepository,
    private readonly events: RunEvents,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly opts: SweeperOptions,
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      // A slow sweep is not overlapped by the next tick.
      this.running ??= this.sweep()
        .catch((err: unknown) => this.logger.warn({ err }, 'the run sweeper failed; it retries on its next tick'))
        .finally(() => (this.running = undefined));
    }, this.opts.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** One sweep; resolves to the ids of the runs it marked crashed. */
  async sweep(): Promise<string[]> {
    const now = this.clock.now();
    const ids = await this.repo.sweepStale(now - this.opts.timeoutMs, now);
    for (const id of ids) {
      const run = await this.repo.get(id);
      if (run) await this.events.run('state', run);
    }
    if (ids.length) this.logger.info({ runs: ids.length }, 'marked runs without heartbeats as crashed');
    const recovered = (await this.opts.recoverStaleBatches?.()) ?? 0;
    if (recovered) this.logger.info({ batches: recovered }, 'aggregated metric batches another writer left behind');
    return ids;
  }
}
