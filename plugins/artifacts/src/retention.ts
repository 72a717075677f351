import { assertId, Errors, isoTime, Problems, type CallContext, type Clock, type Logger, type MetadataStore, type ResolvedResource, type ResourceDirectory, type SqlExecutor } from '@wanllmdb/core';
import type { ArtifactRepository } from './artifact-repository.js';
import type { artifacts } from './gen/index.js';
import { decodeChunks } from './manifest.js';

type Handlers = artifacts.v1.ArtifactServiceHandlers<CallContext>;
type RetentionRule = artifacts.v1.RetentionRule;
type Deletion = artifacts.v1.VersionDeletionResponse;

/** Artifact types (as in artifact-service.ts). */
const TYPE = /^[a-z][a-z0-9-]{0,63}$/;
const VERSION_NUMBER = /^v?(\d{1,15})$/;
const LATEST = 'latest';
/** Versions deleted per transaction: a million versions never hold one giant transaction. */
const BATCH = 500;
/** Statement slices (parameters stay well under every database's limit). */
const SLICE = 500;
/** Chunk digests matched per LIKE statement. */
const LIKE_SLICE = 50;
/** Version names an answer lists. */
const LISTED = 1000;
/** Versions one DeleteVersions list may name. */
const MAX_LISTED = 10_000;
const MAX_KEEP_LAST = 1_000_000_000;
const MAX_AGE_SECONDS = 100 * 366 * 24 * 3600;
/** The actor of alias events a rule causes (after a commit, or in a collection). */
export const RETENTION_ACTOR = 'retention';

/** Which versions survive: any of the `keepLast` newest, any with an alias (when `keepAliased`), any not older than `before`, and always "latest". */
export interface Selection {
  keepLast: number;
  keepAliased: boolean;
  /** Only versions created before this (epoch ms) may go; undefined: no age condition. */
  before?: number;
}

type RuleRow = {
  keep_last: number | string;
  keep_aliased: number | string | boolean;
  max_age_seconds: number | string;
  updated_by: string;
  updated_at: number | string;
};

type VersionRef = { id: string; version: number };

function* slices<T>(items: readonly T[], size = SLICE): Generator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}
const marks = (n: number) => Array.from({ length: n }, () => '?').join(', ');

const toRule = (r: RuleRow, where: { artifactId?: string; projectId: string; type?: string }): RetentionRule => ({
  keepLast: Number(r.keep_last),
  keepAliased: Number(r.keep_aliased) === 1 || r.keep_aliased === true,
  maxAgeSeconds: Number(r.max_age_seconds),
  type: where.type ?? '',
  artifactId: where.artifactId ?? '',
  projectId: where.projectId,
  updatedBy: r.updated_by,
  updatedAt: isoTime(Number(r.updated_at)),
});

/** A rule's selection at `now`; undefined when it deletes nothing (no keepLast and no max age). */
export function selectionOf(rule: Pick<RetentionRule, 'keepLast' | 'keepAliased' | 'maxAgeSeconds'>, now: number): Selection | undefined {
  if (!rule.keepLast && !rule.maxAgeSeconds) return undefined;
  return { keepLast: rule.keepLast, keepAliased: rule.keepAliased, ...(rule.maxAgeSeconds ? { before: now - rule.maxAgeSeconds * 1000 } : {}) };
}

/**
 * Retention rules and bulk deletion of versions. Every deletion goes
 * through ArtifactRepository.deleteVersionRows (the path of DeleteVersion),
 * in batches of 500 versions, each batch one transaction holding the
 * artifact's lock, in which the batch is chosen again (so a commit or an
 * alias move racing it is seen).
 */
export class RetentionRepository {
  constructor(
    private readonly db: MetadataStore,
    private readonly repo: ArtifactRepository,
  ) {}

  // ---------------------------------------------------------------- rules

  async rule(artifactId: string, projectId: string): Promise<RetentionRule | undefined> {
    const [r] = await this.db.query<RuleRow>('SELECT keep_last, keep_aliased, max_age_seconds, updated_by, updated_at FROM artifact_retention WHERE artifact_id = ?', [artifactId]);
    return r && toRule(r, { artifactId, projectId });
  }

  async setRule(artifactId: string, rule: Pick<RetentionRule, 'keepLast' | 'keepAliased' | 'maxAgeSeconds'>, actor: string, now: number): Promise<void> {
    await this.db.run(
      `INSERT INTO artifact_retention (artifact_id, keep_last, keep_aliased, max_age_seconds, updated_by, updated_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (artifact_id) DO UPDATE SET keep_last = excluded.keep_last, keep_aliased = excluded.keep_aliased, max_age_seconds = excluded.max_age_seconds, updated_by = excluded.updated_by, updated_at = excluded.updated_at`,
      [artifactId, rule.keepLast, rule.keepAliased ? 1 : 0, rule.maxAgeSeconds, actor, now],
    );
  }

  async deleteRule(artifactId: string): Promise<boolean> {
    return (await this.db.run('DELETE FROM artifact_retention WHERE artifact_id = ?', [artifactId])).changes > 0;
  }

  async typeRule(projectId: string, type: string): Promise<RetentionRule | undefined> {
    const [r] = await this.db.query<RuleRow>('SELECT keep_last, keep_aliased, max_age_seconds, updated_by, updated_at FROM artifact_type_retention WHERE project_id = ? AND type = ?', [projectId, type]);
    return r && toRule(r, { projectId, type });
  }

  async typeRules(projectId: string): Promise<RetentionRule[]> {
    const rows = await this.db.query<RuleRow & { type: string }>('SELECT type, keep_last, keep_aliased, max_age_seconds, updated_by, updated_at FROM artifact_type_retention WHERE project_id = ? ORDER BY type', [projectId]);
    return rows.map((r) => toRule(r, { projectId, type: r.type }));
  }

  async setTypeRule(projectId: string, type: string, rule: Pick<RetentionRule, 'keepLast' | 'keepAliased' | 'maxAgeSeconds'>, actor: string, now: number): Promise<void> {
    await this.db.run(
      `INSERT INTO artifact_type_retention (project_id, type, keep_last, keep_aliased, max_age_seconds, updated_by, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (project_id, type) DO UPDATE SET keep_last = excluded.keep_last, keep_aliased = excluded.keep_aliased, max_age_seconds = excluded.max_age_seconds, updated_by = excluded.updated_by, updated_at = excluded.updated_at`,
      [projectId, type, rule.keepLast, rule.keepAliased ? 1 : 0, rule.maxAgeSeconds, actor, now],
    );
  }

  async deleteTypeRule(projectId: string, type: string): Promise<boolean> {
    return (await this.db.run('DELETE FROM artifact_type_retention WHERE project_id = ? AND type = ?', [projectId, type])).changes > 0;
  }

  /** The rule in force for an artifact: its own, else its type's project default. */
  async effective(a: { id: string; projectId: string; type: string }): Promise<{ own?: RetentionRule; effective?: RetentionRule; source: 'artifact' | 'type' | 'none' }> {
    const own = await this.rule(a.id, a.projectId);
    if (own) return { own, effective: own, source: 'artifact' };
    const byType = await this.typeRule(a.projectId, a.type);
    return byType ? { effective: byType, source: 'type' } : { source: 'none' };
  }

  /** A page (by id) of the artifacts some rule applies to: their own, or their type's in their project. */
  async ruled(after: string, limit: number): Promise<{ id: string; project_id: string; type: string }[]> {
    return this.db.query(
      `SELECT a.id, a.project_id, a.type FROM artifacts a WHERE a.id > ?
         AND (EXISTS (SELECT 1 FROM artifact_retention r WHERE r.artifact_id = a.id)
           OR EXISTS (SELECT 1 FROM artifact_type_retention t WHERE t.project_id = a.project_id AND t.type = a.type))
       ORDER BY a.id LIMIT ?`,
      [after, limit],
    );
  }

  // ---------------------------------------------------------------- selecting versions

  /** The next versions (oldest first, numbers after `after`) the selection lets go, at most `limit`. */
  private async selectBatch(tx: SqlExecutor, artifactId: string, sel: Selection, after: number, limit: number): Promise<VersionRef[]> {
    const where = ['v.artifact_id = ?', 'v.version > ?'];
    const params: (string | number)[] = [artifactId, after];
    if (sel.keepLast > 0) {
      // The N-th newest: only versions below it may go (fewer than N versions: none).
      const [nth] = await tx.query<{ version: number | string }>('SELECT version FROM artifact_versions WHERE artifact_id = ? ORDER BY version DESC LIMIT 1 OFFSET ?', [artifactId, sel.keepLast - 1]);
      if (!nth) return [];
      where.push('v.version < ?');
      params.push(Number(nth.version));
    }
    if (sel.before !== undefined) {
      where.push('v.created_at < ?');
      params.push(sel.before);
    }
    // "latest" is always kept; with keepAliased, so is any version with an alias.
    where.push(`NOT EXISTS (SELECT 1 FROM artifact_aliases al WHERE al.version_id = v.id${sel.keepAliased ? '' : ' AND al.alias = ?'})`);
    if (!sel.keepAliased) params.push(LATEST);
    const rows = await tx.query<{ id: string; version: number | string }>(`SELECT v.id, v.version FROM artifact_versions v WHERE ${where.join(' AND ')} ORDER BY v.version LIMIT ?`, [...params, limit]);
    return rows.map((r) => ({ id: r.id, version: Number(r.version) }));
  }

  /** Of these version numbers, the versions there are. */
  private async byNumbers(tx: SqlExecutor, artifactId: string, numbers: readonly number[]): Promise<VersionRef[]> {
    if (!numbers.length) return [];
    const rows = await tx.query<{ id: string; version: number | string }>(
      `SELECT id, version FROM artifact_versions WHERE artifact_id = ? AND version IN (${marks(numbers.length)}) ORDER BY version`,
      [artifactId, ...numbers],
    );
    return rows.map((r) => ({ id: r.id, version: Number(r.version) }));
  }

  // ---------------------------------------------------------------- bytes a deletion frees

  /**
   * Bytes of the bodies that only `gone` versions name (whole files, chunks,
   * manifests), counting nothing a version outside `gone` (of any artifact
   * or project) or a draft names: what the next collection frees once they
   * are deleted. Asked before the deletion (in its transaction) or in a dry
   * run, with the same answer.
   */
  private async freedBytes(tx: SqlExecutor, gone: readonly VersionRef[]): Promise<number> {
    if (!gone.length) return 0;
    const goneIds = new Set(gone.map((v) => v.id));
    const sizes = new Map<string, number>();
    for (const slice of slices([...goneIds])) {
      const m = marks(slice.length);
      const files = await tx.query<{ digest: string; size: number | string; chunks: string; ref: string }>(`SELECT digest, size, chunks, ref FROM artifact_files WHERE version_id IN (${m})`, slice);
      for (const f of files) {
        if (f.ref) continue; // a reference: no body here
        if (!f.chunks) sizes.set(f.digest, Number(f.size));
        else for (const c of decodeChunks(f.chunks)) sizes.set(c.digest, c.size);
      }
      const manifests = await tx.query<{ digest: string }>(`SELECT digest FROM artifact_versions WHERE id IN (${m})`, slice);
      const names = manifests.map((r) => r.digest.slice('sha256:'.length));
      for (const part of slices(names)) {
        const held = await tx.query<{ digest: string; size: number | string }>(`SELECT digest, MAX(size) AS size FROM artifact_project_blobs WHERE digest IN (${marks(part.length)}) GROUP BY digest`, part);
        const known = new Map(held.map((h) => [h.digest, Number(h.size)]));
        for (const d of part) sizes.set(d, known.get(d) ?? 0);
      }
    }
    const needed = new Set<string>();
    const digests = [...sizes.keys()];
    for (const slice of slices(digests)) {
      const m = marks(slice.length);
      for (const r of await tx.query<{ digest: string; version_id: string }>(`SELECT digest, version_id FROM artifact_files WHERE chunks = '' AND digest IN (${m})`, slice)) {
        if (!goneIds.has(r.version_id)) needed.add(r.digest);
      }
      for (const r of await tx.query<{ digest: string; id: string }>(`SELECT digest, id FROM artifact_versions WHERE digest IN (${m})`, slice.map((d) => `sha256:${d}`))) {
        if (!goneIds.has(r.id)) needed.add(r.digest.slice('sha256:'.length));
      }
      const drafts = await tx.query<{ digest: string }>(
        `SELECT digest FROM artifact_draft_files WHERE chunks = '' AND digest IN (${m}) UNION SELECT manifest AS digest FROM artifact_drafts WHERE manifest IN (${m})`,
        [...slice, ...slice],
      );
      for (const r of drafts) needed.add(r.digest);
    }
    // Chunks (and any body a chunk list may name): a LIKE over the chunk lists, for what is still unneeded.
    const open = digests.filter((d) => !needed.has(d));
    for (const slice of slices(open, LIKE_SLICE)) {
      const likes = slice.map(() => 'chunks LIKE ?').join(' OR ');
      const patterns = slice.map((d) => `%"${d}"%`);
      const rows = await tx.query<{ version_id: string; chunks: string }>(
        `SELECT version_id, chunks FROM artifact_files WHERE chunks <> '' AND (${likes})
         UNION ALL SELECT '' AS version_id, chunks FROM artifact_draft_files WHERE chunks <> '' AND (${likes})`,
        [...patterns, ...patterns],
      );
      for (const r of rows) {
        if (r.version_id && goneIds.has(r.version_id)) continue;
        for (const c of decodeChunks(r.chunks)) if (slice.includes(c.digest)) needed.add(c.digest);
      }
    }
    let bytes = 0;
    for (const [d, size] of sizes) if (!needed.has(d)) bytes += size;
    return bytes;
  }

  // ---------------------------------------------------------------- deleting

  /**
   * Deletes (or, in a dry run, reports) the versions a selection lets go.
   * Each batch is chosen anew under the artifact's lock in its own transaction.
   */
  async deleteSelected(artifactId: string, sel: Selection, o: { dryRun: boolean; actor: string; now: number }): Promise<Deletion> {
    const out: Deletion = { dryRun: o.dryRun, deleted: 0, versions: [], truncated: false, bytes: 0, missing: [] };
    const note = (rows: VersionRef[]) => {
      out.deleted += rows.length;
      for (const r of rows) if (out.versions.length < LISTED) out.versions.push(`v${r.version}`);
    };
    if (o.dryRun) {
      const all: VersionRef[] = [];
      for (let after = -1; ; ) {
        const rows = await this.selectBatch(this.db, artifactId, sel, after, BATCH);
        all.push(...rows);
        if (rows.length < BATCH) break;
        after = rows.at(-1)!.version;
      }
      note(all);
      out.bytes = await this.freedBytes(this.db, all);
    } else {
      for (let after = -1; ; ) {
        const rows = await this.db.transaction(async (tx) => {
          await tx.run('UPDATE artifacts SET updated_at = ? WHERE id = ?', [o.now, artifactId]); // the artifact's lock
          const batch = await this.selectBatch(tx, artifactId, sel, after, BATCH);
          if (batch.length) {
            out.bytes += await this.freedBytes(tx, batch);
            await this.repo.deleteVersionRows(tx, artifactId, batch, o.actor, o.now);
          }
          return batch;
        });
        note(rows);
        if (rows.length < BATCH) break;
        after = rows.at(-1)!.version;
      }
    }
    out.truncated = out.deleted > out.versions.length;
    return out;
  }

  /** Deletes (or reports) the listed version numbers, 500 per transaction; those not there are answered as missing. */
  async deleteListed(artifactId: string, numbers: readonly number[], o: { dryRun: boolean; actor: string; now: number }): Promise<Deletion> {
    const out: Deletion = { dryRun: o.dryRun, deleted: 0, versions: [], truncated: false, bytes: 0, missing: [] };
    const wanted = [...new Set(numbers)].sort((a, b) => a - b);
    const found: VersionRef[] = [];
    if (o.dryRun) {
      for (const slice of slices(wanted, BATCH)) found.push(...(await this.byNumbers(this.db, artifactId, slice)));
      out.bytes = await this.freedBytes(this.db, found);
    } else {
      for (const slice of slices(wanted, BATCH)) {
        found.push(
          ...(await this.db.transaction(async (tx) => {
            await tx.run('UPDATE artifacts SET updated_at = ? WHERE id = ?', [o.now, artifactId]);
            const batch = await this.byNumbers(tx, artifactId, slice);
            if (batch.length) {
              out.bytes += await this.freedBytes(tx, batch);
              await this.repo.deleteVersionRows(tx, artifactId, batch, o.actor, o.now);
            }
            return batch;
          })),
        );
      }
    }
    const there = new Set(found.map((v) => v.version));
    out.deleted = found.length;
    out.versions = found.slice(0, LISTED).map((v) => `v${v.version}`);
    out.truncated = found.length > LISTED;
    out.missing = wanted.filter((n) => !there.has(n)).map((n) => `v${n}`);
    return out;
  }
}

// ---------------------------------------------------------------- handlers

export interface RetentionDeps {
  repo: ArtifactRepository;
  retention: RetentionRepository;
  resources: ResourceDirectory;
  clock: Clock;
  logger: Logger;
}

/** The ArtifactService methods retention.ts implements. */
export type RetentionMethods = 'setRetention' | 'getRetention' | 'deleteRetention' | 'setTypeRetention' | 'getTypeRetention' | 'deleteTypeRetention' | 'listTypeRetention' | 'applyRetention' | 'deleteVersions';
export type RetentionHandlers = Pick<Handlers, RetentionMethods>;

const artifactNotFound = (id: string) =>
  Errors.NOT_FOUND(`Artifact ${id} does not exist. List a project's artifacts with GET /api/v1/projects/{projectId}/artifacts.`, [{ field: 'artifactId', message: 'no such artifact' }]);

/** keep_last, keep_aliased (absent: true) and max_age_seconds of a request, checked. */
function checkRule(problems: Problems, req: { keepLast?: number; keepAliased?: boolean; maxAgeSeconds?: number }) {
  const keepLast = problems.integer('keepLast', req.keepLast ?? 0, 0, 0, MAX_KEEP_LAST);
  const maxAgeSeconds = problems.integer('maxAgeSeconds', req.maxAgeSeconds ?? 0, 0, 0, MAX_AGE_SECONDS);
  return { keepLast, maxAgeSeconds, keepAliased: req.keepAliased ?? true };
}

/** The artifact-retention handlers (merged into the ArtifactService's), and what applies rules after commits and in collections. */
export function retentionHandlers(deps: RetentionDeps) {
  const { repo, retention, resources, clock } = deps;
  const now = () => clock.now();

  async function artifactOf(id: unknown) {
    const artifactId = assertId(String(id ?? ''), 'artifactId');
    const artifact = await repo.get(artifactId);
    if (!artifact) throw artifactNotFound(artifactId);
    return artifact;
  }

  /** The project a request names (as the host placed it, or looked up as the artifacts service does). */
  async function projectOf(ctx: CallContext, ref: string): Promise<string> {
    const placed: ResolvedResource | undefined = ctx.resources.find((r) => r.type === 'project' && r.projectId) ?? (await resources.resolve({ type: 'project', id: ref }, ctx.principal));
    if (!placed) throw Errors.NOT_FOUND(`Project ${ref} does not exist. List projects with GET /api/v1/projects.`, [{ field: 'projectId', message: 'no such project' }]);
    return placed.id;
  }

  function typeOf(problems: Problems, value: unknown): string {
    return problems.match('type', value, TYPE, 'must be an artifact type, a kebab-case word such as "checkpoint" or "dataset"', { required: true, max: 64 });
  }

  async function answer(a: { id: string; projectId: string; type: string }): Promise<artifacts.v1.RetentionResponse> {
    const r = await retention.effective(a);
    return { ...(r.own ? { data: r.own } : {}), ...(r.effective ? { effective: r.effective } : {}), source: r.source } as artifacts.v1.RetentionResponse;
  }

  /** Applies the rule in force for one artifact now. */
  async function apply(a: { id: string; projectId: string; type: string }, dryRun: boolean, actor: string): Promise<Deletion> {
    const { effective } = await retention.effective(a);
    const at = now();
    const sel = effective && selectionOf(effective, at);
    if (!sel) return { dryRun, deleted: 0, versions: [], truncated: false, bytes: 0, missing: [] };
    return retention.deleteSelected(a.id, sel, { dryRun, actor, now: at });
  }

  /** Every rule of the deployment, artifact by artifact (a collection runs this first). */
  async function applyAll(dryRun: boolean): Promise<{ versions: number; bytes: number }> {
    const total = { versions: 0, bytes: 0 };
    for (let after = ''; ; ) {
      const page = await retention.ruled(after, 200);
      for (const a of page) {
        const r = await apply({ id: a.id, projectId: a.project_id, type: a.type }, dryRun, RETENTION_ACTOR);
        total.versions += r.deleted;
        total.bytes += r.bytes;
      }
      if (page.length < 200) break;
      after = page.at(-1)!.id;
    }
    return total;
  }

  /** After a commit to the artifact: its rule, applied (only that artifact). A failure is logged: the commit stands. */
  async function afterCommit(artifactId: string): Promise<void> {
    try {
      const a = await repo.get(artifactId);
      if (a) await apply(a, false, RETENTION_ACTOR);
    } catch (err) {
      deps.logger.warn({ err, artifactId }, 'could not apply the retention rule after a commit');
    }
  }

  const handlers: RetentionHandlers = {
    async setRetention(req, ctx) {
      const artifact = await artifactOf(req.artifactId);
      const problems = new Problems('The retention rule');
      const rule = checkRule(problems, req);
      problems.throwIfAny();
      await retention.setRule(artifact.id, rule, ctx.principal.id, now());
      return answer(artifact);
    },

    async getRetention(req) {
      return answer(await artifactOf(req.artifactId));
    },

    async deleteRetention(req) {
      const artifact = await artifactOf(req.artifactId);
      await retention.deleteRule(artifact.id); // none there: nothing to do
      return {};
    },

    async setTypeRetention(req, ctx) {
      const problems = new Problems('The retention rule');
      const type = typeOf(problems, req.type);
      const rule = checkRule(problems, req);
      problems.throwIfAny();
      const projectId = await projectOf(ctx, req.projectId);
      await retention.setTypeRule(projectId, type, rule, ctx.principal.id, now());
      return { data: (await retention.typeRule(projectId, type))! };
    },

    async getTypeRetention(req, ctx) {
      const problems = new Problems('The request');
      const type = typeOf(problems, req.type);
      problems.throwIfAny();
      const projectId = await projectOf(ctx, req.projectId);
      const data = await retention.typeRule(projectId, type);
      if (!data) {
        throw Errors.NOT_FOUND(`The project has no retention rule for type "${type}". Set one with PUT /api/v1/projects/{projectId}/artifact-retention/${type}.`, [
          { field: 'type', message: 'no rule for this type' },
        ]);
      }
      return { data };
    },

    async deleteTypeRetention(req, ctx) {
      const problems = new Problems('The request');
      const type = typeOf(problems, req.type);
      problems.throwIfAny();
      await retention.deleteTypeRule(await projectOf(ctx, req.projectId), type);
      return {};
    },

    async listTypeRetention(req, ctx) {
      return { data: await retention.typeRules(await projectOf(ctx, req.projectId)) };
    },

    async applyRetention(req, ctx) {
      const artifact = await artifactOf(req.artifactId);
      return apply(artifact, !!req.dryRun, ctx.principal.id);
    },

    async deleteVersions(req, ctx) {
      const artifact = await artifactOf(req.artifactId);
      const problems = new Problems('The request');
      const listed = req.versions ?? [];
      const before = problems.instant('olderThan', req.olderThan);
      const keepLast = problems.integer('keepLast', req.keepLast ?? 0, 0, 0, MAX_KEEP_LAST);
      const filtered = before !== undefined || keepLast > 0;
      if (listed.length && (filtered || req.olderThan)) problems.add('versions', 'give either a list of versions or a filter (olderThan, keepLast), not both');
      if (!listed.length && !filtered && !req.olderThan) problems.add('versions', 'name the versions to delete, or give a filter: olderThan (RFC 3339) and/or keepLast');
      if (listed.length > MAX_LISTED) problems.add('versions', `lists more than ${MAX_LISTED} versions; send several calls, or use a filter`);
      const numbers: number[] = [];
      if (listed.length <= MAX_LISTED) {
        listed.forEach((v, i) => {
          const n = VERSION_NUMBER.exec(String(v).trim());
          if (n) numbers.push(Number(n[1]));
          else problems.add(`versions[${i}]`, 'must be a version number such as "v3" or "3" (aliases are not taken here)');
        });
      }
      problems.throwIfAny();
      const o = { dryRun: !!req.dryRun, actor: ctx.principal.id, now: now() };
      if (numbers.length) return retention.deleteListed(artifact.id, numbers, o);
      return retention.deleteSelected(artifact.id, { keepLast, keepAliased: req.keepAliased ?? true, ...(before !== undefined ? { before } : {}) }, o);
    },
  };

  return { handlers, afterCommit, applyAll };
}

/**
 * The ArtifactService's handlers with retention merged in: the new methods,
 * a commit that applies its artifact's rule after it, and a collection that
 * applies every rule first (a dry run reports what they would delete).
 */
export function withRetention(base: Omit<Handlers, RetentionMethods>, deps: RetentionDeps): Handlers {
  const r = retentionHandlers(deps);
  return {
    ...base,
    ...r.handlers,
    async commit(req, ctx) {
      const res = await base.commit(req, ctx);
      await r.afterCommit(res.data?.artifactId ?? req.artifactId);
      return res;
    },
    async collectGarbage(req, ctx) {
      const ruled = await r.applyAll(!!req.dryRun);
      const res = await base.collectGarbage(req, ctx);
      return { ...res, retentionVersions: ruled.versions, retentionBytes: ruled.bytes };
    },
  };
}
