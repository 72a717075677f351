import { fileURLToPath } from 'node:url';
import { assertId, coreServices, definePlugin, setting } from '@wanllmdb/core';
import { ArtifactRepository } from './artifact-repository.js';
import { artifactHandlers } from './artifact-service.js';
import { artifacts } from './gen/index.js';
import { artifactMigrations } from './migrations.js';

/** The plugin's own contract: proto/wanllmdb/artifacts/v1/artifacts.proto. */
export const ARTIFACTS_PROTO_DIR = fileURLToPath(new URL('../proto', import.meta.url));

export interface ArtifactsPluginOptions {
  /** Files one version may hold (wins over WANLLMDB_ARTIFACT_MAX_FILES). */
  maxFilesPerVersion?: number;
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
    deps: { db: coreServices.db, blobs: coreServices.blobs, clock: coreServices.clock, resources: coreServices.resources },
    settings: {
      maxFiles: setting.int({ env: 'WANLLMDB_ARTIFACT_MAX_FILES', default: 1_000_000, min: 1, max: 100_000_000, doc: 'files one artifact version may hold', value: opts.maxFilesPerVersion }),
    },
    async init(ctx) {
      const { db, blobs: root, clock, resources } = ctx.deps;
      ctx.migrations(artifactMigrations);
      const repo = new ArtifactRepository(db);
      const blobs = await root.namespace('artifacts');
      ctx.onStop(() => blobs.close());
      ctx.service(artifacts.v1.ArtifactService, artifactHandlers({ repo, blobs, resources, clock, maxFilesPerVersion: ctx.settings.maxFiles }));
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
