import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Artifact, init, openArtifactClient, type ArtifactClient, type TransferProgress } from './index.js';

const root = mkdtempSync(join(tmpdir(), 'wldb-sdk-art-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const data = join(root, 'data');
const cacheDir = join(root, 'cache');
process.env.WANLLMDB_CACHE_DIR = cacheDir;

const opts = { dir: data, project: 'mnist', captureConsole: false, systemMetrics: false, git: false, handleExit: false } as const;

/** `n` pseudo-random bytes from a fixed seed (xorshift32). */
function seededBytes(n: number, seed: number): Buffer {
  const out = Buffer.alloc(n);
  let x = seed | 0 || 1;
  for (let i = 0; i < n; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out.writeInt32LE(x | 0, i);
  }
  return out;
}

/** A folder of files (name → bytes). */
function folder(name: string, files: Record<string, Buffer>): string {
  const dir = join(root, name);
  for (const [path, bytes] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), bytes);
  }
  return dir;
}

describe('artifacts from the SDK (embedded store)', () => {
  let client: ArtifactClient;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ client, close } = await openArtifactClient({ mode: 'embedded', dataDir: data }));
  });
  afterAll(() => close?.());

  it('a run logs a dataset, another uses it and logs a model, and the lineage shows both edges', async () => {
    const raw = { 'train/a.txt': Buffer.from('alpha'), 'train/b.txt': Buffer.from('bravo'), 'labels.csv': Buffer.from('a,0\nb,1\n') };
    const prepare = await init({ ...opts, name: 'prepare' });
    const art = new Artifact('mnist-raw', 'dataset', { metadata: { rows: 2 } });
    await art.addDir(folder('raw', raw));
    const v0 = await prepare.logArtifact(art, { aliases: ['v1.0'] });
    expect(v0).toMatchObject({ version: 'v0', fileCount: 3, aliases: ['latest', 'v1.0'] });
    await prepare.finish();

    const train = await init({ ...opts, name: 'train' });
    const used = train.useArtifact('mnist-raw:v1.0');
    const dir = await used.download(join(root, 'got'));
    for (const [path, bytes] of Object.entries(raw)) expect(readFileSync(join(dir, path))).toEqual(bytes);
    expect((await used.version()).id).toBe(v0.id);
    const model = new Artifact('classifier', 'model');
    await model.addFile(folder('model', { 'weights.bin': randomBytes(1000) }) + '/weights.bin');
    const m0 = await train.logArtifact(model);
    await expect(train.useArtifact('nope:latest').version()).rejects.toMatchObject({ code: 'WLDB_ERR_NOT_FOUND' });
    await train.finish();
    await expect(train.logArtifact(model)).rejects.toThrow(/finish/);

    const mnist = await client.find('mnist', 'classifier');
    const graph = await client.lineage(mnist!.id, m0.version, { direction: 'upstream', hops: 3 });
    expect(graph.edges.map((e) => `${e.from.split(':')[0]} -${e.kind}-> ${e.to.split(':')[0]}`).sort()).toEqual(['run -output-> version', 'run -output-> version', 'version -input-> run']);
  });

  it('sends only what changed: nothing for the same files, one body for one changed file, a few chunks for an edit inside a large file', async () => {
    const files = { 'a.bin': randomBytes(10_000), 'b.bin': randomBytes(10_000) };
    const dir = folder('dedup', files);
    const first = await client.log('mnist', await new Artifact('dedup', 'dataset').addDir(dir));
    expect(first.uploadedBytes).toBe(20_000);
    const same = await client.log('mnist', await new Artifact('dedup', 'dataset').addDir(dir));
    expect(same).toMatchObject({ created: false, uploadedBytes: 0, version: { version: 'v0' } });
    writeFileSync(join(dir, 'b.bin'), randomBytes(10_000));
    expect((await client.log('mnist', await new Artifact('dedup', 'dataset').addDir(dir))).uploadedBytes).toBe(10_000);

    // 48 MiB in content-defined chunks: a byte changed in the middle re-sends only the chunks around it.
    const big = seededBytes(48 * 1024 * 1024, 7); // fixed bytes: the chunk boundaries, and so what one edit re-sends, are the same every run
    const bigDir = folder('big', { 'model.bin': big });
    const whole = await client.log('mnist', await new Artifact('big', 'model').addDir(bigDir));
    expect(whole.uploadedBytes).toBe(big.length);
    big[24 * 1024 * 1024] ^= 0xff;
    writeFileSync(join(bigDir, 'model.bin'), big);
    const edited = await client.log('mnist', await new Artifact('big', 'model').addDir(bigDir));
    expect(edited.uploadedBytes).toBeGreaterThan(0);
    expect(edited.uploadedBytes).toBeLessThan(big.length * 0.55);
    // Download goes through the cache: the second download fetches nothing.
    const art = await client.find('mnist', 'big');
    const progress: TransferProgress[] = [];
    const onProgress = (p: TransferProgress) => progress.push(p);
    const once = await client.download(art!.id, edited.version, join(root, 'big-1'), { onProgress });
    expect(readFileSync(join(once, 'model.bin')).equals(big)).toBe(true);
    expect(progress.at(-1)).toMatchObject({ phase: 'downloading', done: 1, total: 1, bytes: big.length });
    progress.length = 0;
    const twice = await client.download(art!.id, edited.version, join(root, 'big-2'), { onProgress });
    expect(readFileSync(join(twice, 'model.bin')).equals(big)).toBe(true);
    expect(progress.at(-1)).toMatchObject({ bytes: 0 });
  }, 120_000);

  it('trims the cache to its size, least recently used first', async () => {
    const before = await client.trimCache(Number.MAX_SAFE_INTEGER);
    expect(before.bytes).toBeGreaterThan(48 * 1024 * 1024);
    const after = await client.trimCache(1024 * 1024);
    expect(after.bytes).toBeLessThanOrEqual(1024 * 1024);
    expect(after.removed).toBeGreaterThan(0);
  });
});
