import { fileURLToPath } from 'node:url';
import { assertId, coreServices, definePlugin, setting } from '@wanllmdb/core';
import { projectEvent } from '@wanllmdb/plugin-projects';
import { ArtifactRepository } from './artifact-repository.js';
import { artifactHandlers } from './artifact-service.js';
import { ArtifactCollector } from './collector.js';
import { PackedBlobStore } from './packs.js';
import { AnnotationRepository } from './datasets/annotation-repository.js';
import { datasetHandlers } from './datasets/dataset-service.js';
import { artifacts } from './gen/index.js';
import { artifactMigrations } from './migrations.js';
import { RetentionRepository, withRetention } from './retention.js';

/** The plugin's own contract: proto/wanllmdb/artifacts/v1/artifacts.proto. */
export const ARTIFACTS_PROTO_DIR = fileURLToPath(new URL('../proto', import.meta.url));

export interface ArtifactsPluginOptions {
  /** Files one version may hold (wins over WANLLMDB_ARTIFACT_MAX_FILES). */
  maxFilesPerVersion?: number;
  /** Seconds a collection spares a body claimed by an upload or commit (wins over WANLLMDB_ARTIFACT_GC_GRACE_SECONDS). */
  gcGraceSeconds?: number;
  /** Seconds after which an untouched draft is abandoned (wins over WANLLMDB_ARTIFACT_DRAFT_TTL_SECONDS). */
  draftTtlSeconds?: number;
  /** Seconds a presigned download link lives on S3, 0 for none (wins over WANLLMDB_ARTIFACT_PRESIGN_SECONDS). */
  presignSeconds?: number;
}

/**
 * Artifacts and datasets: versioned, content-addressed collections of files
 * (ADR 0022). Bodies live in the blob store's own "artifacts" namespace, so
 * the run-file collector never deletes a body a version still needs.
 */
export function createArtifactsPlugin(opts: ArtifactsPluginOptions = {}) {
  return definePlugin({
    id: 'artifacts',
    version: '0.1.0',
    proto: ARTIFACTS_PROTO_DIR,
    deps: { db: coreServices.db, blobs: coreServices.blobs, clock: coreServices.clock, resources: coreServices.resources, logger: coreServices.logger, events: coreServices.events },
    settings: {
      gcGrace: setting.int({ env: 'WANLLMDB_ARTIFACT_GC_GRACE_SECONDS', default: 24 * 3600, min: 0, max: 365 * 24 * 3600, doc: 'seconds a garbage collection spares bodies that uploads and commits under way have claimed', value: opts.gcGraceSeconds }),
      draftTtl: setting.int({ env: 'WANLLMDB_ARTIFACT_DRAFT_TTL_SECONDS', default: 7 * 24 * 3600, min: 0, max: 365 * 24 * 3600, doc: 'seconds after which an untouched artifact draft is abandoned (a collection deletes it)', value: opts.draftTtlSeconds }),
      presign: setting.int({ env: 'WANLLMDB_ARTIFACT_PRESIGN_SECONDS', default: 300, min: 0, max: 7 * 24 * 3600, doc: 'seconds a presigned S3 link lives: an HTTP download of a file answers 302 to S3 (0: bytes always go through the server, for S3 endpoints clients cannot reach)', value: opts.presignSeconds }),
      maxFiles: setting.int({ env: 'WANLLMDB_ARTIFACT_MAX_FILES', default: 1_000_000, min: 1, max: 100_000_000, doc: 'files one artifact version may hold', value: opts.maxFilesPerVersion }),
    },
    async init(ctx) {
      const { db, blobs: root, clock, resources, logger, events } = ctx.deps;
      ctx.migrations(artifactMigrations);
      const repo = new ArtifactRepository(db);
      // Small bodies arrive packed (UploadPack): readers and the collector see every body alike through the pack index.
      const blobs = new PackedBlobStore(await root.namespace('artifacts'), db);
      ctx.onStop(() => blobs.close());
      const collector = new ArtifactCollector(repo, blobs, clock, logger);
      // A deleted project takes its artifacts and its claims on bodies with it (the next collection frees the bytes).
      let unsubscribe: (() => Promise<void>) | undefined;
      ctx.onStart(async () => {
        const sub = await projectEvent.subscribe(events, { kind: 'deleted' }, async (e) => {
          if (!e.project) return;
          const n = await repo.deleteProject(e.project.id).catch((err: unknown) => (logger.warn({ err, projectId: e.project!.id }, 'could not delete the artifacts of a deleted project'), 0));
          if (n) logger.info({ projectId: e.project.id, artifacts: n }, 'deleted the artifacts of a deleted project');
        });
        unsubscribe = () => sub.unsubscribe();
      });
      ctx.onStop(async () => unsubscribe?.());
      // Retention rules and bulk version deletion (retention.ts): new methods, applied after each commit and by each collection.
      const artifactApi = withRetention(artifactHandlers({ repo, blobs, resources, clock, collector, maxFilesPerVersion: ctx.settings.maxFiles, gcGraceMs: ctx.settings.gcGrace * 1000, draftTtlMs: ctx.settings.draftTtl * 1000, presignSeconds: ctx.settings.presign }), { repo, retention: new RetentionRepository(db, repo), resources, clock, logger });
      ctx.service(artifacts.v1.ArtifactService, artifactApi);
      // Datasets are artifacts of type dataset: a second service on the same tables and bodies (proto/…/datasets.proto).
      ctx.service(artifacts.v1.DatasetService, datasetHandlers({ repo, annotations: new AnnotationRepository(db), blobs, clock, artifacts: artifactApi }));
      // An artifact sits in its project; it never moves, and its removal moves the access epoch (migration 2).
      resources.define('artifacts', 'artifact', async (ref, principal) => {
        const id = assertId(ref, 'artifact id');
        const projectId = await repo.projectOf(id);
        const project = projectId ? await resources.resolve({ type: 'project', id: projectId }, principal) : undefined;
        return project && { ...project, type: 'artifact', id };
      }, { reuse: true });
    },
  });
}

export const artifactsPlugin = createArtifactsPlugin();
