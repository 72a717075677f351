import { Errors } from '@wanllmdb/core';
import { slugify, type ProjectsApi } from '@wanllmdb/plugin-projects';
import type { projects } from '@wanllmdb/proto';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

/**
 * The project a path's `project_id` names: its UUID, or its name or slug
 * (as W&B addresses projects). Reads never create one; WLDB_ERR_NOT_FOUND.
 */
export async function findProject(api: ProjectsApi, ref: string, field = 'projectId'): Promise<projects.v1.Project> {
  const project = UUID.test(ref) ? await api.get(ref.toLowerCase()) : slugify(ref) ? await api.getBySlug(slugify(ref)) : undefined;
  if (!project) {
    throw Errors.NOT_FOUND(`Project ${JSON.stringify(ref.slice(0, 100))} does not exist. Use a project id or name from GET /api/v1/projects.`, [
      { field, message: 'no such project' },
    ]);
  }
  return project;
}
