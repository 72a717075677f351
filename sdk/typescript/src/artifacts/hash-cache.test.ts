import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HashCache, type FileStamp } from './hash-cache.js';

const dirs: string[] = [];
afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));
const cacheDir = async () => {
  const d = await mkdtemp(join(tmpdir(), 'wldb-hash-cache-'));
  dirs.push(d);
  return d;
};

const S = 1_000_000_000n;
const stamp = (over: Partial<FileStamp> = {}): FileStamp => ({ size: 3, mtimeNs: 100n * S, ctimeNs: 100n * S, ino: 7n, ...over });
const hashed = { digest: 'a'.repeat(64), size: 3, chunks: [{ digest: 'b'.repeat(64), offset: 0, size: 3 }] };

describe('HashCache: digests of local files by path and stamp', () => {
  it('answers a file whose stamp is unchanged, across instances, and nothing once any part of the stamp moved', async () => {
    const dir = await cacheDir();
    const cache = new HashCache(dir);
    await cache.set('/data/a.bin', stamp(), hashed, 200n * S);
    await cache.save();
    const again = new HashCache(dir);
    expect(await again.get('/data/a.bin', stamp())).toEqual(hashed);
    for (const moved of [{ size: 4 }, { mtimeNs: 101n * S }, { ctimeNs: 101n * S }, { ino: 8n }]) expect(await again.get('/data/a.bin', stamp(moved)), JSON.stringify(moved, (_, v) => (typeof v === 'bigint' ? String(v) : v))).toBeUndefined();
    expect(await again.get('/data/other.bin', stamp())).toBeUndefined();
  });

  it('does not remember a file changed within two seconds of its hashing (it may change again under the same stamp)', async () => {
    const dir = await cacheDir();
    const cache = new HashCache(dir);
    await cache.set('/data/racy.bin', stamp(), hashed, 101n * S);
    await cache.set('/data/racy-ctime.bin', stamp({ ctimeNs: 100n * S + S }), hashed, 102n * S);
    expect(await cache.get('/data/racy.bin', stamp())).toBeUndefined();
    expect(await cache.get('/data/racy-ctime.bin', stamp({ ctimeNs: 100n * S + S }))).toBeUndefined();
  });

  it('starts afresh from an unreadable cache file, and replaces it whole', async () => {
    const dir = await cacheDir();
    await writeFile(join(dir, 'hashes.json'), '{not json');
    const cache = new HashCache(dir);
    expect(await cache.get('/data/a.bin', stamp())).toBeUndefined();
    await cache.set('/data/a.bin', stamp(), hashed, 200n * S);
    await cache.save();
    expect(Object.keys(JSON.parse(await readFile(join(dir, 'hashes.json'), 'utf8')))).toEqual(['/data/a.bin']);
  });
});
