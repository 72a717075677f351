import { Errors, type Principal } from '@wanllmdb/core';
import type { ProjectsApi } from '@wanllmdb/plugin-projects';
import type { projects } from '@wanllmdb/proto';

/**
 * The project a path's `project_id` names: its UUID, or its name or slug
 * in the caller's organisation (as W&B addresses projects). Reads never
 * create one; WLDB_ERR_NOT_FOUND.
 */
export async function findProject(api: ProjectsApi, ref: string, principal: Principal, field = 'projectId'): Promise<projects.v1.Project> {
  const project = await api.find(ref, principal);
  if (!project) {
    throw Errors.NOT_FOUND(`Project ${JSON.stringify(ref.slice(0, 100))} does not exist. Use a project id or name from GET /api/v1/projects.`, [
      { field, message: 'no such project' },
    ]);
  }
  return project;
}
