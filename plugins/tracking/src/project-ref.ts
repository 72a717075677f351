import { Errors, type CallContext, type Principal } from '@wanllmdb/core';
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

/**
 * The id of the project a call names in `ref`: authorisation placed it
 * already when the method declares it as its one project resource (read
 * then, not again); otherwise (the local principal) it is looked up.
 */
export async function projectIdOf(api: ProjectsApi, ref: string, ctx: Pick<CallContext, 'principal' | 'resources'>, field = 'projectId'): Promise<string> {
  // Resolved means placed by a resolver (projectId set); the local principal's authorisation places nothing.
  const placed = ctx.resources.filter((r) => r.type === 'project' && r.projectId);
  if (placed.length === 1) return placed[0]!.projectId!;
  return (await findProject(api, ref, ctx.principal, field)).id;
}
