import { LitElement, css, html, nothing, svg, type PropertyValues } from 'lit';
import type { auth, projects, tracking } from '@wanllmdb/proto/client';
import { dataOf } from '../api/client.js';
import { orgsApi, projectsApi, runsApi } from '../api/services.js';
import { navigate } from '../router.js';
import { factList, pageHead, shared } from '../styles.js';
import { loadCompareView, loadRunsTable, loadWorkspace, type WlRunsTable } from '@wanllmdb/plugin-tracking/ui';
import { formatDuration, runDuration } from '../util/format.js';
import { tabBar, tabBarStyles } from '../components/tab-bar.js';
import { errorMessage } from '../util/errors.js';
import { tabElement, tabTypes, type TabType } from '../plugins.js';

// The tracking plugin's runs table and workspace, which this page's tabs embed, are defined before the page renders.
await Promise.all([loadRunsTable(), loadWorkspace()]);

const TABS = ['overview', 'runs', 'workspace', 'compare', 'members'] as const;
/** A built-in tab, or the name of one a plugin added (`registerTab({ host: 'project', … })`). */
type Tab = (typeof TABS)[number] | (string & {});
const STATES = ['running', 'finished', 'crashed', 'killed'] as const;
const STATE_COLOURS: Record<(typeof STATES)[number], string> = {
  running: 'var(--wl-accent)',
  finished: 'var(--wl-ok)',
  crashed: 'var(--wl-danger)',
  killed: 'var(--wl-warn)',
};
/** Runs the workspace shows when none are selected. */
const RECENT_FOR_WORKSPACE = 20;
const RECENT_ON_OVERVIEW = 10;

/**
 * <wl-project-page> for `/projects/:id/:tab?`: overview (details, runs by
 * state, recent runs), runs (the table), workspace (panels over the selected
 * runs, or the 20 most recent), compare (`?runs=a,b` or the selection) and
 * members (who has which role on the project).
 */
export class WlProjectPage extends LitElement {
  static override properties = {
    params: { attribute: false },
    query: { attribute: false },
    project: { state: true },
    error: { state: true },
    counts: { state: true },
    recent: { state: true },
    selection: { state: true },
    compareLoaded: { state: true },
    membersLoaded: { state: true },
    org: { state: true },
    tabsLoaded: { state: true },
  };

  static override styles = [
    shared,
    tabBarStyles,
    pageHead,
    factList,
    css`
      .badge {
        font-size: 12px;
        border: 1px solid var(--wl-border);
        border-radius: 10px;
        padding: 0 8px;
        color: var(--wl-muted);
      }
      .cards {
        display: grid;
        grid-template-columns: repeat(auto-fit, minmax(320px, 1fr));
        gap: var(--wl-gap);
      }
      .cards h2 {
        margin-top: 0;
      }
      .bars text {
        fill: var(--wl-muted);
        font-size: 12px;
      }
      .bars text.value {
        fill: var(--wl-text);
      }
      .actions {
        display: flex;
        gap: 8px;
        align-items: center;
        margin-bottom: 8px;
        flex-wrap: wrap;
      }
    `,
  ];

  declare params: { id: string; tab?: string };
  declare query: URLSearchParams;
  declare project: projects.v1.Project | undefined;
  declare error: string;
  declare counts: Record<string, number> | undefined;
  declare recent: tracking.v1.Run[];
  declare selection: string[];
  declare compareLoaded: boolean;
  declare membersLoaded: boolean;
  /** The project's organisation, when the caller may read it. */
  declare org: auth.v1.Organization | undefined;
  /** Plugins' tabs whose element is defined. */
  declare tabsLoaded: ReadonlySet<string>;

  constructor() {
    super();
    this.params = { id: '' };
    this.query = new URLSearchParams();
    this.project = undefined;
    this.error = '';
    this.counts = undefined;
    this.recent = [];
    this.selection = [];
    this.compareLoaded = false;
    this.membersLoaded = false;
    this.org = undefined;
    this.tabsLoaded = new Set();
  }

  /** Tabs plugins add after the page's own. */
  private get pluginTabs(): TabType[] {
    return tabTypes('project', TABS);
  }

  get tab(): Tab {
    const t = this.params.tab;
    return t && ((TABS as readonly string[]).includes(t) || this.pluginTabs.some((p) => p.name === t)) ? t : 'overview';
  }

  /** The selection survives tab changes (each tab is a new page element) for the browser tab's session. */
  private get selectionKey(): string {
    return `wanllmdb.selection.${this.params.id}`;
  }

  protected override willUpdate(changed: PropertyValues<this>): void {
    if (changed.has('params') && this.params.id && this.params.id !== this.project?.id) {
      try {
        const saved = JSON.parse(sessionStorage.getItem(this.selectionKey) ?? '[]') as unknown;
        this.selection = Array.isArray(saved) ? saved.filter((x): x is string => typeof x === 'string') : [];
      } catch {
        this.selection = [];
      }
      void this.load();
    }
    if (this.tab === 'compare' && !this.compareLoaded) {
      // Another part of the UI; loaded when first needed.
      void loadCompareView().then(
        () => (this.compareLoaded = true),
        (e: unknown) => (this.error = `The compare view failed to load: ${errorMessage(e)}`),
      );
    }
    const contributed = this.pluginTabs.find((t) => t.name === this.tab);
    if (contributed && !this.tabsLoaded.has(contributed.name)) {
      void Promise.resolve(contributed.load?.())
        .then(() => customElements.whenDefined(contributed.element))
        .then(
          () => (this.tabsLoaded = new Set([...this.tabsLoaded, contributed.name])),
          (e: unknown) => (this.error = `The ${contributed.name} tab failed to load: ${errorMessage(e)}`),
        );
    }
    if (this.tab === 'members' && !this.membersLoaded) {
      void import('../components/project-members.js').then(
        () => (this.membersLoaded = true),
        (e: unknown) => (this.error = `The members view failed to load: ${errorMessage(e)}`),
      );
    }
  }

  private async load(): Promise<void> {
    this.error = '';
    const projectId = this.params.id;
    try {
      this.project = dataOf(await projectsApi.getProject({ id: projectId }));
      document.title = `${this.project.name} · wanLLMDB`;
      void this.loadOrg(this.project.organizationId);
      const recent = runsApi.listRuns({ projectId, sort: '-created_at', limit: RECENT_FOR_WORKSPACE });
      const counts = Promise.all(STATES.map((s) => runsApi.listRuns({ projectId, filter: `state = "${s}"`, limit: 1 }).then((r) => [s, r.meta?.total ?? 0] as const)));
      this.recent = (await recent).data;
      this.counts = Object.fromEntries(await counts);
    } catch (e) {
      this.error = errorMessage(e);
    }
  }

  /** The organisation's name for the link to it; without it (refused, say) the link shows its id. */
  private async loadOrg(orgId: string | undefined): Promise<void> {
    this.org = undefined;
    if (!orgId) return;
    try {
      this.org = dataOf(await orgsApi.getOrg({ orgId }));
    } catch {
      // The link to /orgs/<id> still works for whoever may open it.
    }
  }

  private renderOrgLink() {
    const id = this.project?.organizationId;
    if (!id) return html`<span class="muted">none</span>`;
    return html`<a href=${`/orgs/${encodeURIComponent(id)}`} data-testid="project-org">${this.org?.name ?? html`<span class="mono">${id}</span>`}</a>`;
  }

  /** The runs the workspace and compare tabs show. */
  private runIds(forCompare = false): string[] {
    const fromQuery = (this.query.get('runs') ?? '').split(',').filter(Boolean);
    if (fromQuery.length) return fromQuery;
    if (this.selection.length) return this.selection;
    return forCompare ? [] : this.recent.map((r) => r.id);
  }

  private onSelection(e: CustomEvent<{ runIds: string[] }>): void {
    this.selection = e.detail.runIds;
    sessionStorage.setItem(this.selectionKey, JSON.stringify(this.selection));
  }

  private compare(): void {
    navigate(`/projects/${encodeURIComponent(this.params.id)}/compare?runs=${this.selection.map(encodeURIComponent).join(',')}`);
  }

  private tabHref(t: Tab): string {
    const runs = this.query.get('runs');
    const q = runs && (t === 'workspace' || t === 'compare') ? `?runs=${runs}` : '';
    return `/projects/${encodeURIComponent(this.params.id)}${t === 'overview' ? '' : `/${t}`}${q}`;
  }

  private renderBars() {
    const counts = this.counts;
    if (!counts) return html`<p class="muted">Counting runs…</p>`;
    const max = Math.max(1, ...STATES.map((s) => counts[s] ?? 0));
    const rowH = 28;
    const labelW = 80;
    const width = 360;
    const barMax = width - labelW - 50;
    return html`<svg class="bars" data-testid="state-chart" viewBox="0 0 ${width} ${rowH * STATES.length}" width="100%" role="img" aria-label="Runs by state">
      ${STATES.map((s, i) => {
        const n = counts[s] ?? 0;
        const w = (n / max) * barMax;
        return svg`<g transform="translate(0 ${i * rowH})">
          <text x="0" y="18">${s}</text>
          <rect x=${labelW} y="5" width=${Math.max(n ? 2 : 0, w)} height="16" rx="3" fill=${STATE_COLOURS[s]}></rect>
          <text class="value" x=${labelW + w + 6} y="18">${n}</text>
        </g>`;
      })}
    </svg>`;
  }

  private renderOverview() {
    const p = this.project!;
    const total = this.counts ? STATES.reduce((a, s) => a + (this.counts![s] ?? 0), 0) : undefined;
    return html`<div class="cards">
      <section class="card">
        <h2>About</h2>
        <dl>
          <dt>Name</dt>
          <dd>${p.name}</dd>
          <dt>Slug</dt>
          <dd class="mono">${p.slug}</dd>
          <dt>Organisation</dt>
          <dd>${this.renderOrgLink()}</dd>
          <dt>Visibility</dt>
          <dd>${p.visibility}</dd>
          <dt>Description</dt>
          <dd>${p.description || html`<span class="muted">none</span>`}</dd>
          <dt>Created</dt>
          <dd>${new Date(p.createdAt).toLocaleString()}</dd>
          <dt>Runs</dt>
          <dd data-testid="run-total">${total ?? '…'}</dd>
        </dl>
      </section>
      <section class="card">
        <h2>Runs by state</h2>
        ${this.renderBars()}
      </section>
      <section class="card" style="grid-column: 1 / -1">
        <h2>Recent runs</h2>
        ${this.recent.length
          ? html`<table data-testid="recent-runs">
              <thead>
                <tr><th>Name</th><th>State</th><th>Created</th><th>Duration</th></tr>
              </thead>
              <tbody>
                ${this.recent.slice(0, RECENT_ON_OVERVIEW).map(
                  (r) => html`<tr>
                    <td><a href=${`/runs/${r.id}`}>${r.name}</a></td>
                    <td>${r.state}</td>
                    <td>${new Date(r.createdAt).toLocaleString()}</td>
                    <td>${formatDuration(runDuration(r))}</td>
                  </tr>`,
                )}
              </tbody>
            </table>`
          : html`<p class="muted">No runs yet. Log one with the SDK: <span class="mono">wanllmdb.init({ project: "${p.slug}" })</span>.</p>`}
      </section>
    </div>`;
  }

  private renderRuns() {
    const n = this.selection.length;
    return html`
      <div class="actions">
        <button class="primary" data-testid="compare-selected" ?disabled=${n < 2} @click=${this.compare} title="Compare the selected runs">Compare${n ? ` (${n})` : ''}</button>
        <button data-testid="open-workspace" @click=${() => navigate(this.tabHref('workspace'))}>Open in workspace${n ? ` (${n})` : ''}</button>
        ${n ? html`<button @click=${() => this.onSelection(new CustomEvent('wl-selection', { detail: { runIds: [] } }))}>Clear selection</button>` : nothing}
        <span class="muted">${n ? `${n} runs selected` : 'Select runs to compare them or to chart them in the workspace.'}</span>
      </div>
      <wl-runs-table .projectId=${this.project!.id} .selected=${this.selection} @wl-selection=${this.onSelection}></wl-runs-table>
    `;
  }

  /** A plugin's tab: its element, given the project and the address's query. */
  private renderPluginTab(p: projects.v1.Project) {
    const tab = this.pluginTabs.find((t) => t.name === this.tab);
    if (!tab) return nothing;
    if (!this.tabsLoaded.has(tab.name)) return html`<p class="muted">Loading…</p>`;
    return tabElement(this, tab, { projectId: p.id, project: p, query: this.query });
  }

  override render() {
    if (this.error && !this.project) return html`<div class="page"><p class="error" data-testid="project-error">${this.error}</p><a href="/projects">All projects</a></div>`;
    const p = this.project;
    if (!p) return html`<div class="page"><p class="muted">Loading…</p></div>`;
    const tab = this.tab;
    const ids = this.runIds(tab === 'compare');
    return html`<div class="page">
      <div class="head">
        <h1>${p.name}</h1>
        <span class="badge">${p.visibility}</span>
        ${p.organizationId ? html`<span class="muted">in ${this.renderOrgLink()}</span>` : nothing}
        ${p.description ? html`<span class="muted">${p.description}</span>` : nothing}
      </div>
      ${tabBar([...TABS, ...this.pluginTabs.map((t) => t.name)], tab, (t) => this.tabHref(t))}
      ${this.error ? html`<p class="error">${this.error}</p>` : nothing}
      ${tab === 'overview' ? this.renderOverview() : nothing}
      ${tab === 'runs' ? this.renderRuns() : nothing}
      ${tab === 'workspace'
        ? html`<p class="muted">${this.query.get('runs') || this.selection.length ? `${ids.length} selected runs` : `The ${ids.length} most recent runs (select runs in the Runs tab to choose)`}</p>
            <wl-workspace .projectId=${p.id} .runIds=${ids}></wl-workspace>`
        : nothing}
      ${tab === 'compare'
        ? ids.length
          ? this.compareLoaded
            ? html`<wl-compare-view .projectId=${p.id} .runIds=${ids}></wl-compare-view>`
            : html`<p class="muted">Loading…</p>`
          : html`<p class="muted">Select two or more runs in the <a href=${this.tabHref('runs')}>Runs</a> tab, then press Compare.</p>`
        : nothing}
      ${tab === 'members'
        ? this.membersLoaded
          ? html`<wl-project-members .projectId=${p.id} .orgId=${p.organizationId ?? ''} .orgName=${this.org?.name ?? ''}></wl-project-members>`
          : html`<p class="muted">Loading…</p>`
        : nothing}
      ${this.renderPluginTab(p)}
    </div>`;
  }
}

customElements.define('wl-project-page', WlProjectPage);

declare global {
  interface HTMLElementTagNameMap {
    'wl-project-page': WlProjectPage;
  }
}

export type { WlRunsTable };
