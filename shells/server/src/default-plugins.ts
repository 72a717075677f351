import type { Plugin } from '@wanllmdb/core';
import { projectsPlugin } from '@wanllmdb/plugin-projects';

/** The plugins `wanllmdb serve` starts with. */
export const defaultPlugins: readonly Plugin[] = [projectsPlugin];
