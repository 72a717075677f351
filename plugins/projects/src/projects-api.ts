import type { InjectionToken } from 'tsyringe';
import type { projects } from '@wanllmdb/proto';

type Project = projects.v1.Project;

/**
 * What other plugins may ask of projects, in process (they never read the
 * projects table themselves). Resolve with `r.resolve(ProjectsApiToken)`.
 */
export interface ProjectsApi {
  get(id: string): Promise<Project | undefined>;
  getBySlug(slug: string): Promise<Project | undefined>;
  /**
   * The project with this id, or with this slug (or the slug of this name);
   * creating it when it does not exist, as `wandb.init(project=…)` does.
   */
  ensure(idOrName: string, createdBy: string): Promise<Project>;
}

export const ProjectsApiToken = 'projects.ProjectsApi' as InjectionToken<ProjectsApi>;
