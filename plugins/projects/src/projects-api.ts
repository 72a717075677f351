import { createApiRef, type CallContext, type Principal } from '@wanllmdb/core';
import type { projects } from '@wanllmdb/proto';

type Project = projects.v1.Project;

/**
 * What other plugins may ask of projects, in process (they never read the
 * projects table themselves). Depend on it with `deps: { projects: projectsApiRef }`.
 */
export interface ProjectsApi {
  /** By UUID, or by slug (or name) within the principal's own organisation. */
  find(ref: string, principal: Principal): Promise<Project | undefined>;
  /**
   * The project with this id, or with this slug (or the slug of this name) in
   * the caller's organisation; creating it there when it does not exist, as
   * `wandb.init(project=…)` does (which needs `projects:create`).
   */
  ensure(idOrName: string, ctx: CallContext): Promise<Project>;
}

/** The projects plugin's in-process API. */
export const projectsApiRef = createApiRef<ProjectsApi>({ plugin: 'projects' });
