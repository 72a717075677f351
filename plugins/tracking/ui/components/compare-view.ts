import { LitElement, css, html, nothing } from 'lit';
import '../charts/line-chart.js';
import { contentChanged } from '../charts/line-chart.js';
import '../charts/parallel-coordinates.js';
import type { tracking } from '@wanllmdb/proto/client';
import { differingConfigKeys, fieldOptions, loadRuns, metricKeys } from '../charts/run-data.js';
import '../charts/scatter-plot.js';
import { configDiff, formatValue, groupKeys, seriesColor } from '../charts/series.js';
import { LiveRunsController } from '../charts/live.js';
import { fieldSelect } from '../panels/run-fields-panels.js';
import { errorMessage, shared } from '@wanllmdb/web/kit';

/**
 * <wl-compare-view>: two or more runs side by side — overlaid line charts
 * of their common metrics, a config diff table (differing rows highlighted,
 * "only differences"), parallel coordinates from config to a metric, and a
 * scatter of any two fields. Each run keeps one colour throughout.
 */
export class WlCompareView extends LitElement {
  static override properties = {
    projectId: {},
    runIds: { attribute: false, hasChanged: contentChanged },
    runs: { state: true },
    common: { state: true },
    error: { state: true },
    onlyDiffs: { state: true },
    configSearch: { state: true },
    keyFilter: { state: true },
    smoothing: { state: true },
    axes: { state: true },
    metric: { state: true },
    scatterX: { state: true },
    scatterY: { state: true },
  };

  static override styles = [
    shared,
    css`
      section {
        margin-bottom: 20px;
      }
      .bar {
        display: flex;
        gap: 12px;
        align-items: center;
        flex-wrap: wrap;
        margin-bottom: 8px;
        font-size: 13px;
      }
      .bar label {
        display: inline-flex;
        gap: 4px;
        align-items: center;
      }
      .runs {
        display: flex;
        flex-wrap: wrap;
        gap: 4px 16px;
        margin-bottom: 8px;
      }
      .sw {
        display: inline-block;
        width: 10px;
        height: 10px;
        border-radius: 50%;
        margin-right: 5px;
        vertical-align: -1px;
      }
      .chart-grid {
        display: grid;
        grid-template-columns: repeat(auto-fill, minmax(420px, 1fr));
        gap: var(--wl-gap);
      }
      .chart-grid wl-line-chart,
      .plot {
        background: var(--wl-surface);
        border: 1px solid var(--wl-border);
        border-radius: var(--wl-radius);
        padding: 8px;
      }
      .diff-wrap {
        max-height: 480px;
        overflow: auto;
        border: 1px solid var(--wl-border);
        border-radius: var(--wl-radius);
      }
      .diff th {
        position: sticky;
        top: 0;
        background: var(--wl-surface);
        z-index: 1;
      }
      .diff td {
        font-family: var(--wl-mono);
        font-size: 12px;
        white-space: normal;
        word-break: break-all;
      }
      .diff td:first-child {
        font-family: var(--wl-font);
        font-size: 13px;
        word-break: normal;
      }
      .diff tr.differs td {
        background: var(--wl-highlight);
      }
      .diff td.missing {
        color: var(--wl-muted);
      }
      .chip {
        display: inline-flex;
        align-items: center;
        padding: 0 2px 0 8px;
        border-radius: 10px;
        border: 1px solid var(--wl-border);
        font-size: 12px;
      }
      .chip button {
        border: none;
        background: none;
        padding: 0 4px;
        color: var(--wl-muted);
      }
      .two {
        display: grid;
        grid-template-columns: repeat(auto-fit, minmax(420px, 1fr));
        gap: var(--wl-gap);
      }
      details > summary {
        cursor: pointer;
        font-weight: 600;
        margin: 8px 0;
      }
    `,
  ];

  declare projectId: string;
  declare runIds: string[];
  declare runs: tracking.v1.Run[];
  declare common: string[];
  declare error: string;
  declare onlyDiffs: boolean;
  declare configSearch: string;
  declare keyFilter: string;
  declare smoothing: number;
  declare axes: string[] | undefined;
  declare metric: string;
  declare scatterX: string;
  declare scatterY: string;
  private readonly live = new LiveRunsController(this, (current, first) => this.load(current, first));

  constructor() {
    super();
    this.projectId = '';
    this.runIds = [];
    this.runs = [];
    this.common = [];
    this.error = '';
    this.onlyDiffs = false;
    this.configSearch = '';
    this.keyFilter = '';
    this.smoothing = 0;
    this.axes = undefined;
    this.metric = '';
    this.scatterX = '';
    this.scatterY = '';
  }

  /** The runs; their common metric keys too when `withKeys` (a new set of runs, not a live reload). */
  private async load(current: () => boolean, withKeys: boolean): Promise<void> {
    try {
      const ids = this.runIds ?? [];
      const [runs, keys] = await Promise.all([loadRuns(this.projectId, ids), withKeys ? metricKeys(ids) : Promise.resolve(undefined)]);
      if (!current()) return;
      this.runs = runs;
      if (keys) this.common = keys.common.filter((k) => !k.startsWith('_'));
      this.error = '';
    } catch (e) {
      this.error = errorMessage(e);
    }
  }

  private colors(): Record<string, string> {
    return Object.fromEntries((this.runIds ?? []).map((id, i) => [id, seriesColor(i)]));
  }

  private names(): Record<string, string> {
    return Object.fromEntries(this.runs.map((r) => [r.id, r.name || r.id.slice(0, 8)]));
  }

  private chartsSection(colors: Record<string, string>, names: Record<string, string>) {
    const f = this.keyFilter.trim().toLowerCase();
    const groups = groupKeys(this.common.filter((k) => !f || k.toLowerCase().includes(f)));
    const live = this.runs.some((r) => r.state === 'running');
    const chart = (k: string) =>
      html`<wl-line-chart
        data-key=${k}
        .projectId=${this.projectId}
        .runIds=${this.runIds}
        .keys=${[k]}
        .smoothing=${this.smoothing}
        .live=${live}
        .runNames=${names}
        .runColors=${colors}
        .height=${200}
      ></wl-line-chart>`;
    return html`<section id="metrics">
      <h2>Metrics</h2>
      <div class="bar">
        <input type="search" placeholder="Filter metrics" .value=${this.keyFilter} @input=${(e: Event) => (this.keyFilter = (e.target as HTMLInputElement).value)} />
        <label
          >smoothing <input type="range" min="0" max="0.99" step="0.01" .value=${String(this.smoothing)} @input=${(e: Event) => (this.smoothing = Number((e.target as HTMLInputElement).value))} /><span
            class="mono"
            >${this.smoothing.toFixed(2)}</span
          ></label
        >
        <span class="muted">${this.common.length} metrics logged by every run</span>
      </div>
      ${groups.length
        ? groups.map((g) =>
            g.system
              ? html`<details data-group=${g.name}>
                  <summary>${g.name} (${g.keys.length})</summary>
                  <div class="chart-grid">${g.keys.map(chart)}</div>
                </details>`
              : html`${groups.length > 1 ? html`<h3>${g.name}</h3>` : nothing}
                  <div class="chart-grid">${g.keys.map(chart)}</div>`,
          )
        : html`<p class="muted">These runs have no metric in common${f ? ' matching the filter' : ''}.</p>`}
    </section>`;
  }

  private diffSection(colors: Record<string, string>) {
    const runs = this.runs;
    const rows = configDiff(runs.map((r) => r.config ?? {}));
    const q = this.configSearch.trim().toLowerCase();
    const shown = rows.filter((r) => (!this.onlyDiffs || r.differs) && (!q || r.key.toLowerCase().includes(q) || r.values.some((v) => formatValue(v).toLowerCase().includes(q))));
    const differing = rows.filter((r) => r.differs).length;
    return html`<section id="config-diff">
      <h2>Config</h2>
      <div class="bar">
        <label><input type="checkbox" class="only-diffs" .checked=${this.onlyDiffs} @change=${(e: Event) => (this.onlyDiffs = (e.target as HTMLInputElement).checked)} /> only differences</label>
        <input type="search" placeholder="Search keys and values" .value=${this.configSearch} @input=${(e: Event) => (this.configSearch = (e.target as HTMLInputElement).value)} />
        <span class="muted">${differing} of ${rows.length} keys differ</span>
      </div>
      ${rows.length
        ? html`<div class="diff-wrap">
            <table class="diff">
              <thead>
                <tr>
                  <th>Key</th>
                  ${runs.map((r) => html`<th><span class="sw" style="background:${colors[r.id]}"></span><a href="/runs/${encodeURIComponent(r.id)}">${r.name || r.id.slice(0, 8)}</a></th>`)}
                </tr>
              </thead>
              <tbody>
                ${shown.map(
                  (row) => html`<tr class=${row.differs ? 'differs' : ''} data-key=${row.key}>
                    <td>${row.key}</td>
                    ${row.values.map((v) => html`<td class=${v === undefined ? 'missing' : ''}>${formatValue(v)}</td>`)}
                  </tr>`,
                )}
              </tbody>
            </table>
          </div>`
        : html`<p class="muted">None of these runs has a config.</p>`}
    </section>`;
  }

  private fieldsSection(colors: Record<string, string>) {
    const opts = fieldOptions(this.runs);
    const axes = this.axes ?? differingConfigKeys(this.runs, 6);
    const metric = this.metric || opts.summary.find((f) => /loss/i.test(f)) || opts.summary[0] || '';
    const sx = this.scatterX || axes[0] || opts.config[0] || '';
    const sy = this.scatterY || metric;
    const addable = { config: opts.config.filter((f) => !axes.includes(f)), summary: opts.summary.filter((f) => !axes.includes(f) && f !== metric) };
    return html`<div class="two">
      <section id="parallel">
        <h2>Parameters → metric</h2>
        <div class="bar">
          ${axes.map((a) => html`<span class="chip">${a.replace(/^config\./, '')}<button title="Remove" @click=${() => (this.axes = axes.filter((x) => x !== a))}>×</button></span>`)}
          ${fieldSelect('', addable, (v) => v && (this.axes = [...axes, v]), 'add-axis', '+ axis…')}
          <label>metric ${fieldSelect(metric, { config: [], summary: opts.summary }, (v) => (this.metric = v), 'pc-metric')}</label>
        </div>
        <div class="plot"><wl-parallel-coordinates .runs=${this.runs} .axes=${axes} .metric=${metric} .height=${300}></wl-parallel-coordinates></div>
      </section>
      <section id="scatter">
        <h2>Scatter</h2>
        <div class="bar">
          <label>x ${fieldSelect(sx, opts, (v) => (this.scatterX = v), 'scatter-x')}</label>
          <label>y ${fieldSelect(sy, opts, (v) => (this.scatterY = v), 'scatter-y')}</label>
        </div>
        <div class="plot"><wl-scatter-plot .runs=${this.runs} .xField=${sx} .yField=${sy} .runColors=${colors} .height=${300}></wl-scatter-plot></div>
      </section>
    </div>`;
  }

  override render() {
    if ((this.runIds ?? []).length < 2) return html`<p class="muted">Select two or more runs to compare.</p>`;
    const colors = this.colors();
    const names = this.names();
    return html`
      ${this.error ? html`<p class="error">${this.error}</p>` : nothing}
      <div class="runs">
        ${this.runs.map((r) => html`<span><span class="sw" style="background:${colors[r.id]}"></span><a href="/runs/${encodeURIComponent(r.id)}">${r.name || r.id.slice(0, 8)}</a> <span class="muted">${r.state}</span></span>`)}
      </div>
      ${this.chartsSection(colors, names)} ${this.diffSection(colors)} ${this.fieldsSection(colors)}
    `;
  }
}

customElements.define('wl-compare-view', WlCompareView);

declare global {
  interface HTMLElementTagNameMap {
    'wl-compare-view': WlCompareView;
  }
}
