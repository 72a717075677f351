/**
 * The projects plugin's web UI: the projects list (`/projects`: search,
 * pages, create). Bundled with the shell and contributed through the UI
 * contract (`UiPlugin`), the way every built-in plugin's UI is; it imports
 * from the shell only `@wanllmdb/web/kit`.
 */
import type { UiPlugin } from '@wanllmdb/web/kit';

export const projectsUi: UiPlugin = {
  id: 'projects',
  routes: [{ pattern: '/projects', tag: 'wl-projects-page', load: () => import('./projects-page.js') }],
};
