import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import * as grpc from '@grpc/grpc-js';
import { PROTO_DIR } from '@wanllmdb/proto';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import protobuf from 'protobufjs';
import { Errors, type WldbError } from '../../errors.js';
import type { Logger } from '../logger.js';
import type { PluginManifest } from './manifest.js';
import { parseHandshake, PROTOCOL } from './handshake.js';
import type { PluginHost, PluginProcessStatus } from './plugin-host.js';

/** The folder of the protocol's own .proto (wanllmdb/plugin/v1/controller.proto). */
export const PLUGIN_PROTOCOL_PROTO_DIR = join(PROTO_DIR, 'plugin-protocol');
/** The include root of grpc.health.v1's health.proto (`health/v1/health.proto`). */
const HEALTH_PROTO_DIR = dirname(dirname(dirname(healthProtoPath)));

/** Only these of the server's environment reach a plugin program (the server's own secrets do not). */
const PASSED_ENV = ['WANLLMDB_LOG_LEVEL', 'PATH', 'HOME', 'USER', 'LANG', 'LC_ALL', 'LC_CTYPE', 'TZ', 'TMPDIR', 'VIRTUAL_ENV', 'PYTHONPATH', 'PYTHONHOME', 'LD_LIBRARY_PATH', 'SYSTEMROOT', 'CUDA_VISIBLE_DEVICES'];

const protocolRoot = (() => {
  const root = new protobuf.Root();
  root.loadSync([healthProtoPath, join(PLUGIN_PROTOCOL_PROTO_DIR, 'wanllmdb/plugin/v1/controller.proto')], { keepCase: false });
  return root;
})();
const HealthCheckRequest = protocolRoot.lookupType('grpc.health.v1.HealthCheckRequest');
const HealthCheckResponse = protocolRoot.lookupType('grpc.health.v1.HealthCheckResponse');
const ShutdownRequest = protocolRoot.lookupType('wanllmdb.plugin.v1.ShutdownRequest');
const SERVING = 1;

/** Back-off between restarts: 0.5 s, doubling, at most 30 s; back to 0.5 s once a program has served for a minute. */
const BACKOFF = { firstMs: 500, maxMs: 30_000, stableMs: 60_000 };
const HEALTH_MISSES = 3;
/** How long a call waits for a restarting program before it fails with WLDB_ERR_PLUGIN_UNAVAILABLE. */
const CALL_WAIT_MS = 10_000;
const SHUTDOWN_GRACE_MS = 5_000;

/**
 * One out-of-process plugin's program: starts it, reads its handshake, waits
 * for it to serve, watches it (exit and health), restarts it with back-off,
 * and stops it (Shutdown, then a kill). Calls reach it through `client()`.
 */
export class PluginProcess {
  private child?: ChildProcess;
  private grpcClient?: grpc.Client;
  private credential?: string;
  private state: PluginProcessStatus['state'] = 'stopped';
  private restarts = 0;
  private lastExit = '';
  private failuresInRow = 0;
  private healthTimer?: NodeJS.Timeout;
  private restartTimer?: NodeJS.Timeout;
  private healthMisses = 0;
  private killedUnhealthy = false;
  private servingSince = 0;
  private generation = 0;
  /** Settles when the program serves again (calls wait on it while it restarts). */
  private serving!: { promise: Promise<void>; resolve(): void };
  private servingSettled = false;
  private readonly stderrTail: string[] = [];

  constructor(
    private readonly manifest: PluginManifest,
    private readonly settingsEnv: Record<string, string>,
    private readonly host: PluginHost,
    private readonly logger: Logger,
    private readonly env: NodeJS.ProcessEnv,
  ) {
    this.resetServing();
    host.track(manifest.id, () => this.status());
  }

  status(): PluginProcessStatus {
    return { plugin: this.manifest.id, state: this.state, pid: this.child?.pid ?? 0, restarts: this.restarts, lastExit: this.lastExit };
  }

  /** Starts the program; fails (and the kernel's start with it) when it does not serve within the manifest's start timeout. */
  async start(): Promise<void> {
    this.state = 'starting';
    try {
      await this.launch();
    } catch (e) {
      this.state = 'stopped';
      throw e;
    }
  }

  /**
   * The gRPC client of the running program. While it restarts, a call waits
   * for it (at most CALL_WAIT_MS); when it is stopping or does not come back
   * in time, WLDB_ERR_PLUGIN_UNAVAILABLE.
   */
  async client(signal?: AbortSignal): Promise<grpc.Client> {
    if (this.state === 'serving' && this.grpcClient) return this.grpcClient;
    if (this.state === 'starting' || this.state === 'restarting') {
      let timer: NodeJS.Timeout | undefined;
      const gaveUp = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), CALL_WAIT_MS)));
      const aborted = new Promise<'timeout'>((r) => signal?.addEventListener('abort', () => r('timeout'), { once: true }));
      const outcome = await Promise.race([this.serving.promise.then(() => 'ok' as const), gaveUp, aborted]);
      clearTimeout(timer);
      // The state changed while this call waited (the type checker still holds the narrowed one).
      if (outcome === 'ok' && (this.state as PluginProcessStatus['state']) === 'serving' && this.grpcClient) return this.grpcClient;
    }
    throw this.unavailable();
  }

  unavailable(): WldbError {
    const why = this.state === 'stopping' || this.state === 'stopped' ? 'is stopped' : `is restarting (${this.lastExit || 'it ended'})`;
    return Errors.PLUGIN_UNAVAILABLE(`Plugin "${this.manifest.id}" ${why}. Retry in a few seconds; the server log says why it ended.`);
  }

  /** Stops the program: Shutdown RPC, a grace period, then SIGKILL. */
  async stop(): Promise<void> {
    this.state = 'stopping';
    clearTimeout(this.restartTimer);
    clearInterval(this.healthTimer);
    this.serving.resolve(); // calls waiting for a restart give up now
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((r) => child.once('exit', (code, signal) => r(void (this.lastExit = signal ? `signal ${signal}` : `exit ${code}`))));
      await this.unary('/wanllmdb.plugin.v1.PluginController/Shutdown', ShutdownRequest.encode({ graceMs: SHUTDOWN_GRACE_MS }).finish(), 2_000).catch((e: Error) =>
        this.logger.warn({ err: e.message }, 'the plugin program did not take the Shutdown call; it will be killed after the grace period'),
      );
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), SHUTDOWN_GRACE_MS)));
      if ((await Promise.race([exited, late])) === 'late') {
        this.logger.warn({ graceMs: SHUTDOWN_GRACE_MS }, 'the plugin program did not exit after Shutdown; killing it');
        child.kill('SIGKILL');
        await exited;
      }
      clearTimeout(timer);
    }
    this.cleanup();
    this.child = undefined;
    this.state = 'stopped';
  }

  private async launch(): Promise<void> {
    const generation = ++this.generation;
    const m = this.manifest;
    this.credential = this.host.issue(m.id, m.permissions);
    const socket = join(this.host.socketDir(), `${m.id}-${generation}.sock`);
    const env: NodeJS.ProcessEnv = {};
    for (const k of PASSED_ENV) if (this.env[k] !== undefined) env[k] = this.env[k];
    Object.assign(env, this.settingsEnv, {
      [PROTOCOL.cookieEnv]: PROTOCOL.cookie,
      WANLLMDB_PLUGIN_PROTOCOL_VERSIONS: String(PROTOCOL.appVersion),
      WANLLMDB_PLUGIN_ID: m.id,
      WANLLMDB_PLUGIN_SOCKET: socket,
      WANLLMDB_PROTO_PATH: [m.proto, PROTO_DIR, PLUGIN_PROTOCOL_PROTO_DIR, HEALTH_PROTO_DIR].join(':'),
      WANLLMDB_KERNEL_ADDRESS: await this.host.kernelAddress(),
      WANLLMDB_PLUGIN_TOKEN: this.credential,
    });
    // stdin stays open as a pipe: when the server dies, even by kill -9, the program reads EOF and ends itself.
    const child = spawn(m.command[0]!, m.command.slice(1), { cwd: m.dir, env, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    this.stderrTail.length = 0;
    const spawnFailed = new Promise<never>((_, reject) => child.once('error', reject));
    createInterface({ input: child.stderr! }).on('line', (line) => this.logLine(line));
    let onFirstLine!: (line: string) => void;
    const firstLine = new Promise<string>((resolve) => (onFirstLine = resolve));
    let sawFirst = false;
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (sawFirst) return this.logger.info({ stream: 'stdout' }, line);
      sawFirst = true;
      onFirstLine(line);
    });
    const exitedEarly = new Promise<never>((_, reject) =>
      child.once('exit', (code, signal) => reject(Errors.PLUGIN_HANDSHAKE(`The plugin program ${JSON.stringify(m.command.join(' '))} ended (${signal ? `signal ${signal}` : `exit ${code}`}) before it served. Its last output: ${this.stderrTail.join(' | ').slice(-1500) || '(none)'}`))),
    );
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(Errors.PLUGIN_HANDSHAKE(`The plugin program did not print its handshake line and serve within ${m.startTimeoutMs} ms (startTimeoutMs in ${m.dir}/wanllmdb-plugin.json).`)), m.startTimeoutMs);
    });
    try {
      await Promise.race([
        (async () => {
          const { address } = parseHandshake(await firstLine);
          // Only the socket in the kernel's 0700 folder: elsewhere other local users could reach it and forge the caller metadata.
          if (address !== `unix:${socket}`) throw Errors.PLUGIN_HANDSHAKE(`The plugin program serves on ${address.slice('unix:'.length)}; it must listen on WANLLMDB_PLUGIN_SOCKET (${socket}).`);
          this.grpcClient = new grpc.Client(address, grpc.credentials.createInsecure());
          await this.waitServing(generation);
        })(),
        spawnFailed.catch((e: Error) => {
          throw Errors.PLUGIN_HANDSHAKE(`Cannot start the plugin program ${JSON.stringify(m.command[0])}: ${e.message}. Check "command" in ${m.dir}/wanllmdb-plugin.json (a program on PATH or relative to the plugin folder).`);
        }),
        exitedEarly,
        timedOut,
      ]);
    } catch (e) {
      child.kill('SIGKILL');
      this.cleanup();
      throw e;
    } finally {
      clearTimeout(timer);
      exitedEarly.catch(() => undefined);
      spawnFailed.catch(() => undefined);
    }
    if (this.state === 'stopping' || this.state === 'stopped') {
      // stop() came while this program was starting: it must not come back to life.
      child.kill('SIGKILL');
      this.cleanup();
      throw this.unavailable();
    }
    child.once('exit', (code, signal) => this.onExit(generation, signal ? `signal ${signal}` : `exit ${code}`));
    this.state = 'serving';
    this.servingSince = Date.now();
    this.healthMisses = 0;
    this.serving.resolve();
    this.healthTimer = setInterval(() => void this.checkHealth(generation), m.healthIntervalMs);
    this.healthTimer.unref();
    this.logger.info({ pid: child.pid, restarts: this.restarts }, 'plugin program serving');
  }

  /** Health.Check until SERVING (a program may print its handshake a moment before it is ready). */
  private async waitServing(generation: number): Promise<void> {
    // Ends with the launch: when it failed (cleanup dropped the client) or a newer one began, this loop stops.
    for (let delay = 20; generation === this.generation && this.grpcClient; delay = Math.min(delay * 2, 500)) {
      const status = await this.healthStatus(2_000).catch(() => -1);
      if (status === SERVING) return;
      await new Promise((r) => setTimeout(r, delay));
    }
    throw this.unavailable();
  }

  private async healthStatus(timeoutMs: number): Promise<number> {
    const bytes = await this.unary('/grpc.health.v1.Health/Check', HealthCheckRequest.encode({ service: '' }).finish(), timeoutMs);
    return (HealthCheckResponse.decode(bytes) as unknown as { status: number }).status;
  }

  private unary(path: string, request: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    const client = this.grpcClient;
    if (!client) return Promise.reject(new Error('no connection to the plugin program'));
    return new Promise((resolve, reject) => {
      client.makeUnaryRequest(
        path,
        (b: Uint8Array) => Buffer.from(b),
        (b: Buffer) => new Uint8Array(b),
        request,
        new grpc.Metadata(),
        { deadline: Date.now() + timeoutMs },
        (err, res) => (err ? reject(err) : resolve(res!)),
      );
    });
  }

  private async checkHealth(generation: number): Promise<void> {
    if (generation !== this.generation || this.state !== 'serving') return;
    const ok = (await this.healthStatus(Math.min(2_000, this.manifest.healthIntervalMs)).catch(() => -1)) === SERVING;
    if (generation !== this.generation || this.state !== 'serving') return;
    this.healthMisses = ok ? 0 : this.healthMisses + 1;
    if (this.healthMisses >= HEALTH_MISSES) {
      this.logger.error({ misses: this.healthMisses, pid: this.child?.pid }, 'the plugin program stopped answering health checks; killing it');
      this.killedUnhealthy = true;
      this.child?.kill('SIGKILL');
    }
  }

  private onExit(generation: number, how: string): void {
    if (generation !== this.generation || this.state === 'stopping' || this.state === 'stopped') return;
    this.lastExit = this.killedUnhealthy ? 'unhealthy' : how;
    this.killedUnhealthy = false;
    // Stable only if this very program served for a while; a restart that failed to start never is.
    const stable = this.servingSince > 0 && Date.now() - this.servingSince >= BACKOFF.stableMs;
    this.servingSince = 0;
    this.failuresInRow = stable ? 0 : this.failuresInRow + 1;
    const delay = Math.min(BACKOFF.firstMs * 2 ** Math.max(0, this.failuresInRow - 1), BACKOFF.maxMs);
    this.logger.error({ exit: this.lastExit, restartInMs: delay, lastOutput: this.stderrTail.slice(-5) }, 'the plugin program ended; restarting it');
    this.cleanup();
    if (this.servingSettled) this.resetServing(); // calls already waiting keep waiting for the same promise
    this.state = 'restarting';
    this.restartTimer = setTimeout(() => void this.restart(), delay);
    this.restartTimer.unref();
  }

  private async restart(): Promise<void> {
    if (this.state !== 'restarting') return;
    this.restarts++;
    try {
      await this.launch();
    } catch (e) {
      if (this.state !== 'restarting') return;
      const why = e instanceof Error ? e.message : String(e);
      this.logger.error({ err: why }, 'restarting the plugin program failed');
      this.onExit(this.generation, `failed to start (${why.slice(0, 200)})`);
    }
  }

  /** Forgets the running program: its client, credential, socket and health timer. */
  private cleanup(): void {
    clearInterval(this.healthTimer);
    this.grpcClient?.close();
    this.grpcClient = undefined;
    if (this.credential) this.host.revoke(this.credential);
    this.credential = undefined;
    this.child?.stdin?.destroy();
    rmSync(join(this.host.socketDir(), `${this.manifest.id}-${this.generation}.sock`), { force: true });
  }

  private resetServing(): void {
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    this.servingSettled = false;
    this.serving = {
      promise,
      resolve: () => {
        this.servingSettled = true;
        resolve();
      },
    };
  }

  /** A stderr line: a JSON log record is logged at its level with its fields; anything else at info. */
  private logLine(line: string): void {
    if (!line.trim()) return;
    this.stderrTail.push(line.slice(0, 500));
    if (this.stderrTail.length > 20) this.stderrTail.shift();
    let rec: Record<string, unknown> | undefined;
    try {
      const v = JSON.parse(line) as unknown;
      if (v && typeof v === 'object' && !Array.isArray(v)) rec = v as Record<string, unknown>;
    } catch {
      /* not JSON: logged as text */
    }
    if (!rec) return this.logger.info({ stream: 'stderr' }, line);
    // The kernel's own keys (time, level, the plugin binding) are not the program's to set.
    const { level, msg, time: _time, plugin: _plugin, pid: _pid, hostname: _hostname, ...fields } = rec;
    const lvl = level === 'debug' || level === 'warn' || level === 'error' ? level : 'info';
    this.logger[lvl](fields, typeof msg === 'string' ? msg : '');
  }
}
