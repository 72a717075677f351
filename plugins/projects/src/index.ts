export { projectsPlugin } from './projects-plugin.js';
export { PROJECT_EVENTS } from './project-service.js';
export { ProjectsApiToken, type ProjectsApi } from './projects-api.js';
