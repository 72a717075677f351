import type { Route } from './router.js';
import { uiPlugins } from './ui-plugins.js';

/** The shell's own page routes (sign-in, projects, settings, organisations), each a lazily loaded custom element. */
const shellRoutes: Route[] = [
  { pattern: '/login', tag: 'wl-login-page', load: () => import('./pages/login-page.js'), public: true },
  { pattern: '/setup', tag: 'wl-setup-page', load: () => import('./pages/setup-page.js'), public: true },
  { pattern: '/projects/:id/:tab?', tag: 'wl-project-page', load: () => import('./pages/project-page.js') },
  { pattern: '/settings', tag: 'wl-settings-page', load: () => import('./pages/settings-page.js') },
  { pattern: '/orgs/:id?', tag: 'wl-org-page', load: () => import('./pages/org-page.js') },
];

/** The page routes of the design (000: 路由设计): the shell's, then each built-in plugin UI's (`/runs/:id` is tracking's). */
export const routes: Route[] = [...shellRoutes, ...uiPlugins.flatMap((p) => p.routes ?? [])];
