import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, open, readdir, rename, rm, stat, utimes } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import type { artifacts } from '@wanllmdb/plugin-artifacts';
import { fromPayload, sdkError, toPayload } from '../errors.js';
import type { MethodCalls } from '../transport/transport.js';
import type { Artifact } from './artifact.js';
import { hashFile, type FileChunk } from './chunking.js';
import { HashCache } from './hash-cache.js';
import { fetchReference, resolveReferences, s3Client, type S3ReferenceOptions } from './references.js';

const SERVICE = 'wanllmdb.artifacts.v1.ArtifactService';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ENTRIES_PER_CALL = 10_000;
/** Bodies up to this size are sent SMALL_CONCURRENCY at once: each costs a round trip and a durable write on the server, not bandwidth. */
const SMALL_BODY = 64 * 1024;
const SMALL_CONCURRENCY = 16;
/** A pack holds at most this many bodies, or this many bytes (the server takes 10,000 and 64 MiB). */
const PACK_BODIES = 2_000;
const PACK_BYTES = 8 * 1024 * 1024;

/** Small bodies grouped into packs, in order. */
function packBodies<T extends { size: number }>(bodies: readonly T[]): T[][] {
  const packs: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const b of bodies) {
    if (current.length && (current.length >= PACK_BODIES || bytes + b.size > PACK_BYTES)) packs.push(current), (current = []), (bytes = 0);
    current.push(b);
    bytes += b.size;
  }
  if (current.length) packs.push(current);
  return packs;
}

/** `size` bytes of a file from `offset`. */
async function readRange(path: string, offset: number, size: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(size);
    let got = 0;
    while (got < size) {
      const { bytesRead } = await fh.read(buf, got, size - got, offset + got);
      if (!bytesRead) throw await sdkError('VALIDATION', `${path} is shorter than when it was added to the artifact; add it again.`, [{ field: 'path', message: 'changed' }]);
      got += bytesRead;
    }
    return buf;
  } finally {
    await fh.close();
  }
}
const UPLOAD_PIECE = 1 << 20;

type Version = artifacts.v1.Version;

/** What a long transfer reports as it goes (the CLI draws a bar from it). */
export interface TransferProgress {
  /** hashing the files, sending the manifest (AddFiles), uploading bodies, committing; or downloading. */
  phase: 'hashing' | 'manifest' | 'uploading' | 'committing' | 'downloading';
  done: number;
  total: number;
  /** Bytes moved so far (uploads and downloads). */
  bytes: number;
}

export interface ArtifactClientOptions {
  /** Where downloaded bodies are kept, by digest (default WANLLMDB_CACHE_DIR or ~/.cache/wanllmdb/artifacts). */
  cacheDir?: string;
  /** The cache is trimmed to this many bytes, least recently used first (default WANLLMDB_CACHE_MAX_BYTES or 10 GiB). */
  cacheMaxBytes?: number;
  /** Bodies uploaded or downloaded at once (default 4). */
  concurrency?: number;
  onProgress?: (p: TransferProgress) => void;
  /** Where s3:// references are read (default: the standard AWS environment variables). */
  s3?: S3ReferenceOptions;
}

/** `name`, `name:alias`, `name:v3`, or `project/name:alias`. */
export function parseArtifactRef(ref: string): { project?: string; name: string; version: string } {
  const m = /^(?:([^/:]+)\/)?([^/:]+)(?::([^/:]+))?$/.exec(ref.trim());
  if (!m) throw new Error(`"${ref}" is not an artifact reference: use name, name:alias, name:v3 or project/name:alias`);
  return { ...(m[1] ? { project: m[1] } : {}), name: m[2]!, version: m[3] ?? 'latest' };
}

/** Runs `work` over `items`, at most `n` at a time. */
async function pool<T>(items: readonly T[], n: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) await work(items[next++]!);
  }));
}

/**
 * Artifacts from a script or the CLI, over the embedded store or a server
 * (both offer the same calls): logs a version sending only the bodies the
 * project lacks, downloads one into a folder through a verified,
 * size-capped, content-addressed cache.
 */
export class ArtifactClient {
  private readonly cacheDir: string;
  /** Digests of local files hashed before, by path and stamp. */
  private readonly hashes: HashCache;
  private readonly cacheMaxBytes: number;
  private readonly concurrency: number;
  /** Small files hashed, and small bodies uploaded, at once. */
  private readonly smallConcurrency: number;

  constructor(
    private readonly calls: MethodCalls,
    private readonly opts: ArtifactClientOptions = {},
  ) {
    this.cacheDir = opts.cacheDir ? resolve(opts.cacheDir) : defaultCacheDir();
    this.hashes = new HashCache(this.cacheDir);
    this.cacheMaxBytes = opts.cacheMaxBytes ?? (Number(process.env.WANLLMDB_CACHE_MAX_BYTES) || 10 * 2 ** 30);
    this.concurrency = opts.concurrency ?? 4;
    this.smallConcurrency = Math.max(this.concurrency, SMALL_CONCURRENCY);
  }

  /** A call whose failure is the catalogued WldbError, wherever it happened. */
  private async call<T>(method: string, request: unknown): Promise<T> {
    try {
      return await this.calls.unary<T>(`${SERVICE}/${method}`, request);
    } catch (err) {
      throw await fromPayload(toPayload(err));
    }
  }

  /** The artifact named `name` in the project (exact name), or undefined. */
  async find(projectId: string, name: string): Promise<artifacts.v1.Artifact | undefined> {
    const page = await this.call<artifacts.v1.ListArtifactsResponse>('ListArtifacts', { projectId, name, pageSize: 1 });
    return page.data[0];
  }

  /**
   * Stores `artifact` as its next version (in `projectId`, an id or a name;
   * a named project that does not exist is created): hashes every file (large ones
   * as content-defined chunks), sends the manifest, uploads only what the
   * project lacks, commits. A commit equal to the latest version makes none.
   */
  async log(
    projectId: string,
    artifact: Artifact,
    o: { aliases?: string[]; runId?: string; onProgress?: (p: TransferProgress) => void } = {},
  ): Promise<{ version: Version; created: boolean; uploadedBytes: number }> {
    const progress = o.onProgress ?? this.opts.onProgress;
    // References first: a bad or unreachable one fails the call before anything is made on the server.
    const references = artifact.references.length ? await resolveReferences(artifact.references, { s3: this.opts.s3 }) : [];
    const seen = new Set(artifact.entries.keys());
    for (const r of references) {
      if (seen.has(r.path)) {
        throw await sdkError('VALIDATION', `The artifact has two entries at ${JSON.stringify(r.path)} (a reference, ${r.ref!.uri}, and another file or reference); give one of them another path ({ name }).`, [
          { field: 'path', message: 'repeated' },
        ]);
      }
      seen.add(r.path);
    }
    const create = () =>
      this.call<artifacts.v1.ArtifactResponse>('CreateArtifact', {
        projectId,
        name: artifact.name,
        type: artifact.type,
        description: artifact.options.description ?? '',
        metadata: artifact.options.metadata ?? {},
        tags: artifact.options.tags ?? [],
        existOk: true,
      });
    let made: artifacts.v1.ArtifactResponse;
    try {
      made = await create();
    } catch (err) {
      // A project named (not an id) that does not exist yet is created, as init() does for runs.
      if ((err as { code?: string }).code !== 'WLDB_ERR_NOT_FOUND' || UUID.test(projectId)) throw err;
      await this.calls.unary('wanllmdb.projects.v1.ProjectService/CreateProject', { name: projectId }).catch(async (e: unknown) => {
        if ((e as { code?: string }).code !== 'WLDB_ERR_ALREADY_EXISTS') throw await fromPayload(toPayload(e));
      });
      made = await create();
    }
    const art = made.data!;
    const entries = [...artifact.entries.values()];
    const total = entries.length;
    const bodies = new Map<string, { source: string; offset: number; size: number }>();
    const manifest: artifacts.v1.FileEntry[] = [];
    let hashed = 0;
    const hashedAt = BigInt(Date.now()) * 1_000_000n;
    await pool(entries, this.smallConcurrency, async (e) => {
      let h = e.stamp && (await this.hashes.get(e.source, e.stamp));
      if (!h) {
        h = await hashFile(e.source, e.size);
        if (e.stamp && h.size === e.stamp.size) await this.hashes.set(e.source, e.stamp, h, hashedAt);
      }
      manifest.push({ path: e.path, digest: h.digest, size: h.size, mode: e.mode, chunks: h.chunks.map((c: FileChunk) => ({ digest: c.digest, size: c.size })) });
      if (h.chunks.length) for (const c of h.chunks) bodies.set(c.digest, { source: e.source, offset: c.offset, size: c.size });
      else bodies.set(h.digest, { source: e.source, offset: 0, size: h.size });
      progress?.({ phase: 'hashing', done: ++hashed, total, bytes: 0 });
    });
    manifest.push(...references); // no body: nothing to upload
    await this.hashes.save().catch(() => undefined); // a cache: failing to keep it costs a re-hash next time, nothing else
    const draft = (await this.call<artifacts.v1.DraftResponse>('CreateDraft', { artifactId: art.id, description: artifact.options.description ?? '' })).data!;
    const missing = new Set<string>();
    for (let i = 0; i < manifest.length; i += ENTRIES_PER_CALL) {
      progress?.({ phase: 'manifest', done: i, total: manifest.length, bytes: 0 });
      const res = await this.call<artifacts.v1.AddFilesResponse>('AddFiles', { artifactId: art.id, draftId: draft.id, files: manifest.slice(i, i + ENTRIES_PER_CALL) });
      for (const d of res.missing) missing.add(d);
    }
    const todo = [...missing].map((digest) => ({ digest, ...bodies.get(digest)! }));
    let uploaded = 0;
    let bytes = 0;
    const send = async (b: (typeof todo)[number]) => {
      await this.upload(art.id, draft.id, b, (n) => {
        bytes += n;
        progress?.({ phase: 'uploading', done: uploaded, total: todo.length, bytes });
      });
      progress?.({ phase: 'uploading', done: ++uploaded, total: todo.length, bytes });
    };
    // Small bodies cost round trips and durable writes, not bandwidth: they go in packs, many per stream and per stored object.
    progress?.({ phase: 'uploading', done: 0, total: todo.length, bytes: 0 });
    const packs = packBodies(todo.filter((b) => b.size <= SMALL_BODY));
    const sendPack = async (pack: (typeof packs)[number]) => {
      bytes += await this.uploadPack(art.id, draft.id, pack);
      uploaded += pack.length;
      progress?.({ phase: 'uploading', done: uploaded, total: todo.length, bytes });
    };
    await Promise.all([pool(packs, this.concurrency, sendPack), pool(todo.filter((b) => b.size > SMALL_BODY), this.concurrency, send)]);
    progress?.({ phase: 'committing', done: 0, total: 1, bytes });
    const committed = await this.call<artifacts.v1.CommitResponse>('Commit', { artifactId: art.id, draftId: draft.id, aliases: o.aliases ?? [], runId: o.runId ?? '' });
    return { version: committed.data!, created: committed.created, uploadedBytes: bytes };
  }

  /** Sends small bodies as one pack (read whole: a pack is a few MiB); resolves to the bytes sent. */
  private async uploadPack(artifactId: string, draftId: string, pack: readonly { digest: string; source: string; offset: number; size: number }[]): Promise<number> {
    const parts: Buffer[] = new Array<Buffer>(pack.length);
    await pool([...pack.keys()], SMALL_CONCURRENCY, async (i) => {
      parts[i] = await readRange(pack[i]!.source, pack[i]!.offset, pack[i]!.size);
    });
    const digest = createHash('sha256');
    for (const p of parts) digest.update(p);
    const head = { artifactId, draftId, digest: digest.digest('hex'), bodies: pack.map((b) => ({ digest: b.digest, size: b.size })) };
    const whole = Buffer.concat(parts);
    async function* messages() {
      for (let at = 0; at < whole.length || at === 0; at += UPLOAD_PIECE) {
        yield at === 0 ? { ...head, data: whole.subarray(0, UPLOAD_PIECE) } : { artifactId: '', draftId: '', digest: '', bodies: [], data: whole.subarray(at, at + UPLOAD_PIECE) };
        if (!whole.length) return;
      }
    }
    try {
      await this.calls.clientStream(`${SERVICE}/UploadPack`, messages());
    } catch (err) {
      throw await fromPayload(toPayload(err));
    }
    return whole.length;
  }

  private async upload(artifactId: string, draftId: string, b: { digest: string; source: string; offset: number; size: number }, moved: (n: number) => void): Promise<void> {
    async function* messages() {
      let first = true;
      if (b.size === 0) {
        yield { artifactId, draftId, digest: b.digest, data: new Uint8Array(0) };
        return;
      }
      for await (const data of createReadStream(b.source, { start: b.offset, end: b.offset + b.size - 1, highWaterMark: UPLOAD_PIECE }) as AsyncIterable<Buffer>) {
        yield first ? { artifactId, draftId, digest: b.digest, data } : { artifactId: '', draftId: '', digest: '', data };
        first = false;
        moved(data.length);
      }
    }
    try {
      await this.calls.clientStream(`${SERVICE}/UploadBlob`, messages());
    } catch (err) {
      throw await fromPayload(toPayload(err));
    }
  }

  /** An artifact and one of its versions, by reference (`name:alias`, `project/name:v3` …) within `projectId`. */
  async resolve(projectId: string, ref: string): Promise<{ artifact: artifacts.v1.Artifact; version: Version }> {
    const parsed = parseArtifactRef(ref);
    const artifact = await this.find(parsed.project ?? projectId, parsed.name);
    if (!artifact) throw await sdkError('NOT_FOUND', `There is no artifact "${parsed.name}" in project ${parsed.project ?? projectId}.`, [{ field: 'ref', message: 'no such artifact' }]);
    return { artifact, version: await this.version(artifact.id, parsed.version) };
  }

  /** A project's artifacts (of one type if given), a page of up to 100. */
  async list(projectId: string, o: { type?: string; search?: string; page?: number } = {}): Promise<artifacts.v1.ListArtifactsResponse> {
    return this.call('ListArtifacts', { projectId, type: o.type ?? '', search: o.search ?? '', page: o.page ?? 1, pageSize: 100 });
  }

  async versions(artifactId: string, page = 1): Promise<artifacts.v1.ListVersionsResponse> {
    return this.call('ListVersions', { artifactId, page, pageSize: 100 });
  }

  async diff(artifactId: string, from: string, to: string): Promise<artifacts.v1.DiffVersionsResponse> {
    return this.call('DiffVersions', { artifactId, from, to });
  }

  async setAlias(artifactId: string, alias: string, version: string): Promise<Version> {
    return (await this.call<artifacts.v1.VersionResponse>('SetAlias', { artifactId, alias, version })).data!;
  }

  async deleteVersion(artifactId: string, version: string): Promise<void> {
    await this.call('DeleteVersion', { artifactId, version });
  }

  async deleteArtifact(artifactId: string): Promise<void> {
    await this.call('DeleteArtifact', { id: artifactId });
  }

  // ---------------------------------------------------------------- retention (by artifact name within a project)

  /** The artifact named `name` (`name` or `project/name`) in `projectId`, or NOT_FOUND. */
  private async named(projectId: string, name: string): Promise<artifacts.v1.Artifact> {
    const parsed = parseArtifactRef(name);
    const artifact = await this.find(parsed.project ?? projectId, parsed.name);
    if (!artifact) throw await sdkError('NOT_FOUND', `There is no artifact "${parsed.name}" in project ${parsed.project ?? projectId}.`, [{ field: 'name', message: 'no such artifact' }]);
    return artifact;
  }

  /**
   * Sets the artifact's own retention rule (it replaces its type's project
   * default): keep the `keepLast` newest, versions with an alias
   * (`keepAliased`, default true), and none older than `maxAgeSeconds`
   * unless kept so. Applied after each commit and by each collection; `applyRetention` applies it now.
   */
  async setRetention(projectId: string, name: string, rules: { keepLast?: number; keepAliased?: boolean; maxAgeSeconds?: number }): Promise<artifacts.v1.RetentionResponse> {
    const a = await this.named(projectId, name);
    return this.call('SetRetention', { artifactId: a.id, keepLast: rules.keepLast ?? 0, maxAgeSeconds: rules.maxAgeSeconds ?? 0, ...(rules.keepAliased === undefined ? {} : { keepAliased: rules.keepAliased }) });
  }

  /** The artifact's own rule (`data`), the rule in force (`effective`) and where it comes from (`source`). */
  async getRetention(projectId: string, name: string): Promise<artifacts.v1.RetentionResponse> {
    return this.call('GetRetention', { artifactId: (await this.named(projectId, name)).id });
  }

  /** Removes the artifact's own rule: its type's project default (if any) applies again. */
  async deleteRetention(projectId: string, name: string): Promise<void> {
    await this.call('DeleteRetention', { artifactId: (await this.named(projectId, name)).id });
  }

  /** A project's default rules, one per artifact type. */
  async typeRetention(projectId: string): Promise<artifacts.v1.RetentionRule[]> {
    return (await this.call<artifacts.v1.ListTypeRetentionResponse>('ListTypeRetention', { projectId })).data;
  }

  async deleteTypeRetention(projectId: string, type: string): Promise<void> {
    await this.call('DeleteTypeRetention', { projectId, type });
  }

  /** A project's default rule for every artifact of `type` that has none of its own. */
  async setTypeRetention(projectId: string, type: string, rules: { keepLast?: number; keepAliased?: boolean; maxAgeSeconds?: number }): Promise<artifacts.v1.RetentionRule> {
    const req = { projectId, type, keepLast: rules.keepLast ?? 0, maxAgeSeconds: rules.maxAgeSeconds ?? 0, ...(rules.keepAliased === undefined ? {} : { keepAliased: rules.keepAliased }) };
    return (await this.call<artifacts.v1.TypeRetentionResponse>('SetTypeRetention', req)).data!;
  }

  /** Applies the rule in force now; `dryRun` only reports the versions it would delete and the bytes the next gc would free. */
  async applyRetention(projectId: string, name: string, o: { dryRun?: boolean } = {}): Promise<artifacts.v1.VersionDeletionResponse> {
    return this.call('ApplyRetention', { artifactId: (await this.named(projectId, name)).id, dryRun: !!o.dryRun });
  }

  /**
   * Deletes many versions on the server: `versions` (up to 10,000 names
   * such as "v3"), or a filter — `olderThan` (a Date or RFC 3339) and/or
   * `keepLast`, with `keepAliased` (default true); a filter never deletes
   * the latest version. Bodies go at the next gc.
   */
  async deleteVersions(
    projectId: string,
    name: string,
    filter: { versions?: string[]; olderThan?: Date | string; keepLast?: number; keepAliased?: boolean; dryRun?: boolean },
  ): Promise<artifacts.v1.VersionDeletionResponse> {
    const olderThan = filter.olderThan instanceof Date ? filter.olderThan.toISOString() : (filter.olderThan ?? '');
    return this.call('DeleteVersions', {
      artifactId: (await this.named(projectId, name)).id,
      versions: filter.versions ?? [],
      olderThan,
      keepLast: filter.keepLast ?? 0,
      dryRun: !!filter.dryRun,
      ...(filter.keepAliased === undefined ? {} : { keepAliased: filter.keepAliased }),
    });
  }

  /** Deletes the bodies nothing needs (a site administrator's call); `dryRun` only reports. */
  async collectGarbage(dryRun: boolean): Promise<artifacts.v1.CollectGarbageResponse> {
    return this.call('CollectGarbage', { dryRun });
  }

  /** The version `ref` ("v3", "3" or an alias) of an artifact. */
  async version(artifactId: string, ref: string): Promise<Version> {
    return (await this.call<artifacts.v1.VersionResponse>('GetVersion', { artifactId, version: ref })).data!;
  }

  /** The runs and versions around a version, `hops` edges each way (see GetLineage). */
  async lineage(artifactId: string, version: string, o: { direction?: 'upstream' | 'downstream' | 'both'; hops?: number } = {}): Promise<artifacts.v1.LineageResponse> {
    return this.call<artifacts.v1.LineageResponse>('GetLineage', { artifactId, version, direction: o.direction ?? 'both', ...(o.hops ? { hops: o.hops } : {}) });
  }

  /** Records that a run used a version (the lineage's input edge). */
  async use(artifactId: string, ref: string, runId: string): Promise<Version> {
    return (await this.call<artifacts.v1.VersionResponse>('UseArtifact', { artifactId, version: ref, runId })).data!;
  }

  /**
   * Downloads a version into `dir` (created if needed): every file through
   * the cache, verified by sha256, written only inside `dir`. Resolves to
   * `dir`. Files already in the cache are not fetched again. References are
   * fetched from their source and checked against what the version
   * recorded (WLDB_ERR_BLOB_DIGEST_MISMATCH when the target changed).
   */
  async download(artifactId: string, version: Version, dir: string, o: { onProgress?: (p: TransferProgress) => void } = {}): Promise<string> {
    const progress = o.onProgress ?? this.opts.onProgress;
    const target = resolve(dir);
    await mkdir(target, { recursive: true });
    const files: artifacts.v1.FileEntry[] = [];
    for (let cursor = ''; ; ) {
      const page = await this.call<artifacts.v1.ListVersionFilesResponse>('ListVersionFiles', { artifactId, version: version.version, cursor, limit: 10_000 });
      files.push(...page.data);
      if (!page.nextCursor) break;
      cursor = page.nextCursor;
    }
    let done = 0;
    let bytes = 0;
    let s3: ReturnType<typeof s3Client> | undefined;
    try {
      await pool(files, this.concurrency, async (f) => {
        const into = resolve(target, ...f.path.split('/'));
        // Zip-slip: a path that would land outside the folder is refused, whatever the server sent.
        if (!into.startsWith(target + sep)) throw await sdkError('VALIDATION', `The artifact names a file outside the download folder (${JSON.stringify(f.path)}); nothing was written for it.`, [{ field: 'path', message: 'outside the folder' }]);
        const moved = (n: number) => {
          bytes += n;
          progress?.({ phase: 'downloading', done, total: files.length, bytes });
        };
        await mkdir(dirname(into), { recursive: true });
        if (f.ref) {
          // A reference: fetched from its source and checked against what the version recorded.
          await fetchReference(f, into, { cacheDir: this.cacheDir, s3Client: () => (s3 ??= s3Client(this.opts.s3)), moved });
        } else {
          await copyFile(await this.cached(artifactId, version.version, f, moved), into);
        }
        progress?.({ phase: 'downloading', done: ++done, total: files.length, bytes });
      });
    } finally {
      if (s3) (await s3).destroy();
    }
    await this.trimCache();
    return target;
  }

  /** The cache path of a file's body, fetched and verified if it is not there yet. */
  private async cached(artifactId: string, version: string, f: artifacts.v1.FileEntry, moved: (n: number) => void): Promise<string> {
    // The digest names a cache file: only ever 64 hex digits, whatever a server sends.
    if (!/^[0-9a-f]{64}$/.test(f.digest)) throw await sdkError('VALIDATION', `The version names ${JSON.stringify(f.path)} with a digest that is not a sha256; nothing was written for it.`, [{ field: 'digest', message: 'not a sha256' }]);
    const path = join(this.cacheDir, 'sha256', f.digest.slice(0, 2), f.digest);
    const have = await stat(path).catch(() => undefined);
    if (have?.size === f.size) {
      const now = new Date();
      await utimes(path, now, now); // recently used: trimmed last
      return path;
    }
    await mkdir(dirname(path), { recursive: true });
    const tmp = `${path}.${randomUUID()}.part`;
    const out = await open(tmp, 'w');
    const hash = createHash('sha256');
    try {
      await this.calls.serverStream<{ data: Uint8Array }>(`${SERVICE}/DownloadFile`, { artifactId, version, path: f.path }, async (msg) => {
        hash.update(msg.data);
        await out.write(msg.data);
        moved(msg.data.length);
      });
      await out.sync();
    } catch (err) {
      await out.close();
      await rm(tmp, { force: true });
      throw await fromPayload(toPayload(err));
    }
    await out.close();
    const got = hash.digest('hex');
    if (got !== f.digest) {
      await rm(tmp, { force: true });
      throw await sdkError('BLOB_DIGEST_MISMATCH', `${f.path} arrived with sha256 ${got}, but the version says ${f.digest}; nothing was kept. Retry the download.`, [{ field: 'path', message: 'digest mismatch' }]);
    }
    await rename(tmp, path);
    return path;
  }

  /** Deletes the least recently used cached bodies until the cache holds at most cacheMaxBytes. */
  trimCache(maxBytes = this.cacheMaxBytes): Promise<{ files: number; bytes: number; removed: number }> {
    return trimArtifactCache(this.cacheDir, maxBytes);
  }
}

/** The download cache's folder: WANLLMDB_CACHE_DIR, or ~/.cache/wanllmdb/artifacts. */
export const defaultCacheDir = (): string => resolve(process.env.WANLLMDB_CACHE_DIR ?? join(homedir(), '.cache', 'wanllmdb', 'artifacts'));

/** Deletes the least recently used bodies of a download cache until it holds at most `maxBytes`. */
export async function trimArtifactCache(cacheDir: string, maxBytes: number): Promise<{ files: number; bytes: number; removed: number }> {
  const root = join(cacheDir, 'sha256');
  const all: { path: string; size: number; used: number }[] = [];
  for (const e of await readdir(root, { recursive: true, withFileTypes: true }).catch(() => [])) {
    if (!e.isFile() || e.name.endsWith('.part')) continue;
    const p = join(e.parentPath, e.name);
    const st = await stat(p).catch(() => undefined);
    if (st) all.push({ path: p, size: st.size, used: st.mtimeMs });
  }
  let total = all.reduce((sum, f) => sum + f.size, 0);
  let removed = 0;
  for (const f of all.sort((a, b) => a.used - b.used)) {
    if (total <= maxBytes) break;
    await rm(f.path, { force: true });
    total -= f.size;
    removed++;
  }
  return { files: all.length - removed, bytes: total, removed };
}
