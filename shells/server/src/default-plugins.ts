import type { Plugin } from '@wanllmdb/core';
import { artifactsPlugin } from '@wanllmdb/plugin-artifacts';
import { authPlugin } from '@wanllmdb/plugin-auth';
import { projectsPlugin } from '@wanllmdb/plugin-projects';
import { trackingPlugin } from '@wanllmdb/plugin-tracking';

/** The plugins `wanllmdb serve` starts with (`--no-auth` leaves out auth). */
export const defaultPlugins: readonly Plugin[] = [authPlugin, projectsPlugin, trackingPlugin, artifactsPlugin];
