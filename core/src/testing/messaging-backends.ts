import { randomBytes } from 'node:crypto';
import { connect } from 'nats';
import type { EventBus } from '../messaging/event-bus.js';
import type { JobQueue } from '../messaging/job-queue.js';
import { createEventBus, createJobQueue, parseBusSetting, type MessagingOptions } from '../messaging/create-messaging.js';
import { jobStreamName } from '../messaging/jetstream-job-queue.js';
import { ClusterEventBus } from '../messaging/cluster-event-bus.js';
import { MemoryEventBus } from '../messaging/memory-event-bus.js';
import { MemoryJobQueue } from '../messaging/memory-job-queue.js';

/** The NATS server the tests use (JetStream enabled). */
export const testNatsUrl = (): string => process.env.WLDB_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';

export interface EventBusBackend {
  name: 'memory' | 'cluster' | 'nats';
  create(opts?: MessagingOptions): Promise<EventBus>;
}

/** A JobQueue made for a test, with the WANLLMDB_BUS value that reaches the same queues from another process. */
export type TestJobQueue = JobQueue & { readonly busUrl: string };

export interface JobQueueBackend {
  name: 'memory' | 'nats';
  create(opts?: MessagingOptions): Promise<TestJobQueue>;
}

/** A fresh subject prefix per call, so tests never see each other's events, streams or consumers. */
function isolatedNatsUrl(): string {
  return `${testNatsUrl()}?prefix=wldbtest${randomBytes(5).toString('hex')}.`;
}

export function eventBusBackends(): EventBusBackend[] {
  return [
    { name: 'memory', create: async (opts) => new MemoryEventBus(opts) },
    // A worker whose primary relays to no one: its own subscribers see exactly what a memory bus gives them
    // (cluster-event-bus.test.ts covers the other workers).
    { name: 'cluster', create: async (opts) => new ClusterEventBus({ send: () => true, on: () => undefined, off: () => undefined }, opts) },
    { name: 'nats', create: (opts) => createEventBus(isolatedNatsUrl(), opts) },
  ];
}

export function jobQueueBackends(): JobQueueBackend[] {
  return [
    { name: 'memory', create: async (opts) => withBusUrl(new MemoryJobQueue(opts), 'memory', async () => {}) },
    {
      name: 'nats',
      create: async (opts) => {
        const busUrl = isolatedNatsUrl();
        return withBusUrl(await createJobQueue(busUrl, opts), busUrl, () => deleteJobStream(busUrl));
      },
    },
  ];
}

function withBusUrl(queue: JobQueue, busUrl: string, cleanUp: () => Promise<void>): TestJobQueue {
  return {
    kind: queue.kind,
    busUrl,
    enqueue: (name, data) => queue.enqueue(name, data),
    process: (name, handler, opts) => queue.process(name, handler, opts),
    close: async () => {
      await queue.close();
      await cleanUp();
    },
  };
}

/** Deletes the test's stream (and with it its consumers and any jobs left over). */
async function deleteJobStream(busUrl: string): Promise<void> {
  const config = parseBusSetting(busUrl);
  if (config.kind !== 'nats') return;
  const nc = await connect({ servers: config.hostPort, timeout: 2_000 });
  try {
    const jsm = await nc.jetstreamManager();
    await jsm.streams.delete(jobStreamName(config.prefix)).catch(() => false);
  } finally {
    await nc.close();
  }
}

export interface LogEntry {
  level: 'warn' | 'error';
  details: Record<string, unknown>;
  message: string;
}

/** A logger for messaging adapters that records instead of printing, so tests can assert what was reported. */
export function recordingLogger(): { entries: LogEntry[]; logger: NonNullable<MessagingOptions['logger']> } {
  const entries: LogEntry[] = [];
  const record = (level: LogEntry['level']) => (details: Record<string, unknown>, message: string) => {
    entries.push({ level, details, message });
  };
  return { entries, logger: { warn: record('warn'), error: record('error') } };
}
