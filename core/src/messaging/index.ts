export type { EventBus, EventHandler, Subscription } from './event-bus.js';
export { defineEvent, type EventRef, type SubjectParams } from './event-ref.js';
export type { Job, JobHandler, JobQueue, Worker, WorkerOptions } from './job-queue.js';
export { MemoryEventBus, type MemoryEventBusOptions } from './memory-event-bus.js';
export { ClusterEventBus, EventRelay, type IpcEndpoint } from './cluster-event-bus.js';
// NATS adapters are types here: createEventBus/createJobQueue load them only when configured.
export type { NatsEventBus, NatsEventBusOptions } from './nats-event-bus.js';
export { MemoryJobQueue, type MemoryJobQueueOptions } from './memory-job-queue.js';
export type { JetStreamJobQueue, JetStreamJobQueueOptions } from './jetstream-job-queue.js';
export {
  BUS_SETTING,
  DEFAULT_SUBJECT_PREFIX,
  createEventBus,
  createJobQueue,
  parseBusSetting,
  type BusConfig,
  type MessagingOptions,
} from './create-messaging.js';
export { assertPublishSubject, assertQueueName, assertSubscribePattern, subjectMatches } from './subjects.js';
export { WORKER_DEFAULTS } from './worker-policy.js';
