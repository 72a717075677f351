/**
 * Artifact transfers against their physical limits, measured in the same
 * run on the same file: storing one large file as an artifact version
 * (embedded, and remote through `wanllmdb serve`) against a raw streamed
 * disk copy with fsync; downloading and verifying it against a raw disk
 * read; the client's RSS growth while storing; and an upload killed (kill
 * -9, the CLI) half-way and run again: the share of bytes the second run sends.
 *
 *   npx tsx bench/artifact-transfer.ts [--mb 1024] [--tiny]
 *
 * Targets (issue 11): upload ≥ 0.8 × copy, download ≥ 0.8 × read, RSS
 * growth < 100 MB, resumed upload ≤ 55 % of the bytes. The file is read
 * from the page cache by every contender alike. Progress on stderr, one
 * JSON line on stdout.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Artifact, openArtifactClient, type ArtifactClient } from '@wanllmdb/sdk';
import { startBenchServer } from './lib/server.js';

const repo = fileURLToPath(new URL('..', import.meta.url));
const { values: args } = parseArgs({ options: { mb: { type: 'string' }, tiny: { type: 'boolean', default: false } } });
// Tiny still crosses the chunking threshold (32 MiB), so the resumed upload has chunks to skip.
const mb = Number(args.mb ?? (args.tiny ? 40 : 1024));
if (!Number.isSafeInteger(mb) || mb < 1) throw new Error(`--mb must be a positive whole number, got ${args.mb}`);
const bytes = mb * 2 ** 20;
const log = (m: string) => process.stderr.write(`[artifact-transfer] ${m}\n`);
const round = (n: number, d = 3) => Math.round(n * 10 ** d) / 10 ** d;

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  return { ms: performance.now() - t0, value };
}

/** Peak RSS growth (MB) over a call, sampled every 20 ms. */
async function rssGrowth<T>(fn: () => Promise<T>): Promise<{ growthMB: number; value: T }> {
  const base = process.memoryUsage().rss;
  let peak = base;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  try {
    const value = await fn();
    peak = Math.max(peak, process.memoryUsage().rss);
    return { growthMB: (peak - base) / 2 ** 20, value };
  } finally {
    clearInterval(timer);
  }
}

const root = await mkdtemp(join(tmpdir(), 'wldb-bench-art-'));
const file = join(root, 'weights.bin');
const mbps = (ms: number) => mb / (ms / 1000);

async function makeFile(): Promise<void> {
  const out = await open(file, 'w');
  for (let at = 0; at < bytes; at += 8 << 20) await out.write(randomBytes(Math.min(8 << 20, bytes - at)));
  await out.sync();
  await out.close();
}

/** The limit of an upload: the same bytes streamed to another file on the same disk, and fsynced. */
async function rawCopy(): Promise<number> {
  const to = join(root, `copy-${Date.now()}`);
  const { ms } = await timed(async () => {
    await pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), createWriteStream(to));
    const h = await open(to, 'r+');
    await h.sync();
    await h.close();
  });
  await rm(to);
  return ms;
}

/** The limit of a download: the same bytes read from disk, nothing else. */
async function rawRead(): Promise<number> {
  const { ms } = await timed(async () => {
    for await (const _ of createReadStream(file, { highWaterMark: 1 << 20 })) void _;
  });
  return ms;
}

async function measure(client: ArtifactClient, project: string, name: string, limit: { copyMs: number; readMs: number }) {
  const art = await new Artifact(name, 'model').addFile(file);
  const up = await rssGrowth(() => timed(() => client.log(project, art)));
  const version = up.value.value.version;
  const found = (await client.find(project, name))!;
  const down = await timed(() => client.download(found.id, version, join(root, `${name}-out`)));
  await rm(join(root, `${name}-out`), { recursive: true, force: true });
  return {
    uploadMBps: round(mbps(up.value.ms), 1),
    uploadRatioToCopy: round(limit.copyMs / up.value.ms),
    rssGrowthMB: round(up.growthMB, 1),
    downloadMBps: round(mbps(down.ms), 1),
    downloadRatioToRead: round(limit.readMs / down.ms),
  };
}

/**
 * `wanllmdb artifact put` of new bytes (a copy of the file with its first
 * block changed: every chunk differs), killed with SIGKILL once half its
 * bodies are up, then run again in process: the share of bytes the second run sends.
 */
async function resumeShare(server: Awaited<ReturnType<typeof startBenchServer>>, client: ArtifactClient): Promise<number> {
  const fresh = join(root, 'fresh.bin');
  await pipeline(createReadStream(file), createWriteStream(fresh));
  const h = await open(fresh, 'r+');
  for (let at = 0; at < bytes; at += 4 << 20) await h.write(randomBytes(64), 0, 64, at); // a change in every 4 MiB: no chunk is held yet
  await h.close();
  const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', 'shells/server/src/cli.ts', 'artifact', 'put', fresh, '--name', 'resumed', '--type', 'model', '--url', server.url, '--api-key', server.apiKey, '--project', 'bench'], {
    cwd: repo,
    env: { ...process.env, WANLLMDB_PROGRESS_MS: '1' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (c: Buffer) => {
      err += c;
      const m = /uploading: \d+% · (\d+)\/(\d+) bodies/g;
      let last: RegExpExecArray | null = null;
      for (let x; (x = m.exec(err)); ) last = x;
      if (last && Number(last[1]) * 2 >= Number(last[2])) {
        child.kill('SIGKILL');
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`the upload ended (${code}) before it was killed:\n${err}`)));
  });
  await new Promise((r) => child.once('close', r));
  const again = await client.log('bench', await new Artifact('resumed', 'model').addFile(fresh));
  return again.uploadedBytes / bytes;
}

log(`writing a ${mb} MiB file`);
await makeFile();
try {
  const limit = { copyMs: Math.min(await rawCopy(), await rawCopy()), readMs: Math.min(await rawRead(), await rawRead()) };
  log(`limits: copy ${round(mbps(limit.copyMs), 1)} MB/s, read ${round(mbps(limit.readMs), 1)} MB/s`);

  process.env.WANLLMDB_CACHE_DIR = join(root, 'cache-embedded');
  const emb = await openArtifactClient({ dataDir: join(root, 'embedded') });
  let embedded;
  try {
    embedded = await measure(emb.client, 'bench', 'embedded', limit);
  } finally {
    await emb.close();
  }
  log(`embedded: ${JSON.stringify(embedded)}`);

  const server = await startBenchServer();
  let remote;
  let resumedShare: number;
  try {
    process.env.WANLLMDB_CACHE_DIR = join(root, 'cache-remote');
    const rem = await openArtifactClient({ url: server.url, apiKey: server.apiKey });
    try {
      remote = await measure(rem.client, 'bench', 'remote', limit);
      log(`remote: ${JSON.stringify(remote)}`);
      resumedShare = await resumeShare(server, rem.client);
      log(`resumed upload sent ${round(100 * resumedShare, 1)} % of the bytes`);
    } finally {
      await rem.close();
    }
  } finally {
    await server.stop();
  }
  process.stdout.write(
    `${JSON.stringify({
      bench: 'artifact-transfer',
      mb,
      limit: { copyMBps: round(mbps(limit.copyMs), 1), readMBps: round(mbps(limit.readMs), 1) },
      embedded,
      remote,
      resume: { sentShare: round(resumedShare) },
    })}\n`,
  );
} finally {
  await rm(root, { recursive: true, force: true });
}
