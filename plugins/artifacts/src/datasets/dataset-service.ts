import { assertId, Errors, pageMeta, Problems, type BlobStore, type CallContext, type Clock } from '@wanllmdb/core';
import type { ArtifactRepository } from '../artifact-repository.js';
import type { artifacts } from '../gen/index.js';
import type { ManifestFile } from '../manifest.js';
import { ErrorLog, profileFile, validateFile } from './analyse.js';
import type { AnnotationRepository } from './annotation-repository.js';
import { fileSource } from './file-source.js';
import { fileFormatOf, RECORD_FORMATS, type FileFormat } from './formats.js';
import { previewFile } from './preview.js';

type Handlers = artifacts.v1.DatasetServiceHandlers<CallContext>;
type ArtifactHandlers = artifacts.v1.ArtifactServiceHandlers<CallContext>;

export const DATASET_TYPE = 'dataset';
/** Data files one validation or profile reads at most (name one with `path` beyond that). */
export const MAX_DATA_FILES = 10_000;
/** Names of skipped (non-data) files listed at most. */
const MAX_SKIPPED_LISTED = 1000;
const LABEL = /^[^\p{Cc}]{1,128}$/u;

export interface DatasetServiceDeps {
  repo: ArtifactRepository;
  annotations: AnnotationRepository;
  blobs: BlobStore;
  clock: Clock;
  /** The ArtifactService's handlers: datasets are artifacts, so creates, lists, versions and lineage are theirs. */
  artifacts: ArtifactHandlers;
}

export function datasetHandlers(deps: DatasetServiceDeps): Handlers {
  const { repo, annotations, blobs, clock, artifacts: api } = deps;

  /** The artifact a request names, if it is a dataset. */
  async function datasetOf(id: unknown) {
    const artifactId = assertId(String(id ?? ''), 'id');
    const artifact = await repo.get(artifactId);
    if (!artifact) throw Errors.NOT_FOUND(`Dataset ${artifactId} does not exist. List a project's datasets with GET /api/v1/projects/{projectId}/datasets.`, [{ field: 'id', message: 'no such dataset' }]);
    if (artifact.type !== DATASET_TYPE) {
      throw Errors.NOT_FOUND(`Artifact ${artifactId} is of type "${artifact.type}", not a dataset. Use GET /api/v1/artifacts/${artifactId} for it.`, [{ field: 'id', message: 'not a dataset' }]);
    }
    return artifact;
  }

  /** "v3", "3" or an alias (empty: "latest"), as ArtifactService.GetVersion reads it. */
  const versionOf = async (ctx: CallContext, artifactId: string, text: string): Promise<artifacts.v1.Version> => (await api.getVersion({ artifactId, version: text.trim() || 'latest' }, ctx)).data!;

  /** The bytes of a stored file; undefined for a reference (an object kept elsewhere). */
  const readable = (file: ManifestFile) => (file.ref ? undefined : fileSource(blobs, file));

  const checkPath = (problems: Problems, value: unknown) => problems.text('path', value, 1024);

  async function fileOf(versionId: string, version: string, path: string, datasetId: string): Promise<ManifestFile> {
    const file = await repo.file(versionId, path);
    if (!file) {
      throw Errors.NOT_FOUND(`Version ${version} of the dataset has no file ${JSON.stringify(path.slice(0, 200))}. List its files with GET /api/v1/artifacts/${datasetId}/versions/${version}/files.`, [
        { field: 'path', message: 'no such file' },
      ]);
    }
    return file;
  }

  /** The data files to read: the one `path` names, or every file of the version with a data extension (the rest are skipped). */
  async function dataFiles(versionId: string, version: string, path: string, datasetId: string): Promise<{ files: { file: ManifestFile; format: FileFormat }[]; skipped: string[] }> {
    if (path) {
      const file = await fileOf(versionId, version, path, datasetId);
      const format = fileFormatOf(file.path);
      if (!format) {
        throw Errors.VALIDATION(`${path} is not a data file: name JSONL (.jsonl, .ndjson), JSON (.json), CSV (.csv) or Parquet (.parquet). See any file with GET /api/v1/datasets/${datasetId}/preview.`, [
          { field: 'path', message: 'not a data file' },
        ]);
      }
      return { files: [{ file, format }], skipped: [] };
    }
    const files: { file: ManifestFile; format: FileFormat }[] = [];
    const skipped: string[] = [];
    for (let cursor = ''; ; ) {
      const page = await repo.files(versionId, '', cursor, 1000);
      for (const file of page) {
        const format = fileFormatOf(file.path);
        if (!format) {
          if (skipped.length < MAX_SKIPPED_LISTED) skipped.push(file.path);
          continue;
        }
        if (files.length >= MAX_DATA_FILES) {
          throw Errors.LIMIT_EXCEEDED(`Version ${version} holds more than ${MAX_DATA_FILES} data files; name one with path.`, [{ field: 'path', message: 'too many data files' }]);
        }
        files.push({ file, format });
      }
      if (page.length < 1000) break;
      cursor = page.at(-1)!.path;
    }
    return { files, skipped };
  }

  return {
    async listDatasets(req, ctx) {
      return api.listArtifacts({ projectId: req.projectId, type: DATASET_TYPE, search: req.search, name: '', page: req.page, pageSize: req.pageSize }, ctx);
    },

    async createDataset(req, ctx) {
      return api.createArtifact({ projectId: req.projectId, name: req.name, type: DATASET_TYPE, description: req.description, metadata: req.metadata, tags: req.tags, existOk: req.existOk }, ctx);
    },

    async getDataset(req) {
      const data = await datasetOf(req.id);
      const latest = data.latestVersion ? await repo.version(data.id, { alias: 'latest' }) : undefined;
      return latest ? { data, latest } : { data };
    },

    async listDatasetVersions(req, ctx) {
      const dataset = await datasetOf(req.id);
      return api.listVersions({ artifactId: dataset.id, page: req.page, pageSize: req.pageSize }, ctx);
    },

    async getDatasetLineage(req, ctx) {
      const dataset = await datasetOf(req.id);
      return api.getLineage({ artifactId: dataset.id, version: req.version.trim() || 'latest', direction: req.direction, ...(req.hops === undefined ? {} : { hops: req.hops }) }, ctx);
    },

    async validateDataset(req, ctx) {
      const dataset = await datasetOf(req.id);
      const problems = new Problems('The validation request');
      const format = problems.oneOf('format', req.format, ['auto', ...RECORD_FORMATS] as const, 'auto');
      const maxErrors = problems.pageSize('maxErrors', req.maxErrors, 1000, 10_000);
      const path = checkPath(problems, req.path);
      problems.throwIfAny();
      const v = await versionOf(ctx, dataset.id, req.version);
      const { files, skipped } = await dataFiles(v.id, v.version, path, dataset.id);
      const log = new ErrorLog(maxErrors);
      const fileResults: artifacts.v1.FileValidation[] = [];
      for (const { file, format: fileFormat } of files) {
        if (ctx.signal.aborted) break;
        const src = readable(file);
        if (!src) {
          log.add({ path: file.path, row: -1, line: 0, field: '', reason: 'the file is a reference to an object kept elsewhere; its bytes are not stored here, so it was not read' });
          fileResults.push({ path: file.path, fileFormat, format: '', rows: 0, invalidRows: 0, columns: [] });
          continue;
        }
        fileResults.push(await validateFile(src, fileFormat, format, log, ctx.signal));
      }
      const rows = fileResults.reduce((n, f) => n + f.rows, 0);
      const invalidRows = fileResults.reduce((n, f) => n + f.invalidRows, 0);
      return {
        datasetId: dataset.id,
        version: v.version,
        valid: log.count === 0 && files.length > 0,
        files: files.length,
        rows,
        invalidRows,
        errorCount: log.count + (files.length ? 0 : 1),
        errors: files.length ? log.errors : [{ path: '', row: -1, line: 0, field: '', reason: 'the version holds no data file (.jsonl, .ndjson, .json, .csv, .parquet)' }],
        errorsTruncated: log.truncated,
        fileResults,
        skipped,
      };
    },

    async previewDataset(req, ctx) {
      const dataset = await datasetOf(req.id);
      const problems = new Problems('The preview request');
      const limit = problems.pageSize('limit', req.limit, 50, 1000);
      const path = checkPath(problems, req.path);
      const page = problems.integer('page', req.page || 0, 0, 0, 1_000_000_000);
      const offset = problems.integer('offset', req.offset || 0, 0, 0, Number.MAX_SAFE_INTEGER);
      if (page && offset) problems.add('page', 'give page or offset, not both');
      problems.throwIfAny();
      const v = await versionOf(ctx, dataset.id, req.version);
      let file: ManifestFile | undefined;
      if (path) file = await fileOf(v.id, v.version, path, dataset.id);
      else {
        // The first data file by path, else the first file.
        for (let cursor = ''; !file; ) {
          const files = await repo.files(v.id, '', cursor, 1000);
          file = files.find((f) => fileFormatOf(f.path));
          if (files.length < 1000) {
            file ??= (await repo.files(v.id, '', '', 1))[0];
            break;
          }
          cursor = files.at(-1)!.path;
        }
        if (!file) throw Errors.NOT_FOUND(`Version ${v.version} of the dataset holds no files.`, [{ field: 'path', message: 'no files' }]);
      }
      const start = page ? (page - 1) * limit : offset;
      const shown = await previewFile(fileSource(blobs, file), start, limit, ctx.signal);
      return { datasetId: dataset.id, version: v.version, path: file.path, ...shown };
    },

    async profileDataset(req, ctx) {
      const dataset = await datasetOf(req.id);
      const problems = new Problems('The profile request');
      const path = checkPath(problems, req.path);
      const maxRows = problems.integer('maxRows', req.maxRows || 0, 0, 0, Number.MAX_SAFE_INTEGER);
      problems.throwIfAny();
      const v = await versionOf(ctx, dataset.id, req.version);
      const { files, skipped } = await dataFiles(v.id, v.version, path, dataset.id);
      const profiles: artifacts.v1.FileProfile[] = [];
      for (const { file, format } of files) {
        if (ctx.signal.aborted) break;
        const src = readable(file);
        if (src) profiles.push(await profileFile(src, format, maxRows, ctx.signal));
        else skipped.push(file.path); // a reference: its bytes are elsewhere
      }
      return { datasetId: dataset.id, version: v.version, files: profiles, rows: profiles.reduce((n, p) => n + p.rows, 0), skipped };
    },

    async listAnnotations(req, ctx) {
      const dataset = await datasetOf(req.id);
      const problems = new Problems('The request');
      const path = checkPath(problems, req.path);
      const { page, pageSize, offset } = problems.page(req.page, req.pageSize, 1000, 100);
      problems.throwIfAny();
      const versionId = req.version.trim() ? (await versionOf(ctx, dataset.id, req.version)).id : undefined;
      const { rows, total } = await annotations.list(dataset.id, { versionId, path }, offset, pageSize);
      return { data: rows, meta: pageMeta(total, page, pageSize) };
    },

    async createAnnotation(req, ctx) {
      const dataset = await datasetOf(req.id);
      const problems = new Problems('The annotation');
      const path = checkPath(problems, req.path);
      if (!path) problems.add('path', 'is required: the file the row is in');
      const row = problems.integer('row', req.row ?? 0, 0, 0, Number.MAX_SAFE_INTEGER);
      const label = problems.match('label', req.label, LABEL, 'must be 1–128 characters without control characters', { required: true, max: 128 });
      const note = problems.text('note', req.note, 4000);
      problems.throwIfAny();
      const v = await versionOf(ctx, dataset.id, req.version);
      await fileOf(v.id, v.version, path, dataset.id);
      const made = await annotations.create({ artifactId: dataset.id, versionId: v.id, version: Number(v.version.slice(1)), path, row, label, note, author: ctx.principal.id, now: clock.now() });
      if (!made) throw Errors.NOT_FOUND(`Version ${v.version} of the dataset was deleted meanwhile; nothing was annotated.`, [{ field: 'version', message: 'deleted' }]);
      return { data: made };
    },

    async deleteAnnotation(req, ctx) {
      const dataset = await datasetOf(req.id);
      const id = assertId(String(req.annotationId ?? ''), 'annotationId');
      const annotation = await annotations.get(dataset.id, id);
      const missing = () => Errors.NOT_FOUND(`The dataset has no annotation ${id}. List them with GET /api/v1/datasets/${dataset.id}/annotations.`, [{ field: 'annotationId', message: 'no such annotation' }]);
      if (!annotation) throw missing();
      // A writer may delete their own annotations; someone else's needs the right to delete from the dataset.
      if (annotation.author !== ctx.principal.id) await ctx.authorize('artifacts:delete', [{ type: 'artifact', id: dataset.id }]);
      if (!(await annotations.delete(dataset.id, id))) throw missing();
      return {};
    },
  };
}
