import { randomUUID } from 'node:crypto';
import { join, resolve } from 'node:path';
import type { JsonObject } from '@wanllmdb/proto';
import { sdkError } from './errors.js';
import type { Mode } from './protocol.js';

export type ResumeMode = 'allow' | 'must' | 'never';

export interface InitOptions {
  /** Project name (created when unknown) or id. Default: WANLLMDB_PROJECT, else the resumed run's project, else "uncategorized". */
  project?: string;
  /** Display name; the server generates one when empty. */
  name?: string;
  group?: string;
  jobType?: string;
  tags?: string[];
  notes?: string;
  /** Hyper-parameters and settings (JSON values; nested objects are kept). */
  config?: JsonObject;
  /**
   * `embedded` (default): the local store in the data folder, no server.
   * `remote`: a server over gRPC (the default when a URL is given).
   * `offline`: a local write-ahead folder, uploaded later with `wanllmdb sync`.
   * Env: WANLLMDB_MODE.
   */
  mode?: Mode;
  /** Server for remote mode, `grpc://host:port`. Env: WANLLMDB_URL. */
  url?: string;
  /** Sent as `authorization: Bearer …` in remote mode. Env: WANLLMDB_API_KEY. */
  apiKey?: string;
  /**
   * embedded: the data folder (env WANLLMDB_DATA, default ./.wanllmdb — the one `wanllmdb serve` reads).
   * offline: this run's spool folder (default <data>/offline/<run-id>).
   */
  dir?: string;
  /** The run id (a UUID) to create or resume. Env: WANLLMDB_RUN_ID. Generated when absent. */
  id?: string;
  /** `never` (default: a new run), `allow` (resume `id` if it exists), `must` (fail unless it exists); `true` means `allow`. */
  resume?: ResumeMode | boolean;
  /** Sample CPU/memory/disk/network/GPU every `intervalMs` (default 10 s) as `system/…` keys; false to turn off. */
  systemMetrics?: boolean | { intervalMs: number };
  /** Capture stdout/stderr as the run's console log (default true). */
  captureConsole?: boolean;
  /** Record git commit/branch/remote/dirty (default true). */
  git?: boolean;
  /** Heartbeat interval (default 15 s; 0 turns it off). */
  heartbeatMs?: number;
  /** Points waiting less than this are shipped anyway (default 500 ms). */
  flushIntervalMs?: number;
  /** Points per chunk (default 131072: ~3.7 MB; fewer, larger batches cost the store far less per point). */
  chunkPoints?: number;
  /** Metrics not yet stored above which log() waits (default 16 MB). */
  maxBufferBytes?: number;
  /** How long init() keeps trying to reach the store (default 30 s). */
  timeoutMs?: number;
  /**
   * Remote mode: a server that refuses for a rate limit is asked again after
   * the wait it names, as often as it takes; but if it takes nothing of the
   * run's queue for this long (default 10 min), what waits is given up and
   * flush()/finish() reject with WLDB_ERR_RATE_LIMITED.
   */
  rateLimitWaitMs?: number;
  /** How long the exit paths (signal, crash, process.exit) wait to record the end of the run (default 20 s). */
  exitTimeoutMs?: number;
  /** Mark the run killed/crashed on signals and uncaught errors, finish it when the process ends (default true). */
  handleExit?: boolean;
  /** Print SDK warnings (default: to stderr). */
  onWarning?: (message: string) => void;
  /** @internal Tests and benchmarks: delay every metric batch by this many ms (a deliberately slow sink). */
  _sinkDelayMs?: number;
}

export interface ResolvedOptions {
  mode: Mode;
  project: string;
  /** The project was given (option or WANLLMDB_PROJECT), not defaulted. */
  projectGiven: boolean;
  id: string;
  resume: ResumeMode;
  dataDir?: string;
  spoolDir?: string;
  address?: string;
  apiKey?: string;
  systemMetricsMs: number;
  captureConsole: boolean;
  git: boolean;
  heartbeatMs: number;
  flushIntervalMs: number;
  chunkPoints: number;
  maxBufferBytes: number;
  timeoutMs: number;
  rateLimitWaitMs: number;
  exitTimeoutMs: number;
  handleExit: boolean;
}

const MODES: readonly Mode[] = ['embedded', 'remote', 'offline'];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

async function invalid(field: string, message: string): Promise<never> {
  throw await sdkError('CONFIG_INVALID', message, [{ field, message }]);
}

/** `grpc://host:port`, `host:port` or `host` → `host:port` (default port 50051). */
export async function parseUrl(url: string, field = 'url'): Promise<string> {
  const m = /^(?:([a-z][a-z0-9+.-]*):\/\/)?([^/?#]+?)(?::(\d+))?\/?$/i.exec(url.trim());
  const scheme = m?.[1]?.toLowerCase();
  if (!m || (scheme && scheme !== 'grpc')) {
    if (scheme === 'grpcs' || scheme === 'https') {
      return invalid(field, `${field} ${JSON.stringify(url)}: TLS (grpcs://) is not supported yet; use grpc://host:port behind a TLS-terminating proxy.`);
    }
    return invalid(field, `${field} ${JSON.stringify(url)} is not a server address; write grpc://host:port (e.g. grpc://127.0.0.1:50051).`);
  }
  const port = m[3] ? Number(m[3]) : 50051;
  if (port < 1 || port > 65535) return invalid(field, `${field} ${JSON.stringify(url)} has port ${port}; ports run from 1 to 65535.`);
  return `${m[2]}:${port}`;
}

const positive = (name: string, v: number | undefined, dflt: number, min = 0) =>
  v === undefined ? dflt : Number.isFinite(v) && v >= min ? v : invalid(name, `${name} must be a number ≥ ${min}, got ${String(v)}.`);

export async function resolveOptions(o: InitOptions, env: NodeJS.ProcessEnv = process.env): Promise<ResolvedOptions> {
  const url = o.url ?? (env.WANLLMDB_URL || undefined);
  const modeRaw = o.mode ?? (env.WANLLMDB_MODE || undefined) ?? (url ? 'remote' : 'embedded');
  if (!MODES.includes(modeRaw as Mode)) await invalid('mode', `mode ${JSON.stringify(modeRaw)} is not one of ${MODES.join(', ')} (option mode or WANLLMDB_MODE).`);
  const mode = modeRaw as Mode;

  const id = o.id ?? (env.WANLLMDB_RUN_ID || undefined) ?? randomUUID();
  if (!UUID.test(id)) await invalid('id', `Run id ${JSON.stringify(id)} is not a UUID; leave it out to get one, or pass one such as ${randomUUID()}.`);
  const resume: ResumeMode = o.resume === true ? 'allow' : o.resume === false || o.resume === undefined ? 'never' : o.resume;
  if (!['allow', 'must', 'never'].includes(resume)) await invalid('resume', `resume ${JSON.stringify(o.resume)} is not one of allow, must, never.`);
  if (resume === 'must' && !o.id && !env.WANLLMDB_RUN_ID) await invalid('id', 'resume "must" needs the id of the run to continue (option id or WANLLMDB_RUN_ID).');

  const project = (o.project ?? env.WANLLMDB_PROJECT ?? 'uncategorized').trim();
  if (!project) await invalid('project', 'project is empty; pass the name of a project (it is created when it does not exist).');
  if (o.tags !== undefined && (!Array.isArray(o.tags) || o.tags.some((t) => typeof t !== 'string'))) await invalid('tags', 'tags must be an array of strings.');
  if (o.config !== undefined && (o.config === null || typeof o.config !== 'object' || Array.isArray(o.config))) await invalid('config', 'config must be an object such as { lr: 0.001 }.');

  const system = o.systemMetrics ?? true;
  const systemMetricsMs = system === false ? 0 : system === true ? 10_000 : await positive('systemMetrics.intervalMs', system.intervalMs, 10_000, 100);
  const out: ResolvedOptions = {
    mode,
    project,
    projectGiven: o.project !== undefined || !!env.WANLLMDB_PROJECT,
    id: id.toLowerCase(),
    resume,
    systemMetricsMs,
    captureConsole: o.captureConsole ?? true,
    git: o.git ?? true,
    heartbeatMs: await positive('heartbeatMs', o.heartbeatMs, 15_000),
    flushIntervalMs: await positive('flushIntervalMs', o.flushIntervalMs, 500, 1),
    chunkPoints: Math.floor(await positive('chunkPoints', o.chunkPoints, 131_072, 1)),
    maxBufferBytes: await positive('maxBufferBytes', o.maxBufferBytes, 16 * 2 ** 20, 1),
    timeoutMs: await positive('timeoutMs', o.timeoutMs, 30_000),
    rateLimitWaitMs: await positive('rateLimitWaitMs', o.rateLimitWaitMs, 10 * 60_000),
    exitTimeoutMs: await positive('exitTimeoutMs', o.exitTimeoutMs, 20_000),
    handleExit: o.handleExit ?? true,
  };
  const dataRoot = () => resolve(env.WANLLMDB_DATA || '.wanllmdb');
  if (mode === 'remote') {
    if (!url) await invalid('url', "mode 'remote' needs a server: pass url: 'grpc://host:50051' or set WANLLMDB_URL.");
    out.address = await parseUrl(url!);
    out.apiKey = o.apiKey ?? (env.WANLLMDB_API_KEY || undefined);
  } else if (mode === 'offline') {
    out.spoolDir = resolve(o.dir ?? join(dataRoot(), 'offline', out.id));
  } else {
    out.dataDir = o.dir ? resolve(o.dir) : undefined;
  }
  return out;
}
