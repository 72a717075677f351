/**
 * The sink worker: owns the transport of one run (embedded kernel, gRPC
 * client or offline spool) and drains an ordered queue of chunks and calls.
 *
 * - A chunk gets a batch id (a UUID) when it arrives, and is encoded to Arrow
 *   IPC just before its turn — while the previous group is being stored — so
 *   the queue holds raw columns (what the cap counts). Once the batch is
 *   acknowledged its column arrays go back to the main thread for reuse.
 * - Consecutive batches are sent as one group (one StreamMetrics stream in
 *   remote mode), in order; once the store has them durably they are
 *   acknowledged through the shared counters, which releases `log()` if it
 *   was waiting for room.
 * - Transient failures (server restarting, database locked, disk full …)
 *   are retried with exponential backoff, forever for metric batches (the
 *   store skips a batch id it has already stored, so a retry never
 *   duplicates) and up to a deadline for calls.
 * - A server that refuses for a rate limit (WLDB_ERR_RATE_LIMITED) is asked
 *   again after the wait it names, as often as it takes, as long as it takes
 *   something of the queue at least every `rateLimitWaitMs`; past that, what
 *   waits is given up like a refused batch.
 * - Nothing is given up silently: a flush reports what was given up before
 *   it (the first flush after it, once), so a flush() that resolves means
 *   everything logged before it is stored.
 */
import { randomUUID } from 'node:crypto';
import { parentPort, type MessagePort } from 'node:worker_threads';
import type { MetricColumns } from '@wanllmdb/plugin-tracking';
import type { tracking } from '@wanllmdb/proto';
import { toPayload } from './errors.js';
import {
  MAX_RECYCLED,
  Slot,
  type CallMessage,
  type ChunkMessage,
  type ErrorPayload,
  type FlushMessage,
  type FromWorker,
  type InitMessage,
  type SinkConfig,
  type StopMessage,
  type ToWorker,
} from './protocol.js';
import { backoff, isTransient, rateLimitDelay } from './retry.js';
import { RemoteCallError } from './transport/remote-error.js';
import type { EncodedBatch, Transport } from './transport/transport.js';

interface BatchItem {
  kind: 'batch';
  seq: number;
  batchId: string;
  raw: number;
  points: number;
  cols?: MetricColumns;
  bytes?: Uint8Array;
}
type Item = BatchItem | { kind: 'call'; msg: CallMessage } | { kind: 'flush'; msg: FlushMessage } | { kind: 'stop'; msg: StopMessage };

const port = parentPort!;
const post = (m: FromWorker) => port.postMessage(m);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

let shared: Int32Array;
let config: SinkConfig;
let recyclePort: MessagePort | undefined;
let poolPoints = 0;
let transport: Transport | undefined;
let encode: ((cols: MetricColumns) => Uint8Array) | undefined;
let runId = '';
let heartbeat: NodeJS.Timeout | undefined;
let beatPending = false;
let beatRetry: NodeJS.Timeout | undefined;
let pumping = false;
let stopped = false;
const keys: string[] = [];
const queue: Item[] = [];
/** Since when the store has refused the queue's head for rate limits without taking anything (0: it has not). */
let limitedSince = 0;
let limitWarnedAt = 0;
/** What was given up since a flush last reported it. */
let unstored: { points: number; lines: number; error?: ErrorPayload } = { points: 0, lines: 0 };
let readyResolve!: () => void;
const ready = new Promise<void>((r) => (readyResolve = r));

const describe = (err: unknown) => (err instanceof Error ? err.message : String(err));
const duration = (ms: number) => (ms >= 120_000 ? `${Math.round(ms / 60_000)} min` : `${Math.round(ms / 1000)} s`);

/**
 * After a refusal: how long to wait before sending the queue's head again
 * when it was refused for a rate limit; undefined for any other failure, and
 * once the store has taken nothing of the queue for `rateLimitWaitMs` (the
 * caller then gives the head up like any refusal).
 */
function rateLimitWait(err: unknown): number | undefined {
  const delay = rateLimitDelay(err);
  if (delay === undefined) return undefined;
  const now = Date.now();
  limitedSince ||= now;
  if (now + delay - limitedSince > config.rateLimitWaitMs) return undefined;
  if (now - limitWarnedAt > 60_000) {
    limitWarnedAt = now;
    post({
      type: 'warning',
      message:
        `wanllmdb: the ${transport!.name} is rate-limiting this run's API key (${describe(err)}); the SDK sends again after the wait it asks for. ` +
        'Nothing is dropped: flush() and finish() wait, and log() keeps buffering (it waits only if the buffer fills).',
    });
  }
  return delay;
}

/** The store took something of the queue: rate limits are waited out afresh. */
function progressed(): void {
  limitedSince = 0;
}

/** A failure as the user will see it; a rate limit the queue stopped waiting out says so and what to do. */
function failure(err: unknown): ErrorPayload {
  const e = callError(err);
  if (rateLimitDelay(err) === undefined) return e;
  return {
    ...e,
    message:
      `The ${transport?.name ?? 'server'} refused this run's calls for rate limits for more than ${duration(config.rateLimitWaitMs)} (${e.message}). ` +
      'Ask its operator to raise the limits (WANLLMDB_RATE_LIMIT_PER_MIN, WANLLMDB_INGEST_RATE_LIMIT_PER_MIN), give this run an API key of its own, or raise the rateLimitWaitMs option.',
  };
}

/** Records data that was given up, for the next flush to report. */
function giveUp(what: { points?: number; lines?: number }, error: ErrorPayload): void {
  unstored.points += what.points ?? 0;
  unstored.lines += what.lines ?? 0;
  unstored.error ??= error;
}

/** What a flush reports: the error for what was given up since the last report (then forgotten), if anything was. */
function takeUnstored(): { error?: ErrorPayload } {
  const { points, lines, error } = unstored;
  if (!error || (!points && !lines)) return {};
  unstored = { points: 0, lines: 0 };
  const what = [points ? `${points} point(s)` : '', lines ? `${lines} console line(s)` : ''].filter(Boolean).join(' and ');
  return { error: { ...error, message: `${what} logged before this flush could not be stored and were given up: ${error.message}` } };
}

function bump(slot: number): void {
  Atomics.add(shared, slot, 1);
  Atomics.notify(shared, slot);
}

function release(bytes: number, chunks = 0, seq?: number): void {
  if (bytes) Atomics.sub(shared, Slot.BYTES_IN_FLIGHT, bytes);
  if (chunks) Atomics.sub(shared, Slot.CHUNKS_IN_FLIGHT, chunks);
  if (seq !== undefined) Atomics.store(shared, Slot.ACKED_SEQ, seq);
  bump(Slot.PROGRESS);
}

/** Warns in the user's terminal (through the main thread), once per tag. */
const warned = new Set<string>();
function warnOnce(tag: string, message: string): void {
  if (warned.has(tag)) return;
  warned.add(tag);
  post({ type: 'warning', message });
}

async function openTransport(c: SinkConfig): Promise<Transport> {
  switch (c.mode) {
    case 'embedded': {
      const { EmbeddedTransport } = await import('./transport/embedded.js');
      return EmbeddedTransport.open({ dataDir: c.dataDir, logLevel: c.logLevel });
    }
    case 'remote': {
      const { RemoteTransport } = await import('./transport/remote.js');
      return RemoteTransport.open({ address: c.address!, apiKey: c.apiKey });
    }
    case 'offline': {
      const { OfflineTransport } = await import('./transport/offline.js');
      return new OfflineTransport(c.spoolDir!);
    }
  }
}

async function init(m: InitMessage): Promise<void> {
  shared = new Int32Array(m.shared);
  config = m.config;
  recyclePort = m.recycle;
  poolPoints = m.chunkPoints;
  try {
    const [codec, t] = await Promise.all([import('@wanllmdb/plugin-tracking'), openTransport(config)]);
    encode = codec.encodeMetricBatch;
    transport = t;
    readyResolve();
    post({ type: 'ready' });
  } catch (err) {
    Atomics.store(shared, Slot.WORKER_DOWN, 1);
    bump(Slot.PROGRESS);
    post({ type: 'fatal', error: toPayload(err) });
  }
}

/**
 * Encodes a batch (again, if a store took ownership of its bytes on an
 * attempt that failed: the embedded store may move them to its aggregation
 * thread). The columns are kept until the batch is acknowledged.
 */
function encodeItem(item: BatchItem): void {
  if ((item.bytes && item.bytes.byteLength > 0) || !item.cols || !encode) return;
  item.bytes = encode(item.cols);
}

/** Hands a full-size column set back to the main thread for its next chunk (no garbage, no new allocation). */
function recycle(cols: MetricColumns): void {
  if (!recyclePort || cols.step.length !== poolPoints || Atomics.load(shared, Slot.RECYCLED) >= MAX_RECYCLED) return;
  Atomics.add(shared, Slot.RECYCLED, 1);
  const { step, value, time, keyIndex } = cols;
  recyclePort.postMessage({ step, value, time, keyIndex }, [step.buffer, value.buffer, time.buffer, keyIndex.buffer] as ArrayBuffer[]);
}

function onChunk(m: ChunkMessage): void {
  if (m.newKeys.length) keys.push(...m.newKeys);
  const item: BatchItem = {
    kind: 'batch',
    seq: m.seq,
    batchId: randomUUID(),
    raw: m.bytes,
    points: m.length,
    // Every batch carries the run's whole key list as its dictionary (indices are run-wide).
    cols: { length: m.length, step: m.step, value: m.value, time: m.time, keyIndex: m.keyIndex, keys },
  };
  // Encoded only when its turn comes (see pump): a queue of raw columns weighs what the cap counts, no more.
  queue.push(item);
}

port.on('message', (m: ToWorker) => {
  switch (m.type) {
    case 'init':
      void init(m);
      return;
    case 'chunk':
      onChunk(m);
      break;
    case 'call':
      queue.push({ kind: 'call', msg: m });
      break;
    case 'flush':
      queue.push({ kind: 'flush', msg: m });
      break;
    case 'stop':
      queue.push({ kind: 'stop', msg: m });
      break;
  }
  void pump();
});

async function pump(): Promise<void> {
  if (pumping) return;
  pumping = true;
  try {
    await ready;
    while (queue.length && !stopped) {
      const head = queue[0]!;
      if (head.kind === 'batch') {
        const group: BatchItem[] = [];
        let size = 0;
        while (queue.length && queue[0]!.kind === 'batch') {
          const next = queue[0] as BatchItem;
          if (group.length && size + next.raw > config.streamBytes) break;
          queue.shift();
          encodeItem(next);
          group.push(next);
          size += next.raw;
        }
        await sendBatches(group);
        continue;
      }
      queue.shift();
      if (head.kind === 'call') await handleCall(head.msg);
      else if (head.kind === 'flush') {
        post({ type: 'flushed', id: head.msg.id, ...takeUnstored() });
        if (head.msg.sync) bump(Slot.SYNC_DONE);
      } else if (head.kind === 'stop') await stop(head.msg);
    }
  } finally {
    pumping = false;
  }
}

/** Appends a group of batches in order, retrying transient failures forever; then acknowledges them. */
async function sendBatches(group: BatchItem[]): Promise<void> {
  let attempt = 0;
  let failingSince = 0;
  let lastWarning = 0;
  let serverErrors = 0;
  if (config.delayMs) await sleep(config.delayMs * group.length);
  for (;;) {
    try {
      for (const b of group) encodeItem(b);
      const batches: EncodedBatch[] = group.map((b) => ({ batchId: b.batchId, bytes: b.bytes!, points: b.points }));
      const sending = transport!.appendBatches(runId, batches);
      // While the store works on this group, encode the next one (overlaps CPU with the store's I/O).
      if (attempt === 0) encodeAhead();
      const warnings = await sending;
      for (const w of warnings) warnOnce(`store:${w.key}:${w.message}`, `wanllmdb: the store refused ${w.dropped} point(s) of ${JSON.stringify(w.key)}: ${w.message}`);
      if (lastWarning) post({ type: 'warning', message: `wanllmdb: ${transport!.name} is taking metrics again.` });
      progressed();
      break;
    } catch (err) {
      const limitWait = rateLimitWait(err);
      if (limitWait !== undefined) {
        attempt++;
        await sleep(limitWait);
        continue;
      }
      if (!isTransient(err) && ++serverErrors > (isInternal(err) ? 5 : 0)) {
        if (group.length > 1) {
          // Find the batch the store refuses; send the others one by one (stored ones are skipped as duplicates).
          for (const b of group) await sendBatches([b]);
          return;
        }
        const why = failure(err);
        giveUp({ points: group[0]!.points }, why);
        post({ type: 'warning', message: `wanllmdb: a metric batch of ${group[0]!.points} point(s) was dropped: ${why.message}` });
        break;
      }
      const now = Date.now();
      failingSince ||= now;
      if (now - failingSince > 5_000 && now - lastWarning > 60_000) {
        lastWarning = now;
        post({
          type: 'warning',
          message: `wanllmdb: ${transport!.name} is not taking metrics (${describe(err)}); retrying. Logged points are kept in memory, and log() waits when the buffer is full.`,
        });
      }
      await sleep(backoff(attempt++));
    }
  }
  for (const b of group) {
    if (b.cols) recycle(b.cols);
    b.cols = undefined;
    b.bytes = undefined;
  }
  const last = group.at(-1)!;
  release(group.reduce((s, b) => s + b.raw, 0), group.length, last.seq);
}

/** Encodes the batches at the head of the queue, up to one group's worth. */
function encodeAhead(): void {
  let size = 0;
  for (const item of queue) {
    if (item.kind !== 'batch' || size > config.streamBytes) break;
    encodeItem(item);
    size += item.raw;
  }
}

const isInternal = (err: unknown) => (err as { code?: unknown })?.code === 'WLDB_ERR_INTERNAL';

/** How long a call keeps being retried while the store is unreachable. */
function callDeadline(msg: CallMessage): number {
  if (msg.method === 'createRun' || msg.method === 'getRun' || msg.method === 'listMetricKeys') return config.connectTimeoutMs;
  if (msg.method === 'heartbeat') return 0;
  return Math.max(config.connectTimeoutMs, 60_000);
}

async function handleCall(msg: CallMessage): Promise<void> {
  let deadline = Date.now() + callDeadline(msg);
  let attempt = 0;
  try {
    for (;;) {
      try {
        let value: unknown;
        try {
          value = await transport!.call(msg.method, msg.request);
        } catch (err) {
          // A retried CreateRun whose first attempt reached the store finds the run made by it (the id is ours).
          if (msg.method !== 'createRun' || attempt === 0 || (err as { code?: unknown }).code !== 'WLDB_ERR_ALREADY_EXISTS') throw err;
          value = await transport!.call('getRun', { id: (msg.request as tracking.v1.CreateRunRequest).id });
        }
        progressed();
        if (msg.method === 'createRun') onRunCreated((value as tracking.v1.RunResponse).data!);
        post({ type: 'result', id: msg.id, ok: true, value });
        return;
      } catch (err) {
        // A rate-limited call never reached its handler: not an attempt (see CreateRun above); transient failures get their full deadline after it.
        const limitWait = rateLimitWait(err);
        if (limitWait !== undefined) {
          await sleep(limitWait);
          deadline = Date.now() + callDeadline(msg);
          continue;
        }
        if (!isTransient(err) || Date.now() + backoff(attempt) > deadline) throw err;
        await sleep(backoff(attempt++));
      }
    }
  } catch (err) {
    const error = failure(err);
    if (msg.method === 'appendLogs') giveUp({ lines: (msg.request as tracking.v1.AppendLogsRequest).lines?.length ?? 0 }, error);
    post({ type: 'result', id: msg.id, ok: false, error });
  } finally {
    if (msg.bytes) release(msg.bytes);
    if (msg.sync) bump(Slot.SYNC_DONE);
  }
}

/** A call's failure as the user will see it. */
function callError(err: unknown) {
  if (err instanceof RemoteCallError && !err.fromServer) {
    const where = transport?.name ?? 'the server';
    if (err.grpcStatus === 12) {
      return { code: 'WLDB_ERR_RPC_HANDLER_MISSING', message: `The ${where} does not serve experiment tracking (${err.message}). Upgrade the server or point WANLLMDB_URL at another one.`, grpcStatus: 12, httpStatus: 501, details: [] };
    }
    return {
      code: 'WLDB_ERR_SERVER_UNAVAILABLE',
      message: `Cannot reach the wanLLMDB ${where}: ${err.message}. Start it (wanllmdb serve), check WANLLMDB_URL or the url option, or log with mode 'offline' and upload later with \`wanllmdb sync\`.`,
      grpcStatus: 14,
      httpStatus: 503,
      details: [{ field: 'url', message: 'unreachable' }],
    };
  }
  if (err instanceof RemoteCallError) return { code: err.code, message: err.message, grpcStatus: err.grpcStatus, httpStatus: 500, details: err.details };
  return toPayload(err);
}

function onRunCreated(run: tracking.v1.Run): void {
  runId = run.id;
  if (config.mode === 'offline' || config.heartbeatMs <= 0 || heartbeat) return;
  heartbeat = setInterval(beat, config.heartbeatMs);
  heartbeat.unref();
}

/**
 * Sends one heartbeat (unless one is still on its way). A rate-limited one is
 * sent again after the wait the server names — a run whose beats stop long
 * enough is marked crashed — while other failures are left to the next beat.
 */
function beat(): void {
  if (beatPending || stopped || !transport) return;
  beatPending = true;
  transport.call('heartbeat', { id: runId }).then(
    () => {
      beatPending = false;
    },
    (err: unknown) => {
      beatPending = false;
      const wait = rateLimitDelay(err);
      if (wait === undefined || stopped) return;
      beatPending = true;
      beatRetry = setTimeout(() => {
        beatPending = false;
        beat();
      }, wait);
      beatRetry.unref();
    },
  );
}

async function stop(msg: StopMessage): Promise<void> {
  stopped = true;
  if (heartbeat) clearInterval(heartbeat);
  clearTimeout(beatRetry);
  try {
    await transport?.close(msg.idleMs);
  } catch (err) {
    post({ type: 'warning', message: `wanllmdb: closing ${transport?.name} failed: ${describe(err)}` });
  }
  Atomics.store(shared, Slot.WORKER_DOWN, 1);
  bump(Slot.PROGRESS);
  if (msg.sync) bump(Slot.SYNC_DONE);
  post({ type: 'stopped', id: msg.id });
  port.close();
}
