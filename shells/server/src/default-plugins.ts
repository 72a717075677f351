import type { Plugin } from '@wanllmdb/core';
import { projectsPlugin } from '@wanllmdb/plugin-projects';
import { trackingPlugin } from '@wanllmdb/plugin-tracking';

/** The plugins `wanllmdb serve` starts with. */
export const defaultPlugins: readonly Plugin[] = [projectsPlugin, trackingPlugin];
