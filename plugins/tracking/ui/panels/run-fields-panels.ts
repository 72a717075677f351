import { LitElement, html, nothing } from 'lit';
import '../charts/parallel-coordinates.js';
import '../charts/scatter-plot.js';
import type { tracking } from '@wanllmdb/proto/client';
import { differingConfigKeys, fieldOptions, loadRuns } from '../charts/run-data.js';
import { LiveRunsController } from '../charts/live.js';
import { panelStyles } from './line-chart-panel.js';
import { errorMessage, shared } from '@wanllmdb/web/kit';

/** Options of a field <select>: config keys, then summary keys. */
export function fieldSelect(value: string, options: { config: string[]; summary: string[] }, onChange: (v: string) => void, cls: string, empty = 'choose…') {
  const all = [...options.config, ...options.summary];
  return html`<select class=${cls} @change=${(e: Event) => onChange((e.target as HTMLSelectElement).value)}>
    <option value="" ?selected=${!value}>${empty}</option>
    ${value && !all.includes(value) ? html`<option value=${value} selected>${value}</option>` : nothing}
    <optgroup label="Config">${options.config.map((f) => html`<option value=${f} ?selected=${f === value}>${f.slice(7)}</option>`)}</optgroup>
    <optgroup label="Summary">${options.summary.map((f) => html`<option value=${f} ?selected=${f === value}>${f.slice(8)}</option>`)}</optgroup>
  </select>`;
}

/** Loads the panel's runs (config + summary) and keeps them fresh as they change. */
abstract class RunFieldsPanel extends LitElement {
  static override properties = {
    projectId: { attribute: false },
    runIds: { attribute: false },
    config: { attribute: false },
    runs: { state: true },
    editing: { state: true },
    error: { state: true },
  };
  static override styles = [shared, panelStyles];

  declare projectId: string;
  declare runIds: string[];
  declare config: Record<string, unknown>;
  declare runs: tracking.v1.Run[];
  declare editing: boolean;
  declare error: string;
  // Summaries change as metrics arrive: reloaded at most every 2 s.
  private readonly live = new LiveRunsController(this, (current) => this.load(current));

  constructor() {
    super();
    this.projectId = '';
    this.runIds = [];
    this.config = {};
    this.runs = [];
    this.editing = false;
    this.error = '';
  }

  private async load(current: () => boolean): Promise<void> {
    try {
      const runs = await loadRuns(this.projectId, this.runIds ?? []);
      if (!current()) return;
      this.runs = runs;
      this.error = '';
    } catch (e) {
      this.error = errorMessage(e);
    }
  }

  protected send(next: Record<string, unknown>): void {
    this.config = next;
    this.dispatchEvent(new CustomEvent('wl-panel-config', { detail: next, bubbles: true, composed: true }));
  }
}

/** <wl-scatter-panel> (`tracking.scatter`): config {x, y, logX, logY}. */
export class WlScatterPanel extends RunFieldsPanel {
  override render() {
    const c = this.config ?? {};
    const opts = fieldOptions(this.runs);
    const x = String(c.x ?? '') || opts.config[0] || '';
    const y = String(c.y ?? '') || opts.summary[0] || '';
    return html`
      <div class="bar">
        <span class="title">${y && x ? `${y.replace(/^\w+\./, '')} vs ${x.replace(/^\w+\./, '')}` : 'Scatter plot'}</span>
        <button class="edit-toggle" @click=${() => (this.editing = !this.editing)}>${this.editing ? 'Done' : 'Edit'}</button>
      </div>
      ${this.editing
        ? html`<div class="edit">
            <label>x ${fieldSelect(x, opts, (v) => this.send({ ...c, x: v }), 'x-field')}</label>
            <label>y ${fieldSelect(y, opts, (v) => this.send({ ...c, y: v }), 'y-field')}</label>
            <label><input type="checkbox" .checked=${!!c.logX} @change=${(e: Event) => this.send({ ...c, logX: (e.target as HTMLInputElement).checked })} />log x</label>
            <label><input type="checkbox" .checked=${!!c.logY} @change=${(e: Event) => this.send({ ...c, logY: (e.target as HTMLInputElement).checked })} />log y</label>
          </div>`
        : nothing}
      ${this.error ? html`<p class="error">${this.error}</p>` : nothing}
      <wl-scatter-plot .runs=${this.runs} .xField=${x} .yField=${y} .logX=${!!c.logX} .logY=${!!c.logY} .height=${Number(c.height) || 280} fill></wl-scatter-plot>
    `;
  }
}

/** <wl-parallel-coordinates-panel> (`tracking.parallel-coordinates`): config {axes: string[], metric}. */
export class WlParallelCoordinatesPanel extends RunFieldsPanel {
  override render() {
    const c = this.config ?? {};
    const opts = fieldOptions(this.runs);
    const axes = Array.isArray(c.axes) && c.axes.length ? (c.axes as string[]) : differingConfigKeys(this.runs, 6);
    const metric = String(c.metric ?? '') || opts.summary.find((f) => /loss/i.test(f)) || opts.summary[0] || '';
    const addable = { config: opts.config.filter((f) => !axes.includes(f)), summary: opts.summary.filter((f) => !axes.includes(f) && f !== metric) };
    return html`
      <div class="bar">
        <span class="title">Parameters → ${metric.replace(/^\w+\./, '') || 'metric'}</span>
        <button class="edit-toggle" @click=${() => (this.editing = !this.editing)}>${this.editing ? 'Done' : 'Edit'}</button>
      </div>
      ${this.editing
        ? html`<div class="edit">
            <span class="row" style="gap:4px"
              >${axes.map((a) => html`<span class="chip">${a.replace(/^\w+\./, '')}<button title="Remove" @click=${() => this.send({ ...c, axes: axes.filter((x) => x !== a), metric })}>×</button></span>`)}
              ${fieldSelect('', addable, (v) => v && this.send({ ...c, axes: [...axes, v], metric }), 'add-axis', '+ axis…')}</span
            >
            <label>metric ${fieldSelect(metric, { config: [], summary: opts.summary }, (v) => this.send({ ...c, axes, metric: v }), 'metric')}</label>
          </div>`
        : nothing}
      ${this.error ? html`<p class="error">${this.error}</p>` : nothing}
      <wl-parallel-coordinates .runs=${this.runs} .axes=${axes} .metric=${metric} .height=${Number(c.height) || 300} fill></wl-parallel-coordinates>
    `;
  }
}

customElements.define('wl-scatter-panel', WlScatterPanel);
customElements.define('wl-parallel-coordinates-panel', WlParallelCoordinatesPanel);
