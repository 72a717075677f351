import { LitElement, css, html, nothing, type PropertyValues } from 'lit';
import { projects, type ClientRequest, type auth } from '@wanllmdb/proto/client';
import { badge, closedValue, dataOf, describeError, navigate, orgsApi, pageFromQuery, pager, pagerStyles, projectsApi, shared, shortTime, submittedForm, tableHead, withQuery } from '@wanllmdb/web/kit';

const PAGE_SIZE = 20;

/**
 * <wl-projects-page>: the projects the caller may see, searched and paged
 * (`?search=&page=` in the address, so a reload or a shared link keeps them),
 * and a form that creates one.
 */
export class WlProjectsPage extends LitElement {
  static override properties = {
    params: { attribute: false },
    query: { attribute: false },
    items: { state: true },
    meta: { state: true },
    loading: { state: true },
    error: { state: true },
    orgs: { state: true },
    showCreate: { state: true },
    creating: { state: true },
    createError: { state: true },
    created: { state: true },
  };

  static override styles = [
    shared,
    badge,
    pagerStyles,
    css`
      .head {
        display: flex;
        align-items: center;
        gap: 12px;
        flex-wrap: wrap;
        margin-bottom: var(--wl-gap);
      }
      .head h1 {
        margin: 0;
        flex: 1;
      }
      input[type='search'] {
        min-width: 260px;
      }
      form.create {
        display: grid;
        grid-template-columns: repeat(auto-fit, minmax(200px, 1fr));
        gap: 10px;
        margin-bottom: var(--wl-gap);
        align-items: end;
      }
      form.create h2 {
        grid-column: 1 / -1;
        margin: 0;
      }
      form.create .actions {
        grid-column: 1 / -1;
        display: flex;
        gap: 8px;
        align-items: center;
      }
      label {
        display: flex;
        flex-direction: column;
        gap: 4px;
        font-weight: 600;
      }
      label input,
      label select {
        font-weight: 400;
      }
      .wide {
        grid-column: span 2;
      }
      td.desc {
        white-space: normal;
        max-width: 420px;
        color: var(--wl-muted);
      }
      .badge.public {
        color: var(--wl-ok);
        border-color: var(--wl-ok);
      }
      .empty {
        padding: 32px 0;
        text-align: center;
      }
      .ok {
        color: var(--wl-ok);
      }
      tr.fresh td {
        background: var(--wl-highlight);
      }
    `,
  ];

  declare params: Record<string, string>;
  declare query: URLSearchParams;
  declare items: projects.v1.Project[];
  declare meta: projects.v1.ListProjectsResponse['meta'];
  declare loading: boolean;
  declare error: string;
  declare orgs: auth.v1.Organization[];
  declare showCreate: boolean;
  declare creating: boolean;
  declare createError: string;
  declare created: projects.v1.Project | undefined;
  private searchTimer: ReturnType<typeof setTimeout> | undefined;
  private seq = 0;

  constructor() {
    super();
    this.params = {};
    this.query = new URLSearchParams();
    this.items = [];
    this.meta = undefined;
    this.loading = true;
    this.error = '';
    this.orgs = [];
    this.showCreate = false;
    this.creating = false;
    this.createError = '';
    this.created = undefined;
  }

  override connectedCallback(): void {
    super.connectedCallback();
    // Organisations a project may go to (absent on a server without accounts).
    void orgsApi
      .listOrgs({ pageSize: 100 })
      .then((r) => (this.orgs = r.data))
      .catch(() => (this.orgs = []));
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    clearTimeout(this.searchTimer);
  }

  protected override willUpdate(changed: PropertyValues<this>): void {
    if (changed.has('query')) void this.load();
  }

  protected override updated(changed: PropertyValues<this>): void {
    // The box follows the address (back/forward, a shared link) but never rewrites what is being typed.
    const box = this.renderRoot.querySelector<HTMLInputElement>('#project-search');
    if (changed.has('query') && box && box.value.trim() !== this.search) box.value = this.search;
  }

  private get search(): string {
    return this.query.get('search') ?? '';
  }

  private get page(): number {
    return pageFromQuery(this.query);
  }

  private async load(): Promise<void> {
    const seq = ++this.seq;
    this.loading = true;
    this.error = '';
    try {
      const r = await projectsApi.listProjects({ page: this.page, pageSize: PAGE_SIZE, search: this.search });
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

  /** Changes the address (search, page); the shell hands the new query back and the list reloads. */
  private go(changes: { search?: string; page?: number }): void {
    const search = changes.search ?? this.search;
    const page = changes.page ?? this.page;
    navigate(withQuery('/projects', { search, page: page > 1 ? page : undefined }), { replace: changes.search !== undefined });
  }

  private onSearchInput(e: InputEvent): void {
    const value = (e.target as HTMLInputElement).value;
    clearTimeout(this.searchTimer);
    this.searchTimer = setTimeout(() => this.go({ search: value.trim(), page: 1 }), 250);
  }

  private onSearchKey(e: KeyboardEvent): void {
    if (e.key !== 'Enter') return;
    clearTimeout(this.searchTimer);
    this.go({ search: (e.target as HTMLInputElement).value.trim(), page: 1 });
  }

  private toggleCreate(): void {
    this.showCreate = !this.showCreate;
    this.createError = '';
    if (this.showCreate) void this.updateComplete.then(() => this.renderRoot.querySelector<HTMLInputElement>('#project-name')?.focus());
  }

  private async create(e: SubmitEvent): Promise<void> {
    const f = submittedForm(e);
    if (!f) return;
    const { form, data } = f;
    const body: ClientRequest<projects.v1.CreateProjectRequest> = {
      name: String(data.get('name')).trim(),
      description: String(data.get('description') ?? '').trim(),
      visibility: closedValue(projects.v1.closedSets.CreateProjectRequest.visibility, String(data.get('visibility') ?? 'private')),
    };
    const org = String(data.get('organizationId') ?? '');
    if (org) body.organizationId = org;
    if (!body.name) {
      this.createError = 'A project needs a name.';
      return;
    }
    this.creating = true;
    this.createError = '';
    try {
      this.created = dataOf(await projectsApi.createProject(body));
      form.reset();
      this.showCreate = false;
      // Show the new project: the first page of an unfiltered list (newest first or by name, it is on it or findable).
      if (this.search || this.page !== 1) this.go({ search: '', page: 1 });
      else await this.load();
    } catch (err) {
      this.createError = describeError(err);
    } finally {
      this.creating = false;
    }
  }

  override render() {
    return html`
      <div class="page">
        <div class="head">
          <h1>Projects</h1>
          <input
            id="project-search"
            type="search"
            aria-label="Search projects"
            placeholder="Search by name or description"
            @input=${this.onSearchInput}
            @keydown=${this.onSearchKey}
            data-testid="project-search"
          />
          <button class="primary" @click=${this.toggleCreate} aria-expanded=${this.showCreate} data-testid="new-project">${this.showCreate ? 'Cancel' : 'New project'}</button>
        </div>
        ${this.showCreate ? this.renderCreate() : nothing}
        ${this.created
          ? html`<p class="ok" role="status" data-testid="project-created">
              Created <a href="/projects/${this.created.id}">${this.created.name}</a>.
            </p>`
          : nothing}
        ${this.error ? html`<p class="error" role="alert" data-testid="projects-error">${this.error} <button @click=${() => this.load()}>Retry</button></p>` : nothing}
        ${this.renderList()}
        ${pager(this.meta, { page: this.page, go: (page) => this.go({ page }), busy: this.loading, testIdPrefix: 'projects' })}
      </div>
    `;
  }

  private renderCreate() {
    return html`
      <form class="create card" @submit=${this.create} aria-labelledby="create-title" data-testid="project-form">
        <h2 id="create-title">New project</h2>
        <label for="project-name"
          >Name
          <input id="project-name" name="name" required maxlength="128" autocomplete="off" data-testid="project-name" />
        </label>
        <label for="project-description" class="wide"
          >Description
          <input id="project-description" name="description" maxlength="2000" autocomplete="off" data-testid="project-description" />
        </label>
        <label for="project-visibility"
          >Visibility
          <select id="project-visibility" name="visibility" data-testid="project-visibility">
            <option value="private">Private — members only</option>
            <option value="public">Public — any signed-in user may read</option>
          </select>
        </label>
        ${this.orgs.length > 1
          ? html`<label for="project-org"
              >Organisation
              <select id="project-org" name="organizationId" data-testid="project-org">
                ${this.orgs.map((o) => html`<option value=${o.personal ? '' : o.id}>${o.personal ? `${o.name} (personal)` : o.name}</option>`)}
              </select>
            </label>`
          : nothing}
        ${this.createError ? html`<p class="error wide" role="alert" data-testid="project-create-error">${this.createError}</p>` : nothing}
        <div class="actions">
          <button type="submit" class="primary" ?disabled=${this.creating} data-testid="project-create">${this.creating ? 'Creating…' : 'Create project'}</button>
          <button type="button" @click=${this.toggleCreate}>Cancel</button>
        </div>
      </form>
    `;
  }

  private renderList() {
    if (this.loading && !this.items.length) return html`<p class="muted" role="status" data-testid="projects-loading">Loading projects…</p>`;
    if (!this.items.length && !this.error) {
      return html`<div class="empty card" data-testid="projects-empty">
        ${this.search
          ? html`<p>No project matches “${this.search}”.</p>
              <button @click=${() => this.go({ search: '', page: 1 })}>Clear the search</button>`
          : html`<p>No projects yet.</p>
              <p class="muted">Create one here, or log a run from the SDK: <span class="mono">init({ project: 'my-project' })</span> creates its project.</p>`}
      </div>`;
    }
    if (!this.items.length) return nothing;
    return html`
      <table data-testid="projects-table" aria-busy=${this.loading}>
        ${tableHead(['Name', 'Description', 'Visibility', 'Updated'])}
        <tbody>
          ${this.items.map(
            (p) => html`<tr class=${this.created?.id === p.id ? 'fresh' : ''} data-testid="project-row">
              <td>
                <a href="/projects/${encodeURIComponent(p.id)}" data-testid="project-link">${p.name}</a>
                ${p.slug && p.slug !== p.name ? html`<div class="muted mono">${p.slug}</div>` : nothing}
              </td>
              <td class="desc">${p.description || '—'}</td>
              <td><span class="badge ${p.visibility}">${p.visibility}</span></td>
              <td class="muted" title=${p.updatedAt}>${shortTime(p.updatedAt)}</td>
            </tr>`,
          )}
        </tbody>
      </table>
      ${this.meta ? html`<p class="muted">${this.meta.total} ${this.meta.total === 1 ? 'project' : 'projects'}${this.search ? html` matching “${this.search}”` : nothing}</p>` : nothing}
    `;
  }
}

customElements.define('wl-projects-page', WlProjectsPage);
