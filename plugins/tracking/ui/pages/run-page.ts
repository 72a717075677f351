import { LitElement, css, html, nothing } from 'lit';
import type { tracking } from '@wanllmdb/proto/client';
import '../components/workspace.js';
import { errorMessage, factList, runDuration, shared, tabBar, tabBarStyles, tabElement, tabTypes, type TabType } from '@wanllmdb/web/kit';
import { chartsTab } from './run-charts.js';
import { filesTab } from './run-files.js';
import { formatDuration, stateColor } from './run-format.js';
import './run-logs.js';
import { overviewTab } from './run-overview.js';
import { RunPageData } from './run-page-data.js';

const TABS = ['overview', 'charts', 'logs', 'files', 'workspace'] as const;
/** A built-in tab, or the name of one a plugin added (`registerTab({ host: 'run', … })`). */
type Tab = (typeof TABS)[number] | (string & {});

/**
 * <wl-run-page> for `/runs/:id/:tab?`: overview | charts | logs | files | workspace,
 * then the tabs plugins add (the artifacts plugin's inputs and outputs).
 * The run and what it loads are `RunPageData`'s; each tab renders from its own module.
 */
export class WlRunPage extends LitElement {
  static override properties = {
    params: { attribute: false },
    query: { attribute: false },
    editing: { state: true },
    configSearch: { state: true },
    summarySearch: { state: true },
    keyFilter: { state: true },
    smoothing: { state: true },
    xKey: { state: true },
    logScale: { state: true },
    ignoreOutliers: { state: true },
    tabsLoaded: { state: true },
    tabError: { state: true },
  };

  static override styles = [
    shared,
    tabBarStyles,
    factList,
    css`
      .top {
        display: flex;
        align-items: baseline;
        gap: 12px;
        flex-wrap: wrap;
      }
      .top h1 {
        margin: 0;
      }
      .state {
        display: inline-flex;
        align-items: center;
        gap: 6px;
        font-weight: 600;
        text-transform: capitalize;
      }
      .dot {
        width: 9px;
        height: 9px;
        border-radius: 50%;
      }
      .state.running .dot {
        animation: pulse 1.4s ease-in-out infinite;
      }
      @keyframes pulse {
        50% {
          opacity: 0.35;
        }
      }
      .grid2 {
        display: grid;
        grid-template-columns: repeat(auto-fit, minmax(360px, 1fr));
        gap: var(--wl-gap);
        align-items: start;
      }
      dd {
        word-break: break-all;
      }
      .card h2 {
        margin-top: 0;
      }
      .tag {
        display: inline-flex;
        align-items: center;
        gap: 2px;
        padding: 0 4px 0 8px;
        border-radius: 10px;
        background: color-mix(in srgb, var(--wl-accent) 15%, transparent);
        margin: 0 4px 4px 0;
      }
      .tag button {
        border: none;
        background: none;
        padding: 0 3px;
        color: var(--wl-muted);
      }
      .notes {
        white-space: pre-wrap;
      }
      textarea {
        width: 100%;
        box-sizing: border-box;
        min-height: 90px;
      }
      .editable {
        cursor: text;
        border-radius: var(--wl-radius);
        padding: 2px 4px;
        margin: -2px -4px;
      }
      .editable:hover {
        background: var(--wl-surface);
        outline: 1px dashed var(--wl-border);
      }
      .charts-bar {
        display: flex;
        gap: 12px;
        align-items: center;
        flex-wrap: wrap;
        margin-bottom: 12px;
        font-size: 13px;
      }
      .charts-bar label {
        display: inline-flex;
        gap: 4px;
        align-items: center;
      }
      details.group > summary {
        cursor: pointer;
        font-weight: 600;
        font-size: 15px;
        margin: 8px 0;
      }
      .chart-grid {
        display: grid;
        grid-template-columns: repeat(auto-fill, minmax(420px, 1fr));
        gap: var(--wl-gap);
        margin-bottom: 12px;
      }
      .chart-grid wl-line-chart {
        background: var(--wl-surface);
        border: 1px solid var(--wl-border);
        border-radius: var(--wl-radius);
        padding: 8px;
      }
      .summary td:last-child {
        font-family: var(--wl-mono);
        white-space: normal;
        word-break: break-all;
      }
      td.num {
        text-align: right;
        font-variant-numeric: tabular-nums;
      }
    `,
  ];

  declare params: Record<string, string>;
  declare query: URLSearchParams;
  declare editing: '' | 'name' | 'notes';
  declare configSearch: string;
  declare summarySearch: string;
  declare keyFilter: string;
  declare smoothing: number;
  declare xKey: string;
  declare logScale: boolean;
  declare ignoreOutliers: boolean;
  /** Plugins' tabs whose element is defined, and why one failed to load. */
  declare tabsLoaded: ReadonlySet<string>;
  declare tabError: string;
  private readonly data = new RunPageData(this, () => (this.editing = ''));

  constructor() {
    super();
    this.params = {};
    this.query = new URLSearchParams();
    this.editing = '';
    this.configSearch = '';
    this.summarySearch = '';
    this.keyFilter = '';
    this.smoothing = 0;
    this.xKey = 'step';
    this.logScale = false;
    this.ignoreOutliers = false;
    this.tabsLoaded = new Set();
    this.tabError = '';
  }

  /** Tabs plugins add after the page's own. */
  private get pluginTabs(): TabType[] {
    return tabTypes('run', TABS);
  }

  get runId(): string {
    return this.params?.id ?? '';
  }

  get tab(): Tab {
    const t = this.params?.tab;
    return t && ((TABS as readonly string[]).includes(t) || this.pluginTabs.some((p) => p.name === t)) ? t : 'overview';
  }

  protected override willUpdate(): void {
    this.data.open(this.runId);
    if (this.tab === 'files') this.data.wantFiles();
    const contributed = this.pluginTabs.find((t) => t.name === this.tab);
    if (contributed && !this.tabsLoaded.has(contributed.name)) {
      void Promise.resolve(contributed.load?.())
        .then(() => customElements.whenDefined(contributed.element))
        .then(
          () => (this.tabsLoaded = new Set([...this.tabsLoaded, contributed.name])),
          (e: unknown) => (this.tabError = `The ${contributed.name} tab failed to load: ${errorMessage(e)}`),
        );
    }
  }

  /** A plugin's tab: its element, given the run and the address's query. */
  private pluginTab(run: tracking.v1.Run, tab: TabType) {
    if (this.tabError) return html`<p class="error">${this.tabError}</p>`;
    if (!this.tabsLoaded.has(tab.name)) return html`<p class="muted">Loading…</p>`;
    return tabElement(this, tab, { runId: run.id, projectId: run.projectId, run, query: this.query });
  }

  private rename(name: string): void {
    void this.data.patch({ name });
  }

  private edit(what: 'name' | 'notes', focus: string): void {
    this.editing = what;
    void this.updateComplete.then(() => this.renderRoot.querySelector<HTMLElement>(focus)?.focus());
  }

  private overview(run: tracking.v1.Run) {
    const data = this.data;
    return overviewTab(run, {
      now: data.now,
      editing: this.editing,
      saving: data.saving,
      summarySearch: this.summarySearch,
      configSearch: this.configSearch,
      searchSummary: (text) => (this.summarySearch = text),
      searchConfig: (text) => (this.configSearch = text),
      editNotes: () => this.edit('notes', '#notes-input'),
      saveNotes: () => void data.patch({ notes: this.renderRoot.querySelector<HTMLTextAreaElement>('#notes-input')!.value }),
      cancelEdit: () => (this.editing = ''),
      setTags: (tags) => data.setTags(tags),
    });
  }

  override render() {
    const { run, error } = this.data;
    if (!run) return html`<div class="page">${error ? html`<p class="error">${error}</p>` : html`<p class="muted">Loading run…</p>`}</div>`;
    const tab = this.tab;
    return html`<div class="page">
      <div class="muted"><a href="/projects/${encodeURIComponent(run.projectId)}">Project</a> / runs</div>
      <div class="top">
        ${this.editing === 'name'
          ? html`<input
              id="name-input"
              .value=${run.name}
              @keydown=${(e: KeyboardEvent) => {
                if (e.key === 'Enter') this.rename((e.target as HTMLInputElement).value);
                if (e.key === 'Escape') this.editing = '';
              }}
              @blur=${(e: FocusEvent) => (e.target as HTMLInputElement).value !== run.name && this.rename((e.target as HTMLInputElement).value)}
            />`
          : html`<h1 class="editable" id="run-name" title="Click to rename" @click=${() => this.edit('name', '#name-input')}>${run.name || run.id}</h1>`}
        <span class="state ${run.state}" id="run-state" style="color:${stateColor(run.state)}"><span class="dot" style="background:${stateColor(run.state)}"></span>${run.state}</span>
        <span class="muted">${formatDuration(runDuration(run, this.data.now))}</span>
      </div>
      ${error ? html`<p class="error">${error}</p>` : nothing}
      ${tabBar([...TABS, ...this.pluginTabs.map((t) => t.name)], tab, (t) => `/runs/${encodeURIComponent(run.id)}/${t}`)}
      ${tab === 'overview'
        ? this.overview(run)
        : tab === 'charts'
          ? chartsTab(run, this.data.keys, this, (change) => Object.assign(this, change))
          : tab === 'logs'
            ? html`<wl-run-logs .runId=${run.id} .running=${run.state === 'running'}></wl-run-logs>`
            : tab === 'files'
              ? filesTab(run, this.data.files, (runId, path) => this.data.download(runId, path))
              : tab === 'workspace'
                ? html`<wl-workspace .projectId=${run.projectId} .runIds=${[run.id]}></wl-workspace>`
                : this.pluginTab(run, this.pluginTabs.find((t) => t.name === tab)!)}
    </div>`;
  }
}

customElements.define('wl-run-page', WlRunPage);
