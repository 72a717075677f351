import { randomUUID } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { basename, isAbsolute, relative, resolve } from 'node:path';
import type { artifacts } from '@wanllmdb/plugin-artifacts';
import type { JsonObject, JsonValue, tracking } from '@wanllmdb/proto';
import { captureConsole, rawWrite, type CapturedLine } from './console-capture.js';
import { sdkError } from './errors.js';
import { BYTES_PER_POINT, MetricBuffer, type LogOptions, type MetricData } from './metric-buffer.js';
import { resolveOptions, type InitOptions, type ResolvedOptions } from './options.js';
import type { Mode } from './protocol.js';
import { gitInfo, runEnvironment } from './run-metadata.js';
import { Sink } from './sink.js';
import type { Artifact } from './artifacts/artifact.js';
import type { ArtifactClient } from './artifacts/artifact-client.js';
import { SystemSampler } from './system-metrics.js';

export type RunState = 'finished' | 'crashed' | 'killed';

export interface FinishOptions {
  /** The process's exit code (default: process.exitCode, else 0). */
  exitCode?: number;
  /** Default: finished for exit code 0, crashed otherwise. */
  state?: RunState;
  /** Summary values to set as the run ends. */
  summary?: JsonObject;
}

/** Console lines shipped per AppendLogs call at most. */
const LOG_LINES_PER_CALL = 1_000;

/** Makes a promise that rejects for whoever awaits it, but never counts as an unhandled rejection. */
function handled<T>(p: Promise<T>, warn: (e: unknown) => void): Promise<T> {
  p.catch(warn);
  return p;
}

/** Plain JSON of `value` (throws for cycles and BigInts). */
function toJson(value: unknown): JsonValue {
  return JSON.parse(JSON.stringify(value ?? null)) as JsonValue;
}

export class RunConfig {
  constructor(private readonly run: Run) {}

  /** Deep-merges keys into the run's config (UpdateConfig). Resolves when stored. */
  update(values: JsonObject): Promise<void> {
    return this.run._call('updateConfig', () => ({ id: this.run.id, config: toJson(values), replace: false }), 'config.update');
  }
}

export class RunSummary {
  constructor(private readonly run: Run) {}

  /** Sets one summary value (null returns the key to its automatic, last-logged value). */
  set(key: string, value: JsonValue): Promise<void> {
    return this.update({ [key]: value });
  }

  /** Sets several summary values (UpdateSummary). Resolves when stored. */
  update(values: JsonObject): Promise<void> {
    return this.run._call('updateSummary', () => ({ id: this.run.id, summary: toJson(values) }), 'summary.update');
  }
}

/**
 * One tracked run. `log()` is synchronous and cheap (columnar buffers, a
 * worker thread does the I/O); everything else returns a promise that
 * resolves once the store has it.
 */
export class Run {
  readonly config = new RunConfig(this);
  readonly summary = new RunSummary(this);
  /** The run as the store last described it. */
  info: tracking.v1.Run;
  private readonly buffer: MetricBuffer;
  private readonly timers: NodeJS.Timeout[] = [];
  private capture?: { end(): void; restore(): void };
  private logLines: tracking.v1.LogLine[] = [];
  private logBytes = 0;
  private logWarned = false;
  private finishing?: Promise<void>;
  private closed = false;
  private warnedClosed = false;
  private readonly startedAt = Date.now();
  private artifactStore?: Promise<{ client: ArtifactClient; close(): Promise<void> }>;

  /** @internal use init() */
  constructor(
    private readonly sink: Sink,
    info: tracking.v1.Run,
    private readonly opts: ResolvedOptions,
    private readonly warn: (message: string) => void,
    startStep: number,
  ) {
    this.info = info;
    this.buffer = new MetricBuffer({ chunkPoints: opts.chunkPoints, ship: (c) => sink.send(c), reuse: () => sink.takeColumns(), warn, startStep });
    const flush = setInterval(() => {
      this.buffer.shipPartial();
      this.shipLogs();
    }, opts.flushIntervalMs);
    flush.unref();
    this.timers.push(flush);
    if (opts.systemMetricsMs > 0) this.startSystemMetrics(opts.systemMetricsMs);
    if (opts.captureConsole) this.capture = acquireConsole(this);
    if (opts.handleExit) Lifecycle.add(this);
    process.on('exit', this.closeAtExit);
  }

  /**
   * Whatever else happens (handleExit off, finish() not awaited), the store is
   * closed before the exiting process tears the worker down: a native driver
   * still working in a dying worker aborts the process.
   */
  private readonly closeAtExit = () => {
    process.off('exit', this.closeAtExit);
    this.sink.stopSync(this.opts.exitTimeoutMs);
  };

  get id(): string {
    return this.info.id;
  }
  get name(): string {
    return this.info.name;
  }
  /** The project's id as the store knows it (embedded/remote), or the name given (offline). */
  get projectId(): string {
    return this.info.projectId;
  }
  get mode(): Mode {
    return this.opts.mode;
  }
  /** Offline mode: the spool folder to pass to `wanllmdb sync`. */
  get dir(): string | undefined {
    return this.opts.spoolDir;
  }
  /** The current step (where the next log() without a step goes). */
  get step(): number {
    return this.buffer.step;
  }
  /** Whether finish() has been called (or the run was ended by a signal, a crash or process exit). */
  get finished(): boolean {
    return this.closed;
  }
  /** Points accepted by log() so far. */
  get points(): number {
    return this.buffer.points;
  }

  /**
   * Logs metrics: `run.log({ loss: 0.3, acc: 0.9 })` or `run.log({ loss }, { step })`.
   * Numbers (NaN, ±Infinity included), booleans (0/1) and nested objects
   * ("a/b" keys) are accepted; anything else is skipped with a warning.
   * Never waits for I/O — unless more than `maxBufferBytes` of metrics are
   * not yet stored, then it waits (bounded memory) until the sink catches up.
   */
  log(data: MetricData, opts?: LogOptions): void {
    if (this.closed) {
      if (!this.warnedClosed) {
        this.warnedClosed = true;
        this.warn(`wanllmdb: run ${this.id} has finished; run.log() calls after finish() are ignored. Start a new run with init().`);
      }
      return;
    }
    this.buffer.log(data, opts);
  }

  /**
   * Resolves once every point logged before the call (and every console line)
   * is durably stored. Rejects when some of it was given up — a batch the
   * store refuses, or a rate limit that outlasted `rateLimitWaitMs` — saying
   * how much (each loss is reported once, by the first flush after it).
   */
  async flush(): Promise<void> {
    if (this.closed) return;
    this.buffer.shipPartial();
    this.shipLogs();
    await this.sink.flush();
  }

  /** Uploads a file to the run (streamed). `name` defaults to the path relative to the working directory. */
  async save(path: string, opts: { name?: string } = {}): Promise<tracking.v1.RunFile> {
    const source = resolve(path);
    const st = await stat(source).catch(() => undefined);
    if (!st?.isFile()) throw await sdkError('VALIDATION', `run.save(): ${path} is not a file. Pass the path of a file to upload.`, [{ field: 'path', message: 'not a file' }]);
    const rel = relative(process.cwd(), source);
    const name = opts.name ?? (rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel.split('\\').join('/') : basename(source));
    if (this.closed) throw await this.closedError();
    const res = await this.sink.call<tracking.v1.RunFileResponse>('uploadFile', { runId: this.id, path: name, source });
    return res.data!;
  }

  /** @internal The run's artifact client, opened on first use on a connection of its own. */
  async _artifacts(): Promise<ArtifactClient> {
    if (this.closed) throw await this.closedError();
    this.artifactStore ??= import('./artifacts/open.js').then(({ openArtifactClient }) => openArtifactClient(this.opts));
    return this.artifactStore.then((s) => s.client);
  }

  /**
   * Stores a new version of an artifact as this run's output (the lineage
   * records it): only the bodies the project does not hold are sent, and a
   * version equal to the latest makes none. Resolves to the version.
   */
  async logArtifact(artifact: Artifact, opts: { aliases?: string[] } = {}): Promise<artifacts.v1.Version> {
    if (this.closed) throw await this.closedError();
    const client = await this._artifacts();
    return (await client.log(this.info.projectId, artifact, { aliases: opts.aliases, runId: this.id })).version;
  }

  /**
   * An artifact version this run uses as input: `name`, `name:alias`,
   * `name:v3` or `project/name:alias` (default: the run's project, "latest").
   * Nothing is fetched until asked; the use is recorded in the lineage then.
   */
  useArtifact(ref: string): UsedArtifact {
    return new UsedArtifact(this, ref);
  }

  /**
   * Ends the run: ships what is buffered, waits until it is stored, records
   * the exit code and state (FinishRun), and stops the worker. Safe to call
   * twice. If something logged was given up (see flush()), the run still
   * ends and finish() then rejects saying what was lost.
   */
  finish(opts: FinishOptions = {}): Promise<void> {
    this.finishing ??= this.doFinish(opts);
    return this.finishing;
  }

  private async doFinish(opts: FinishOptions): Promise<void> {
    const exitCode = opts.exitCode ?? (typeof process.exitCode === 'number' ? process.exitCode : 0);
    this.stopProducers();
    this.buffer.shipPartial();
    this.shipLogs();
    this.closed = true;
    Lifecycle.remove(this);
    try {
      let summary: JsonObject | undefined;
      try {
        if (opts.summary) summary = toJson(opts.summary) as JsonObject;
      } catch (e) {
        this.warn(`wanllmdb: finish(): the summary is not JSON (${(e as Error).message}); the run ends without it.`);
      }
      // What could not be stored is reported after the run's end is recorded: the end stands either way.
      const unstored = this.sink.flush().then(
        () => undefined,
        (e: unknown) => e,
      );
      const res = await this.sink.call<tracking.v1.RunResponse>('finishRun', { id: this.id, exitCode, state: opts.state ?? '', summary });
      if (res.data) this.info = res.data;
      const lost = await unstored;
      if (lost) throw lost;
    } finally {
      await this.sink.stop();
      await this.artifactStore?.then((a) => a.close(), () => undefined);
      process.off('exit', this.closeAtExit);
    }
  }

  /** @internal Synchronous end for exit paths: blocks (bounded) until the store has everything and the end state. */
  _finishSync(exitCode: number, state: RunState, error?: unknown): void {
    if (this.closed) return;
    this.stopProducers();
    this.closed = true;
    Lifecycle.remove(this);
    if (error !== undefined) {
      const text = error instanceof Error ? (error.stack ?? `${error.name}: ${error.message}`) : `Uncaught ${String(error)}`;
      for (const line of text.split('\n')) this.addLogLine({ time: Date.now(), stream: 'stderr', line });
    }
    // Ship without waiting for room: the process is ending, the wait below is bounded instead.
    this.sink.exiting = true;
    this.buffer.shipPartial();
    this.shipLogs();
    const deadline = Date.now() + this.opts.exitTimeoutMs;
    const ok = this.sink.callSync('finishRun', { id: this.id, exitCode, state }, this.opts.exitTimeoutMs);
    this.sink.stopSync(Math.max(1_000, deadline - Date.now()));
    process.off('exit', this.closeAtExit);
    if (!ok) {
      rawWrite.stderr(
        `wanllmdb: could not store the end of run ${this.id} (${state}, exit code ${exitCode}) within ${this.opts.exitTimeoutMs} ms; ` +
          'points acknowledged before are safe, later ones may be lost.\n',
      );
    }
  }

  /** @internal */
  _call(method: 'updateConfig' | 'updateSummary', request: () => unknown, what: string): Promise<void> {
    const p = (async () => {
      if (this.closed) throw await this.closedError();
      let req: unknown;
      try {
        req = request();
      } catch (e) {
        throw await sdkError('VALIDATION', `run.${what}(): the values are not JSON (${(e as Error).message}). Pass plain numbers, strings, booleans, arrays and objects.`);
      }
      await this.sink.call(method, req);
    })();
    return handled(p, (e) => this.warn(`wanllmdb: run.${what}() failed: ${(e as Error).message}`));
  }

  private async closedError() {
    return sdkError('KERNEL_STATE', `Run ${this.id} has finished; it takes no more calls. Start a new run with init().`);
  }

  /** @internal a captured console line */
  _consoleLine(l: CapturedLine): void {
    if (this.closed) return;
    this.addLogLine(l);
    if (this.logLines.length >= LOG_LINES_PER_CALL) this.shipLogs();
  }

  private addLogLine(l: CapturedLine): void {
    this.logLines.push({ seq: 0, time: l.time, stream: l.stream, line: l.line });
    this.logBytes += l.line.length * 2 + 64;
  }

  private shipLogs(): void {
    if (this.logLines.length === 0) return;
    const lines = this.logLines;
    const bytes = this.logBytes;
    this.logLines = [];
    this.logBytes = 0;
    // The batch id makes a retried (or, offline, re-synced) call store its lines once.
    const request: tracking.v1.AppendLogsRequest = { runId: this.id, lines, batchId: randomUUID() };
    this.sink.call('appendLogs', request, bytes).catch((e: unknown) => {
      if (this.logWarned) return;
      this.logWarned = true;
      rawWrite.stderr(`wanllmdb: console lines of run ${this.id} could not be stored: ${(e as Error).message}\n`);
    });
  }

  private startSystemMetrics(intervalMs: number): void {
    const sampler = new SystemSampler();
    let busy = false;
    const timer = setInterval(() => {
      if (busy || this.closed) return;
      busy = true;
      sampler
        .sample()
        .then((sample) => {
          if (this.closed) return;
          const now = Date.now();
          const step = Math.round(now - this.startedAt) / 1000;
          for (const [key, value] of sample) this.buffer.logAt(key, step, value, now);
        })
        .catch(() => undefined)
        .finally(() => (busy = false));
    }, intervalMs);
    timer.unref();
    this.timers.push(timer);
  }

  private stopProducers(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers.length = 0;
    if (this.capture) {
      this.capture.end();
      this.capture.restore();
      releaseConsole(this);
      this.capture = undefined;
    }
  }
}

/** One run at a time captures the console (a second concurrent run does not). */
let consoleOwner: Run | undefined;
function acquireConsole(run: Run): { end(): void; restore(): void } | undefined {
  if (consoleOwner) return undefined;
  consoleOwner = run;
  return captureConsole((l) => run._consoleLine(l));
}
function releaseConsole(run: Run): void {
  if (consoleOwner === run) consoleOwner = undefined;
}

/**
 * Process-wide hooks, installed while runs are active:
 * - SIGINT/SIGTERM (when nothing else listens): runs end `killed` with exit
 *   code 128+signal, then the signal is raised again so the process ends as it would have;
 * - an uncaught exception or unhandled rejection that will end the process:
 *   runs end `crashed` with exit code 1 (Node then prints the error and exits);
 * - `beforeExit` (the program simply ended): runs finish with process.exitCode;
 * - `exit` (process.exit()): runs end with that code, synchronously.
 */
const Lifecycle = {
  runs: new Set<Run>(),
  installed: false,

  add(run: Run): void {
    this.runs.add(run);
    if (!this.installed) {
      this.installed = true;
      for (const [event, fn] of processHooks()) process.on(event, fn);
    }
  },

  remove(run: Run): void {
    this.runs.delete(run);
    if (this.runs.size === 0 && this.installed) {
      this.installed = false;
      for (const [event, fn] of processHooks()) process.off(event, fn);
    }
  },
};

/** The process events every open run listens to while one is open: signals, a crash, the end of the event loop, exit. */
function processHooks(): [string, (...args: any[]) => void][] {
  return [
    ['SIGINT', onSignal],
    ['SIGTERM', onSignal],
    ['uncaughtExceptionMonitor', onCrash],
    ['beforeExit', onBeforeExit],
    ['exit', onExit],
  ];
}

function onSignal(signal: NodeJS.Signals): void {
  // Someone else handles this signal: the program decides whether to end; the run ends with the process.
  if (process.listeners(signal).some((l) => l !== onSignal)) return;
  const code = 128 + (osConstants.signals[signal] ?? 0);
  for (const run of [...Lifecycle.runs]) run._finishSync(code, 'killed');
  process.off(signal, onSignal);
  process.kill(process.pid, signal);
}

function onCrash(error: unknown, origin: string): void {
  // With an 'uncaughtException' listener the program goes on: not a crash.
  if (origin === 'uncaughtException' && process.listenerCount('uncaughtException') > 0) return;
  for (const run of [...Lifecycle.runs]) run._finishSync(1, 'crashed', error);
}

function onBeforeExit(): void {
  const exitCode = typeof process.exitCode === 'number' ? process.exitCode : 0;
  for (const run of [...Lifecycle.runs]) void run.finish({ exitCode }).catch(() => undefined);
}

function onExit(code: number): void {
  for (const run of [...Lifecycle.runs]) run._finishSync(code, code === 0 ? 'finished' : 'crashed');
}

const defaultWarn = (message: string) => {
  rawWrite.stderr(`${message}\n`);
};

/** Resumed runs continue after their last logged step (system metrics aside). */
function nextStep(stats: Partial<tracking.v1.MetricKeyStats>[]): number {
  let last = -Infinity;
  for (const s of stats) if (s.key && !s.key.startsWith('system/') && typeof s.lastStep === 'number' && s.lastStep > last) last = s.lastStep;
  return Number.isFinite(last) ? Math.floor(last) + 1 : 0;
}

/**
 * Starts (or resumes) a run. Resolves once the store has created it.
 *
 *   const run = await init({ project: 'mnist', config: { lr: 1e-3 } });
 *   run.log({ loss });
 *   await run.finish();
 */
export async function init(options: InitOptions = {}): Promise<Run> {
  const opts = await resolveOptions(options);
  const warn = options.onWarning ?? defaultWarn;
  const sink = new Sink({
    config: {
      mode: opts.mode,
      dataDir: opts.dataDir,
      address: opts.address,
      apiKey: opts.apiKey,
      spoolDir: opts.spoolDir,
      connectTimeoutMs: opts.timeoutMs,
      rateLimitWaitMs: opts.rateLimitWaitMs,
      heartbeatMs: opts.heartbeatMs,
      streamBytes: Math.max(8 * 2 ** 20, opts.chunkPoints * BYTES_PER_POINT),
      chunkPoints: opts.chunkPoints,
      logLevel: 'warn',
      delayMs: options._sinkDelayMs,
    },
    maxBufferBytes: opts.maxBufferBytes,
    warn,
  });
  try {
    const [git] = await Promise.all([opts.git ? gitInfo() : undefined, sink.ready()]);
    let project = opts.project;
    if (opts.resume !== 'never' && !opts.projectGiven) {
      // Resuming without naming the project: the run's own project.
      const existing = await sink.call<tracking.v1.RunResponse>('getRun', { id: opts.id }).catch(() => undefined);
      if (existing?.data?.projectId) project = existing.data.projectId;
    }
    const request: tracking.v1.CreateRunRequest = {
      projectId: project,
      id: opts.id,
      name: options.name ?? '',
      group: options.group ?? '',
      jobType: options.jobType ?? '',
      tags: options.tags ?? [],
      notes: options.notes ?? '',
      config: options.config ? (toJson(options.config) as JsonObject) : {},
      git,
      environment: runEnvironment(),
      resume: opts.resume,
    };
    const created = await sink.call<tracking.v1.RunResponse>('createRun', request);
    let startStep = 0;
    if (opts.resume !== 'never') {
      const keys = await sink.call<tracking.v1.ListMetricKeysResponse>('listMetricKeys', { runId: opts.id });
      startStep = nextStep(keys.data ?? []);
    }
    return new Run(sink, created.data!, opts, warn, startStep);
  } catch (err) {
    await sink.stop().catch(() => undefined);
    throw err;
  }
}

/** An artifact version a run uses (`run.useArtifact(ref)`): resolved, and its use recorded, on first need. */
export class UsedArtifact {
  private resolved?: Promise<{ artifactId: string; name: string; version: artifacts.v1.Version }>;

  constructor(
    private readonly run: Run,
    readonly ref: string,
  ) {}

  private resolve() {
    return (this.resolved ??= (async () => {
      const { parseArtifactRef } = await import('./artifacts/artifact-client.js');
      let parsed: ReturnType<typeof parseArtifactRef>;
      try {
        parsed = parseArtifactRef(this.ref);
      } catch (e) {
        throw await sdkError('VALIDATION', `run.useArtifact(): ${(e as Error).message}.`, [{ field: 'ref', message: 'not an artifact reference' }]);
      }
      const client = await this.run._artifacts();
      const found = await client.find(parsed.project ?? this.run.info.projectId, parsed.name);
      if (!found) throw await sdkError('NOT_FOUND', `run.useArtifact(): there is no artifact "${parsed.name}" in project ${parsed.project ?? this.run.info.projectId}. Log one first with run.logArtifact().`, [{ field: 'ref', message: 'no such artifact' }]);
      const version = await client.use(found.id, parsed.version, this.run.id);
      return { artifactId: found.id, name: found.name, version };
    })());
  }

  /** The version used (the reference resolved now: a later move of its alias does not change it). */
  async version(): Promise<artifacts.v1.Version> {
    return (await this.resolve()).version;
  }

  /** Downloads the version's files into `dir` (default ./artifacts/<name>:<version>), verified, through the cache. Resolves to the folder. */
  async download(dir?: string): Promise<string> {
    const { artifactId, name, version } = await this.resolve();
    const client = await this.run._artifacts();
    return client.download(artifactId, version, dir ?? resolve('artifacts', `${name}:${version.version}`));
  }
}
