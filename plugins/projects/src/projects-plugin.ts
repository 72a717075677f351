import { definePlugin, Tokens } from '@wanllmdb/core';
import { projects } from '@wanllmdb/proto';
import { projectMigrations } from './migrations.js';
import { ProjectRepository } from './project-repository.js';
import { projectHandlers } from './project-service.js';

/** Projects: the first service, which every other plugin's data hangs on. */
export const projectsPlugin = definePlugin({
  id: 'projects',
  version: '0.1.0',
  register(r) {
    r.migrations(projectMigrations);
    r.service(projects.v1.ProjectService, () =>
      projectHandlers(new ProjectRepository(r.resolve(Tokens.MetadataStore)), r.resolve(Tokens.EventBus), r.resolve(Tokens.Clock)),
    );
  },
});
