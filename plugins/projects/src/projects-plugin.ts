import { definePlugin, Tokens } from '@wanllmdb/core';
import { projects } from '@wanllmdb/proto';
import { projectMigrations } from './migrations.js';
import { ProjectRepository } from './project-repository.js';
import { projectHandlers, projectResolver, projectsApi } from './project-service.js';
import { ProjectsApiToken } from './projects-api.js';

/** Projects: the first service, which every other plugin's data hangs on. */
export const projectsPlugin = definePlugin({
  id: 'projects',
  version: '0.1.0',
  register(r) {
    r.migrations(projectMigrations);
    let handlers: ReturnType<typeof projectHandlers> | undefined;
    let repo: ProjectRepository | undefined;
    const ready = () => {
      repo ??= new ProjectRepository(r.resolve(Tokens.MetadataStore));
      handlers ??= projectHandlers(repo, r.resolve(Tokens.EventBus), r.resolve(Tokens.Clock));
      return { repo, handlers };
    };
    r.service(projects.v1.ProjectService, () => ready().handlers);
    r.provide(ProjectsApiToken, projectsApi(ready));
    // Reusable while the access epoch stands: projects' updates and removals move it (migration 3).
    r.resolve(Tokens.Resources).define('projects', 'project', projectResolver(ready), { reuse: true });
  },
});
