/**
 * The main thread's handle on the sink worker: posts chunks (transferring
 * their buffers), enforces the memory cap with Atomics.wait, and turns the
 * worker's answers into promises.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { fromPayload, sdkError } from './errors.js';
import type { Chunk } from './metric-buffer.js';
import { Slot, SHARED_SLOTS, type CallMethod, type ErrorPayload, type FromWorker, type RecycledColumns, type SinkConfig, type ToWorker } from './protocol.js';

export interface SinkOptions {
  config: SinkConfig;
  /** Bytes of chunks in flight above which log() blocks. */
  maxBufferBytes: number;
  /** Printed for warnings from the worker. */
  warn: (message: string) => void;
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

const here = import.meta.url;

/** URL of tsx's ESM API (`tsx/esm/api`, import condition), found from this package. */
function tsxEsmApi(): string {
  const require = createRequire(here);
  const pkgFile = require.resolve('tsx/package.json');
  const pkg = require(pkgFile) as { exports: Record<string, { import: { default: string } }> };
  return pathToFileURL(join(dirname(pkgFile), pkg.exports['./esm/api']!.import.default)).href;
}

/** The process's Node options that make sense for the worker (not those about the main entry, such as --input-type). */
function workerExecArgv(fromSources: boolean): string[] {
  const argv = process.execArgv.filter((a) => !a.startsWith('--input-type'));
  // From sources, workspace packages resolve to their sources too (the "source" export condition).
  if (fromSources && !argv.includes('--conditions=source')) argv.push('--conditions=source');
  return argv;
}

/** Starts the worker from its .js (built) or .ts (sources, through tsx) file. */
function startWorker(): Worker {
  const fromSources = here.endsWith('.ts');
  const url = new URL(`./sink-worker.${fromSources ? 'ts' : 'js'}`, here);
  const execArgv = workerExecArgv(fromSources);
  // The worker's stdout/stderr go to the process's, as Node does by default (piping them here would hold the event loop open).
  if (!fromSources) return new Worker(url, { execArgv });
  // Node 20 loads a worker's entry file before `--import` hooks apply, so a small
  // bootstrap registers tsx first, then imports the TypeScript entry.
  const boot = `import(${JSON.stringify(tsxEsmApi())}).then((t) => { t.register(); return import(${JSON.stringify(url.href)}); })`;
  return new Worker(boot, { eval: true, execArgv });
}

export class Sink {
  readonly shared = new Int32Array(new SharedArrayBuffer(SHARED_SLOTS * 4));
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private seq = 0;
  private refs = 0;
  private down = false;
  private readyWait: Promise<void>;
  private waitWarned = false;
  /** Set on exit paths: sending never waits for room (the end of the process is bounded by its own timeout). */
  exiting = false;
  private exited: Promise<void>;
  private readonly recycled: MessagePort;

  constructor(private readonly opts: SinkOptions) {
    this.worker = startWorker();
    let readyResolve!: () => void;
    let readyReject!: (e: unknown) => void;
    this.readyWait = new Promise((res, rej) => ((readyResolve = res), (readyReject = rej)));
    this.readyWait.catch(() => undefined); // observed through ready()
    this.exited = new Promise((r) => this.worker.once('exit', () => r()));
    this.worker.on('message', (m: FromWorker) => {
      switch (m.type) {
        case 'ready':
          readyResolve();
          break;
        case 'fatal':
          this.markDown();
          fromPayload(m.error).then(readyReject, readyReject);
          break;
        case 'warning':
          opts.warn(m.message);
          break;
        case 'result':
          this.settle(m.id, m.ok ? { ok: true, value: m.value } : { ok: false, error: m.error });
          break;
        case 'flushed':
          this.settle(m.id, m.error ? { ok: false, error: m.error } : { ok: true, value: undefined });
          break;
        case 'stopped':
          this.settle(m.id, { ok: true, value: undefined });
          break;
      }
    });
    this.worker.on('error', (err) => {
      this.markDown();
      opts.warn(`wanllmdb: the sink worker failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
      readyReject(err);
      for (const [, p] of this.pending) p.reject(err);
      this.pending.clear();
    });
    this.worker.on('exit', () => {
      this.markDown();
      for (const [, p] of this.pending) p.reject(new Error('the sink worker exited'));
      this.pending.clear();
    });
    this.worker.unref();
    const channel = new MessageChannel();
    this.recycled = channel.port1;
    this.recycled.unref();
    this.worker.postMessage(
      { type: 'init', config: opts.config, shared: this.shared.buffer as SharedArrayBuffer, recycle: channel.port2, chunkPoints: opts.config.chunkPoints } satisfies ToWorker,
      [channel.port2],
    );
  }

  private markDown(): void {
    this.down = true;
    Atomics.store(this.shared, Slot.WORKER_DOWN, 1);
  }

  get isDown(): boolean {
    return this.down || Atomics.load(this.shared, Slot.WORKER_DOWN) === 1;
  }

  /** Resolves when the transport is open (rejects with the reason it could not open). */
  async ready(): Promise<void> {
    this.ref();
    try {
      await this.readyWait;
    } finally {
      this.unref();
    }
  }

  private ref(): void {
    if (this.refs++ === 0) this.worker.ref();
  }

  private unref(): void {
    if (--this.refs === 0) this.worker.unref();
  }

  private post(m: ToWorker, transfer?: ArrayBuffer[]): void {
    this.worker.postMessage(m, transfer);
  }

  private settle(id: number, r: { ok: true; value: unknown } | { ok: false; error: ErrorPayload }): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    this.unref();
    if (r.ok) p.resolve(r.value);
    else fromPayload(r.error).then(p.reject, p.reject);
  }

  private request<T>(make: (id: number) => ToWorker): Promise<T> {
    if (this.isDown) return sdkError('KERNEL_STATE', 'The run has finished (its sink is closed); start a new run with init().') as Promise<never>;
    const id = this.nextId++;
    this.ref();
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.post(make(id));
    });
  }

  /** A column set the worker has finished with, to fill next (read synchronously: works inside a loop that never yields). */
  takeColumns(): RecycledColumns | undefined {
    const m = receiveMessageOnPort(this.recycled);
    if (!m) return undefined;
    Atomics.sub(this.shared, Slot.RECYCLED, 1);
    return m.message as RecycledColumns;
  }

  /** Sends a chunk (its buffers move to the worker), then waits while more than the cap is in flight. */
  send(chunk: Chunk): void {
    if (this.isDown) return;
    const seq = ++this.seq;
    Atomics.add(this.shared, Slot.BYTES_IN_FLIGHT, chunk.bytes);
    Atomics.add(this.shared, Slot.CHUNKS_IN_FLIGHT, 1);
    const transfer = [chunk.step.buffer, chunk.value.buffer, chunk.time.buffer, chunk.keyIndex.buffer] as ArrayBuffer[];
    this.post({ type: 'chunk', seq, ...chunk }, transfer);
    this.waitForRoom();
  }

  /** Blocks the thread (Atomics.wait) while the bytes in flight exceed the cap. */
  waitForRoom(): void {
    if (this.exiting) return;
    const s = this.shared;
    const cap = this.opts.maxBufferBytes;
    const started = Date.now();
    while (Atomics.load(s, Slot.BYTES_IN_FLIGHT) > cap && Atomics.load(s, Slot.WORKER_DOWN) === 0) {
      const progress = Atomics.load(s, Slot.PROGRESS);
      if (Atomics.load(s, Slot.BYTES_IN_FLIGHT) <= cap) break;
      Atomics.wait(s, Slot.PROGRESS, progress, 1_000);
      if (!this.waitWarned && Date.now() - started > 10_000) {
        this.waitWarned = true;
        this.opts.warn(
          `wanllmdb: log() is waiting: ${(cap / 2 ** 20).toFixed(0)} MB of metrics are not yet stored (${this.opts.config.mode} sink is slow or unreachable). ` +
            'Memory stays bounded; logging resumes when the sink catches up.',
        );
      }
    }
  }

  /** Posts a call with bytes counted against the cap (console lines). */
  call<T = unknown>(method: CallMethod, request: unknown, bytes = 0): Promise<T> {
    if (bytes && !this.isDown) Atomics.add(this.shared, Slot.BYTES_IN_FLIGHT, bytes);
    const p = this.request<T>((id) => ({ type: 'call', id, method, request, bytes }));
    if (bytes) this.waitForRoom();
    return p;
  }

  /**
   * Resolves once every chunk and call sent before is stored; rejects when
   * some of it could not be (and was given up) since the last flush that said so.
   */
  flush(): Promise<void> {
    return this.request<void>((id) => ({ type: 'flush', id, seq: this.seq }));
  }

  /**
   * Synchronous call for exit paths (signal, uncaught exception, process.exit):
   * posts it and blocks the thread until the worker has done it or `timeoutMs`
   * passed. Returns whether it completed.
   */
  callSync(method: CallMethod, request: unknown, timeoutMs: number): boolean {
    if (this.isDown) return false;
    return this.waitSync(() => this.post({ type: 'call', id: this.nextId++, method, request, sync: true }), timeoutMs);
  }

  /**
   * Closes the transport synchronously (exit paths): the store's threads must
   * be idle before the process tears the worker down — a native driver
   * finishing a statement in a dying worker aborts the process.
   */
  stopSync(timeoutMs: number): boolean {
    if (this.isDown) return false;
    const idleMs = Math.max(0, timeoutMs - 3_000);
    return this.waitSync(() => this.post({ type: 'stop', id: this.nextId++, sync: true, idleMs }), timeoutMs, true);
  }

  private waitSync(send: () => void, timeoutMs: number, untilDown = false): boolean {
    const before = Atomics.load(this.shared, Slot.SYNC_DONE);
    send();
    const deadline = Date.now() + timeoutMs;
    while (Atomics.load(this.shared, Slot.SYNC_DONE) === before) {
      const left = deadline - Date.now();
      if (left <= 0 || (!untilDown && Atomics.load(this.shared, Slot.WORKER_DOWN) === 1)) return false;
      Atomics.wait(this.shared, Slot.SYNC_DONE, before, Math.min(left, 500));
    }
    return true;
  }

  /** Chunks sent so far (the sequence number of the last one). */
  get sentSeq(): number {
    return this.seq;
  }

  /** Highest chunk sequence number durably acknowledged (with all before it). */
  get ackedSeq(): number {
    return Atomics.load(this.shared, Slot.ACKED_SEQ);
  }

  get bytesInFlight(): number {
    return Atomics.load(this.shared, Slot.BYTES_IN_FLIGHT);
  }

  /** Closes the transport and ends the worker. */
  async stop(): Promise<void> {
    if (!this.isDown) await this.request<void>((id) => ({ type: 'stop', id })).catch(() => undefined);
    this.ref();
    const timer = setTimeout(() => void this.worker.terminate(), 5_000);
    await this.exited;
    clearTimeout(timer);
    this.unref();
  }

  /** Ends the worker at once (process exit). */
  terminate(): void {
    this.markDown();
    void this.worker.terminate();
  }
}
