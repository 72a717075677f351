import { artifactsUi } from '@wanllmdb/plugin-artifacts/ui';
import { projectsUi } from '@wanllmdb/plugin-projects/ui';
import { trackingUi } from '@wanllmdb/plugin-tracking/ui';
import type { UiPlugin } from './plugins.js';

/** The built-in plugins' UIs the shell bundles (each from its own `plugins/<id>/ui/`). */
export const uiPlugins: readonly UiPlugin[] = [projectsUi, trackingUi, artifactsUi];
