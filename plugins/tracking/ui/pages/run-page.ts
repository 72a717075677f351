import { LitElement, css, html, nothing, type PropertyValues, type TemplateResult } from 'lit';
import '@lit-labs/virtualizer';
import type { LitVirtualizer } from '@lit-labs/virtualizer/LitVirtualizer.js';
import { tracking, type ClientRequest } from '@wanllmdb/proto/client';
import '../charts/line-chart.js';
import { watchRuns } from '../charts/live.js';
import { flatten, formatNumber, formatValue, groupKeys } from '../charts/series.js';
import '../components/workspace.js';
import { api, controlBar, dataOf, errorMessage, factList, httpRoute, metricsApi, runDuration, runFilesApi, runLogsApi, runsApi, shared, tabBar, tabBarStyles } from '@wanllmdb/web/kit';

type Run = tracking.v1.Run;
type LogLine = tracking.v1.LogLine;

const TABS = ['overview', 'charts', 'logs', 'files', 'workspace'] as const;
type Tab = (typeof TABS)[number];

function stateColor(state: string): string {
  return state === 'running' ? 'var(--wl-accent)' : state === 'finished' ? 'var(--wl-ok)' : state === 'crashed' ? 'var(--wl-danger)' : state === 'killed' ? 'var(--wl-warn)' : 'var(--wl-muted)';
}

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '—';
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return d ? `${d}d ${h}h ${m}m` : h ? `${h}h ${m}m ${sec}s` : m ? `${m}m ${sec}s` : `${sec}s`;
}

function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return '—';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) (v /= 1024), i++;
  return `${i ? v.toFixed(v < 10 ? 1 : 0) : v} ${units[i]}`;
}

const when = (iso: string | undefined) => (iso ? new Date(iso).toLocaleString() : '—');

/** Splits text around case-insensitive matches of `needle`, marking them. */
export function highlight(text: string, needle: string): TemplateResult | string {
  if (!needle) return text;
  const lower = text.toLowerCase();
  const n = needle.toLowerCase();
  const parts: (TemplateResult | string)[] = [];
  let at = 0;
  for (let i = lower.indexOf(n); i >= 0; i = lower.indexOf(n, i + n.length)) {
    parts.push(text.slice(at, i), html`<mark>${text.slice(i, i + n.length)}</mark>`);
    at = i + n.length;
  }
  if (!parts.length) return text;
  parts.push(text.slice(at));
  return html`${parts}`;
}

/** Where a run file downloads from (the link's href, and what `downloadFile` fetches). */
const fileHref = (runId: string, path: string): string => httpRoute(tracking.v1.RunFileService, 'downloadFile', { runId, path }).path;

/** Downloads a run file with the session's credentials (a plain link cannot send them). */
async function downloadFile(runId: string, path: string): Promise<void> {
  const blob = URL.createObjectURL(await api.download(fileHref(runId, path)));
  const a = Object.assign(document.createElement('a'), { href: blob, download: path.split('/').pop() || 'file' });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(blob), 10_000);
}

// ---------------------------------------------------------------- config tree

/** <wl-config-tree>: a nested object as an expandable tree; a search filters keys and values (matches highlighted). */
export class WlConfigTree extends LitElement {
  static override properties = { value: { attribute: false }, search: {} };
  static override styles = [
    shared,
    css`
      ul {
        list-style: none;
        margin: 0;
        padding-left: 16px;
      }
      :host > ul {
        padding-left: 0;
      }
      li {
        padding: 1px 0;
      }
      summary {
        cursor: pointer;
      }
      .k {
        color: var(--wl-muted);
      }
      .v {
        font-family: var(--wl-mono);
        word-break: break-all;
      }
      mark {
        background: var(--wl-highlight);
        color: inherit;
      }
      .flat td {
        white-space: normal;
      }
    `,
  ];
  declare value: unknown;
  declare search: string;

  constructor() {
    super();
    this.value = {};
    this.search = '';
  }

  private node(key: string, v: unknown, depth: number): TemplateResult {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const entries = Object.entries(v as Record<string, unknown>);
      return html`<li>
        <details ?open=${depth < 2}>
          <summary><span class="k">${key}</span> <span class="muted">{${entries.length}}</span></summary>
          <ul>
            ${entries.map(([k, x]) => this.node(k, x, depth + 1))}
          </ul>
        </details>
      </li>`;
    }
    return html`<li data-key=${key}><span class="k">${key}:</span> <span class="v">${formatValue(v)}</span></li>`;
  }

  override render() {
    const obj = (this.value ?? {}) as Record<string, unknown>;
    if (!Object.keys(obj).length) return html`<p class="muted">Empty.</p>`;
    const q = this.search.trim();
    if (q) {
      const rows = Object.entries(flatten(obj)).filter(([k, v]) => `${k} ${formatValue(v)}`.toLowerCase().includes(q.toLowerCase()));
      if (!rows.length) return html`<p class="muted">Nothing matches “${q}”.</p>`;
      return html`<table class="flat">
        ${rows.map(([k, v]) => html`<tr data-key=${k}><td class="k">${highlight(k, q)}</td><td class="v">${highlight(formatValue(v), q)}</td></tr>`)}
      </table>`;
    }
    return html`<ul>
      ${Object.entries(obj).map(([k, v]) => this.node(k, v, 0))}
    </ul>`;
  }
}
customElements.define('wl-config-tree', WlConfigTree);

// ---------------------------------------------------------------- logs

const LOG_PAGE = 5000;
const MAX_LOG_LINES = 500_000;

/** <wl-run-logs>: the run's console, virtualised; search highlights; follow keeps loading new lines. */
export class WlRunLogs extends LitElement {
  static override properties = {
    runId: { attribute: false },
    running: { type: Boolean },
    lines: { state: true },
    search: { state: true },
    onlyMatches: { state: true },
    follow: { state: true },
    error: { state: true },
    loading: { state: true },
    current: { state: true },
  };
  static override styles = [
    shared,
    controlBar,
    css`
      lit-virtualizer {
        height: calc(100vh - 260px);
        min-height: 300px;
        border: 1px solid var(--wl-border);
        border-radius: var(--wl-radius);
        background: var(--wl-surface);
        font: 12px/1.5 var(--wl-mono);
      }
      .line {
        display: flex;
        gap: 10px;
        width: 100%;
        padding: 0 8px;
        box-sizing: border-box;
        white-space: pre-wrap;
        word-break: break-all;
      }
      .line .n {
        color: var(--wl-muted);
        min-width: 5ch;
        text-align: right;
        user-select: none;
        flex: none;
      }
      .line.stderr .t {
        color: var(--wl-danger);
      }
      .line.current {
        background: color-mix(in srgb, var(--wl-accent) 14%, transparent);
      }
      mark {
        background: var(--wl-highlight);
        color: inherit;
      }
    `,
  ];
  declare runId: string;
  declare running: boolean;
  declare lines: LogLine[];
  declare search: string;
  declare onlyMatches: boolean;
  declare follow: boolean;
  declare error: string;
  declare loading: boolean;
  declare current: number;
  private afterSeq = 0;
  private loadedFor = '';
  private timer: ReturnType<typeof setTimeout> | undefined;
  private busy = false;

  constructor() {
    super();
    this.runId = '';
    this.running = false;
    this.lines = [];
    this.search = '';
    this.onlyMatches = false;
    this.follow = true;
    this.error = '';
    this.loading = false;
    this.current = -1;
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    clearTimeout(this.timer);
    this.loadedFor = '';
  }

  override connectedCallback(): void {
    super.connectedCallback();
    if (this.hasUpdated) this.requestUpdate();
  }

  protected override willUpdate(): void {
    if (this.runId && this.runId !== this.loadedFor) {
      this.loadedFor = this.runId;
      this.lines = [];
      this.afterSeq = 0;
      void this.poll();
    }
  }

  /** Loads every line after the last one; repeats every second while following a running run. */
  private async poll(): Promise<void> {
    clearTimeout(this.timer);
    if (this.busy) return;
    this.busy = true;
    const runId = this.runId;
    this.loading = true;
    try {
      let added: LogLine[] = [];
      for (;;) {
        const r = await runLogsApi.getLogs({ runId, after: this.afterSeq, limit: LOG_PAGE });
        if (runId !== this.runId) return;
        added = added.concat(r.data);
        this.afterSeq = Number(r.meta?.nextAfter ?? this.afterSeq);
        if (!r.meta?.hasMore || !r.data.length) break;
        if (added.length > 50_000) {
          this.appendLines(added);
          added = [];
        }
      }
      this.appendLines(added);
      this.error = '';
    } catch (e) {
      this.error = errorMessage(e);
    } finally {
      this.busy = false;
      this.loading = false;
      if (this.isConnected && this.running && this.follow && runId === this.runId) this.timer = setTimeout(() => void this.poll(), 1000);
    }
  }

  private appendLines(added: LogLine[]): void {
    if (!added.length) return;
    let lines = this.lines.concat(added);
    if (lines.length > MAX_LOG_LINES) lines = lines.slice(lines.length - MAX_LOG_LINES);
    this.lines = lines;
    if (this.follow) void this.updateComplete.then(() => this.scrollToLine(this.visible().length - 1, 'end'));
  }

  protected override updated(changed: PropertyValues<this>): void {
    if ((changed.has('running' as keyof WlRunLogs) || changed.has('follow' as keyof WlRunLogs)) && this.running && this.follow && !this.busy) void this.poll();
  }

  private visible(): LogLine[] {
    const q = this.search.trim().toLowerCase();
    return q && this.onlyMatches ? this.lines.filter((l) => l.line.toLowerCase().includes(q)) : this.lines;
  }

  private matchIndexes(): number[] {
    const q = this.search.trim().toLowerCase();
    if (!q) return [];
    const out: number[] = [];
    this.visible().forEach((l, i) => l.line.toLowerCase().includes(q) && out.push(i));
    return out;
  }

  private scrollToLine(index: number, block: ScrollLogicalPosition = 'center'): void {
    const v = this.renderRoot.querySelector<LitVirtualizer>('lit-virtualizer');
    if (index >= 0) v?.element(index)?.scrollIntoView({ block });
  }

  private jump(dir: 1 | -1): void {
    const m = this.matchIndexes();
    if (!m.length) return;
    const pos = m.findIndex((i) => (dir > 0 ? i > this.current : i >= this.current));
    let next: number;
    if (dir > 0) next = pos < 0 ? m[0]! : m[pos]!;
    else next = pos <= 0 ? m[m.length - 1]! : m[pos - 1]!;
    this.current = next;
    this.follow = false;
    this.scrollToLine(next);
  }

  override render() {
    const q = this.search.trim();
    const items = this.visible();
    const count = q ? this.matchIndexes().length : 0;
    return html`
      <div class="bar">
        <input
          type="search"
          class="log-search"
          placeholder="Search the log"
          .value=${this.search}
          @input=${(e: Event) => ((this.search = (e.target as HTMLInputElement).value), (this.current = -1))}
          @keydown=${(e: KeyboardEvent) => e.key === 'Enter' && this.jump(e.shiftKey ? -1 : 1)}
        />
        ${q
          ? html`<span class="muted matches">${count} matching line${count === 1 ? '' : 's'}</span>
              <button @click=${() => this.jump(-1)} ?disabled=${!count}>↑</button><button @click=${() => this.jump(1)} ?disabled=${!count}>↓</button>
              <label><input type="checkbox" .checked=${this.onlyMatches} @change=${(e: Event) => (this.onlyMatches = (e.target as HTMLInputElement).checked)} /> only matches</label>`
          : nothing}
        <span style="flex:1"></span>
        <label title="Keep loading new lines and stay at the end"
          ><input type="checkbox" class="follow" .checked=${this.follow} @change=${(e: Event) => (this.follow = (e.target as HTMLInputElement).checked)} /> follow${this.running ? '' : ' (run ended)'}</label
        >
        <span class="muted">${this.lines.length.toLocaleString()} lines${this.loading ? ' · loading…' : ''}</span>
      </div>
      ${this.error ? html`<p class="error">${this.error}</p>` : nothing}
      ${this.lines.length || this.loading
        ? html`<lit-virtualizer
            scroller
            .items=${items}
            .keyFunction=${(l: LogLine) => l.seq}
            .renderItem=${(l: LogLine, i: number) =>
              html`<div class="line ${l.stream} ${i === this.current ? 'current' : ''}" data-seq=${l.seq}>
                <span class="n">${l.seq}</span><span class="t">${highlight(l.line, q)}</span>
              </div>`}
          ></lit-virtualizer>`
        : html`<p class="muted">No console output${this.running ? ' yet' : ''}.</p>`}
    `;
  }
}
customElements.define('wl-run-logs', WlRunLogs);

// ---------------------------------------------------------------- the page

/** <wl-run-page> for `/runs/:id/:tab?`: overview | charts | logs | files | workspace. */
export class WlRunPage extends LitElement {
  static override properties = {
    params: { attribute: false },
    query: { attribute: false },
    run: { state: true },
    error: { state: true },
    keys: { state: true },
    files: { state: true },
    editing: { state: true },
    saving: { state: true },
    configSearch: { state: true },
    summarySearch: { state: true },
    keyFilter: { state: true },
    smoothing: { state: true },
    xKey: { state: true },
    logScale: { state: true },
    ignoreOutliers: { state: true },
    now: { state: true },
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
  declare run: Run | undefined;
  declare error: string;
  declare keys: tracking.v1.MetricKeyStats[] | undefined;
  declare files: tracking.v1.RunFile[] | undefined;
  declare editing: '' | 'name' | 'notes';
  declare saving: boolean;
  declare configSearch: string;
  declare summarySearch: string;
  declare keyFilter: string;
  declare smoothing: number;
  declare xKey: string;
  declare logScale: boolean;
  declare ignoreOutliers: boolean;
  declare now: number;
  private loadedId = '';
  private stopLive: (() => void) | undefined;
  private reloadTimer: ReturnType<typeof setTimeout> | undefined;
  private keysTimer: ReturnType<typeof setTimeout> | undefined;
  private clock: ReturnType<typeof setInterval> | undefined;

  constructor() {
    super();
    this.params = {};
    this.query = new URLSearchParams();
    this.run = undefined;
    this.error = '';
    this.keys = undefined;
    this.files = undefined;
    this.editing = '';
    this.saving = false;
    this.configSearch = '';
    this.summarySearch = '';
    this.keyFilter = '';
    this.smoothing = 0;
    this.xKey = 'step';
    this.logScale = false;
    this.ignoreOutliers = false;
    this.now = Date.now();
  }

  get runId(): string {
    return this.params?.id ?? '';
  }

  get tab(): Tab {
    const t = this.params?.tab as Tab | undefined;
    return t && TABS.includes(t) ? t : 'overview';
  }

  override connectedCallback(): void {
    super.connectedCallback();
    this.clock = setInterval(() => {
      if (this.run?.state === 'running') this.now = Date.now();
    }, 1000);
    if (this.hasUpdated && this.runId) this.startLive();
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    clearInterval(this.clock);
    clearTimeout(this.reloadTimer);
    clearTimeout(this.keysTimer);
    this.stopLive?.();
    this.stopLive = undefined;
  }

  protected override willUpdate(): void {
    if (this.runId && this.runId !== this.loadedId) {
      this.loadedId = this.runId;
      this.run = undefined;
      this.keys = undefined;
      this.files = undefined;
      this.error = '';
      void this.load();
    }
    if (this.tab === 'files' && this.files === undefined && this.run) void this.loadFiles();
  }

  private async load(): Promise<void> {
    const id = this.runId;
    try {
      const run = dataOf(await runsApi.getRun({ id }));
      if (id !== this.runId) return;
      this.run = run;
      this.startLive();
      void this.loadKeys();
    } catch (e) {
      this.error = errorMessage(e);
    }
  }

  private async loadKeys(): Promise<void> {
    const id = this.runId;
    const r = await metricsApi.listMetricKeys({ runId: id }).catch(() => undefined);
    if (r && id === this.runId) this.keys = r.data;
  }

  private async loadFiles(): Promise<void> {
    const id = this.runId;
    this.files = [];
    try {
      const r = await runFilesApi.listFiles({ runId: id });
      if (id === this.runId) this.files = r.data;
    } catch (e) {
      this.error = errorMessage(e);
    }
  }

  private startLive(): void {
    this.stopLive?.();
    this.stopLive = undefined;
    const run = this.run;
    if (!run) return;
    this.stopLive = watchRuns(run.projectId, [run.id], {
      onEvent: (e) => {
        if (e.runId !== run.id) return;
        if (e.kind === 'deleted') {
          this.error = 'This run was deleted.';
          return;
        }
        if (e.kind === 'metrics') {
          // A key not seen before: list it (its chart appears).
          const known = new Set((this.keys ?? []).map((k) => k.key));
          if (e.series.some((s) => !known.has(s.key))) this.keysTimer ??= setTimeout(() => ((this.keysTimer = undefined), void this.loadKeys()), 300);
          return;
        }
        if (e.run && this.run) {
          const slim = !Object.keys(e.run.config ?? {}).length && Object.keys(this.run.config ?? {}).length;
          this.run = { ...this.run, ...e.run, ...(slim ? { config: this.run.config, summary: this.run.summary } : {}) };
          if (slim) this.reloadTimer ??= setTimeout(() => ((this.reloadTimer = undefined), void this.load()), 1000);
        }
      },
    });
  }

  private async patch(changes: Omit<ClientRequest<tracking.v1.UpdateRunRequest>, 'id'>): Promise<void> {
    if (!this.run) return;
    this.saving = true;
    try {
      const r = await runsApi.updateRun({ id: this.run.id, ...changes });
      this.run = { ...this.run, ...dataOf(r) };
      this.editing = '';
      this.error = '';
    } catch (e) {
      this.error = errorMessage(e);
    } finally {
      this.saving = false;
    }
  }

  private setTags(tags: string[]): void {
    const unique = [...new Set(tags.map((t) => t.trim()).filter(Boolean))];
    void this.patch(unique.length ? { tags: unique } : { clearTags: true });
  }

  // ---------------------------------------------------------------- overview

  private overview(run: Run) {
    const git: Partial<tracking.v1.GitInfo> = run.git ?? {};
    const env: Partial<tracking.v1.RunEnvironment> = run.environment ?? {};
    const summary = Object.entries(run.summary ?? {})
      .filter(([k]) => !this.summarySearch || k.toLowerCase().includes(this.summarySearch.toLowerCase()))
      .sort(([a], [b]) => a.localeCompare(b));
    return html`
      <div class="grid2">
        <section class="card" id="about">
          <h2>Run</h2>
          <dl>
            <dt>State</dt>
            <dd>
              <span class="state ${run.state}" style="color:${stateColor(run.state)}"><span class="dot" style="background:${stateColor(run.state)}"></span>${run.state}</span>
              ${run.exitCode !== undefined && run.exitCode !== null ? html`<span class="muted">(exit code ${run.exitCode})</span>` : nothing}
            </dd>
            <dt>Started</dt>
            <dd>${when(run.startedAt)}</dd>
            <dt>${run.finishedAt ? 'Finished' : 'Last heartbeat'}</dt>
            <dd>${when(run.finishedAt || run.heartbeatAt)}</dd>
            <dt>Duration</dt>
            <dd class="duration">${formatDuration(runDuration(run, this.now))}</dd>
            ${run.group ? html`<dt>Group</dt><dd>${run.group}</dd>` : nothing} ${run.jobType ? html`<dt>Job type</dt><dd>${run.jobType}</dd>` : nothing}
            <dt>Run id</dt>
            <dd class="mono">${run.id}</dd>
            ${run.createdBy ? html`<dt>Created by</dt><dd>${run.createdBy}</dd>` : nothing}
          </dl>
        </section>
        <section class="card" id="environment">
          <h2>Code and environment</h2>
          <dl>
            <dt>Git commit</dt>
            <dd class="mono">${git.commit ? html`${git.commit.slice(0, 12)}${git.dirty ? html` <span class="muted">(dirty)</span>` : nothing}` : '—'}</dd>
            <dt>Branch</dt>
            <dd>${git.branch || '—'}</dd>
            <dt>Remote</dt>
            <dd>${git.remote ? (/^https?:\/\//.test(git.remote) ? html`<a href=${git.remote} target="_blank" rel="noopener">${git.remote}</a>` : git.remote) : '—'}</dd>
            <dt>Host</dt>
            <dd>${env.host || '—'}</dd>
            <dt>OS</dt>
            <dd>${env.os || '—'}</dd>
            <dt>Runtime</dt>
            <dd>${env.runtime || '—'}</dd>
            <dt>Command</dt>
            <dd class="mono command">${env.command || '—'}</dd>
            ${env.pid ? html`<dt>PID</dt><dd>${env.pid}</dd>` : nothing}
          </dl>
        </section>
        <section class="card" id="notes">
          <h2>Notes</h2>
          ${this.editing === 'notes'
            ? html`<textarea id="notes-input" .value=${run.notes ?? ''} @keydown=${(e: KeyboardEvent) => e.key === 'Escape' && (this.editing = '')}></textarea>
                <div class="row">
                  <button class="primary" id="save-notes" ?disabled=${this.saving} @click=${() => this.patch({ notes: this.renderRoot.querySelector<HTMLTextAreaElement>('#notes-input')!.value })}>Save</button
                  ><button @click=${() => (this.editing = '')}>Cancel</button>
                </div>`
            : html`<div class="notes editable" id="notes-text" title="Click to edit" @click=${() => this.edit('notes', '#notes-input')}>${run.notes || html`<span class="muted">Add notes…</span>`}</div>`}
          <h2>Tags</h2>
          <div id="tags">
            ${(run.tags ?? []).map(
              (t) => html`<span class="tag" data-tag=${t}>${t}<button title="Remove ${t}" @click=${() => this.setTags(run.tags.filter((x) => x !== t))}>×</button></span>`,
            )}
            <input
              id="tag-input"
              placeholder="Add a tag ↵"
              size="12"
              @keydown=${(e: KeyboardEvent) => {
                const input = e.target as HTMLInputElement;
                if (e.key === 'Enter' && input.value.trim()) {
                  this.setTags([...(run.tags ?? []), ...input.value.split(',')]);
                  input.value = '';
                }
              }}
            />
          </div>
        </section>
        <section class="card" id="summary">
          <h2>Summary</h2>
          <input type="search" placeholder="Filter" .value=${this.summarySearch} @input=${(e: Event) => (this.summarySearch = (e.target as HTMLInputElement).value)} />
          ${summary.length
            ? html`<table class="summary">
                ${summary.map(([k, v]) => html`<tr data-key=${k}><td>${k}</td><td class=${typeof v === 'number' ? 'num' : ''}>${typeof v === 'number' ? formatNumber(v) : formatValue(v)}</td></tr>`)}
              </table>`
            : html`<p class="muted">No summary values.</p>`}
        </section>
      </div>
      <section class="card" id="config" style="margin-top:var(--wl-gap)">
        <div class="row" style="justify-content:space-between">
          <h2 style="margin:0">Config</h2>
          <input type="search" id="config-search" placeholder="Search keys and values" .value=${this.configSearch} @input=${(e: Event) => (this.configSearch = (e.target as HTMLInputElement).value)} />
        </div>
        <wl-config-tree .value=${run.config ?? {}} .search=${this.configSearch}></wl-config-tree>
      </section>
    `;
  }

  private edit(what: 'name' | 'notes', focus: string): void {
    this.editing = what;
    void this.updateComplete.then(() => this.renderRoot.querySelector<HTMLElement>(focus)?.focus());
  }

  // ---------------------------------------------------------------- charts

  private charts(run: Run) {
    if (!this.keys) return html`<p class="muted">Loading metrics…</p>`;
    const f = this.keyFilter.trim().toLowerCase();
    const keys = this.keys.map((k) => k.key).filter((k) => !f || k.toLowerCase().includes(f));
    const groups = groupKeys(keys);
    const live = run.state === 'running';
    const xKeys = ['step', '_time', '_relative', ...this.keys.map((k) => k.key).filter((k) => /epoch|step|iter/i.test(k))];
    return html`
      <div class="charts-bar">
        <input type="search" placeholder="Filter metrics" .value=${this.keyFilter} @input=${(e: Event) => (this.keyFilter = (e.target as HTMLInputElement).value)} />
        <label
          >x axis
          <select @change=${(e: Event) => (this.xKey = (e.target as HTMLSelectElement).value)}>
            ${xKeys.map((k) => html`<option value=${k} ?selected=${k === this.xKey}>${k === 'step' ? 'Step' : k === '_time' ? 'Wall time' : k === '_relative' ? 'Relative time' : k}</option>`)}
          </select></label
        >
        <label
          >smoothing <input type="range" min="0" max="0.99" step="0.01" .value=${String(this.smoothing)} @input=${(e: Event) => (this.smoothing = Number((e.target as HTMLInputElement).value))} /><span
            class="mono"
            >${this.smoothing.toFixed(2)}</span
          ></label
        >
        <label><input type="checkbox" .checked=${this.logScale} @change=${(e: Event) => (this.logScale = (e.target as HTMLInputElement).checked)} /> log y</label>
        <label><input type="checkbox" .checked=${this.ignoreOutliers} @change=${(e: Event) => (this.ignoreOutliers = (e.target as HTMLInputElement).checked)} /> ignore outliers</label>
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
                    .xKey=${this.xKey}
                    .smoothing=${this.smoothing}
                    .logScale=${this.logScale}
                    .ignoreOutliers=${this.ignoreOutliers}
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

  // ---------------------------------------------------------------- files

  private filesTab(run: Run) {
    if (!this.files) return html`<p class="muted">Loading files…</p>`;
    if (!this.files.length) return html`<p class="muted">This run has no files.</p>`;
    const total = this.files.reduce((n, f) => n + Number(f.size), 0);
    return html`<p class="muted">${this.files.length} files, ${formatBytes(total)}</p>
      <table id="files">
        <tr>
          <th>Path</th>
          <th style="text-align:right">Size</th>
          <th>Uploaded</th>
          <th></th>
        </tr>
        ${[...this.files]
          .sort((a, b) => a.path.localeCompare(b.path))
          .map(
            (f) => html`<tr data-path=${f.path}>
              <td class="mono">${f.path}</td>
              <td class="num">${formatBytes(Number(f.size))}</td>
              <td>${when(f.createdAt)}</td>
              <td>
                <a
                  class="download"
                  href=${fileHref(run.id, f.path)}
                  download=${f.path.split('/').pop() ?? ''}
                  @click=${(e: MouseEvent) => {
                    e.preventDefault();
                    downloadFile(run.id, f.path).catch((err: unknown) => (this.error = errorMessage(err)));
                  }}
                  >Download</a
                >
              </td>
            </tr>`,
          )}
      </table>`;
  }

  override render() {
    const run = this.run;
    if (!run) return html`<div class="page">${this.error ? html`<p class="error">${this.error}</p>` : html`<p class="muted">Loading run…</p>`}</div>`;
    const tab = this.tab;
    return html`<div class="page">
      <div class="muted"><a href="/projects/${encodeURIComponent(run.projectId)}">Project</a> / runs</div>
      <div class="top">
        ${this.editing === 'name'
          ? html`<input
              id="name-input"
              .value=${run.name}
              @keydown=${(e: KeyboardEvent) => {
                if (e.key === 'Enter') void this.patch({ name: (e.target as HTMLInputElement).value });
                if (e.key === 'Escape') this.editing = '';
              }}
              @blur=${(e: FocusEvent) => (e.target as HTMLInputElement).value !== run.name && void this.patch({ name: (e.target as HTMLInputElement).value })}
            />`
          : html`<h1 class="editable" id="run-name" title="Click to rename" @click=${() => this.edit('name', '#name-input')}>${run.name || run.id}</h1>`}
        <span class="state ${run.state}" id="run-state" style="color:${stateColor(run.state)}"><span class="dot" style="background:${stateColor(run.state)}"></span>${run.state}</span>
        <span class="muted">${formatDuration(runDuration(run, this.now))}</span>
      </div>
      ${this.error ? html`<p class="error">${this.error}</p>` : nothing}
      ${tabBar(TABS, tab, (t) => `/runs/${encodeURIComponent(run.id)}/${t}`)}
      ${tab === 'overview'
        ? this.overview(run)
        : tab === 'charts'
          ? this.charts(run)
          : tab === 'logs'
            ? html`<wl-run-logs .runId=${run.id} .running=${run.state === 'running'}></wl-run-logs>`
            : tab === 'files'
              ? this.filesTab(run)
              : html`<wl-workspace .projectId=${run.projectId} .runIds=${[run.id]}></wl-workspace>`}
    </div>`;
  }
}

customElements.define('wl-run-page', WlRunPage);

