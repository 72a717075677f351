import { coreServices, definePlugin } from '@wanllmdb/core';
import { projects } from '@wanllmdb/proto';
import { projectMigrations } from './migrations.js';
import { ProjectRepository } from './project-repository.js';
import { projectHandlers, projectResolver, projectsApi } from './project-service.js';
import { projectsApiRef } from './projects-api.js';

/** Projects: the first service, which every other plugin's data hangs on. */
export const projectsPlugin = definePlugin({
  id: 'projects',
  version: '0.1.0',
  deps: { db: coreServices.db, events: coreServices.events, clock: coreServices.clock, resources: coreServices.resources },
  init(ctx) {
    const { db, events, clock, resources } = ctx.deps;
    ctx.migrations(projectMigrations);
    const repo = new ProjectRepository(db);
    const handlers = projectHandlers(repo, events, clock);
    ctx.service(projects.v1.ProjectService, handlers);
    ctx.provide(projectsApiRef, projectsApi(repo, handlers));
    // Reusable while the access epoch stands: projects' updates and removals move it (migration 3).
    resources.define('projects', 'project', projectResolver(repo), { reuse: true });
  },
});
