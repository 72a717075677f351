import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { transferable, type AggregationResult, type AggregationTask } from './aggregation-task.js';

/**
 * The piscina pool that runs aggregation-worker, created on first use and
 * destroyed by `destroy()`. At most two threads: the machines this runs on
 * have two cores, and the database writes stay on the main thread anyway.
 *
 * From TypeScript sources (vitest, tsx) the worker file is `.ts` and its
 * thread needs tsx's loader; from dist it is plain `.js`.
 */
const MAX_THREADS = 2;
/** An idle thread exits after this long; the pool starts one again on demand. */
const IDLE_TIMEOUT_MS = 60_000;

function workerFile(): URL {
  const fromSource = import.meta.url.endsWith('.ts');
  return new URL(`./aggregation-worker.${fromSource ? 'ts' : 'js'}`, import.meta.url);
}

export class AggregationPool {
  private pool: Piscina | undefined;

  constructor(private readonly maxThreads = Math.max(1, Math.min(MAX_THREADS, availableParallelism()))) {}

  /** Runs one task; its batch, stats and chunk buffers are moved to the worker (and the batches come back in the result). */
  run(task: AggregationTask): Promise<AggregationResult> {
    const buffers = [...task.batches.map((b) => b.buffer), task.chunks, task.stats.buffer, task.chunkRefs.buffer] as ArrayBuffer[];
    return this.started().run(Piscina.move(transferable(task, buffers) as never)) as Promise<AggregationResult>;
  }

  async destroy(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    await pool?.destroy();
  }

  private started(): Piscina {
    if (!this.pool) {
      const file = workerFile();
      const fromSource = file.pathname.endsWith('.ts');
      this.pool = new Piscina({
        filename: file.href,
        minThreads: 0,
        maxThreads: this.maxThreads,
        idleTimeout: IDLE_TIMEOUT_MS,
        ...(fromSource ? { execArgv: [...process.execArgv, '--import', 'tsx'] } : {}),
      });
    }
    return this.pool;
  }
}
