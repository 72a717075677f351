import { registerPanel } from '@wanllmdb/web/kit';

/**
 * The tracking plugin's panels, registered exactly as a third-party plugin's
 * UI module registers its own (through `registerPanel`).
 */
let loaded = false;

/**
 * The panels' elements (and uPlot) load as their own chunks, after the shell
 * starts: a workspace's panel elements upgrade when they arrive.
 */
function loadElements(): void {
  if (loaded) return;
  loaded = true;
  void import('./line-chart-panel.js').catch((e: unknown) => console.error('line chart panel failed to load', e));
  void import('./run-fields-panels.js').catch((e: unknown) => console.error('run field panels failed to load', e));
}

export function registerTrackingPanels(): void {
  loadElements();
  registerPanel({
    type: 'tracking.line-chart',
    label: 'Line chart',
    element: 'wl-line-chart-panel',
    plugin: 'tracking',
    defaults: { keys: [], xKey: 'step', smoothing: 0, logScale: false, ignoreOutliers: false, live: true },
  });
  registerPanel({
    type: 'tracking.scatter',
    label: 'Scatter plot',
    element: 'wl-scatter-panel',
    plugin: 'tracking',
    defaults: { x: '', y: '', logX: false, logY: false },
  });
  registerPanel({
    type: 'tracking.parallel-coordinates',
    label: 'Parallel coordinates',
    element: 'wl-parallel-coordinates-panel',
    plugin: 'tracking',
    defaults: { axes: [], metric: '' },
  });
}
