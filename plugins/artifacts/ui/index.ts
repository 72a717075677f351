/**
 * The artifacts plugin's web UI: an Artifacts tab on the project page
 * (collections by type, versions, aliases, files with previews, diffs and
 * the lineage graph) and one on the run page (the run's inputs and
 * outputs). Bundled with the shell (`shells/web/src/ui-plugins.ts`) and
 * contributed through the UI contract (`UiPlugin.tabs`); it imports from
 * the shell only `@wanllmdb/web/kit`.
 */
import type { UiPlugin } from '@wanllmdb/web/kit';

export const artifactsUi: UiPlugin = {
  id: 'artifacts',
  tabs: [
    { host: 'project', name: 'artifacts', element: 'wl-artifacts-tab', load: () => import('./artifacts-tab.js') },
    { host: 'run', name: 'artifacts', element: 'wl-run-artifacts', load: () => import('./run-artifacts.js') },
  ],
};
