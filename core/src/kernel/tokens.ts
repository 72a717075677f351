import type { InjectionToken } from 'tsyringe';
import type { WanllmdbConfig } from '../config/config.js';
import type { EventBus } from '../messaging/event-bus.js';
import type { JobQueue } from '../messaging/job-queue.js';
import type { Auth } from '../rpc/auth.js';
import type { ResourceDirectory } from '../rpc/resources.js';
import type { BlobStore } from '../storage/blob/blob-store.js';
import type { MetadataStore } from '../storage/metadata/metadata-store.js';
import type { Clock } from './clock.js';
import type { Logger } from './logger.js';

/**
 * The root services every plugin can resolve. Tokens (strings), not classes,
 * cross package lines, so two copies of a package still agree on them.
 */
export const Tokens = {
  Config: 'wanllmdb.Config' as InjectionToken<WanllmdbConfig>,
  Logger: 'wanllmdb.Logger' as InjectionToken<Logger>,
  Clock: 'wanllmdb.Clock' as InjectionToken<Clock>,
  MetadataStore: 'wanllmdb.MetadataStore' as InjectionToken<MetadataStore>,
  BlobStore: 'wanllmdb.BlobStore' as InjectionToken<BlobStore>,
  EventBus: 'wanllmdb.EventBus' as InjectionToken<EventBus>,
  JobQueue: 'wanllmdb.JobQueue' as InjectionToken<JobQueue>,
  /** Replace by `r.provide(Tokens.Auth, …)` in register(); LocalAuth when no plugin does. */
  Auth: 'wanllmdb.Auth' as InjectionToken<Auth>,
  /** Available from register() on: define the resource types a plugin owns. */
  Resources: 'wanllmdb.Resources' as InjectionToken<ResourceDirectory>,
} as const;
