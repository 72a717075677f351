import { randomUUID } from 'node:crypto';
import {
  AckPolicy,
  DeliverPolicy,
  NatsError,
  RetentionPolicy,
  StorageType,
  nanos,
  type ConsumerConfig,
  type Consumer,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type NatsConnection,
} from 'nats';
import { Errors } from '../errors.js';
import type { JobHandler, JobQueue, Worker, WorkerOptions } from './job-queue.js';
import { decodePayload, encodePayload } from './payload.js';
import { assertQueueName } from './subjects.js';
import { queueClosedError, resolveWorkerPolicy, retryDelayMs, settledOrExpired, type Delivery, type WorkerPolicy } from './worker-policy.js';

export interface JetStreamJobQueueOptions {
  /** Deployment namespace, e.g. `wldb.` (see ADR 0005). Default: none. */
  prefix?: string;
  /** Close the connection in `close()` (true when the queue made it). */
  ownsConnection?: boolean;
  logger?: Pick<Console, 'warn' | 'error'>;
}

/** The stream holding one deployment's jobs: `WLDB_JOBS` for the prefix `wldb.`. */
export function jobStreamName(prefix: string): string {
  const namespace = prefix.slice(0, -1).replaceAll('.', '_').toUpperCase();
  return namespace ? `${namespace}_JOBS` : 'JOBS';
}

const JS_ERR_STREAM_NOT_FOUND = 10059;
const JS_ERR_CONSUMER_NOT_FOUND = 10014;
/** Enqueues retried by the client within this window are stored once (Nats-Msg-Id). */
const DUPLICATE_WINDOW_MS = 2 * 60_000;
/**
 * Server-side cap on delivered-but-unanswered jobs per queue, over all
 * workers. Each worker's own limit is its `concurrency` (it never fetches
 * more than it has free slots), so this only has to be at least that.
 */
const MAX_ACK_PENDING = 1_000;
/** How long one pull request waits for jobs; also the most stop() waits for an idle worker. */
const FETCH_EXPIRES_MS = 1_000;
const FETCH_ERROR_PAUSE_MS = 1_000;

function jsErrorCode(err: unknown): number | undefined {
  return err instanceof NatsError ? err.api_error?.err_code : undefined;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * JobQueue over NATS JetStream. One stream per deployment (WorkQueue
 * retention, file storage, subjects `<prefix>jobs.>`) holds every queue;
 * each queue has one durable pull consumer that all its workers, in any
 * process, share, so each job goes to one of them. A job leaves the stream
 * when it is acked; a worker that dies without answering gets its job
 * redelivered by the server after the consumer's ack wait.
 */
export class JetStreamJobQueue implements JobQueue {
  readonly kind = 'nats' as const;
  readonly #workers = new Set<JetStreamWorker>();
  readonly #logger: Pick<Console, 'warn' | 'error'>;
  #closed = false;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly js: JetStreamClient,
    private readonly prefix: string,
    readonly streamName: string,
    private readonly ownsConnection: boolean,
    logger: Pick<Console, 'warn' | 'error'>,
  ) {
    this.#logger = logger;
  }

  /** Connects the queue to JetStream, creating its stream if it does not exist yet. */
  static async open(nc: NatsConnection, opts: JetStreamJobQueueOptions = {}): Promise<JetStreamJobQueue> {
    const prefix = opts.prefix ?? '';
    const jsm = await nc.jetstreamManager();
    const queue = new JetStreamJobQueue(
      nc, jsm, nc.jetstream(), prefix, jobStreamName(prefix), opts.ownsConnection ?? false, opts.logger ?? console,
    );
    await queue.#ensureStream();
    return queue;
  }

  async enqueue<T>(queue: string, data: T): Promise<string> {
    assertQueueName(queue);
    this.#assertOpen();
    const payload = encodePayload(data);
    const id = randomUUID();
    try {
      // Resolves on the PubAck, i.e. once the job is stored in the stream.
      await this.js.publish(this.#subject(queue), payload, { msgID: id });
    } catch (err) {
      throw Errors.BUS_UNAVAILABLE(
        `JetStream did not confirm job ${id} on queue "${queue}" (${describe(err)}). Check that NATS (${this.nc.getServer()}) is running with JetStream, then enqueue again.`,
        [],
        err,
      );
    }
    return id;
  }

  async process<T>(queue: string, handler: JobHandler<T>, opts?: WorkerOptions): Promise<Worker> {
    assertQueueName(queue);
    const policy = resolveWorkerPolicy(opts);
    this.#assertOpen();
    let consumer: Consumer;
    try {
      await this.#ensureConsumer(queue, policy);
      consumer = await this.js.consumers.get(this.streamName, queue);
    } catch (err) {
      throw Errors.BUS_UNAVAILABLE(
        `Could not set up the JetStream consumer for queue "${queue}" (${describe(err)}). Check that NATS (${this.nc.getServer()}) is running with JetStream.`,
        [],
        err,
      );
    }
    const worker = new JetStreamWorker(queue, consumer, handler as JobHandler, policy, this.#logger, () => this.#workers.delete(worker));
    this.#workers.add(worker);
    return worker;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#workers].map((worker) => worker.stop()));
    if (this.ownsConnection && !this.nc.isClosed()) await this.nc.drain();
  }

  #subject(queue: string): string {
    return `${this.prefix}jobs.${queue}`;
  }

  async #ensureStream(): Promise<void> {
    const subjects = [`${this.prefix}jobs.>`];
    try {
      const { config } = await this.jsm.streams.info(this.streamName);
      if (config.retention !== RetentionPolicy.Workqueue || config.subjects?.join() !== subjects.join()) {
        throw Errors.CONFIG_INVALID(
          `The JetStream stream ${this.streamName} already exists with subjects [${config.subjects?.join(', ')}] and ${config.retention} retention, ` +
            `not [${subjects.join(', ')}] with workqueue retention: another deployment or tool owns it. ` +
            'Give this deployment its own subject prefix (WANLLMDB_BUS=nats://host:port?prefix=…) or delete that stream.',
          [{ field: 'WANLLMDB_BUS', message: `stream ${this.streamName} has a conflicting configuration` }],
        );
      }
      return;
    } catch (err) {
      if (jsErrorCode(err) !== JS_ERR_STREAM_NOT_FOUND) throw err;
    }
    // Adding a stream with an identical config is a no-op, so two processes
    // racing to create it both succeed.
    await this.jsm.streams.add({
      name: this.streamName,
      subjects,
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      duplicate_window: nanos(DUPLICATE_WINDOW_MS),
    });
  }

  async #ensureConsumer(queue: string, policy: WorkerPolicy): Promise<void> {
    const wanted = {
      ack_wait: nanos(policy.ackWaitMs),
      max_deliver: policy.maxAttempts,
      max_ack_pending: Math.max(MAX_ACK_PENDING, policy.concurrency),
    };
    try {
      const { config } = await this.jsm.consumers.info(this.streamName, queue);
      const same = config.ack_wait === wanted.ack_wait && config.max_deliver === wanted.max_deliver &&
        (config.max_ack_pending ?? 0) >= policy.concurrency;
      // The last process() call's settings win: they are per queue on the server.
      if (!same) await this.jsm.consumers.update(this.streamName, queue, wanted);
      return;
    } catch (err) {
      if (jsErrorCode(err) !== JS_ERR_CONSUMER_NOT_FOUND) throw err;
    }
    const config: Partial<ConsumerConfig> = {
      ...wanted,
      durable_name: queue,
      filter_subject: this.#subject(queue),
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
    };
    await this.jsm.consumers.add(this.streamName, config);
  }

  #assertOpen(): void {
    if (this.#closed || this.nc.isClosed()) {
      throw queueClosedError();
    }
  }
}


/**
 * Pulls at most as many jobs as it has free slots, so a worker never holds
 * a job it cannot start (its ack wait would run out while it waits).
 */
class JetStreamWorker implements Worker {
  readonly #inFlight = new Set<Delivery>();
  readonly #loop: Promise<void>;
  #stopping = false;
  #wake: () => void = () => {};

  constructor(
    private readonly queue: string,
    private readonly consumer: Consumer,
    private readonly handler: JobHandler,
    private readonly policy: WorkerPolicy,
    private readonly logger: Pick<Console, 'warn' | 'error'>,
    private readonly onStopped: () => void,
  ) {
    this.#loop = this.#pull();
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    this.#wake();
    await this.#loop;
    await Promise.all([...this.#inFlight].map((d) => settledOrExpired(d.settled, d.deadline)));
    this.onStopped();
  }

  async #pull(): Promise<void> {
    while (!this.#stopping) {
      const free = this.policy.concurrency - this.#inFlight.size;
      if (free <= 0) {
        await new Promise<void>((resolve) => (this.#wake = resolve));
        continue;
      }
      try {
        const batch = await this.consumer.fetch({ max_messages: free, expires: FETCH_EXPIRES_MS });
        for await (const msg of batch) {
          // Stopped while the pull was open: hand the job straight back.
          if (this.#stopping) msg.nak();
          else this.#start(msg);
        }
      } catch (err) {
        if (this.#stopping) break;
        this.logger.warn({ err, queue: this.queue }, 'pulling jobs from JetStream failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, FETCH_ERROR_PAUSE_MS));
      }
    }
  }

  #start(msg: JsMsg): void {
    const delivery: Delivery = {
      settled: this.#handle(msg).finally(() => {
        this.#inFlight.delete(delivery);
        this.#wake();
      }),
      deadline: Date.now() + this.policy.ackWaitMs,
    };
    this.#inFlight.add(delivery);
  }

  async #handle(msg: JsMsg): Promise<void> {
    const attempt = msg.info.redeliveryCount;
    const id = msg.headers?.get('Nats-Msg-Id') || `${msg.info.stream}:${msg.seq}`;
    const where = { queue: this.queue, jobId: id, attempt };
    let data: unknown;
    try {
      data = decodePayload(msg.string());
    } catch (err) {
      this.logger.error({ ...where, err }, 'job payload is not JSON; it is dropped');
      msg.term();
      return;
    }
    try {
      await this.handler({ id, queue: this.queue, data, attempt });
    } catch (err) {
      if (attempt >= this.policy.maxAttempts) {
        this.logger.error({ ...where, err }, `job failed on its last attempt (maxAttempts ${this.policy.maxAttempts}); it is dropped`);
        msg.term();
      } else {
        this.logger.warn({ ...where, err }, 'job failed; it will be retried');
        msg.nak(retryDelayMs(attempt));
      }
      return;
    }
    try {
      // Wait for the server to confirm the ack, so once stop() returns the job cannot come back.
      await msg.ackAck();
    } catch (err) {
      this.logger.warn({ ...where, err }, 'the server did not confirm the ack; the job may run again');
    }
  }
}
