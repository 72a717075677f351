import { html, nothing, type TemplateResult } from 'lit';
import type { tracking } from '@wanllmdb/proto/client';
import '../charts/line-chart.js';
import { groupKeys } from '../charts/series.js';

type Run = tracking.v1.Run;

/** How the charts tab draws its charts (the page's state). */
export interface ChartOptions {
  keyFilter: string;
  xKey: string;
  smoothing: number;
  logScale: boolean;
  ignoreOutliers: boolean;
}

/** The run page's charts tab: a chart per metric key (`metricKeys`, undefined while loading), grouped; `set` changes the options. */
export function chartsTab(run: Run, metricKeys: tracking.v1.MetricKeyStats[] | undefined, opts: ChartOptions, set: (change: Partial<ChartOptions>) => void): TemplateResult {
  if (!metricKeys) return html`<p class="muted">Loading metrics…</p>`;
  const f = opts.keyFilter.trim().toLowerCase();
  const keys = metricKeys.map((k) => k.key).filter((k) => !f || k.toLowerCase().includes(f));
  const groups = groupKeys(keys);
  const live = run.state === 'running';
  const xKeys = ['step', '_time', '_relative', ...metricKeys.map((k) => k.key).filter((k) => /epoch|step|iter/i.test(k))];
  return html`
    <div class="charts-bar">
      <input type="search" placeholder="Filter metrics" .value=${opts.keyFilter} @input=${(e: Event) => set({ keyFilter: (e.target as HTMLInputElement).value })} />
      <label
        >x axis
        <select @change=${(e: Event) => set({ xKey: (e.target as HTMLSelectElement).value })}>
          ${xKeys.map((k) => html`<option value=${k} ?selected=${k === opts.xKey}>${k === 'step' ? 'Step' : k === '_time' ? 'Wall time' : k === '_relative' ? 'Relative time' : k}</option>`)}
        </select></label
      >
      <label
        >smoothing <input type="range" min="0" max="0.99" step="0.01" .value=${String(opts.smoothing)} @input=${(e: Event) => set({ smoothing: Number((e.target as HTMLInputElement).value) })} /><span
          class="mono"
          >${opts.smoothing.toFixed(2)}</span
        ></label
      >
      <label><input type="checkbox" .checked=${opts.logScale} @change=${(e: Event) => set({ logScale: (e.target as HTMLInputElement).checked })} /> log y</label>
      <label><input type="checkbox" .checked=${opts.ignoreOutliers} @change=${(e: Event) => set({ ignoreOutliers: (e.target as HTMLInputElement).checked })} /> ignore outliers</label>
      ${live ? html`<span class="state running" style="color:var(--wl-accent)"><span class="dot" style="background:var(--wl-accent)"></span>live</span>` : nothing}
    </div>
    ${groups.length
      ? groups.map(
          (g) => html`<details class="group" open data-group=${g.name}>
            <summary>${g.name} <span class="muted">(${g.keys.length})</span></summary>
            <div class="chart-grid">
              ${g.keys.map(
                (k) => html`<wl-line-chart
                  data-key=${k}
                  .projectId=${run.projectId}
                  .runIds=${[run.id]}
                  .keys=${[k]}
                  .xKey=${opts.xKey}
                  .smoothing=${opts.smoothing}
                  .logScale=${opts.logScale}
                  .ignoreOutliers=${opts.ignoreOutliers}
                  .live=${live}
                  .runNames=${{ [run.id]: run.name }}
                  .height=${200}
                ></wl-line-chart>`,
              )}
            </div>
          </details>`,
        )
      : html`<p class="muted">${f ? 'No metric matches the filter.' : 'This run has logged no metrics yet.'}</p>`}
  `;
}
