import { LitElement, css, html, nothing, type PropertyValues } from 'lit';
import type { artifacts } from '@wanllmdb/plugin-artifacts/client';
import { artifactsApi, badge, controlBar, describeError, navigate, pager, pagerStyles, shared, shortTime } from '@wanllmdb/web/kit';
import './artifact-view.js';
import { artifactsHref, stateOf, type ArtifactsState } from './links.js';

const PAGE_SIZE = 100;
/** The types every deployment knows, shown first and in this order; custom types follow by name. */
const KNOWN_TYPES = ['dataset', 'model', 'result'];

/**
 * <wl-artifacts-tab>, the project page's Artifacts tab: the project's
 * collections grouped by type (dataset, model, result, then custom types),
 * searched by name; with `?artifact=` in the address, that collection
 * (`<wl-artifact-view>`).
 */
export class WlArtifactsTab extends LitElement {
  static override properties = {
    projectId: { attribute: false },
    query: { attribute: false },
    items: { state: true },
    meta: { state: true },
    page: { state: true },
    loading: { state: true },
    error: { state: true },
  };

  static override styles = [
    shared,
    badge,
    controlBar,
    pagerStyles,
    css`
      input[type='search'] {
        min-width: 260px;
      }
      .types button[aria-pressed='true'] {
        border-color: var(--wl-accent);
        color: var(--wl-accent);
        font-weight: 600;
      }
      section.group {
        margin-bottom: var(--wl-gap);
      }
      section.group h2 {
        text-transform: capitalize;
      }
      td.desc {
        white-space: normal;
        max-width: 420px;
        color: var(--wl-muted);
      }
      .empty {
        padding: 24px 0;
        text-align: center;
      }
    `,
  ];

  declare projectId: string;
  declare query: URLSearchParams;
  declare items: artifacts.v1.Artifact[];
  declare meta: artifacts.v1.ListArtifactsResponse['meta'];
  declare page: number;
  declare loading: boolean;
  declare error: string;
  private seq = 0;
  private searchTimer: ReturnType<typeof setTimeout> | undefined;
  private loadedFor = '';

  constructor() {
    super();
    this.projectId = '';
    this.query = new URLSearchParams();
    this.items = [];
    this.meta = undefined;
    this.page = 1;
    this.loading = false;
    this.error = '';
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    clearTimeout(this.searchTimer);
  }

  private get state(): ArtifactsState {
    return stateOf(this.query);
  }

  protected override willUpdate(changed: PropertyValues<this>): void {
    const s = this.state;
    // The list reloads when the project, its search or its page changes, and whenever it is shown again (a version may have been logged meanwhile).
    const key = s.artifact ? '' : `${this.projectId}\n${s.search ?? ''}\n${this.page}`;
    if ((changed.has('query') || changed.has('projectId') || changed.has('page')) && key && key !== this.loadedFor) {
      this.loadedFor = key;
      void this.load();
    }
    if (s.artifact) this.loadedFor = '';
  }

  private async load(): Promise<void> {
    const seq = ++this.seq;
    this.loading = true;
    this.error = '';
    try {
      const r = await artifactsApi.listArtifacts({ projectId: this.projectId, search: this.state.search ?? '', page: this.page, pageSize: PAGE_SIZE });
      if (seq !== this.seq) return;
      this.items = r.data;
      this.meta = r.meta;
    } catch (e) {
      if (seq !== this.seq) return;
      this.error = describeError(e);
      this.items = [];
      this.meta = undefined;
    } finally {
      if (seq === this.seq) this.loading = false;
    }
  }

  private go(state: ArtifactsState, replace = false): void {
    navigate(artifactsHref(this.projectId, state), { replace });
  }

  private onSearch(e: InputEvent): void {
    const value = (e.target as HTMLInputElement).value.trim();
    clearTimeout(this.searchTimer);
    this.searchTimer = setTimeout(() => {
      this.page = 1;
      this.go({ ...this.state, search: value || undefined }, true);
    }, 250);
  }

  override render() {
    const s = this.state;
    if (s.artifact) return html`<wl-artifact-view .projectId=${this.projectId} .artifactId=${s.artifact} .state=${s}></wl-artifact-view>`;
    return html`
      <div class="bar">
        <input
          type="search"
          aria-label="Search artifacts"
          placeholder="Search by name"
          .value=${s.search ?? ''}
          @input=${this.onSearch}
          data-testid="artifact-search"
        />
        ${this.renderTypeFilter(s)}
      </div>
      ${this.error ? html`<p class="error" role="alert" data-testid="artifacts-error">${this.error} <button @click=${() => this.load()}>Retry</button></p>` : nothing}
      ${this.renderGroups(s)}
      ${pager(this.meta, { page: this.page, go: (page) => (this.page = page), busy: this.loading, testIdPrefix: 'artifacts' })}
    `;
  }

  private types(): string[] {
    const present = new Set(this.items.map((a) => a.type));
    return [...KNOWN_TYPES.filter((t) => present.has(t)), ...[...present].filter((t) => !KNOWN_TYPES.includes(t)).sort()];
  }

  private renderTypeFilter(s: ArtifactsState) {
    const types = this.types();
    if (types.length < 2 && !s.type) return nothing;
    return html`<span class="row types" role="group" aria-label="Type">
      <button aria-pressed=${!s.type} @click=${() => this.go({ ...s, type: undefined })}>All</button>
      ${types.map(
        (t) => html`<button aria-pressed=${s.type === t} data-testid="artifact-type-${t}" @click=${() => this.go({ ...s, type: t })}>${t} (${this.items.filter((a) => a.type === t).length})</button>`,
      )}
    </span>`;
  }

  private renderGroups(s: ArtifactsState) {
    if (this.loading && !this.items.length) return html`<p class="muted" role="status">Loading artifacts…</p>`;
    if (!this.items.length && !this.error) {
      return html`<div class="empty card" data-testid="artifacts-empty">
        ${s.search
          ? html`<p>No artifact matches “${s.search}”.</p>
              <button @click=${() => this.go({ ...s, search: undefined })}>Clear the search</button>`
          : html`<p>No artifacts in this project yet.</p>
              <p class="muted">
                Log one from a run: <span class="mono">run.logArtifact(new Artifact('my-data', 'dataset'))</span>, or from a shell:
                <span class="mono">wanllmdb artifact put ./data --name my-data --type dataset</span>.
              </p>`}
      </div>`;
    }
    const types = this.types().filter((t) => !s.type || t === s.type);
    return html`${types.map((t) => {
      const list = this.items.filter((a) => a.type === t);
      return html`<section class="group" data-type=${t} data-testid="artifact-group">
        <h2>${t} <span class="muted">(${list.length})</span></h2>
        <table>
          <thead>
            <tr><th>Name</th><th>Latest</th><th>Versions</th><th>Description</th><th>Tags</th><th>Updated</th></tr>
          </thead>
          <tbody>
            ${list.map(
              (a) => html`<tr data-testid="artifact-row" data-name=${a.name}>
                <td><a href=${artifactsHref(this.projectId, { artifact: a.id })} data-testid="artifact-link">${a.name}</a></td>
                <td class="mono">${a.latestVersion || html`<span class="muted">none</span>`}</td>
                <td>${a.versionCount}</td>
                <td class="desc">${a.description || '—'}</td>
                <td>${a.tags.map((tag) => html`<span class="badge">${tag}</span> `)}</td>
                <td class="muted" title=${a.updatedAt}>${shortTime(a.updatedAt)}</td>
              </tr>`,
            )}
          </tbody>
        </table>
      </section>`;
    })}
    ${this.meta ? html`<p class="muted">${this.meta.total} ${this.meta.total === 1 ? 'artifact' : 'artifacts'}${s.search ? html` matching “${s.search}”` : nothing}</p>` : nothing}`;
  }
}

customElements.define('wl-artifacts-tab', WlArtifactsTab);
