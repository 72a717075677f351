/**
 * The tracking plugin's web UI: the run page, the runs table, the workspace
 * and its panels, the compare view and the charts. The shell bundles it
 * (`shells/web/src/ui-plugins.ts`) and takes what it contributes through
 * the UI contract (`UiPlugin`): its routes, and the panels it registers.
 * It imports from the shell only `@wanllmdb/web/kit`.
 */
import type { UiPlugin } from '@wanllmdb/web/kit';
import { registerTrackingPanels } from './panels/builtin.js';

export const trackingUi: UiPlugin = {
  id: 'tracking',
  routes: [{ pattern: '/runs/:id/:tab?', tag: 'wl-run-page', load: () => import('./pages/run-page.js') }],
  register: registerTrackingPanels,
};

/** Elements other pages embed by tag (the project page's runs, workspace and compare tabs). */
export const loadRunsTable = () => import('./components/runs-table.js');
export const loadWorkspace = () => import('./components/workspace.js');
export const loadCompareView = () => import('./components/compare-view.js');
export type { WlRunsTable } from './components/runs-table.js';
