import { randomBytes } from 'node:crypto';
import type { BlobStore } from '@wanllmdb/core';
import { blobBackends, metadataBackends, rejection } from '@wanllmdb/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { coreServices } from '@wanllmdb/core';
import { ArtifactRepository } from './artifact-repository.js';
import { entryOf, sha256, startArtifactsKernel, type ArtifactsKernel } from './fixtures/artifacts-kernel.js';
import type { artifacts } from './gen/index.js';

type Gc = artifacts.v1.CollectGarbageResponse;

const combos = metadataBackends().flatMap((db) => blobBackends().map((blob) => ({ name: `${db.name} + ${blob.name}`, db, blob })));

/** Garbage collection of artifact bodies on every database × blob store, with no grace for claims: what keeps racing writers safe is what names a body (drafts, versions) and the digest locks. */
describe.each(combos)('artifact garbage collection on $name', ({ db, blob }) => {
  let t: ArtifactsKernel;
  let store: BlobStore;
  let namespace: BlobStore;
  let projectId = '';
  beforeAll(async () => {
    store = await blob.create();
    t = await startArtifactsKernel(db, { services: { blobStore: store }, plugin: { gcGraceSeconds: 0 } });
    namespace = await store.namespace('artifacts');
    projectId = (await t.kernel.call<{ data: { id: string } }>('wanllmdb.projects.v1.ProjectService/CreateProject', { name: 'gc' })).data.id;
  });
  afterAll(async () => {
    await namespace?.close();
    await t?.close();
    await store?.close();
  });

  const gc = (dryRun: boolean) => t.call<Gc>('CollectGarbage', { dryRun });
  const stored = async () => {
    const out: string[] = [];
    for await (const b of namespace.list()) out.push(b.digest);
    return out.sort();
  };
  const create = async (name: string) => (await t.call<{ data: artifacts.v1.Artifact }>('CreateArtifact', { projectId, name, type: 'dataset' })).data.id;

  it('reports in a dry run exactly what it then reclaims, and nothing a version needs', async () => {
    const id = await create('versions');
    const [a, b, c] = [randomBytes(1000), randomBytes(2000), randomBytes(3000)];
    const v0 = (await t.logVersion(id, { 'a.bin': a, 'b.bin': b })).commit.data;
    await t.logVersion(id, { 'a.bin': a, 'c.bin': c });
    expect(await gc(true)).toMatchObject({ deleted: 0, bytes: 0 });
    const before = await stored();
    await t.call('DeleteVersion', { artifactId: id, version: 'v0' });
    const dry = await gc(true);
    expect(await stored()).toEqual(before); // a dry run deletes nothing
    const manifest0 = v0.digest.slice('sha256:'.length);
    const manifestSize = (await namespace.stat(manifest0))!.size;
    expect(dry).toMatchObject({ dryRun: true, deleted: 2, bytes: b.length + manifestSize });
    const real = await gc(false);
    expect(real).toMatchObject({ dryRun: false, deleted: dry.deleted, bytes: dry.bytes });
    expect(await stored()).toEqual(before.filter((d) => d !== sha256(b) && d !== manifest0));
    expect((await t.download(id, 'latest', 'c.bin')).equals(c)).toBe(true);
    expect((await t.download(id, 'latest', 'a.bin')).equals(a)).toBe(true);
    expect(await gc(true)).toMatchObject({ deleted: 0 });
    // A body the project needs again must be sent again: its claim went with it.
    const again = await t.logVersion(id, { 'b.bin': b });
    expect(again.sent).toEqual([sha256(b)]);
    await t.call('DeleteArtifact', { id });
    await gc(false);
    expect(await stored()).toEqual([]);
  });

  it('leaves a tombstone when a deletion is cut short: the claims stay gone, and the next upload or collection finishes it', async () => {
    const repo = new ArtifactRepository(t.kernel.get(coreServices.db));
    const id = await create('cut-short');
    const [x, y] = [randomBytes(700), randomBytes(800)];
    await t.logVersion(id, { 'x.bin': x, 'y.bin': y });
    await t.call('DeleteVersion', { artifactId: id, version: 'v0' });
    const crash = () => Promise.reject(new Error('the process died here'));
    for (const body of [x, y]) await expect(repo.reclaim(sha256(body), Date.now() + 1, 0, crash)).rejects.toThrow('died');
    expect((await repo.tombstones()).sort()).toEqual([sha256(x), sha256(y)].sort());
    // The claims went before any byte did: the project is asked for both again, though the bytes are still stored.
    expect((await repo.missingBodies(projectId, [sha256(x), sha256(y)])).sort()).toEqual([sha256(x), sha256(y)].sort());
    expect(await namespace.exists(sha256(x))).toBe(true);
    // An upload of x meets its tombstone: the old bytes go first, then x is stored anew and downloads whole.
    expect((await t.logVersion(id, { 'x.bin': x })).sent).toEqual([sha256(x)]);
    expect((await t.download(id, 'latest', 'x.bin')).equals(x)).toBe(true);
    // The next collection finishes y's deletion.
    await gc(false);
    expect(await repo.tombstones()).toEqual([]);
    expect(await namespace.exists(sha256(y))).toBe(false);
    expect(await namespace.exists(sha256(x))).toBe(true);
  });

  it("deletes a deleted project's artifacts and claims, so a collection frees their bytes", async () => {
    const doomed = (await t.kernel.call<{ data: { id: string } }>('wanllmdb.projects.v1.ProjectService/CreateProject', { name: 'doomed-project' })).data.id;
    const id = (await t.call<{ data: artifacts.v1.Artifact }>('CreateArtifact', { projectId: doomed, name: 'gone', type: 'dataset' })).data.id;
    const body = randomBytes(900);
    await t.logVersion(id, { 'g.bin': body });
    await t.kernel.call('wanllmdb.projects.v1.ProjectService/DeleteProject', { id: doomed });
    const db = t.kernel.get(coreServices.db);
    await expect.poll(async () => Number((await db.query<{ n: number }>('SELECT COUNT(*) AS n FROM artifacts WHERE project_id = ?', [doomed]))[0]!.n)).toBe(0);
    expect(Number((await db.query<{ n: number }>('SELECT COUNT(*) AS n FROM artifact_project_blobs WHERE project_id = ?', [doomed]))[0]!.n)).toBe(0);
    await gc(false);
    expect(await namespace.exists(sha256(body))).toBe(false);
  });

  it('deletes abandoned drafts and then their bodies', async () => {
    // A kernel of its own whose drafts are abandoned at once (TTL 0 s).
    const own = await blob.create();
    const k = await startArtifactsKernel(db, { services: { blobStore: own }, plugin: { gcGraceSeconds: 0, draftTtlSeconds: 0 } });
    try {
      const project = (await k.kernel.call<{ data: { id: string } }>('wanllmdb.projects.v1.ProjectService/CreateProject', { name: 'drafts' })).data.id;
      const id = (await k.call<{ data: artifacts.v1.Artifact }>('CreateArtifact', { projectId: project, name: 'abandoned', type: 'dataset' })).data.id;
      const body = randomBytes(500);
      const draft = (await k.call<{ data: { id: string } }>('CreateDraft', { artifactId: id })).data.id;
      await k.call('AddFiles', { artifactId: id, draftId: draft, files: [entryOf('x.bin', body)] });
      await k.upload(id, draft, body);
      await new Promise((r) => setTimeout(r, 5)); // the draft is now older than its TTL
      expect(await k.call<Gc>('CollectGarbage', { dryRun: false })).toMatchObject({ draftsExpired: 1, deleted: 1, bytes: body.length });
      expect((await rejection(k.call('Commit', { artifactId: id, draftId: draft }))).code).toBe('WLDB_ERR_NOT_FOUND');
    } finally {
      await k.close();
      await own.close();
    }
  });

  it('never deletes what a racing commit needs: every committed version downloads whole', async () => {
    const id = await create('racing');
    const shared = randomBytes(4096);
    const versions: { version: string; own: Buffer }[] = [];
    let collecting = true;
    const collector = (async () => {
      let passes = 0;
      while (collecting || passes < 2) {
        await gc(false);
        passes++;
      }
    })();
    const writers = Array.from({ length: 3 }, async (_, w) => {
      for (let i = 0; i < 5; i++) {
        const own = randomBytes(100 + i);
        const { commit } = await t.logVersion(id, { 'shared.bin': shared, [`own-${w}.bin`]: own });
        versions.push({ version: commit.data.version, own });
        // Old versions go, so there is garbage to race with.
        if (i % 2 === 1) await t.call('DeleteVersion', { artifactId: id, version: versions.at(-2)!.version }).catch(() => undefined);
      }
    });
    try {
      await Promise.all(writers);
    } finally {
      collecting = false;
      await collector;
    }
    const left = await t.call<{ data: artifacts.v1.Version[] }>('ListVersions', { artifactId: id, pageSize: 100 });
    expect(left.data.length).toBeGreaterThan(0);
    for (const v of left.data) {
      const files = await t.call<artifacts.v1.ListVersionFilesResponse>('ListVersionFiles', { artifactId: id, version: v.version });
      for (const f of files.data) expect(sha256(await t.download(id, v.version, f.path)), `${v.version} ${f.path}`).toBe(f.digest);
      expect(await namespace.exists(v.digest.slice('sha256:'.length))).toBe(true);
    }
  });
});

/**
 * A commit that needs a body racing a collection that decided to delete it,
 * with the interleaving forced: on PostgreSQL a third transaction holds a
 * lock one side needs next, the other side is started and seen waiting
 * (pg_blocking_pids, never a sleep), then the hold is let go. On SQLite (one
 * writer) the two orders run one after the other. The collection is told
 * that no draft and no recent claim protects the body (as if the draft were
 * abandoned and the claim's grace over), so only the locks on the claims
 * stand between the two. Either way the outcome is one of two: the body
 * survives and the version downloads, or the commit is told the body is
 * missing — never a committed version whose body is gone.
 */
describe.each(metadataBackends())('a commit racing a collection that decided to delete its body, on $name', (db) => {
  let t: ArtifactsKernel;
  let store: BlobStore;
  let namespace: BlobStore;
  let repo: ArtifactRepository;
  let projectId = '';
  beforeAll(async () => {
    store = await blobBackends()[0]!.create();
    t = await startArtifactsKernel(db, { services: { blobStore: store }, plugin: { gcGraceSeconds: 0 } });
    namespace = await store.namespace('artifacts');
    repo = new ArtifactRepository(t.kernel.get(coreServices.db));
    projectId = (await t.kernel.call<{ data: { id: string } }>('wanllmdb.projects.v1.ProjectService/CreateProject', { name: 'gc-race' })).data.id;
  });
  afterAll(async () => {
    await namespace?.close();
    await t?.close();
    await store?.close();
  });

  /** Neither drafts nor claims pinned before this protect a body. */
  const future = () => Date.now() + 3_600_000;
  const reclaimX = (x: Buffer) => repo.reclaim(sha256(x), future(), future(), () => namespace.delete(sha256(x)));

  /** An artifact at v0 (keep.bin) whose v1 (x.bin) was deleted: x is garbage the project still holds. A draft naming both, whose AddFiles was told it lacks neither. */
  const raceSetup = async (name: string) => {
    const id = (await t.call<{ data: artifacts.v1.Artifact }>('CreateArtifact', { projectId, name, type: 'dataset' })).data.id;
    const [keep, x] = [randomBytes(300), randomBytes(500)];
    await t.logVersion(id, { 'keep.bin': keep });
    await t.logVersion(id, { 'x.bin': x });
    await t.call('DeleteVersion', { artifactId: id, version: 'v1' });
    const draftId = (await t.call<{ data: { id: string } }>('CreateDraft', { artifactId: id })).data.id;
    const addFiles = () => t.call<artifacts.v1.AddFilesResponse>('AddFiles', { artifactId: id, draftId, files: [entryOf('keep.bin', keep), entryOf('x.bin', x)] });
    return { id, keep, x, draftId, addFiles };
  };
  const versionsOf = async (id: string) => (await t.call<{ data: artifacts.v1.Version[] }>('ListVersions', { artifactId: id, pageSize: 100 })).data.map((v) => v.version).sort();

  /** After the commit was told x is missing: nothing was committed, x's bytes are gone, and sending x again commits a version that downloads whole. */
  const toldMissing = async (s: Awaited<ReturnType<typeof raceSetup>>, commit: Promise<unknown>) => {
    const err = await rejection(commit);
    expect(err.code).toBe('WLDB_ERR_VALIDATION');
    expect(err.message).toContain(sha256(s.x));
    expect(await versionsOf(s.id)).toEqual(['v0']);
    expect(await namespace.exists(sha256(s.x))).toBe(false);
    expect(await repo.tombstones()).not.toContain(sha256(s.x));
    expect((await s.addFiles()).missing).toEqual([sha256(s.x)]);
    await t.upload(s.id, s.draftId, s.x);
    const done = await t.call<artifacts.v1.CommitResponse>('Commit', { artifactId: s.id, draftId: s.draftId });
    expect(done.data!.version).toBe('v2');
    expect((await t.download(s.id, 'v2', 'x.bin')).equals(s.x)).toBe(true);
    expect((await t.download(s.id, 'v2', 'keep.bin')).equals(s.keep)).toBe(true);
  };
  /** After the collection waited for the commit: x survives, v2 downloads whole, and a real collection leaves it too. */
  const survived = async (s: Awaited<ReturnType<typeof raceSetup>>, commit: Promise<artifacts.v1.CommitResponse>, reclaimed: Promise<boolean>) => {
    expect(await reclaimed).toBe(false);
    expect((await commit).data!.version).toBe('v2');
    expect(await namespace.exists(sha256(s.x))).toBe(true);
    expect(await repo.tombstones()).not.toContain(sha256(s.x));
    expect((await t.download(s.id, 'v2', 'x.bin')).equals(s.x)).toBe(true);
    await t.call<Gc>('CollectGarbage', { dryRun: false });
    expect((await t.download(s.id, 'v2', 'x.bin')).equals(s.x)).toBe(true);
    expect(await repo.missingBodies(projectId, [sha256(s.x)])).toEqual([]); // and the project still holds it
  };

  it('the collection decides first (AddFiles already answered that the project holds the body): the commit is told the body is missing', async () => {
    const s = await raceSetup('serial-gc-first');
    expect((await s.addFiles()).missing).toEqual([]);
    expect(await reclaimX(s.x)).toBe(true);
    await toldMissing(s, t.call('Commit', { artifactId: s.id, draftId: s.draftId }));
  });

  it('the commit goes first: the collection then sees the version and spares the body', async () => {
    const s = await raceSetup('serial-commit-first');
    expect((await s.addFiles()).missing).toEqual([]);
    const commit = t.call<artifacts.v1.CommitResponse>('Commit', { artifactId: s.id, draftId: s.draftId });
    await commit;
    await survived(s, commit, reclaimX(s.x));
  });

  describe.runIf(db.name === 'postgres')('interleaved inside each other’s transactions (PostgreSQL row locks)', () => {
    const sql = () => t.kernel.get(coreServices.db);

    /** Runs `hold` in a transaction of its own, kept open until release() commits or abort() rolls it back. */
    const holding = async (hold: (tx: Pick<ReturnType<typeof sql>, 'query' | 'run'>) => Promise<unknown>) => {
      let end!: (commit: boolean) => void;
      const until = new Promise<boolean>((r) => (end = r));
      let held!: (pid: number) => void;
      const pid = new Promise<number>((r) => (held = r));
      const done = sql()
        .transaction(async (tx) => {
          const [row] = await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
          await hold(tx);
          held(Number(row!.pid));
          if (!(await until)) throw new Error('rolled back on purpose');
        })
        .catch((err: unknown) => {
          if (!String(err).includes('on purpose')) throw err;
        });
      return {
        pid: await Promise.race([pid, done.then(() => Promise.reject(new Error('the holding transaction ended early')))]),
        release: async () => (end(true), done),
        abort: async () => (end(false), done),
      };
    };
    /** Waits until a backend whose statement contains `fragment` is blocked by backend `pid`; resolves the waiter's pid. */
    const waitingOn = async (pid: number, fragment: string) => {
      let waiter = 0;
      await expect
        .poll(
          async () => {
            const rows = await sql().query<{ pid: number; query: string }>('SELECT pid, query FROM pg_stat_activity WHERE ? = ANY(pg_blocking_pids(pid))', [pid]);
            waiter = Number(rows.find((r) => r.query.includes(fragment))?.pid ?? 0);
            return waiter;
          },
          { timeout: 15_000, message: `a backend running "${fragment}" waits on backend ${pid}` },
        )
        .toBeGreaterThan(0);
      return waiter;
    };

    it('the collection deletes the claim; AddFiles, answered before that commits, says the body is held; the commit waits on the claim, then is told it is missing', async () => {
      const s = await raceSetup('locked-gc-first');
      // Holds x's tombstone key: the collector stops right after deleting x's claims, before its transaction commits.
      const hold = await holding((tx) => tx.run('INSERT INTO artifact_gc_tombstones (digest, at) VALUES (?, ?)', [sha256(s.x), 0]));
      try {
        const gc = t.call<Gc>('CollectGarbage', { dryRun: false });
        gc.catch(() => undefined);
        const collector = await waitingOn(hold.pid, 'artifact_gc_tombstones');
        // The claim's deletion is not committed: the project still holds x as far as anyone can see.
        expect((await s.addFiles()).missing).toEqual([]);
        const commit = t.call('Commit', { artifactId: s.id, draftId: s.draftId });
        commit.catch(() => undefined);
        // The commit locks its claims and waits for the collector's transaction, which deleted x's.
        await waitingOn(collector, 'artifact_project_blobs');
        await hold.abort();
        expect((await gc).deleted).toBeGreaterThanOrEqual(1);
        await toldMissing(s, commit);
      } finally {
        await hold.abort(); // a failed assertion must not leave the others waiting
      }
    });

    it('the commit holds the claims; the collection waits on them, then sees the version and spares the body', async () => {
      const s = await raceSetup('locked-commit-first');
      expect((await s.addFiles()).missing).toEqual([]);
      // Holds the "latest" alias row: the commit stops after locking its claims and writing its version, before it commits.
      const hold = await holding((tx) => tx.query("SELECT alias FROM artifact_aliases WHERE artifact_id = ? AND alias = 'latest' FOR UPDATE", [s.id]));
      try {
        const commit = t.call<artifacts.v1.CommitResponse>('Commit', { artifactId: s.id, draftId: s.draftId });
        commit.catch(() => undefined);
        const committer = await waitingOn(hold.pid, 'artifact_aliases');
        const reclaimed = reclaimX(s.x);
        reclaimed.catch(() => undefined);
        // The collector locks x's claims to decide, and waits for the commit that holds them.
        await waitingOn(committer, 'artifact_project_blobs');
        await hold.release();
        await survived(s, commit, reclaimed);
      } finally {
        await hold.abort(); // a failed assertion must not leave the others waiting
      }
    });
  });
});
