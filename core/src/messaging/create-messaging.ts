import type { NatsConnection } from 'nats';
import { Errors } from '../errors.js';
import type { EventBus } from './event-bus.js';
import type { JobQueue } from './job-queue.js';
import { ClusterEventBus, type IpcEndpoint } from './cluster-event-bus.js';
import { MemoryEventBus } from './memory-event-bus.js';
import { MemoryJobQueue } from './memory-job-queue.js';
import { normaliseSubjectPrefix } from './subjects.js';

/** The setting that chooses the EventBus and JobQueue adapters. */
export const BUS_SETTING = 'WANLLMDB_BUS';

/** Subject prefix when the URL has no `?prefix=`; it makes the job stream `WLDB_JOBS`. */
export const DEFAULT_SUBJECT_PREFIX = 'wldb.';

const NATS_DEFAULT_PORT = 4222;
/** Start-up fails fast rather than waiting for a server that is not there. */
const CONNECT_TIMEOUT_MS = 2_000;

const ACCEPTED_FORMS = '"memory" or "nats://host:port" (optionally "nats://user:pass@host:port?prefix=wldb.")';

export type BusConfig =
  | { kind: 'memory' }
  | { kind: 'nats'; hostPort: string; prefix: string; user?: string; pass?: string };

export interface MessagingOptions {
  /** Where failed handlers and dropped jobs are reported (default: console). */
  logger?: Pick<Console, 'warn' | 'error'>;
  /**
   * In one of several server processes on one data folder: the channel to
   * the primary, over which `memory` events reach the other processes.
   */
  ipc?: IpcEndpoint;
}

function settingInvalid(value: string, why: string) {
  return Errors.CONFIG_INVALID(
    `${BUS_SETTING}=${JSON.stringify(value)} is invalid: ${why}. Set it to ${ACCEPTED_FORMS}.`,
    [{ field: BUS_SETTING, message: why }],
  );
}

/** Parses a `WANLLMDB_BUS` value; CONFIG_INVALID naming the setting when it is malformed. */
export function parseBusSetting(value: string): BusConfig {
  const trimmed = value.trim();
  if (trimmed === 'memory') return { kind: 'memory' };
  let url: URL;
  try {
    url = new URL(trimmed);
  } catch {
    throw settingInvalid(value, 'it is neither "memory" nor a URL');
  }
  if (url.protocol !== 'nats:') throw settingInvalid(value, `the scheme "${url.protocol}" is not supported`);
  if (!url.hostname) throw settingInvalid(value, 'the URL has no host');
  if (url.pathname !== '' && url.pathname !== '/') throw settingInvalid(value, 'the URL must not have a path');
  for (const key of url.searchParams.keys()) {
    if (key !== 'prefix') throw settingInvalid(value, `the query parameter "${key}" is unknown (only "prefix" is accepted)`);
  }
  const prefix = normaliseSubjectPrefix(url.searchParams.get('prefix') ?? DEFAULT_SUBJECT_PREFIX, BUS_SETTING);
  const config: BusConfig = { kind: 'nats', hostPort: `${url.hostname}:${url.port || NATS_DEFAULT_PORT}`, prefix };
  if (url.username) config.user = decodeURIComponent(url.username);
  if (url.password) config.pass = decodeURIComponent(url.password);
  return config;
}

async function connectNats(config: Extract<BusConfig, { kind: 'nats' }>, name: string): Promise<NatsConnection> {
  // The NATS client (and the adapters below) load only when NATS is configured.
  const { connect } = await import('nats');
  try {
    return await connect({
      servers: config.hostPort,
      name,
      timeout: CONNECT_TIMEOUT_MS,
      // Once connected, ride out server restarts instead of failing the process.
      maxReconnectAttempts: -1,
      ...(config.user !== undefined && { user: config.user }),
      ...(config.pass !== undefined && { pass: config.pass }),
    });
  } catch (err) {
    throw Errors.BUS_UNAVAILABLE(
      `Could not connect to NATS at ${config.hostPort} (${err instanceof Error ? err.message : String(err)}). ` +
        `Start a NATS server with JetStream there (nats-server -js), fix ${BUS_SETTING}, or set ${BUS_SETTING}=memory to run in one process.`,
      [{ field: BUS_SETTING, message: `NATS at ${config.hostPort} is unreachable` }],
      err,
    );
  }
}

/** The EventBus chosen by a `WANLLMDB_BUS` value. */
export async function createEventBus(url: string, opts: MessagingOptions = {}): Promise<EventBus> {
  const config = parseBusSetting(url);
  if (config.kind === 'memory') return opts.ipc ? new ClusterEventBus(opts.ipc, opts) : new MemoryEventBus(opts);
  const nc = await connectNats(config, 'wanllmdb-events');
  const { NatsEventBus } = await import('./nats-event-bus.js');
  return new NatsEventBus(nc, { prefix: config.prefix, ownsConnection: true, ...opts });
}

/** The JobQueue chosen by a `WANLLMDB_BUS` value (with NATS, its JetStream stream is created if needed). */
export async function createJobQueue(url: string, opts: MessagingOptions = {}): Promise<JobQueue> {
  const config = parseBusSetting(url);
  if (config.kind === 'memory') return new MemoryJobQueue(opts);
  const nc = await connectNats(config, 'wanllmdb-jobs');
  try {
    const { JetStreamJobQueue } = await import('./jetstream-job-queue.js');
    return await JetStreamJobQueue.open(nc, { prefix: config.prefix, ownsConnection: true, ...opts });
  } catch (err) {
    await nc.close();
    if (Errors.CONFIG_INVALID.is(err)) throw err;
    throw Errors.BUS_UNAVAILABLE(
      `NATS at ${config.hostPort} does not offer JetStream (${err instanceof Error ? err.message : String(err)}). ` +
        `Start it with JetStream enabled (nats-server -js), or set ${BUS_SETTING}=memory to run in one process.`,
      [{ field: BUS_SETTING, message: `JetStream unavailable at ${config.hostPort}` }],
      err,
    );
  }
}
