export { projectsPlugin } from './projects-plugin.js';
export { slugify, PROJECT_EVENTS } from './project-service.js';
