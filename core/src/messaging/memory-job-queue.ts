import { randomUUID } from 'node:crypto';
import { Errors } from '../errors.js';
import type { Job, JobHandler, JobQueue, Worker, WorkerOptions } from './job-queue.js';
import { decodePayload, encodePayload } from './payload.js';
import { assertQueueName } from './subjects.js';
import { queueClosedError, resolveWorkerPolicy, retryDelayMs, settledOrExpired, type Delivery, type WorkerPolicy } from './worker-policy.js';

export interface MemoryJobQueueOptions {
  /** Where failed and dropped jobs are reported (default: console). */
  logger?: Pick<Console, 'warn' | 'error'>;
}

interface StoredJob {
  readonly id: string;
  readonly queue: string;
  readonly payload: string;
  deliveries: number;
}

interface QueueState {
  /** Jobs waiting for a worker, oldest first (retries and redeliveries go to the front). */
  readonly ready: StoredJob[];
  readonly workers: MemoryWorker[];
  nextWorker: number;
}

/** What a worker asks of the queue it belongs to. */
interface WorkerHost {
  /** The job's handler threw: retry it after a backoff, or drop it after its last attempt. */
  retry(job: StoredJob, err: unknown, policy: WorkerPolicy): void;
  /** The job's ack wait ran out (the worker "crashed"): hand it to a worker again. */
  redeliver(job: StoredJob, policy: WorkerPolicy): void;
  slotFreed(queue: string): void;
  detach(worker: MemoryWorker): void;
}

/**
 * JobQueue inside one process (the embedded default): the same delivery
 * rules as the JetStream adapter (FIFO, at-least-once, retries with backoff,
 * redelivery after the ack wait, a per-worker concurrency limit), but jobs
 * live in memory and are lost when the process exits.
 */
export class MemoryJobQueue implements JobQueue {
  readonly kind = 'memory' as const;
  readonly #queues = new Map<string, QueueState>();
  readonly #retryTimers = new Set<NodeJS.Timeout>();
  readonly #dispatchScheduled = new Set<string>();
  readonly #logger: Pick<Console, 'warn' | 'error'>;
  readonly #host: WorkerHost = {
    retry: (job, err, policy) => this.#retry(job, err, policy),
    redeliver: (job, policy) => this.#redeliver(job, policy),
    slotFreed: (queue) => this.#scheduleDispatch(queue),
    detach: (worker) => this.#detach(worker),
  };
  #closed = false;

  constructor(opts: MemoryJobQueueOptions = {}) {
    this.#logger = opts.logger ?? console;
  }

  async enqueue<T>(queue: string, data: T): Promise<string> {
    assertQueueName(queue);
    this.#assertOpen();
    const job: StoredJob = { id: randomUUID(), queue, payload: encodePayload(data), deliveries: 0 };
    this.#state(queue).ready.push(job);
    this.#scheduleDispatch(queue);
    return job.id;
  }

  async process<T>(queue: string, handler: JobHandler<T>, opts?: WorkerOptions): Promise<Worker> {
    assertQueueName(queue);
    const policy = resolveWorkerPolicy(opts);
    this.#assertOpen();
    const worker = new MemoryWorker(queue, handler as JobHandler, policy, this.#host);
    this.#state(queue).workers.push(worker);
    this.#scheduleDispatch(queue);
    return worker;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const workers = [...this.#queues.values()].flatMap((state) => state.workers);
    await Promise.all(workers.map((worker) => worker.stop()));
    for (const timer of this.#retryTimers) clearTimeout(timer);
    this.#retryTimers.clear();
    this.#queues.clear();
  }

  #retry(job: StoredJob, err: unknown, policy: WorkerPolicy): void {
    const where = { err, queue: job.queue, jobId: job.id, attempt: job.deliveries };
    if (job.deliveries >= policy.maxAttempts) {
      this.#logger.error(where, `job failed on its last attempt (maxAttempts ${policy.maxAttempts}); it is dropped`);
      return;
    }
    this.#logger.warn(where, 'job failed; it will be retried');
    if (this.#closed) return;
    const timer = setTimeout(() => {
      this.#retryTimers.delete(timer);
      this.#returnToFront(job);
    }, retryDelayMs(job.deliveries));
    this.#retryTimers.add(timer);
  }

  #redeliver(job: StoredJob, policy: WorkerPolicy): void {
    const where = { queue: job.queue, jobId: job.id, attempt: job.deliveries };
    if (job.deliveries >= policy.maxAttempts) {
      this.#logger.error(where, `job was not answered within ackWaitMs on its last attempt (maxAttempts ${policy.maxAttempts}); it is dropped`);
      return;
    }
    this.#logger.warn(where, 'job was not answered within ackWaitMs; it is redelivered');
    this.#returnToFront(job);
  }

  #detach(worker: MemoryWorker): void {
    const workers = this.#queues.get(worker.queue)?.workers;
    const index = workers?.indexOf(worker) ?? -1;
    if (index >= 0) workers!.splice(index, 1);
  }

  #returnToFront(job: StoredJob): void {
    if (this.#closed) return;
    this.#state(job.queue).ready.unshift(job);
    this.#scheduleDispatch(job.queue);
  }

  #state(queue: string): QueueState {
    let state = this.#queues.get(queue);
    if (!state) {
      state = { ready: [], workers: [], nextWorker: 0 };
      this.#queues.set(queue, state);
    }
    return state;
  }

  /** Dispatching later (never inside enqueue) keeps handlers from running re-entrantly in the caller. */
  #scheduleDispatch(queue: string): void {
    if (this.#dispatchScheduled.has(queue)) return;
    this.#dispatchScheduled.add(queue);
    setImmediate(() => {
      this.#dispatchScheduled.delete(queue);
      this.#dispatch(queue);
    });
  }

  #dispatch(queue: string): void {
    const state = this.#queues.get(queue);
    if (!state || this.#closed) return;
    while (state.ready.length > 0) {
      const worker = this.#nextFreeWorker(state);
      if (!worker) return;
      worker.deliver(state.ready.shift()!);
    }
  }

  /** Round robin over the workers with a free slot, so several workers share a queue. */
  #nextFreeWorker(state: QueueState): MemoryWorker | undefined {
    for (let i = 0; i < state.workers.length; i++) {
      const index = (state.nextWorker + i) % state.workers.length;
      const worker = state.workers[index]!;
      if (worker.hasFreeSlot()) {
        state.nextWorker = index + 1;
        return worker;
      }
    }
    return undefined;
  }

  #assertOpen(): void {
    if (this.#closed) {
      throw queueClosedError();
    }
  }
}


class MemoryWorker implements Worker {
  readonly #inFlight = new Set<Delivery>();
  #stopping = false;

  constructor(
    readonly queue: string,
    private readonly handler: JobHandler,
    private readonly policy: WorkerPolicy,
    private readonly host: WorkerHost,
  ) {}

  hasFreeSlot(): boolean {
    return !this.#stopping && this.#inFlight.size < this.policy.concurrency;
  }

  deliver(job: StoredJob): void {
    job.deliveries += 1;
    const attempt = job.deliveries;
    // Until the handler settles or the ack wait runs out, this delivery owns
    // the job; whichever comes second is ignored (as NATS ignores a late ack).
    let owned = true;
    const timer = setTimeout(() => {
      owned = false;
      this.host.redeliver(job, this.policy);
    }, this.policy.ackWaitMs);
    const settled = this.#run({ id: job.id, queue: job.queue, data: decodePayload(job.payload), attempt }).then((failure) => {
      if (owned) {
        owned = false;
        clearTimeout(timer);
        if (failure) this.host.retry(job, failure.err, this.policy);
      }
      // A hung handler keeps its slot even after its job was redelivered:
      // the slot bounds what this worker runs, not what it owns.
      this.#inFlight.delete(delivery);
      this.host.slotFreed(this.queue);
    });
    const delivery: Delivery = { settled, deadline: Date.now() + this.policy.ackWaitMs };
    this.#inFlight.add(delivery);
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    this.host.detach(this);
    await Promise.all([...this.#inFlight].map((d) => settledOrExpired(d.settled, d.deadline)));
  }

  async #run(job: Job): Promise<{ err: unknown } | undefined> {
    try {
      await this.handler(job);
      return undefined;
    } catch (err) {
      return { err };
    }
  }
}
