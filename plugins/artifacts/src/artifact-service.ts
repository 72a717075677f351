import { createHash } from 'node:crypto';
import {
  assertId,
  chunkData,
  contentTypeOf,
  Errors,
  pageMeta,
  Problems,
  serveBody,
  type BlobStore,
  type CallContext,
  type Clock,
  type ResolvedResource,
  type ResourceDirectory,
} from '@wanllmdb/core';
import type { JsonObject } from '@wanllmdb/proto';
import type { ArtifactRepository, DraftRow } from './artifact-repository.js';
import type { artifacts } from './gen/index.js';
import type { ArtifactCollector } from './collector.js';
import { lineage, runNode, versionNode, type Visible } from './lineage.js';
import { bodyDigests, bodyParts, canonicalManifest, DIGEST, checkEntries, type ManifestFile } from './manifest.js';
import { referenceNotStored } from './references.js';
import type { RetentionMethods } from './retention.js';
import { sendVersionArchive } from './version-archive.js';

type Handlers = artifacts.v1.ArtifactServiceHandlers<CallContext>;

/** dataset, model, result, or any custom type: kebab-case. */
const TYPE = /^[a-z][a-z0-9-]{0,63}$/;
/** Artifact names: what W&B and MLflow accept, safe in URLs and shells. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** Aliases; "v<n>" and bare numbers name versions, so they are not aliases. */
const ALIAS = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const VERSION_NUMBER = /^v?(\d{1,15})$/;
const LATEST = 'latest';
const MAX_TAGS = 50;
const MAX_METADATA_BYTES = 64 * 1024;

export interface ArtifactServiceDeps {
  repo: ArtifactRepository;
  collector: ArtifactCollector;
  /** Claims younger than this are spared by a collection. */
  gcGraceMs: number;
  /** Drafts untouched for longer are abandoned. */
  draftTtlMs: number;
  blobs: BlobStore;
  resources: ResourceDirectory;
  clock: Clock;
  /** Files a draft may hold. */
  maxFilesPerVersion: number;
  /** Seconds a presigned download link lives (S3); 0: downloads always go through the server. */
  presignSeconds: number;
}

const notFound = (id: string, field = 'id') =>
  Errors.NOT_FOUND(`Artifact ${id} does not exist. List a project's artifacts with GET /api/v1/projects/{projectId}/artifacts.`, [{ field, message: 'no such artifact' }]);
const draftNotFound = (id: string) =>
  Errors.NOT_FOUND(`Draft ${id} does not exist for you on this artifact (it was committed, or another user's). Start one with POST /api/v1/artifacts/{artifactId}/drafts.`, [
    { field: 'draftId', message: 'no such draft' },
  ]);
const versionNotFound = (artifactId: string, ref: string) =>
  Errors.NOT_FOUND(`Artifact ${artifactId} has no version or alias ${JSON.stringify(ref)}. List its versions with GET /api/v1/artifacts/${artifactId}/versions.`, [
    { field: 'version', message: 'no such version or alias' },
  ]);

const claimTaken = (digest: string) =>
  Errors.CONFLICT(`A garbage collection took body ${digest} while it was being stored; nothing is lost. Upload it again (AddFiles names it as missing).`, [
    { field: 'digest', message: 'collected meanwhile' },
  ]);

function checkAlias(problems: Problems, field: string, value: unknown): string {
  const alias = problems.match(field, value, ALIAS, 'must be 1–64 letters, digits, ".", "_" or "-", starting with a letter or digit', { required: true, max: 64 });
  if (alias && VERSION_NUMBER.test(alias)) problems.add(field, `"${alias}" names a version number; choose another alias`);
  return alias;
}

/** "v3" or "3" → version 3; anything else is an alias. */
function versionRef(problems: Problems, field: string, value: unknown): { number: number } | { alias: string } {
  const text = typeof value === 'string' ? value.trim() : '';
  if (!text) {
    problems.add(field, 'is required: a version such as "v3", or an alias such as "latest"');
    return { alias: LATEST };
  }
  const n = VERSION_NUMBER.exec(text);
  if (n) return { number: Number(n[1]) };
  if (!ALIAS.test(text)) problems.add(field, 'must be a version such as "v3" or an alias such as "latest"');
  return { alias: text };
}

function checkMetadata(problems: Problems, field: string, value: unknown): JsonObject {
  const m = (value ?? {}) as JsonObject;
  problems.jsonSize(field, m, MAX_METADATA_BYTES);
  return m;
}

function checkTags(problems: Problems, tags: readonly string[] | undefined): string[] {
  const list = [...new Set((tags ?? []).map((t) => String(t).trim()))];
  if (list.length > MAX_TAGS) problems.add('tags', `has more than ${MAX_TAGS} tags`);
  list.forEach((t, i) => problems.line(`tags[${i}]`, t, 64, { required: true }));
  return list;
}

/** The bytes of an upload, refused (nothing kept) past the size the manifest gave its body, or short of it. */
async function* exactly(size: number, digest: string, bytes: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  let seen = 0;
  for await (const b of bytes) {
    seen += b.length;
    if (seen > size) {
      throw Errors.BODY_TOO_LARGE(`The upload of ${digest} runs past the ${size} bytes its manifest entry declares; nothing was stored. Send the body the manifest names.`, [
        { field: 'data', message: `more than ${size} bytes` },
      ]);
    }
    yield b;
  }
  if (seen < size) {
    throw Errors.VALIDATION(`The upload of ${digest} ended after ${seen} of the ${size} bytes its manifest entry declares; nothing was stored. Send the whole body.`, [
      { field: 'data', message: `${seen} of ${size} bytes` },
    ]);
  }
}

/** Bodies one pack may hold, the largest body, and the largest pack. */
export const PACK_LIMITS = { bodies: 10_000, bodySize: 4 * 1024 * 1024, size: 64 * 1024 * 1024 };

/** A pack upload's first message: the pack's digest and its bodies, checked. */
function checkPackBodies(bodies: readonly artifacts.v1.PackBody[] | undefined, packDigest: string): { digest: string; size: number }[] {
  const problems = new Problems('The pack');
  if (!DIGEST.test(packDigest)) problems.add('digest', "must be the sha256 of the pack (the bodies' bytes one after the other), 64 hex digits");
  const list = bodies ?? [];
  if (!list.length) problems.add('bodies', 'names no body; a pack holds at least one');
  if (list.length > PACK_LIMITS.bodies) problems.add('bodies', `has ${list.length} bodies; a pack holds at most ${PACK_LIMITS.bodies}`);
  let total = 0;
  const out = list.slice(0, PACK_LIMITS.bodies).map((b, i) => {
    const digest = String(b.digest ?? '').toLowerCase();
    if (!DIGEST.test(digest)) problems.add(`bodies[${i}].digest`, 'must be a sha256, 64 hex digits');
    if (!Number.isSafeInteger(b.size) || b.size < 0 || b.size > PACK_LIMITS.bodySize) problems.add(`bodies[${i}].size`, `must be a byte count from 0 to ${PACK_LIMITS.bodySize}; send larger bodies by UploadBlob`);
    total += Number(b.size) || 0;
    return { digest, size: Number(b.size) };
  });
  if (total > PACK_LIMITS.size) problems.add('bodies', `add up to ${total} bytes; a pack holds at most ${PACK_LIMITS.size}`);
  problems.throwIfAny();
  return out;
}

/**
 * A pack's bytes, each body checked against its digest and size as it
 * passes (the blob store checks the pack's own digest): a wrong body, or
 * bytes past the last one or short of it, refuse the pack and keep nothing.
 */
async function* checkedPack(bodies: readonly { digest: string; size: number }[], bytes: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  let i = 0;
  let left = bodies[0]?.size ?? 0;
  let hash = createHash('sha256');
  const settle = () => {
    // Bodies done: each whose bytes are all in (empty ones too) is checked now.
    while (i < bodies.length && left === 0) {
      const got = hash.digest('hex');
      if (got !== bodies[i]!.digest) {
        throw Errors.BLOB_DIGEST_MISMATCH(`Body ${i} of the pack hashes to ${got}, not ${bodies[i]!.digest}; nothing was stored. Send each body's own bytes, in the order named.`, [
          { field: `bodies[${i}].digest`, message: 'bytes hash otherwise' },
        ]);
      }
      i++;
      hash = createHash('sha256');
      left = bodies[i]?.size ?? 0;
    }
  };
  settle();
  for await (const b of bytes) {
    let at = 0;
    while (at < b.length) {
      if (i >= bodies.length) throw Errors.BODY_TOO_LARGE('The pack runs past its last body; nothing was stored. Send exactly the bodies named.', [{ field: 'data', message: 'more bytes than the bodies' }]);
      const take = Math.min(left, b.length - at);
      hash.update(b.subarray(at, at + take));
      at += take;
      left -= take;
      settle();
    }
    yield b;
  }
  if (i < bodies.length) throw Errors.VALIDATION(`The pack ended inside body ${i} of ${bodies.length}; nothing was stored. Send every body whole.`, [{ field: 'data', message: 'short' }]);
}

export function artifactHandlers(deps: ArtifactServiceDeps): Omit<Handlers, RetentionMethods> {
  const { repo, blobs, resources, clock, presignSeconds } = deps;

  /** The project a request names, as the host placed it (or, without the auth plugin, which passes the ref on unplaced, looked up the same way). */
  async function projectOf(ctx: CallContext, ref: string): Promise<string> {
    const placed: ResolvedResource | undefined = ctx.resources.find((r) => r.type === 'project' && r.projectId) ?? (await resources.resolve({ type: 'project', id: ref }, ctx.principal));
    if (!placed) {
      throw Errors.NOT_FOUND(`Project ${ref} does not exist. List projects with GET /api/v1/projects.`, [{ field: 'projectId', message: 'no such project' }]);
    }
    return placed.id;
  }

  /** The artifact a request names, with its project; NOT_FOUND when there is none. */
  async function artifactOf(id: unknown, field = 'artifactId') {
    const artifactId = assertId(String(id ?? ''), field);
    const artifact = await repo.get(artifactId);
    if (!artifact) throw notFound(artifactId, field);
    return artifact;
  }

  /** The caller's own draft on this artifact: another user's draft, or one of another artifact, does not exist for them. */
  async function draftOf(artifactId: string, draftId: unknown, ctx: CallContext): Promise<DraftRow> {
    const id = assertId(String(draftId ?? ''), 'draftId');
    const draft = await repo.draft(id);
    if (!draft || draft.artifact_id !== artifactId || draft.created_by !== ctx.principal.id) throw draftNotFound(id);
    return draft;
  }

  async function versionOf(artifactId: string, ref: { number: number } | { alias: string }, text: string) {
    const v = await repo.version(artifactId, ref);
    if (!v) throw versionNotFound(artifactId, text);
    return v;
  }

  /** The version row id behind a request's version text. */
  async function versionIdOf(artifactId: string, text: string, field = 'version'): Promise<{ id: string; version: string }> {
    const problems = new Problems('The request');
    const ref = versionRef(problems, field, text);
    problems.throwIfAny();
    const v = await versionOf(artifactId, ref, text);
    return { id: v.id, version: v.version };
  }

  const now = () => clock.now();

  /** The run a request names, authorised for `permission`, with its project. */
  async function runOf(ctx: CallContext, value: string, permission: string): Promise<{ id: string; projectId: string }> {
    const id = assertId(value, 'runId');
    const placed = (await ctx.authorize(permission, [{ type: 'run', id }])).find((r) => r.type === 'run' && r.projectId);
    let run = placed;
    if (!run) {
      try {
        run = await resources.resolve({ type: 'run', id }, ctx.principal);
      } catch (err) {
        if (Errors.INTERNAL.is(err)) throw Errors.VALIDATION('This server tracks no runs (the tracking plugin is not loaded), so runId cannot be used. Leave it out.', [{ field: 'runId', message: 'runs are not tracked here' }]);
        throw err;
      }
    }
    if (!run?.projectId) throw Errors.NOT_FOUND(`Run ${id} does not exist.`, [{ field: 'runId', message: 'no such run' }]);
    return { id, projectId: run.projectId };
  }

  /** Whether the caller may see a lineage node of this project: the same scopes as lists use. */
  function visibleTo(ctx: CallContext): Visible {
    const scopes = new Map<string, Promise<Awaited<ReturnType<CallContext['access']>>>>();
    const projects = new Map<string, Promise<ResolvedResource | undefined>>();
    return async (projectId, kind) => {
      const permission = kind === 'run' ? 'runs:read' : 'artifacts:read';
      if (!scopes.has(permission)) scopes.set(permission, ctx.access(permission));
      const scope = await scopes.get(permission)!;
      if (scope.all || scope.projectIds.includes(projectId)) return true;
      if (!projects.has(projectId)) projects.set(projectId, resources.resolve({ type: 'project', id: projectId }, ctx.principal));
      const p = await projects.get(projectId)!;
      return !!p && ((!!p.orgId && scope.orgIds.includes(p.orgId)) || (scope.publicProjects && p.visibility === 'public'));
    };
  }

  async function recordEdge(run: { id: string; projectId: string }, artifact: artifacts.v1.Artifact, version: artifacts.v1.Version, direction: 'input' | 'output') {
    await repo.recordEdge(
      { run_id: run.id, run_project_id: run.projectId, version_id: version.id, artifact_id: artifact.id, project_id: artifact.projectId, artifact_name: artifact.name, artifact_type: artifact.type, version: Number(version.version.slice(1)), direction },
      now(),
    );
  }

  function lineageOptions(problems: Problems, req: { direction: string; hops?: number }) {
    return { direction: (req.direction || 'both') as 'upstream' | 'downstream' | 'both', hops: problems.pageSize('hops', req.hops, 3, 10) };
  }

  return {
    async createArtifact(req, ctx) {
      const problems = new Problems('The artifact');
      const name = problems.match('name', req.name, NAME, 'must be 1–128 letters, digits, ".", "_" or "-", starting with a letter or digit', { required: true, max: 128 });
      const type = problems.match('type', req.type, TYPE, 'must be a kebab-case word such as "dataset", "model" or "result"', { required: true, max: 64 });
      const description = problems.text('description', req.description);
      const metadata = checkMetadata(problems, 'metadata', req.metadata);
      const tags = checkTags(problems, req.tags);
      problems.throwIfAny();
      const projectId = await projectOf(ctx, req.projectId);
      const made = await repo.create({ projectId, name, type, description, metadata, tags, createdBy: ctx.principal.id, now: now() });
      if (made) return { data: made };
      const existing = await repo.byName(projectId, name);
      if (existing && req.existOk && existing.type === type) return { data: existing };
      throw Errors.ALREADY_EXISTS(
        existing && existing.type !== type
          ? `The project already has an artifact "${name}" of type "${existing.type}", not "${type}". Use another name, or the type "${existing.type}".`
          : `The project already has an artifact "${name}". Add a version to it (POST /api/v1/artifacts/${existing?.id ?? '{id}'}/drafts), or pass existOk.`,
        [{ field: existing && existing.type !== type ? 'type' : 'name', message: 'taken' }],
      );
    },

    async listArtifacts(req, ctx) {
      const problems = new Problems('The request');
      const type = problems.match('type', req.type, TYPE, 'must be a kebab-case word such as "dataset"', { max: 64 });
      const search = problems.line('search', req.search, 128);
      const { page, pageSize, offset } = problems.page(req.page, req.pageSize, 100, 20);
      problems.throwIfAny();
      const projectId = await projectOf(ctx, req.projectId);
      const name = req.name ? problems.match('name', req.name, NAME, 'must be an artifact name', { max: 128 }) : '';
      problems.throwIfAny();
      const { rows, total } = await repo.list(projectId, { type, search, name }, offset, pageSize);
      return { data: rows, meta: pageMeta(total, page, pageSize) };
    },

    async getArtifact(req) {
      return { data: await artifactOf(req.id, 'id') };
    },

    async updateArtifact(req) {
      const artifact = await artifactOf(req.id, 'id');
      const problems = new Problems('The artifact');
      const description = req.description === undefined ? undefined : problems.text('description', req.description);
      const metadata = req.metadata && Object.keys(req.metadata).length ? checkMetadata(problems, 'metadata', req.metadata) : undefined;
      const tags = req.setTags ? checkTags(problems, req.tags) : undefined;
      problems.throwIfAny();
      await repo.update(artifact.id, { description, metadata, tags }, now());
      return { data: (await repo.get(artifact.id)) ?? artifact };
    },

    async deleteArtifact(req) {
      const artifact = await artifactOf(req.id, 'id');
      if (!(await repo.delete(artifact.id))) throw notFound(artifact.id);
      return {};
    },

    async createDraft(req, ctx) {
      const artifact = await artifactOf(req.artifactId);
      const problems = new Problems('The draft');
      const description = problems.text('description', req.description);
      const metadata = checkMetadata(problems, 'metadata', req.metadata);
      problems.throwIfAny();
      const draft = await repo.createDraft(artifact.id, ctx.principal.id, description, metadata, now());
      return { data: { id: draft.id, artifactId: artifact.id, fileCount: 0, size: 0, createdAt: new Date(draft.created_at).toISOString() } };
    },

    async addFiles(req, ctx) {
      const artifact = await artifactOf(req.artifactId);
      const draft = await draftOf(artifact.id, req.draftId, ctx);
      const problems = new Problems('The manifest');
      const files = checkEntries(req.files, problems);
      problems.throwIfAny();
      // A body's size is part of it: the sizes given must be the ones the bytes have (downloads, ranges and archives rely on them).
      const held = await repo.heldBodies(artifact.projectId, files.flatMap(bodyDigests));
      const sizes = new Map<string, number>();
      files.forEach((f, i) => {
        for (const [j, part] of bodyParts(f).entries()) {
          const field = f.chunks.length ? `files[${i}].chunks[${j}].size` : `files[${i}].size`;
          const known = held.get(part.digest) ?? sizes.get(part.digest);
          if (known !== undefined && known !== part.size) problems.add(field, `is ${part.size}, but body ${part.digest} has ${known} bytes`);
          sizes.set(part.digest, part.size);
        }
      });
      problems.throwIfAny();
      const before = await repo.draftStats(draft.id);
      if (before.files + files.length > deps.maxFilesPerVersion) {
        throw Errors.LIMIT_EXCEEDED(`A version holds at most ${deps.maxFilesPerVersion} files (WANLLMDB_ARTIFACT_MAX_FILES); this draft would hold up to ${before.files + files.length}. Split the data into several artifacts.`, [
          { field: 'files', message: 'too many files' },
        ]);
      }
      if (files.length && !(await repo.addDraftFiles(draft.id, files, now()))) throw draftNotFound(draft.id);
      const stats = await repo.draftStats(draft.id);
      const missing = [...new Set(files.flatMap(bodyDigests))].filter((d) => !held.has(d));
      return { data: { id: draft.id, artifactId: artifact.id, fileCount: stats.files, size: stats.size, createdAt: new Date(draft.created_at).toISOString() }, missing };
    },

    async uploadBlob(requests, ctx) {
      const chunks = requests[Symbol.asyncIterator]();
      const first = await chunks.next();
      if (first.done) throw Errors.VALIDATION('The upload carried no chunks. Send at least one; the first names artifactId, draftId and digest.', [{ field: 'digest', message: 'no chunks' }]);
      const head = first.value;
      const artifactId = assertId(String(head.artifactId ?? ''), 'artifactId');
      await ctx.authorize('artifacts:write', [{ type: 'artifact', id: artifactId }]); // the stream names its artifact only in its first message
      const artifact = await artifactOf(artifactId);
      const draft = await draftOf(artifact.id, head.draftId, ctx);
      const digest = String(head.digest ?? '').toLowerCase();
      if (!DIGEST.test(digest)) throw Errors.VALIDATION('digest must be the sha256 of the body, 64 hex digits.', [{ field: 'digest', message: 'not a sha256' }]);
      const size = await repo.draftBodySize(draft.id, digest);
      if (size === undefined) {
        throw Errors.VALIDATION(`The draft's manifest names no body ${digest}. Add the file with AddFiles first; upload only the digests it answers as missing.`, [
          { field: 'digest', message: 'not in the draft' },
        ]);
      }
      const sameBody = (chunk: artifacts.v1.BlobChunk, n: number) => {
        if ((chunk.digest && chunk.digest.toLowerCase() !== digest) || (chunk.draftId && chunk.draftId.toLowerCase() !== draft.id)) {
          throw Errors.VALIDATION(`Chunk ${n} of the upload names another digest or draft than the first chunk. Upload one body per stream.`, [{ field: 'digest', message: 'differs from the first chunk' }]);
        }
      };
      // Verified by the blob store: a body whose bytes hash otherwise is refused and nothing is kept.
      // Pinned before the store looks for the object, so a collection cannot delete it under this upload.
      await repo.touchDraft(draft.id, now());
      await repo.pinBody(artifact.projectId, digest, 0, now(), () => blobs.delete(digest));
      const blob = await blobs.put(exactly(size, digest, chunkData(head, chunks, ctx.signal, sameBody)), { expectedDigest: digest });
      if (!(await repo.confirmBody(artifact.projectId, blob.digest, blob.size))) throw claimTaken(digest);
      return { digest: blob.digest, size: blob.size };
    },

    async uploadPack(requests, ctx) {
      const messages = requests[Symbol.asyncIterator]();
      const first = await messages.next();
      if (first.done) throw Errors.VALIDATION('The pack upload carried no messages. The first names artifactId, draftId, digest and bodies.', [{ field: 'bodies', message: 'no messages' }]);
      const head = first.value;
      const artifactId = assertId(String(head.artifactId ?? ''), 'artifactId');
      await ctx.authorize('artifacts:write', [{ type: 'artifact', id: artifactId }]); // the stream names its artifact only in its first message
      const artifact = await artifactOf(artifactId);
      const draft = await draftOf(artifact.id, head.draftId, ctx);
      const packDigest = String(head.digest ?? '').toLowerCase();
      const bodies = checkPackBodies(head.bodies, packDigest);
      const declared = await repo.draftBodySizes(draft.id, bodies.map((b) => b.digest));
      const problems = new Problems('The pack');
      bodies.forEach((b, i) => {
        const size = declared.get(b.digest);
        if (size === undefined) problems.add(`bodies[${i}].digest`, "is not a whole file of the draft's manifest; add it with AddFiles first (chunks of large files go by UploadBlob)");
        else if (size !== b.size) problems.add(`bodies[${i}].size`, `is ${b.size}, but the manifest gives ${size}`);
      });
      problems.throwIfAny();
      const size = bodies.reduce((n, b) => n + b.size, 0);
      await repo.touchDraft(draft.id, now());
      // The bodies' claims and the pack's own, pinned before anything is stored, so a collection spares them until indexPack.
      await repo.pinBodies(artifact.projectId, [...bodies, { digest: packDigest, size }], now(), (d) => blobs.delete(d));
      const sameUpload = (m: artifacts.v1.PackChunk, n: number) => {
        if ((m.digest && m.digest.toLowerCase() !== packDigest) || (m.draftId && m.draftId.toLowerCase() !== draft.id) || m.bodies?.length) {
          throw Errors.VALIDATION(`Message ${n} of the pack upload names another pack or draft, or bodies again. Only the first message names them.`, [{ field: 'digest', message: 'differs from the first message' }]);
        }
      };
      const stored = await blobs.put(checkedPack(bodies, chunkData(head, messages, ctx.signal, sameUpload)), { expectedDigest: packDigest });
      let offset = 0;
      const placed = bodies.map((b) => ({ ...b, offset: (offset += b.size) - b.size }));
      const { lost, unused } = await repo.indexPack(artifact.projectId, { digest: stored.digest, size: stored.size }, placed, now());
      if (unused) await blobs.delete(stored.digest); // every body was in another pack already
      if (lost.length) throw claimTaken(lost[0]!);
      return { digest: stored.digest, size: stored.size, bodies: bodies.length };
    },

    async commit(req, ctx) {
      const artifact = await artifactOf(req.artifactId);
      const draft = await draftOf(artifact.id, req.draftId, ctx);
      const problems = new Problems('The commit');
      const aliases = [...new Set(req.aliases ?? [])].filter((a) => a !== LATEST);
      aliases.forEach((a, i) => checkAlias(problems, `aliases[${i}]`, a));
      const runId = problems.id('runId', req.runId, { required: false });
      problems.throwIfAny();
      const run = runId ? await runOf(ctx, runId, 'runs:write') : undefined;

      const files: ManifestFile[] = await repo.draftFiles(draft.id);
      const manifest = canonicalManifest(files);
      const manifestDigest = manifest.digest.slice('sha256:'.length);
      // The manifest is content-addressed too: named by the draft (so a collection spares it), held by the
      // project like any body, and stored before the version that names it.
      await repo.setDraftManifest(draft.id, manifestDigest, now());
      await repo.pinBody(artifact.projectId, manifestDigest, 0, now(), () => blobs.delete(manifestDigest));
      const stored = await blobs.put(manifest.text, { expectedDigest: manifestDigest });
      if (!(await repo.confirmBody(artifact.projectId, manifestDigest, stored.size))) throw claimTaken(manifestDigest);
      const done = await repo.commit({
        artifactId: artifact.id,
        projectId: artifact.projectId,
        bodies: [...files.flatMap(bodyDigests), manifestDigest],
        draft,
        digest: manifest.digest,
        size: manifest.size,
        fileCount: files.length,
        aliases,
        runId: runId || null,
        actor: ctx.principal.id,
        now: now(),
      });
      if (done && 'missing' in done) {
        // Checked once, in the commit's transaction, with the claims locked: never uploaded, or collected since.
        throw Errors.VALIDATION(`${done.missing.length} file bodies of the draft are not held by the project (first: ${done.missing[0]}). Upload each with UploadBlob (AddFiles answers which), then commit again.`, [
          { field: 'draftId', message: `${done.missing.length} bodies missing` },
        ]);
      }
      if (!done) {
        throw Errors.CONFLICT(`Draft ${draft.id} changed or was committed while this commit ran; nothing was committed by this call. Commit again.`, [{ field: 'draftId', message: 'changed meanwhile' }]);
      }
      if (run) await recordEdge(run, artifact, done.version, 'output');
      return { data: done.version, created: done.created };
    },

    async listVersions(req) {
      const artifact = await artifactOf(req.artifactId);
      const problems = new Problems('The request');
      const { page, pageSize, offset } = problems.page(req.page, req.pageSize, 100, 20);
      problems.throwIfAny();
      const { rows, total } = await repo.versions(artifact.id, offset, pageSize);
      return { data: rows, meta: pageMeta(total, page, pageSize) };
    },

    async getVersion(req) {
      const artifact = await artifactOf(req.artifactId);
      const problems = new Problems('The request');
      const ref = versionRef(problems, 'version', req.version);
      problems.throwIfAny();
      return { data: await versionOf(artifact.id, ref, req.version) };
    },

    async listVersionFiles(req) {
      const artifact = await artifactOf(req.artifactId);
      const problems = new Problems('The request');
      const limit = problems.pageSize('limit', req.limit, 1000, 10_000);
      const prefix = problems.text('prefix', req.prefix, 1024);
      const cursor = problems.text('cursor', req.cursor, 1024);
      problems.throwIfAny();
      const { id } = await versionIdOf(artifact.id, req.version);
      const files = await repo.files(id, prefix, cursor, limit);
      return {
        data: files.map((f) => ({ path: f.path, digest: f.digest, size: f.size, mode: f.mode, chunks: f.chunks, ...(f.ref ? { ref: f.ref } : {}) })),
        nextCursor: files.length === limit ? files.at(-1)!.path : '',
      };
    },

    async downloadFile(req, ctx, send) {
      const artifact = await artifactOf(req.artifactId);
      const { id, version } = await versionIdOf(artifact.id, req.version);
      const problems = new Problems('The request');
      const path = problems.text('path', req.path, 1024);
      problems.throwIfAny();
      if (!path) return sendVersionArchive(blobs, repo, id, `${artifact.name}-${version}`, send, ctx.signal); // the whole version, one tar
      const file = await repo.file(id, path);
      if (!file) {
        throw Errors.NOT_FOUND(`Version ${version} of artifact ${artifact.name} has no file ${JSON.stringify(path.slice(0, 200))}. List its files with GET /api/v1/artifacts/${artifact.id}/versions/${version}/files.`, [
          { field: 'path', message: 'no such file' },
        ]);
      }
      if (file.ref) {
        // No body here: an HTTP caller is sent on to a web reference; anyone else is told where to fetch it (the SDK fetches and checks it).
        if (ctx.transport === 'http' && !req.noRedirect && /^https?:\/\//i.test(file.ref.uri)) {
          ctx.respond({ status: 302, headers: { location: new URL(file.ref.uri).href, 'cache-control': 'no-store' } }); // percent-encoded: a header carries no other characters
          return;
        }
        throw referenceNotStored(artifact.name, version, file.path, file.ref.uri);
      }
      const parts = bodyParts(file);
      const contentType = contentTypeOf(path);
      const filename = path.slice(path.lastIndexOf('/') + 1);
      // One-blob bodies on S3: the caller reads them from S3 itself (the seed's 302), the server moves no bytes.
      const location = ctx.transport === 'http' && !req.noRedirect && presignSeconds > 0 && parts.length === 1 ? await blobs.link?.(parts[0]!.digest, { expiresSeconds: presignSeconds, filename, contentType }) : undefined;
      if (location) {
        ctx.respond({ status: 302, headers: { location, 'cache-control': 'no-store' } });
        return;
      }
      await serveBody(blobs, { parts, size: file.size, etag: file.digest, contentType, filename }, ctx, send);
    },

    async deleteVersion(req, ctx) {
      const artifact = await artifactOf(req.artifactId);
      const problems = new Problems('The request');
      const ref = versionRef(problems, 'version', req.version);
      problems.throwIfAny();
      if (!(await repo.deleteVersion(artifact.id, ref, ctx.principal.id, now()))) throw versionNotFound(artifact.id, req.version);
      return {};
    },

    async diffVersions(req) {
      const artifact = await artifactOf(req.artifactId);
      const problems = new Problems('The request');
      const limit = problems.pageSize('limit', req.limit, 1000, 10_000);
      problems.throwIfAny();
      const from = await versionIdOf(artifact.id, req.from, 'from');
      const to = await versionIdOf(artifact.id, req.to, 'to');
      const d = await repo.diff(from.id, to.id, limit);
      return { data: d.entries, added: d.added, removed: d.removed, changed: d.changed, sizeDelta: d.sizeDelta };
    },

    async setAlias(req, ctx) {
      const artifact = await artifactOf(req.artifactId);
      const problems = new Problems('The alias');
      const alias = checkAlias(problems, 'alias', req.alias);
      if (alias === LATEST) problems.add('alias', '"latest" moves by itself to each new version; choose another alias');
      const ref = versionRef(problems, 'version', req.version);
      problems.throwIfAny();
      const v = await repo.setAlias(artifact.id, alias, ref, ctx.principal.id, now());
      if (!v) throw versionNotFound(artifact.id, req.version);
      return { data: v };
    },

    async deleteAlias(req, ctx) {
      const artifact = await artifactOf(req.artifactId);
      const problems = new Problems('The alias');
      const alias = checkAlias(problems, 'alias', req.alias);
      if (alias === LATEST) problems.add('alias', '"latest" moves by itself; delete the version instead');
      problems.throwIfAny();
      if (!(await repo.deleteAlias(artifact.id, alias, ctx.principal.id, now()))) {
        throw Errors.NOT_FOUND(`Artifact ${artifact.name} has no alias "${alias}".`, [{ field: 'alias', message: 'no such alias' }]);
      }
      return {};
    },

    async useArtifact(req, ctx) {
      const artifact = await artifactOf(req.artifactId);
      const problems = new Problems('The request');
      const ref = versionRef(problems, 'version', req.version);
      problems.throwIfAny();
      const version = await versionOf(artifact.id, ref, req.version);
      const run = await runOf(ctx, req.runId, 'runs:write');
      await recordEdge(run, artifact, version, 'input');
      return { data: version };
    },

    async getLineage(req, ctx) {
      const artifact = await artifactOf(req.artifactId);
      const problems = new Problems('The request');
      const ref = versionRef(problems, 'version', req.version);
      const { direction, hops } = lineageOptions(problems, req);
      problems.throwIfAny();
      const v = await versionOf(artifact.id, ref, req.version);
      const start = { id: versionNode(v.id), kind: 'version' as const, runId: '', artifactId: artifact.id, artifactName: artifact.name, artifactType: artifact.type, version: v.version, projectId: artifact.projectId, deleted: false };
      return lineage(repo, { kind: 'version', versionId: v.id }, start, direction, hops, visibleTo(ctx));
    },

    async getRunLineage(req, ctx) {
      const problems = new Problems('The request');
      const { direction, hops } = lineageOptions(problems, req);
      problems.throwIfAny();
      const run = await runOf(ctx, req.runId, 'artifacts:read');
      const start = { id: runNode(run.id), kind: 'run' as const, runId: run.id, artifactId: '', artifactName: '', artifactType: '', version: '', projectId: run.projectId, deleted: false };
      return lineage(repo, { kind: 'run', runId: run.id }, start, direction, hops, visibleTo(ctx));
    },

    async collectGarbage(req) {
      return deps.collector.collect({ dryRun: req.dryRun, graceMs: deps.gcGraceMs, draftTtlMs: deps.draftTtlMs });
    },

    async listAliasHistory(req) {
      const artifact = await artifactOf(req.artifactId);
      const problems = new Problems('The request');
      const alias = req.alias ? problems.match('alias', req.alias, ALIAS, 'must be an alias such as "latest" or "production"', { max: 64 }) : '';
      problems.throwIfAny();
      return { data: await repo.aliasHistory(artifact.id, alias) };
    },
  };
}
