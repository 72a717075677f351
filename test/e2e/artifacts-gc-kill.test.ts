import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createBlobStore, createMetadataStore, type BlobStore } from '@wanllmdb/core';
import { PackedBlobStore } from '@wanllmdb/plugin-artifacts';
import { Artifact, openArtifactClient } from '@wanllmdb/sdk';
import { startServer, type ServerProcess } from './server-process.js';

const PG_URL = process.env.WLDB_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const root = mkdtempSync(join(tmpdir(), 'wldb-gc-kill-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface Backend {
  name: string;
  /** Garbage bodies to make: enough that a collection takes a while to delete them. */
  garbage: number;
  /** The server's storage arguments, and how to drop what they made. */
  storage(data: string): { args: string[]; db: string; blobs: string; drop(): Promise<void> };
}

const sqlite = (data: string) => `sqlite://${join(data, 'wanllmdb.db')}`;
const folder = (data: string) => `file://${join(data, 'blobs')}`;
const pgSchema = () => {
  const schema = `gc_kill_${randomBytes(4).toString('hex')}`;
  return {
    db: `${PG_URL}?schema=${schema}`,
    drop: async () => {
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await client.end();
    },
  };
};
const s3 = () => {
  const endpoint = inject('s3Endpoint');
  return `s3://wldb-gc-kill-${randomUUID()}?endpoint=${encodeURIComponent(endpoint)}&region=us-east-1&forcePathStyle=true&accessKeyId=S3RVER&secretAccessKey=S3RVER`;
};

const backends: Backend[] = [
  {
    name: 'SQLite + folder',
    garbage: 500,
    storage: (data) => ({ args: ['--data', data], db: sqlite(data), blobs: folder(data), drop: async () => {} }),
  },
  {
    name: 'PostgreSQL + folder',
    garbage: 500,
    storage: (data) => {
      const { db, drop } = pgSchema();
      return { args: ['--data', data, '--db', db], db, blobs: folder(data), drop };
    },
  },
  {
    name: 'PostgreSQL + S3',
    garbage: 250,
    storage: (data) => {
      const { db, drop } = pgSchema();
      const blobs = s3();
      return { args: ['--data', data, '--db', db, '--blobs', blobs], db, blobs, drop };
    },
  },
];

/** Writes `files` (relative path → bytes) under a new folder. */
function folderOf(name: string, files: Record<string, Buffer>): string {
  const dir = join(root, `${name}-${randomBytes(3).toString('hex')}`);
  for (const [path, bytes] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), bytes);
  }
  return dir;
}

async function listed(store: BlobStore): Promise<Set<string>> {
  const out = new Set<string>();
  for await (const b of store.list()) out.add(b.digest);
  return out;
}

/**
 * kill -9 of a real `wanllmdb serve` in the middle of an artifact garbage
 * collection, then a restart on the same data: what a crash leaves must
 * never cost a live version a byte, never leave a claim whose bytes are
 * gone, and the next collection must reclaim exactly the garbage left.
 */
describe.each(backends)('artifact gc killed mid-way on $name (real server process)', ({ garbage, storage }) => {
  it('kill -9 while deleting, restart: live versions download byte-exact, no claim lacks its bytes, the next gc reclaims exactly the rest', async () => {
    const data = join(root, `data-${randomBytes(3).toString('hex')}`);
    const { args, db, blobs, drop } = storage(data);
    // No grace: a collection may take any body nothing needs at once.
    const env = { WANLLMDB_ARTIFACT_GC_GRACE_SECONDS: '0' };
    let server: ServerProcess | undefined = await startServer(args, env);
    // Bodies as the server sees them: small ones sit in packs, so the store is read through the pack index.
    const index = await createMetadataStore(db);
    const raw = await (await createBlobStore(blobs)).namespace('artifacts');
    const namespace = new PackedBlobStore(raw, index);
    try {
      const { apiKey, headers } = await server.credentials();
      const json = { ...headers, 'content-type': 'application/json' };
      const rest = async <T>(s: ServerProcess, method: string, path: string, body?: unknown): Promise<T> => {
        const res = await fetch(s.base + path, { method, headers: json, body: body === undefined ? undefined : JSON.stringify(body) });
        const text = await res.text();
        if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
        return (text ? JSON.parse(text) : {}) as T;
      };
      const projectId = (await rest<{ data: { id: string } }>(server, 'POST', '/api/v1/projects', { name: 'gc-kill' })).data.id;

      // Live: two versions of "keep"; one body is also in the garbage (stored once, needed by a live version).
      const shared = randomBytes(300);
      const keep0: Record<string, Buffer> = { 'shared.bin': shared };
      for (let i = 0; i < 20; i++) keep0[`part/${i}.bin`] = randomBytes(100 + i * 97);
      const keep1 = { ...keep0, 'part/3.bin': randomBytes(777), 'extra.txt': Buffer.from('only in v1\n') };
      const junk: Record<string, Buffer> = { 'shared.bin': shared };
      for (let i = 0; i < garbage; i++) junk[`j/${i}.bin`] = randomBytes(64);

      let { client, close } = await openArtifactClient({ url: `grpc://127.0.0.1:${server.grpcPort}`, apiKey }, { cacheDir: join(root, `cache-${randomBytes(3).toString('hex')}`) });
      const log = async (name: string, files: Record<string, Buffer>) => {
        const art = new Artifact(name, 'dataset');
        await art.addDir(folderOf(name, files));
        return (await client.log(projectId, art)).version;
      };
      const junkVersion = await log('junk', junk);
      const v0 = await log('keep', keep0);
      const v1 = await log('keep', keep1);
      expect([v0.version, v1.version]).toEqual(['v0', 'v1']);
      const keepId = (await client.find(projectId, 'keep'))!.id;
      await client.deleteArtifact((await client.find(projectId, 'junk'))!.id);
      await close();

      // What must stay: every body of keep's versions (whole files or their chunks) and both manifests.
      const bodiesOf = async (s: ServerProcess, version: string) => {
        const files = await rest<{ data: { path: string; digest: string; chunks: { digest: string }[] }[] }>(s, 'GET', `/api/v1/artifacts/${keepId}/versions/${version}/files?limit=1000`);
        return files.data.flatMap((f) => (f.chunks.length ? f.chunks.map((c) => c.digest) : [f.digest]));
      };
      const live = new Set([...(await bodiesOf(server, 'v0')), ...(await bodiesOf(server, 'v1')), v0.digest.slice(7), v1.digest.slice(7)]);
      const all = await listed(namespace);
      const doomed = [...all].filter((d) => !live.has(d)).sort();
      expect(doomed.length).toBe(garbage + 1); // each junk body but the shared one, and junk's manifest
      expect(doomed).toContain(junkVersion.digest.slice(7));

      // A collection, killed once it has deleted some garbage but not all. It deletes in digest order (the store lists so), so watching one body is watching the state.
      const collecting = rest(server, 'POST', '/api/v1/artifacts:gc', { dryRun: false }).then(
        () => 'finished',
        () => 'cut short',
      );
      const mark = doomed[Math.floor(doomed.length * 0.3)]!;
      while (await namespace.exists(mark)) {
        if ((await Promise.race([collecting, Promise.resolve('running')])) !== 'running') throw new Error('the collection ended before it deleted the marked body');
        await new Promise((r) => setTimeout(r, 2));
      }
      expect(await server.stop('SIGKILL')).toBeNull();
      expect(await collecting).toBe('cut short');
      server = undefined;

      const afterKill = await listed(namespace);
      const left = doomed.filter((d) => afterKill.has(d));
      expect(left.length, 'the kill came mid-way: some garbage is gone, some is left').toBeGreaterThan(0);
      expect(left.length).toBeLessThan(doomed.length);
      for (const d of live) expect(afterKill.has(d), `live body ${d}`).toBe(true);

      // The tables as the crash left them: no project claims a body whose bytes are gone, and a tombstoned body has no claim.
      const meta = await createMetadataStore(db);
      let tombstones: string[];
      try {
        const claims = await meta.query<{ digest: string }>('SELECT digest FROM artifact_project_blobs WHERE confirmed = 1');
        expect(claims.filter((c) => !afterKill.has(c.digest))).toEqual([]);
        tombstones = (await meta.query<{ digest: string }>('SELECT digest FROM artifact_gc_tombstones')).map((r) => r.digest);
        const claimed = new Set(claims.map((c) => c.digest));
        expect(tombstones.filter((d) => claimed.has(d))).toEqual([]);
        expect(tombstones.filter((d) => live.has(d))).toEqual([]);
      } finally {
        await meta.close();
      }

      // Restart on the same data.
      server = await startServer(args, env);
      ({ client, close } = await openArtifactClient({ url: `grpc://127.0.0.1:${server.grpcPort}`, apiKey }, { cacheDir: join(root, `cache-${randomBytes(3).toString('hex')}`) }));
      try {
        // Every live version downloads byte-exact (a fresh cache: every body comes from the server, verified by its digest).
        for (const [v, files] of [
          [v0, keep0],
          [v1, keep1],
        ] as const) {
          const dir = await client.download(keepId, v, join(root, `got-${v.version}-${randomBytes(3).toString('hex')}`));
          for (const [path, bytes] of Object.entries(files)) expect(sha256(readFileSync(join(dir, path))), `${v.version} ${path}`).toBe(sha256(bytes));
        }
        // The project still holds every live body: a new draft naming them is asked for none.
        const draft = (await rest<{ data: { id: string } }>(server, 'POST', `/api/v1/artifacts/${keepId}/drafts`, {})).data.id;
        const entries = Object.entries(keep1).map(([path, b]) => ({ path, digest: sha256(b), size: b.length }));
        expect((await rest<{ missing: string[] }>(server, 'POST', `/api/v1/artifacts/${keepId}/files`, { draftId: draft, files: entries })).missing).toEqual([]);

        // The second collection: the crash's tombstones are finished first (their bytes go uncounted), then exactly the garbage left.
        const before = await listed(namespace);
        const tombstonedWithBytes = tombstones.filter((d) => before.has(d));
        const expected = [...before].filter((d) => !live.has(d) && !tombstones.includes(d));
        const second = await rest<{ blobs: number; deleted: number }>(server, 'POST', '/api/v1/artifacts:gc', { dryRun: false });
        expect(second).toMatchObject({ deleted: expected.length, blobs: before.size - tombstonedWithBytes.length });
        expect([...(await listed(namespace))].sort()).toEqual([...live].sort());
        expect(await rest(server, 'POST', '/api/v1/artifacts:gc', { dryRun: true })).toMatchObject({ deleted: 0, blobs: live.size });
        // And no bytes are left behind in the store itself: each object is a live body, or a pack that still holds one.
        const packs = new Set((await index.query<{ pack: string }>('SELECT DISTINCT pack FROM artifact_packed_bodies')).map((r) => r.pack));
        expect((await index.query('SELECT digest FROM artifact_packs WHERE dead = 1')).length).toBe(0);
        for (const d of await listed(raw)) expect(live.has(d) || packs.has(d), `object ${d}`).toBe(true);

        const after = await createMetadataStore(db);
        try {
          expect(await after.query('SELECT digest FROM artifact_gc_tombstones')).toEqual([]);
          expect(await after.query('SELECT digest FROM artifact_gc_locks')).toEqual([]);
          const claims = (await after.query<{ digest: string }>('SELECT digest FROM artifact_project_blobs WHERE confirmed = 1')).map((r) => r.digest).sort();
          expect(claims).toEqual([...live].sort());
        } finally {
          await after.close();
        }
        // And still byte-exact after the second collection.
        const dir = await client.download(keepId, v1, join(root, `again-${randomBytes(3).toString('hex')}`));
        for (const [path, bytes] of Object.entries(keep1)) expect(readFileSync(join(dir, path)).equals(bytes), path).toBe(true);
      } finally {
        await close();
      }
    } finally {
      await server?.stop('SIGKILL');
      await namespace.close();
      await index.close();
      await drop();
    }
  }, 90_000);
});
