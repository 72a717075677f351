export { projectsPlugin } from './projects-plugin.js';
export { projectEvent } from './project-service.js';
export { projectsApiRef, type ProjectsApi } from './projects-api.js';
