/**
 * Many small files as one artifact version, against the physical limit
 * measured in the same run on the same files: committing N files of 1–4 KB
 * through `wanllmdb serve` (remote, the SDK over gRPC) against a raw
 * durable copy of the same files into a folder (read, write, fsync, rename
 * each — what a blob store must do at least per body it keeps as its own
 * file), with as many copies at once as the SDK uploads; then recommitting
 * with one file changed.
 *
 *   npx tsx bench/artifact-many-files.ts [--files 100000] [--tiny]
 *
 * Targets (issue 11): ≥ 5,000 files/s remote; a recommit with one file
 * changed ≤ 2 s. Progress on stderr, one JSON line on stdout.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Artifact, openArtifactClient } from '@wanllmdb/sdk';
import { startBenchServer } from './lib/server.js';

const { values: args } = parseArgs({ options: { files: { type: 'string' }, tiny: { type: 'boolean', default: false } } });
const count = Number(args.files ?? (args.tiny ? 300 : 100_000));
if (!Number.isSafeInteger(count) || count < 2) throw new Error(`--files must be a whole number ≥ 2, got ${args.files}`);
const log = (m: string) => process.stderr.write(`[artifact-many-files] ${m}\n`);
const round = (n: number, d = 3) => Math.round(n * 10 ** d) / 10 ** d;
/** Uploads the SDK runs at once (ArtifactClient's default); the copy limit gets as many. */
const PARALLEL = 4;

async function pool<T>(items: readonly T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

const root = await mkdtemp(join(tmpdir(), 'wldb-bench-many-'));
const src = join(root, 'files');
try {
  log(`writing ${count} files of 1–4 KB`);
  const paths: string[] = [];
  for (let d = 0; d * 1000 < count; d++) await mkdir(join(src, `d${d}`), { recursive: true });
  for (let i = 0; i < count; i++) paths.push(join(`d${Math.floor(i / 1000)}`, `f${i}.bin`));
  await pool(paths, 16, (p) => writeFile(join(src, p), randomBytes(1024 + Math.floor(Math.random() * 3073))));

  // The limit: each file read and stored durably as a file of its own (tmp + fsync + rename), PARALLEL at once.
  const dst = join(root, 'copy');
  await mkdir(dst);
  const t0 = performance.now();
  await pool(paths, PARALLEL, async (p) => {
    const bytes = await readFile(join(src, p));
    const tmp = join(dst, `${randomUUID()}.tmp`);
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, join(dst, randomUUID()));
  });
  const copyFilesPerSec = count / ((performance.now() - t0) / 1000);
  log(`limit: durable copy ${Math.round(copyFilesPerSec)} files/s`);
  await rm(dst, { recursive: true, force: true });

  const server = await startBenchServer();
  try {
    const opened = await openArtifactClient({ url: server.url, apiKey: server.apiKey });
    const client = opened.client;
    try {
      let last = 0;
      // When each phase began: hashing → manifest (AddFiles) → uploading (absent when nothing is missing) → committing.
      const began: Record<string, number> = {};
      const onProgress = (p: { phase: string; done: number; total: number }) => {
        const now = performance.now();
        began[p.phase] ??= now;
        if (now - last > 2000) (last = now), log(`${p.phase} ${p.done}/${p.total}`);
      };
      const t1 = performance.now();
      const first = await client.log('bench', await new Artifact('many', 'dataset').addDir(src), { onProgress });
      const commitMs = performance.now() - t1;
      const end = performance.now();
      const until = (next: string[]) => began[next.find((n) => began[n] !== undefined) ?? ''] ?? end;
      const phases = {
        hashMs: round(until(['manifest']) - began.hashing!, 1),
        manifestMs: round(until(['uploading', 'committing']) - began.manifest!, 1),
        uploadMs: round(began.uploading === undefined ? 0 : until(['committing']) - began.uploading, 1),
        commitMs: round(end - began.committing!, 1),
      };
      log(`phases: ${JSON.stringify(phases)}`);
      if (first.version.fileCount !== count) throw new Error(`committed ${first.version.fileCount} files, expected ${count}`);
      const filesPerSec = count / (commitMs / 1000);
      log(`remote: ${Math.round(filesPerSec)} files/s (${round(commitMs / 1000, 1)} s)`);

      await writeFile(join(src, paths[0]!), randomBytes(2048));
      const t2 = performance.now();
      const again = await client.log('bench', await new Artifact('many', 'dataset').addDir(src));
      const recommitMs = performance.now() - t2;
      if (!again.created || again.uploadedBytes !== 2048) throw new Error(`the recommit sent ${again.uploadedBytes} bytes (created: ${again.created}); expected one 2048-byte file`);
      log(`recommit with one file changed: ${Math.round(recommitMs)} ms`);
      process.stdout.write(
        `${JSON.stringify({
          bench: 'artifact-many-files',
          files: count,
          limit: { copyFilesPerSec: round(copyFilesPerSec, 1) },
          remote: { filesPerSec: round(filesPerSec, 1), ratioToCopy: round(filesPerSec / copyFilesPerSec), recommitMs: round(recommitMs, 1), phases },
          targets: { filesPerSec: 5000, recommitMs: 2000 },
        })}\n`,
      );
    } finally {
      await opened.close();
    }
  } finally {
    await server.stop();
  }
} finally {
  await rm(root, { recursive: true, force: true });
}
