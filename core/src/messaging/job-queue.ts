/**
 * JobQueue: durable work with acknowledgement. A job is delivered to one
 * worker; it is acknowledged when the handler resolves, retried when the
 * handler throws, and redelivered when a worker dies without answering
 * (after `ackWaitMs`). A worker runs at most `concurrency` jobs at once.
 */
export interface Job<T = unknown> {
  id: string;
  queue: string;
  data: T;
  /** 1 on first delivery, then 2, 3 … */
  attempt: number;
}

export type JobHandler<T = unknown> = (job: Job<T>) => Promise<void>;

export interface WorkerOptions {
  concurrency?: number;
  /** How long a delivered job may stay unanswered before it is redelivered. */
  ackWaitMs?: number;
  /** After this many failed attempts the job is dropped and logged (default 5). */
  maxAttempts?: number;
}

export interface Worker {
  /** Stops taking jobs and waits for running handlers to finish. */
  stop(): Promise<void>;
}

export interface JobQueue {
  readonly kind: 'memory' | 'nats';
  enqueue<T>(queue: string, data: T): Promise<string>;
  process<T>(queue: string, handler: JobHandler<T>, opts?: WorkerOptions): Promise<Worker>;
  close(): Promise<void>;
}
