import type { WanllmdbConfig } from '../config/config.js';
import { Errors } from '../errors.js';
import type { EventBus } from '../messaging/event-bus.js';
import type { JobQueue } from '../messaging/job-queue.js';
import type { InProcessRpc } from '../rpc/in-process.js';
import type { ResourceDirectory } from '../rpc/resources.js';
import type { BlobStore } from '../storage/blob/blob-store.js';
import type { MetadataStore } from '../storage/metadata/metadata-store.js';
import type { Clock } from './clock.js';
import type { PluginHost } from './external/plugin-host.js';
import type { Logger } from './logger.js';

/**
 * A typed reference to something a plugin can depend on: a root service of
 * the kernel (owner "core") or an API that one plugin provides to others
 * (owner: that plugin's id). A plugin lists the refs it needs in `deps`; the
 * kernel hands it the values in `init`, and starts every owner before the
 * plugins that depend on it. Refs are compared by id, so two copies of a
 * package still agree on them.
 */
export interface Ref<T> {
  readonly kind: 'wanllmdb.ref';
  /** `<owner>.<name>`, e.g. `core.db`, `projects.api`. */
  readonly id: string;
  /** "core", or the id of the plugin that provides the value. */
  readonly owner: string;
  /** @internal carries T for the type checker; never set. */
  readonly __type?: T;
}

const NAME = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;

/**
 * A ref to an API the plugin `plugin` provides (with `ctx.provide(ref, api)`
 * in its init). Export it from the providing package; dependents import it.
 */
export function createApiRef<T>(opts: { plugin: string; name?: string }): Ref<T> {
  const name = opts.name ?? 'api';
  if (!NAME.test(opts.plugin) || !NAME.test(name)) {
    throw Errors.PLUGIN_INVALID(`createApiRef needs a kebab-case plugin id and name, got ${JSON.stringify(opts)}. Example: createApiRef({ plugin: 'projects' }).`);
  }
  return Object.freeze({ kind: 'wanllmdb.ref' as const, id: `${opts.plugin}.${name}`, owner: opts.plugin });
}

function coreRef<T>(name: string): Ref<T> {
  return Object.freeze({ kind: 'wanllmdb.ref' as const, id: `core.${name}`, owner: 'core' });
}

/** The kernel's root services, as refs a plugin lists in `deps`. */
export const coreServices = Object.freeze({
  config: coreRef<WanllmdbConfig>('config'),
  /** The plugin's own logger (every line carries `plugin: <id>`). */
  logger: coreRef<Logger>('logger'),
  clock: coreRef<Clock>('clock'),
  /** The relational store: SQLite or PostgreSQL. */
  db: coreRef<MetadataStore>('db'),
  /** Content-addressed objects: a folder or S3. */
  blobs: coreRef<BlobStore>('blobs'),
  /** Events: in process, between server processes, or NATS. */
  events: coreRef<EventBus>('events'),
  /** Work queue: in process or NATS JetStream. */
  jobs: coreRef<JobQueue>('jobs'),
  /** Where resources sit (org, project): plugins define the types they own; authorisation resolves refs through it. */
  resources: coreRef<ResourceDirectory>('resources'),
  /** Calls to mounted services as a caller (authorised and audited like any call); `rpc.service` is the plugin's own principal. */
  rpc: coreRef<InProcessRpc>('rpc'),
  /** The kernel's side of out-of-process plugins: their socket back into the kernel, credentials, and their processes' status. */
  pluginHost: coreRef<PluginHost>('plugin-host'),
});

export type CoreServiceName = keyof typeof coreServices;

export function isRef(value: unknown): value is Ref<unknown> {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'wanllmdb.ref';
}
