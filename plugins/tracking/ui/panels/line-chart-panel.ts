import { LitElement, css, html, nothing, type PropertyValues } from 'lit';
import '../charts/line-chart.js';
import { loadRuns, metricKeys } from '../charts/run-data.js';
import { shared } from '@wanllmdb/web/kit';

export interface LineChartConfig {
  keys: string[];
  xKey: string;
  smoothing: number;
  logScale: boolean;
  ignoreOutliers: boolean;
  live?: boolean;
  title?: string;
}

const LINE_CHART_DEFAULTS: LineChartConfig = { keys: [], xKey: 'step', smoothing: 0, logScale: false, ignoreOutliers: false, live: true };

/** The header controls every panel shares. */
export const panelStyles = css`
  :host {
    display: flex;
    flex-direction: column;
    height: 100%;
    min-width: 0;
    min-height: 0;
  }
  wl-line-chart,
  wl-scatter-plot,
  wl-parallel-coordinates {
    flex: 1;
    min-height: 0;
  }
  .bar {
    display: flex;
    align-items: center;
    gap: 6px;
    flex-wrap: wrap;
    margin-bottom: 6px;
  }
  .bar .title {
    font-weight: 600;
    flex: 1;
    min-width: 0;
    overflow: hidden;
    text-overflow: ellipsis;
    white-space: nowrap;
  }
  .bar button,
  .edit button {
    padding: 1px 8px;
    font-size: 12px;
  }
  .edit {
    display: flex;
    flex-wrap: wrap;
    gap: 6px 12px;
    align-items: center;
    font-size: 12px;
    padding: 6px 8px;
    margin-bottom: 6px;
    border: 1px solid var(--wl-border);
    border-radius: var(--wl-radius);
    background: var(--wl-surface);
  }
  .edit label {
    display: inline-flex;
    gap: 4px;
    align-items: center;
  }
  .edit input,
  .edit select {
    font-size: 12px;
    padding: 2px 6px;
  }
  .chip {
    display: inline-flex;
    align-items: center;
    gap: 2px;
    padding: 0 2px 0 8px;
    border-radius: 10px;
    border: 1px solid var(--wl-border);
    background: var(--wl-bg);
  }
  .chip button {
    border: none;
    background: none;
    padding: 0 4px;
    color: var(--wl-muted);
  }
`;

/**
 * <wl-line-chart-panel> (panel type `tracking.line-chart`): a line chart of
 * the panel's runs whose keys, x axis, smoothing, log scale and outlier
 * handling are edited in its header; every change is sent up as a
 * `wl-panel-config` event.
 */
export class WlLineChartPanel extends LitElement {
  static override properties = {
    projectId: { attribute: false },
    runIds: { attribute: false },
    config: { attribute: false },
    editing: { state: true },
    available: { state: true },
    runNames: { state: true },
  };
  static override styles = [shared, panelStyles];

  declare projectId: string;
  declare runIds: string[];
  declare config: Record<string, unknown>;
  declare editing: boolean;
  declare available: string[];
  declare runNames: Record<string, string>;
  private loadedFor = '';

  constructor() {
    super();
    this.projectId = '';
    this.runIds = [];
    this.config = {};
    this.editing = false;
    this.available = [];
    this.runNames = {};
  }

  get cfg(): LineChartConfig {
    const c = { ...LINE_CHART_DEFAULTS, ...(this.config ?? {}) } as LineChartConfig;
    if (!Array.isArray(c.keys)) c.keys = typeof c.keys === 'string' ? [c.keys] : [];
    return c;
  }

  protected override willUpdate(changed: PropertyValues<this>): void {
    const key = `${this.projectId}|${(this.runIds ?? []).join(',')}`;
    if ((changed.has('runIds' as keyof WlLineChartPanel) || changed.has('projectId' as keyof WlLineChartPanel)) && key !== this.loadedFor) {
      this.loadedFor = key;
      void this.loadMeta(key);
    }
  }

  private async loadMeta(key: string): Promise<void> {
    const runIds = this.runIds ?? [];
    const [keys, runs] = await Promise.all([metricKeys(runIds).catch(() => ({ union: [] as string[] })), runIds.length <= 100 ? loadRuns(this.projectId, runIds).catch(() => []) : Promise.resolve([])]);
    if (key !== this.loadedFor) return;
    this.available = keys.union.filter((k) => !k.startsWith('_'));
    this.runNames = Object.fromEntries(runs.map((r) => [r.id, r.name || r.id.slice(0, 8)]));
  }

  private update_(patch: Partial<LineChartConfig>): void {
    const next = { ...this.cfg, ...patch };
    this.config = next as unknown as Record<string, unknown>;
    this.dispatchEvent(new CustomEvent('wl-panel-config', { detail: next, bubbles: true, composed: true }));
  }

  private addKey(e: Event): void {
    const input = e.target as HTMLInputElement | HTMLSelectElement;
    const k = input.value.trim();
    input.value = '';
    if (k && !this.cfg.keys.includes(k)) this.update_({ keys: [...this.cfg.keys, k] });
  }

  override render() {
    const c = this.cfg;
    const xOptions = ['step', '_time', '_relative', ...this.available.filter((k) => !c.keys.includes(k))];
    const addable = this.available.filter((k) => !c.keys.includes(k));
    return html`
      <div class="bar">
        <span class="title">${c.title || c.keys.join(', ') || 'Line chart'}</span>
        <button class="edit-toggle" aria-expanded=${this.editing} @click=${() => (this.editing = !this.editing)}>${this.editing ? 'Done' : 'Edit'}</button>
      </div>
      ${this.editing
        ? html`<div class="edit">
            <span class="row" style="gap:4px">
              ${c.keys.map((k) => html`<span class="chip">${k}<button title="Remove ${k}" @click=${() => this.update_({ keys: c.keys.filter((x) => x !== k) })}>×</button></span>`)}
              <select class="add-key" aria-label="Add a metric" @change=${this.addKey}>
                <option value="">+ metric…</option>
                ${addable.map((k) => html`<option value=${k}>${k}</option>`)}
              </select>
            </span>
            <label
              >x
              <select class="x-key" @change=${(e: Event) => this.update_({ xKey: (e.target as HTMLSelectElement).value })}>
                ${xOptions.map((k) => html`<option value=${k} ?selected=${k === c.xKey}>${k === 'step' ? 'Step' : k === '_time' ? 'Wall time' : k === '_relative' ? 'Relative time' : k}</option>`)}
              </select></label
            >
            <label
              >smoothing
              <input
                class="smoothing"
                type="range"
                min="0"
                max="0.99"
                step="0.01"
                .value=${String(c.smoothing)}
                @change=${(e: Event) => this.update_({ smoothing: Number((e.target as HTMLInputElement).value) })}
              />
              <span class="mono">${c.smoothing.toFixed(2)}</span></label
            >
            <label><input type="checkbox" class="log" .checked=${c.logScale} @change=${(e: Event) => this.update_({ logScale: (e.target as HTMLInputElement).checked })} />log y</label>
            <label
              ><input type="checkbox" class="outliers" .checked=${c.ignoreOutliers} @change=${(e: Event) => this.update_({ ignoreOutliers: (e.target as HTMLInputElement).checked })} />ignore
              outliers</label
            >
            <label><input type="checkbox" class="live" .checked=${c.live !== false} @change=${(e: Event) => this.update_({ live: (e.target as HTMLInputElement).checked })} />live</label>
          </div>`
        : nothing}
      ${c.keys.length
        ? html`<wl-line-chart
            .projectId=${this.projectId}
            .runIds=${this.runIds ?? []}
            .keys=${c.keys}
            .xKey=${c.xKey}
            .smoothing=${c.smoothing}
            .logScale=${c.logScale}
            .ignoreOutliers=${c.ignoreOutliers}
            .live=${c.live !== false}
            .runNames=${this.runNames}
            .chartTitle=${' '}
            fill
          ></wl-line-chart>`
        : html`<p class="muted">No metric chosen yet. ${this.editing ? '' : html`<button @click=${() => (this.editing = true)}>Choose metrics</button>`}</p>`}
    `;
  }
}

customElements.define('wl-line-chart-panel', WlLineChartPanel);
