import { Errors } from '../errors.js';
import type { WorkerOptions } from './job-queue.js';

/**
 * The rules every JobQueue adapter's workers follow, kept in one place so
 * the in-process and JetStream workers behave the same: defaults and limits
 * of WorkerOptions, the retry backoff, and how long stop() waits.
 */

export type WorkerPolicy = Required<WorkerOptions>;

export const WORKER_DEFAULTS: WorkerPolicy = { concurrency: 1, ackWaitMs: 30_000, maxAttempts: 5 };

const MIN_ACK_WAIT_MS = 100;
const MAX_CONCURRENCY = 1_000;
const RETRY_BASE_MS = 100;
const RETRY_MAX_MS = 5_000;

function invalid(field: keyof WorkerOptions, value: unknown, rule: string) {
  return Errors.JOB_QUEUE_INVALID(
    `Worker option ${field} = ${JSON.stringify(value)} is invalid: it must be ${rule}. Fix the value passed to process(), or leave it out for the default (${WORKER_DEFAULTS[field]}).`,
    [{ field, message: `must be ${rule}` }],
  );
}

/** WorkerOptions with defaults filled in; JOB_QUEUE_INVALID when a value is out of range. */
export function resolveWorkerPolicy(opts: WorkerOptions = {}): WorkerPolicy {
  const policy = { ...WORKER_DEFAULTS, ...withoutUndefined(opts) };
  const { concurrency, ackWaitMs, maxAttempts } = policy;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > MAX_CONCURRENCY) {
    throw invalid('concurrency', concurrency, `an integer from 1 to ${MAX_CONCURRENCY}`);
  }
  if (!Number.isInteger(ackWaitMs) || ackWaitMs < MIN_ACK_WAIT_MS) {
    throw invalid('ackWaitMs', ackWaitMs, `an integer of at least ${MIN_ACK_WAIT_MS} (milliseconds)`);
  }
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) {
    throw invalid('maxAttempts', maxAttempts, 'an integer of at least 1');
  }
  return policy;
}

function withoutUndefined(opts: WorkerOptions): WorkerOptions {
  return Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
}

/** Delay before retrying a job whose handler threw on delivery `attempt`: 100 ms, doubling, at most 5 s. */
export function retryDelayMs(attempt: number): number {
  return Math.min(RETRY_BASE_MS * 2 ** (attempt - 1), RETRY_MAX_MS);
}

/**
 * Resolves when `settled` does or when `deadline` (epoch ms) passes,
 * whichever is first. stop() waits this way: once a delivery's ack wait has
 * run out the job has been handed to another worker, so waiting longer for
 * a hung handler would only block shutdown.
 */
export async function settledOrExpired(settled: Promise<unknown>, deadline: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
  });
  try {
    await Promise.race([settled.then(() => undefined, () => undefined), expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** A job a worker is running. */
export interface Delivery {
  readonly settled: Promise<void>;
  /** Epoch ms when the ack wait runs out and the job may go to another worker. */
  readonly deadline: number;
}

export const queueClosedError = () =>
  Errors.BUS_UNAVAILABLE('The job queue is closed. Create a new one (the kernel does this at start-up) before enqueueing or processing.');
