import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import { createLogger, EventRelay, loadConfig, type IpcEndpoint, type Kernel, type Logger } from '@wanllmdb/core';
import { hostSharedRateLimits } from '@wanllmdb/plugin-auth';
import { announceSetupToken, serve, type ServeOptions } from './serve.js';

/** A worker that dies this soon after starting is restarted after a growing pause. */
const HEALTHY_AFTER_MS = 30_000;
const MAX_RESTART_DELAY_MS = 30_000;

interface ListeningMessage {
  wldb: 'listening';
  grpcPort: number;
  httpPort: number;
}
const isListening = (m: unknown): m is ListeningMessage => typeof m === 'object' && m !== null && (m as ListeningMessage).wldb === 'listening';

/** How many server processes `--workers` / WANLLMDB_WORKERS asks for (`auto`: one per core). */
export function workerCount(workers: number | 'auto'): number {
  return workers === 'auto' ? availableParallelism() : workers;
}

/**
 * `wanllmdb serve`: one process, or a primary and N node:cluster workers
 * sharing the ports (ADR 0011). The primary runs migrations and the first
 * start once, then forks the workers; each worker is a whole kernel on the
 * same data (SQLite in WAL mode takes several processes; with PostgreSQL and
 * NATS they are stateless replicas). The primary relays in-process events
 * between workers, holds the rate-limit counts they share, restarts one that dies, and on SIGTERM/SIGINT has every
 * worker drain its calls before it exits.
 */
export async function serveCommand(opts: ServeOptions): Promise<void> {
  if (cluster.isWorker) return runWorker(opts);
  const config = loadConfig({ flags: opts.flags, file: opts.configFile, env: opts.env });
  const n = workerCount(config.workers);
  if (n <= 1) {
    const { kernel } = await serve(opts);
    kernel.handleSignals();
    return;
  }
  const logger = createLogger(config.logLevel);
  const prepared = await serve({ ...opts, role: 'prepare' });
  await prepared.kernel.stop();
  await runPrimary(n, logger, (httpPort) => {
    if (prepared.setupToken) announceSetupToken(logger, config.host, httpPort, prepared.setupToken);
  });
}

async function runWorker(opts: ServeOptions): Promise<void> {
  // Listening for the stop before the kernel starts: a SIGTERM that arrives while this worker is still
  // starting (the primary stops the server as soon as its first worker answers) must not kill it mid-start.
  let kernel: Kernel | undefined;
  let stopping = false;
  let stopWanted = false;
  const stop = () => {
    if (!kernel) {
      stopWanted = true;
      return;
    }
    if (stopping) return;
    stopping = true;
    kernel.stop().then(
      () => process.exit(0),
      (err) => {
        kernel!.logger.error({ err }, 'graceful stop failed');
        process.exit(1);
      },
    );
  };
  // The primary decides when to stop: Ctrl-C reaches the whole process group, and the primary then sends SIGTERM.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', stop);
  // The primary is gone (killed, or it crashed): finish what is in flight and leave.
  process.once('disconnect', stop);
  const ipc: IpcEndpoint = { send: (m) => process.send!(m), on: (e, l) => process.on(e, l), off: (e, l) => process.off(e, l) };
  const served = await serve({ ...opts, role: 'worker', ipc });
  kernel = served.kernel;
  if (stopWanted) return stop();
  process.send!({ wldb: 'listening', grpcPort: served.grpcPort, httpPort: served.httpPort } satisfies ListeningMessage);
}

function runPrimary(n: number, logger: Logger, onAllListening: (httpPort: number) => void): Promise<void> {
  const relay = new EventRelay();
  // Rate-limit counts for the whole server: each worker asks the primary.
  hostSharedRateLimits();
  let stopping = false;
  let listening = 0;
  let restartDelay = 1000;
  const startedAt = new Map<Worker, number>();

  const fork = () => {
    const worker = cluster.fork();
    startedAt.set(worker, Date.now());
    relay.add(worker);
    worker.on('message', (m: unknown) => {
      if (isListening(m) && ++listening === n) {
        logger.info({ workers: n, pid: process.pid }, `serving with ${n} worker processes`);
        onAllListening(m.httpPort);
      }
    });
    worker.once('exit', (code, signal) => {
      relay.remove(worker);
      const ranFor = Date.now() - (startedAt.get(worker) ?? 0);
      startedAt.delete(worker);
      if (stopping) return;
      if (ranFor > HEALTHY_AFTER_MS) restartDelay = 1000;
      logger.error({ pid: worker.process.pid, code, signal, restartInMs: restartDelay }, 'a worker process exited; starting another');
      setTimeout(() => !stopping && fork(), restartDelay).unref();
      restartDelay = Math.min(MAX_RESTART_DELAY_MS, restartDelay * 2);
    });
  };

  for (let i = 0; i < n; i++) fork();

  return new Promise<void>(() => {
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals) => {
      if (++signals > 1) {
        for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGKILL');
        process.exit(130);
      }
      stopping = true;
      logger.info({ signal }, 'stopping: every worker drains its calls in flight');
      const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w);
      let failed = false;
      let left = workers.length;
      if (left === 0) process.exit(0);
      for (const w of workers) {
        w.once('exit', (code) => {
          if (code !== 0) failed = true;
          if (--left === 0) process.exit(failed ? 1 : 0);
        });
        w.process.kill('SIGTERM');
      }
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
