/**
 * Uploads offline runs (spool folders, see spool/spool.ts) to a server or
 * to the local embedded store — exactly once, and resumable:
 *
 * - operations are replayed in their spool order;
 * - metric batches and console-line batches keep the batch id they were
 *   spooled under, so the store skips any it already has (a batch sent
 *   twice is stored once);
 * - after each step the names of the operations the target has stored are
 *   appended (and fsynced) to `synced/<target>.log` in the run folder, so a
 *   rerun — after success, or after a kill midway — skips them.
 */
import { readFile, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { tracking } from '@wanllmdb/proto';
import { sdkError } from '../errors.js';
import { parseUrl } from '../options.js';
import { backoff, isTransient, rateLimitDelay } from '../retry.js';
import { isSpool, readOps, readRunFile, SyncRecord, type SpoolFileOp, type SpoolOp } from '../spool/spool.js';
import type { EncodedBatch, Transport } from '../transport/transport.js';

export interface SyncOptions {
  /** Upload to this server (grpc://host:port); without it, into the local embedded store. */
  url?: string;
  apiKey?: string;
  /** The data folder of the embedded store (default WANLLMDB_DATA or ./.wanllmdb). */
  dataDir?: string;
  /** Called after every step. */
  onProgress?: (p: SyncProgress) => void;
  /** Called before a transient failure is retried. */
  onRetry?: (err: unknown) => void;
  /** Stops between two steps (what was stored stays recorded; a rerun goes on from there). */
  signal?: AbortSignal;
  /** How long a transient failure is retried before sync gives up (default 60 s). */
  retryForMs?: number;
  /** How long one step waits out a server's rate limits (sent again after each Retry-After) before sync gives up (default 10 min). */
  rateLimitWaitMs?: number;
  /** Metric batches per group (one stream in remote mode), by bytes (default 4 MB). */
  groupBytes?: number;
  /** @internal A ready transport to sync into (tests); not closed by sync. */
  transport?: Transport;
}

export interface SyncProgress {
  /** The run being synced (its id). */
  run: string;
  runIndex: number;
  runs: number;
  doneBytes: number;
  totalBytes: number;
  doneOps: number;
  totalOps: number;
}

export interface SyncRunResult {
  id: string;
  dir: string;
  /** Operations stored by this sync. */
  uploaded: number;
  /** Operations a previous sync had stored already. */
  skipped: number;
  /** Metric points sent by this sync. */
  points: number;
  /** Points the store reported as duplicates are not counted separately: batch ids make them no-ops. */
  batches: number;
}

export interface SyncResult {
  target: string;
  runs: SyncRunResult[];
}

/** Run folders under the given paths (each a run folder, or a folder of them such as .wanllmdb/offline). */
export async function findSpools(paths: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) {
    const dir = resolve(p);
    if (await isSpool(dir)) {
      out.push(dir);
      continue;
    }
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => undefined);
    if (!entries) throw await sdkError('VALIDATION', `${p} is not a folder. Pass an offline run folder (or a folder of them, such as .wanllmdb/offline).`, [{ field: 'dir', message: 'not found' }]);
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      if (e.isDirectory() && (await isSpool(join(dir, e.name)))) out.push(join(dir, e.name));
    }
  }
  if (out.length === 0) {
    throw await sdkError('VALIDATION', `No offline runs in ${paths.join(', ')}: an offline run folder holds run.json and ops/. Pass such a folder or its parent.`, [{ field: 'dir', message: 'no offline runs' }]);
  }
  return out;
}

async function openTarget(opts: SyncOptions): Promise<Transport> {
  if (opts.url) {
    const { RemoteTransport } = await import('../transport/remote.js');
    return RemoteTransport.open({ address: await parseUrl(opts.url, '--url'), apiKey: opts.apiKey });
  }
  const { EmbeddedTransport } = await import('../transport/embedded.js');
  return EmbeddedTransport.open({ dataDir: opts.dataDir });
}

async function aborted(signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) throw await sdkError('SHUTTING_DOWN', 'Sync was stopped; what was uploaded is recorded, so running it again goes on from there.');
}

interface RetryPolicy {
  /** How long transient failures are retried, with backoff. */
  forMs: number;
  /** How long rate-limited refusals are sent again, each after the server's Retry-After. */
  rateLimitForMs: number;
  signal?: AbortSignal;
  onRetry?: (err: unknown) => void;
}

/** Waits `ms`, or less if `signal` aborts. */
function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Runs `fn`, retrying transient failures with backoff and rate-limited ones after the wait the server asks for, each within its bound. */
async function retrying<T>(fn: () => Promise<T>, policy: RetryPolicy): Promise<T> {
  const started = Date.now();
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const limited = rateLimitDelay(err);
      const wait = limited ?? backoff(attempt);
      const bound = limited === undefined ? policy.forMs : policy.rateLimitForMs;
      if ((limited === undefined && !isTransient(err)) || Date.now() + wait - started > bound || policy.signal?.aborted) throw err;
      policy.onRetry?.(err);
      await pause(wait, policy.signal);
      await aborted(policy.signal);
    }
  }
}

export async function syncOffline(paths: string | readonly string[], opts: SyncOptions = {}): Promise<SyncResult> {
  const dirs = await findSpools(typeof paths === 'string' ? [paths] : paths);
  const transport = opts.transport ?? (await openTarget(opts));
  const policy: RetryPolicy = { forMs: opts.retryForMs ?? 60_000, rateLimitForMs: opts.rateLimitWaitMs ?? 10 * 60_000, signal: opts.signal, onRetry: opts.onRetry };
  const groupBytes = opts.groupBytes ?? 4 * 2 ** 20;
  const result: SyncResult = { target: transport.target, runs: [] };
  try {
    // Totals first, for an honest progress bar.
    const plans: { dir: string; ops: SpoolOp[]; record: SyncRecord; id: string; createRun: tracking.v1.CreateRunRequest }[] = [];
    let totalBytes = 0;
    let totalOps = 0;
    for (const dir of dirs) {
      const run = await readRunFile(dir);
      const record = await SyncRecord.open(dir, transport.target);
      const ops = await readOps(dir);
      plans.push({ dir, ops, record, id: run.createRun.id, createRun: run.createRun });
      for (const op of ops) if (!record.done.has(op.name)) (totalBytes += op.size), totalOps++;
    }
    let doneBytes = 0;
    let doneOps = 0;
    const report = (run: string, runIndex: number) => opts.onProgress?.({ run, runIndex, runs: plans.length, doneBytes, totalBytes, doneOps, totalOps });

    for (const [runIndex, plan] of plans.entries()) {
      const { dir, ops, record, id } = plan;
      const r: SyncRunResult = { id, dir, uploaded: 0, skipped: 0, points: 0, batches: 0 };
      result.runs.push(r);
      report(id, runIndex);
      await aborted(opts.signal);
      if (!record.done.has('run.json')) {
        // "allow": the run may exist already (an earlier, interrupted sync created it).
        const createRun = { ...plan.createRun, resume: plan.createRun.resume === 'must' ? 'must' : 'allow' };
        await retrying(() => transport.call('createRun', createRun), policy);
        await record.add(['run.json']);
      }
      const pending = ops.filter((o) => !record.done.has(o.name));
      r.skipped = ops.length - pending.length;
      for (let i = 0; i < pending.length; ) {
        await aborted(opts.signal);
        const op = pending[i]!;
        if (op.kind === 'metrics') {
          const group: SpoolOp[] = [];
          let size = 0;
          while (i < pending.length && pending[i]!.kind === 'metrics' && (group.length === 0 || size + pending[i]!.size <= groupBytes)) {
            size += pending[i]!.size;
            group.push(pending[i++]!);
          }
          // Read on every attempt: the embedded store may take ownership of (detach) the bytes it is given.
          const read = async () => Promise.all(group.map(async (g): Promise<EncodedBatch> => ({ batchId: g.batchId!, bytes: new Uint8Array(await readFile(g.file)), points: 0 })));
          let points = 0;
          await retrying(
            async () => {
              const batches = await read();
              points = await countPoints(batches);
              return transport.appendBatches(id, batches);
            },
            policy,
          );
          await record.add(group.map((g) => g.name));
          r.batches += group.length;
          r.uploaded += group.length;
          doneOps += group.length;
          doneBytes += size;
          r.points += points;
        } else {
          i++;
          await retrying(() => replay(transport, dir, id, op), policy);
          await record.add([op.name]);
          r.uploaded++;
          doneOps++;
          doneBytes += op.size;
        }
        report(id, runIndex);
      }
    }
    return result;
  } finally {
    if (!opts.transport) await transport.close();
  }
}

let decoder: ((bytes: Uint8Array) => { length: number }) | undefined;
async function countPoints(batches: EncodedBatch[]): Promise<number> {
  const decode = (decoder ??= (await import('@wanllmdb/plugin-tracking')).decodeMetricBatch);
  let n = 0;
  for (const b of batches) n += decode(b.bytes).length;
  return n;
}

async function replay(transport: Transport, dir: string, runId: string, op: SpoolOp): Promise<void> {
  const body = JSON.parse(await readFile(op.file, 'utf8')) as Record<string, unknown>;
  switch (op.kind) {
    case 'config':
      await transport.call('updateConfig', { ...body, id: runId });
      return;
    case 'summary':
      await transport.call('updateSummary', { ...body, id: runId });
      return;
    case 'logs':
      // Spools written before logs had batch ids get one from the op's name: a re-run sync still stores them once.
      await transport.call('appendLogs', { ...body, runId, batchId: typeof body.batchId === 'string' && body.batchId ? body.batchId : `spool:${op.name}` });
      return;
    case 'finish':
      await transport.call('finishRun', { ...body, id: runId });
      return;
    case 'file': {
      const f = body as unknown as SpoolFileOp;
      await transport.call('uploadFile', { runId, path: f.path, source: join(dir, f.stored) });
      return;
    }
    case 'metrics':
      throw new Error('metric batches are replayed in groups');
  }
}
