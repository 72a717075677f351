/**
 * The offline write-ahead folder of one run.
 *
 *   <dir>/                               default <data>/offline/<run-id>/
 *     run.json                           { format, version, createRun: CreateRunRequest, createdAt }
 *     ops/000000000001.metrics.<batch-id>.arrow   one metric batch (Arrow IPC bytes, the wire format)
 *     ops/000000000002.config.json       UpdateConfigRequest
 *     ops/000000000003.summary.json      UpdateSummaryRequest
 *     ops/000000000004.logs.json         AppendLogsRequest
 *     ops/000000000005.file.json         { path, stored, size, digest } (+ the copy in files/)
 *     ops/000000000006.finish.json       FinishRunRequest
 *     files/000000000005-<name>          copies of files given to run.save()
 *     synced/<target>.log                op names each sync target has stored (written by `wanllmdb sync`)
 *
 * Every file is written under a temporary name (`.tmp-…`), fsynced, then
 * renamed, and the folder is fsynced before the write is acknowledged: after
 * a kill -9 or a power cut a file is either whole under its final name or
 * absent (leftover `.tmp-` files are ignored and swept). The sequence number
 * orders operations across kinds; metric batch files are named by batch id,
 * which the server uses to store each batch exactly once however often sync
 * runs.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { tracking } from '@wanllmdb/proto';

export const SPOOL_FORMAT = 'wanllmdb-offline-run';
export const SPOOL_VERSION = 1;

export interface SpoolRunFile {
  format: typeof SPOOL_FORMAT;
  version: number;
  createRun: tracking.v1.CreateRunRequest;
  createdAt: string;
}

export type OpKind = 'metrics' | 'config' | 'summary' | 'logs' | 'file' | 'finish';
const KINDS: ReadonlySet<string> = new Set<OpKind>(['metrics', 'config', 'summary', 'logs', 'file', 'finish']);

export interface SpoolOp {
  seq: number;
  kind: OpKind;
  /** File name under ops/ (the op's identity in sync records). */
  name: string;
  /** Absolute path of the op file. */
  file: string;
  /** Metric batches only. */
  batchId?: string;
  /** Size of the op's data (bytes), for progress. */
  size: number;
}

export interface SpoolFileOp {
  path: string;
  /** Relative to the run folder. */
  stored: string;
  size: number;
  digest: string;
}

const OP_NAME = /^(\d{12})\.([a-z]+)(?:\.([0-9a-f-]{36}))?\.(json|arrow)$/;
const pad = (n: number) => String(n).padStart(12, '0');

async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Writes `data` to dir/name durably: temp name, fsync, rename (the caller fsyncs the folder). */
export async function writeAtomic(dir: string, name: string, data: Uint8Array | string): Promise<void> {
  const tmp = join(dir, `.tmp-${name}`);
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, join(dir, name));
}

export async function isSpool(dir: string): Promise<boolean> {
  return stat(join(dir, 'run.json')).then(
    (s) => s.isFile(),
    () => false,
  );
}

export async function readRunFile(dir: string): Promise<SpoolRunFile> {
  const run = JSON.parse(await readFile(join(dir, 'run.json'), 'utf8')) as SpoolRunFile;
  if (run.format !== SPOOL_FORMAT) throw new Error(`${join(dir, 'run.json')} is not a wanLLMDB offline run (format ${JSON.stringify(run.format)}).`);
  if (run.version > SPOOL_VERSION) throw new Error(`${dir} was written by a newer SDK (spool version ${run.version}); upgrade wanllmdb to sync it.`);
  return run;
}

/** Every complete op of a spool, in order. */
export async function readOps(dir: string): Promise<SpoolOp[]> {
  const opsDir = join(dir, 'ops');
  const names = await readdir(opsDir).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? [] : Promise.reject(e)));
  const ops: SpoolOp[] = [];
  for (const name of names.sort()) {
    const m = OP_NAME.exec(name);
    if (!m || !KINDS.has(m[2]!)) continue;
    const file = join(opsDir, name);
    let size = (await stat(file)).size;
    if (m[2] === 'file') {
      const op = JSON.parse(await readFile(file, 'utf8')) as SpoolFileOp;
      size += op.size;
    }
    ops.push({ seq: Number(m[1]), kind: m[2] as OpKind, name, file, batchId: m[3], size });
  }
  return ops;
}

/** Appends operations to one run's spool. One writer at a time (the run's sink worker). */
export class SpoolWriter {
  private constructor(
    readonly dir: string,
    private seq: number,
  ) {}

  /** Creates the spool (or reopens it to resume the same run). */
  static async open(dir: string, createRun: tracking.v1.CreateRunRequest): Promise<{ writer: SpoolWriter; existed: boolean; run: SpoolRunFile }> {
    await mkdir(join(dir, 'ops'), { recursive: true });
    await mkdir(join(dir, 'files'), { recursive: true });
    let run: SpoolRunFile;
    let existed = false;
    if (await isSpool(dir)) {
      run = await readRunFile(dir);
      existed = true;
    } else {
      run = { format: SPOOL_FORMAT, version: SPOOL_VERSION, createRun, createdAt: new Date().toISOString() };
      await writeAtomic(dir, 'run.json', JSON.stringify(run, null, 2));
      await fsyncPath(dir);
    }
    // Sweep writes a kill cut short.
    for (const sub of ['ops', 'files']) {
      for (const name of await readdir(join(dir, sub))) if (name.startsWith('.tmp-')) await rm(join(dir, sub, name), { force: true });
    }
    const ops = await readOps(dir);
    return { writer: new SpoolWriter(dir, ops.at(-1)?.seq ?? 0), existed, run };
  }

  private next(): string {
    return pad(++this.seq);
  }

  /** Writes batches (each its own file), then makes their names durable. */
  async writeBatches(batches: readonly { batchId: string; bytes: Uint8Array }[]): Promise<void> {
    const opsDir = join(this.dir, 'ops');
    for (const b of batches) await writeAtomic(opsDir, `${this.next()}.metrics.${b.batchId}.arrow`, b.bytes);
    await fsyncPath(opsDir);
  }

  async writeOp(kind: Exclude<OpKind, 'metrics' | 'file'>, body: unknown): Promise<void> {
    const opsDir = join(this.dir, 'ops');
    await writeAtomic(opsDir, `${this.next()}.${kind}.json`, JSON.stringify(body));
    await fsyncPath(opsDir);
  }

  /** Copies a file into the spool (the original may change before sync) and records it. */
  async writeFile(path: string, source: string): Promise<SpoolFileOp & { createdAt: string }> {
    const seq = this.next();
    const stored = join('files', `${seq}-${basename(path).replace(/[^\w.-]/g, '_')}`);
    const tmp = join(this.dir, 'files', `.tmp-${seq}`);
    const hash = createHash('sha256');
    let size = 0;
    await pipeline(
      createReadStream(source),
      async function* (chunks: AsyncIterable<Buffer>) {
        for await (const c of chunks) {
          hash.update(c);
          size += c.length;
          yield c;
        }
      },
      createWriteStream(tmp),
    );
    await fsyncPath(tmp);
    await rename(tmp, join(this.dir, stored));
    await fsyncPath(join(this.dir, 'files'));
    const op: SpoolFileOp = { path, stored, size, digest: hash.digest('hex') };
    const opsDir = join(this.dir, 'ops');
    await writeAtomic(opsDir, `${seq}.file.json`, JSON.stringify(op));
    await fsyncPath(opsDir);
    return { ...op, createdAt: new Date().toISOString() };
  }
}

/** Which ops a sync target has stored: one name per line, appended and fsynced as sync goes. */
export class SyncRecord {
  private constructor(
    private readonly file: string,
    readonly done: Set<string>,
    private cut: boolean,
  ) {}

  static async open(dir: string, target: string): Promise<SyncRecord> {
    await mkdir(join(dir, 'synced'), { recursive: true });
    const key = createHash('sha256').update(target).digest('hex').slice(0, 16);
    const file = join(dir, 'synced', `${key}.log`);
    const text = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? '' : Promise.reject(e)));
    // A line cut short by a kill has no newline: it does not count.
    const lines = text.split('\n');
    lines.pop();
    if (!text) await writeAtomic(join(dir, 'synced'), `${key}.target`, `${target}\n`);
    return new SyncRecord(file, new Set(lines.filter(Boolean)), text !== '' && !text.endsWith('\n'));
  }

  async add(names: readonly string[]): Promise<void> {
    if (names.length === 0) return;
    const fh = await open(this.file, 'a');
    try {
      await fh.writeFile((this.cut ? '\n' : '') + names.map((n) => `${n}\n`).join(''));
      this.cut = false;
      await fh.sync();
    } finally {
      await fh.close();
    }
    for (const n of names) this.done.add(n);
  }
}
