import { LitElement, css, html, nothing, type PropertyValues } from 'lit';
import type { ClientRequest, auth } from '@wanllmdb/proto/client';
import { ApiError, dataOf } from '../api/client.js';
import { orgsApi } from '../api/services.js';
import { navigate } from '../router.js';
import { badge, cardSections, chip, hintAndOk, inlineForm, pageHead, shared, srOnly } from '../styles.js';
import { confirmButton } from '../components/confirm-button.js';
import { pageFromQuery, pager, pagerStyles } from '../components/pager.js';
import { secretBox, secretBoxStyles } from '../components/secret-box.js';
import { tableHead } from '../components/table-head.js';
import { describeError } from '../util/errors.js';
import { commaList, shortTime } from '../util/format.js';
import { submittedForm as fields } from '../util/forms.js';

type Member = auth.v1.Member;
type Team = auth.v1.Team;
type Role = auth.v1.Role;

type Section = 'members' | 'teams' | 'roles' | 'service';

const PAGE_SIZE = 20;

/**
 * <wl-org-page>: `/orgs` lists the caller's organisations and creates one;
 * `/orgs/<id>` manages one: members, teams, custom roles, service accounts.
 */
export class WlOrgPage extends LitElement {
  static override properties = {
    params: { attribute: false },
    query: { attribute: false },
    orgs: { state: true },
    meta: { state: true },
    org: { state: true },
    members: { state: true },
    teams: { state: true },
    roles: { state: true },
    loading: { state: true },
    error: { state: true },
    busy: { state: true },
    errors: { state: true },
    notice: { state: true },
    confirm: { state: true },
    serviceKey: { state: true },
    copied: { state: true },
  };

  static override styles = [
    shared,
    secretBoxStyles,
    inlineForm,
    hintAndOk,
    badge,
    chip,
    srOnly,
    pagerStyles,
    pageHead,
    cardSections,
    css`
      .page {
        max-width: 1080px;
      }
      section {
        margin-bottom: 20px;
      }
      form.inline .grow {
        flex: 1;
        min-width: 200px;
      }
      td.wrap {
        white-space: normal;
      }
    `,
  ];

  declare params: Record<string, string>;
  declare query: URLSearchParams;
  declare orgs: auth.v1.Organization[];
  declare meta: auth.v1.ListOrgsResponse['meta'];
  declare org: auth.v1.Organization | undefined;
  declare members: Member[];
  declare teams: Team[];
  declare roles: Role[];
  declare loading: boolean;
  declare error: string;
  /** The form or action in flight (`create-org`, `members`, …). */
  declare busy: string;
  /** The last error of each section or list-level form. */
  declare errors: Record<string, string>;
  declare notice: Record<string, string>;
  /** `<kind>:<id>` of a destructive action waiting for its second click. */
  declare confirm: string;
  declare serviceKey: { name: string; key: string } | undefined;
  declare copied: boolean;

  constructor() {
    super();
    this.params = {};
    this.query = new URLSearchParams();
    this.orgs = [];
    this.meta = undefined;
    this.org = undefined;
    this.members = [];
    this.teams = [];
    this.roles = [];
    this.loading = true;
    this.error = '';
    this.busy = '';
    this.errors = {};
    this.notice = {};
    this.confirm = '';
    this.serviceKey = undefined;
    this.copied = false;
  }

  protected override willUpdate(changed: PropertyValues<this>): void {
    if (changed.has('params') || (changed.has('query') && !this.params.id)) void this.load();
  }

  private get page(): number {
    return pageFromQuery(this.query);
  }

  private setError(key: string, e: unknown): void {
    this.errors = { ...this.errors, [key]: e === '' ? '' : describeError(e) };
  }

  private setNotice(key: string, text: string): void {
    this.notice = { ...this.notice, [key]: text };
  }

  private async load(): Promise<void> {
    this.loading = true;
    this.error = '';
    try {
      if (this.params.id) await this.loadOrg(this.params.id);
      else {
        const r = await orgsApi.listOrgs({ page: this.page, pageSize: PAGE_SIZE });
        this.orgs = r.data;
        this.meta = r.meta;
      }
    } catch (e) {
      this.error = describeError(e);
    } finally {
      this.loading = false;
    }
  }

  private async loadOrg(id: string): Promise<void> {
    this.org = dataOf(await orgsApi.getOrg({ orgId: id }));
    // Each list may be refused on its own (a viewer may not read roles, say).
    await Promise.all([this.loadMembers(), this.loadTeams(), this.loadRoles()]);
  }

  /** The organisation the page shows (its id, before it has loaded). */
  private get orgId(): string {
    return this.org?.id ?? this.params.id ?? '';
  }

  private async loadMembers(): Promise<void> {
    try {
      this.members = (await orgsApi.listMembers({ orgId: this.orgId })).data;
      this.setError('members-list', '');
    } catch (e) {
      this.setError('members-list', e);
    }
  }

  private async loadTeams(): Promise<void> {
    try {
      this.teams = (await orgsApi.listTeams({ orgId: this.orgId })).data;
      this.setError('teams-list', '');
    } catch (e) {
      this.setError('teams-list', e);
    }
  }

  private async loadRoles(): Promise<void> {
    try {
      this.roles = (await orgsApi.listRoles({ orgId: this.orgId })).data;
      this.setError('roles-list', '');
    } catch (e) {
      this.setError('roles-list', e);
    }
  }

  /** Runs one action of a section: busy flag, the server's error shown in the section, a notice on success. */
  private async act(section: string, fn: () => Promise<string | void>): Promise<boolean> {
    this.busy = section;
    this.setError(section, '');
    this.setNotice(section, '');
    try {
      const msg = await fn();
      if (msg) this.setNotice(section, msg);
      return true;
    } catch (e) {
      this.setError(section, e);
      return false;
    } finally {
      this.busy = '';
    }
  }

  // ---------------------------------------------------------------- list of organisations

  private async createOrg(e: SubmitEvent): Promise<void> {
    const f = fields(e);
    if (!f) return;
    const body: ClientRequest<auth.v1.CreateOrgRequest> = { name: f.get('name') };
    if (f.get('slug')) body.slug = f.get('slug');
    if (f.get('description')) body.description = f.get('description');
    await this.act('create-org', async () => {
      const org = dataOf(await orgsApi.createOrg(body));
      f.form.reset();
      navigate(`/orgs/${encodeURIComponent(org.id)}`);
    });
  }

  // ---------------------------------------------------------------- one organisation

  private async addMember(e: SubmitEvent): Promise<void> {
    const f = fields(e);
    if (!f) return;
    const email = f.get('email');
    await this.act('members', async () => {
      await orgsApi.addMember({ orgId: this.orgId, email, role: f.get('role') });
      f.form.reset();
      await this.loadMembers();
      return `Added ${email}.`;
    });
  }

  private async changeRole(m: Member, role: string, select: HTMLSelectElement): Promise<void> {
    const ok = await this.act('members', async () => {
      await orgsApi.updateMember({ orgId: this.orgId, userId: m.userId, role });
      await this.loadMembers();
      return `${m.email || m.username} is now ${role}.`;
    });
    if (!ok) select.value = m.role; // the server said no: show the role they still have
  }

  private async removeMember(m: Member): Promise<void> {
    await this.act('members', async () => {
      await orgsApi.removeMember({ orgId: this.orgId, userId: m.userId });
      this.confirm = '';
      await this.loadMembers();
      return `Removed ${m.email || m.username}.`;
    });
  }

  private async createTeam(e: SubmitEvent): Promise<void> {
    const f = fields(e);
    if (!f) return;
    await this.act('teams', async () => {
      await orgsApi.createTeam({ orgId: this.orgId, name: f.get('name'), description: f.get('description') });
      f.form.reset();
      await this.loadTeams();
    });
  }

  private async deleteTeam(t: Team): Promise<void> {
    await this.act('teams', async () => {
      await orgsApi.deleteTeam({ teamId: t.id });
      this.confirm = '';
      await this.loadTeams();
      return `Deleted the team ${t.name}.`;
    });
  }

  private async createRole(e: SubmitEvent): Promise<void> {
    const f = fields(e);
    if (!f) return;
    const permissions = commaList(f.get('permissions'));
    await this.act('roles', async () => {
      await orgsApi.createRole({ orgId: this.orgId, name: f.get('name'), permissions });
      f.form.reset();
      await this.loadRoles();
    });
  }

  private async deleteRole(r: Role): Promise<void> {
    await this.act('roles', async () => {
      await orgsApi.deleteRole({ orgId: this.orgId, roleId: r.id });
      this.confirm = '';
      await this.loadRoles();
      return `Deleted the role ${r.name}.`;
    });
  }

  private async createServiceAccount(e: SubmitEvent): Promise<void> {
    const f = fields(e);
    if (!f) return;
    const scopes = commaList(f.get('scopes'));
    const name = f.get('name');
    this.copied = false;
    await this.act('service', async () => {
      const { account, apiKey } = dataOf(
        await orgsApi.createServiceAccount({
          orgId: this.orgId,
          name,
          role: f.get('role'),
          ...(scopes.length ? { scopes } : {}),
        }),
      );
      if (!apiKey) throw new ApiError(502, 'NO_DATA', 'The service account was created, but the server sent no API key for it. Report it with the server log.');
      this.serviceKey = { name: account?.username || name, key: apiKey.key };
      f.form.reset();
      await this.loadMembers();
    });
  }

  // ---------------------------------------------------------------- rendering

  override render() {
    return html`<div class="page">${this.params.id ? this.renderOrg() : this.renderList()}</div>`;
  }

  private sectionStatus(key: string) {
    return html`${this.errors[key] ? html`<p class="error" role="alert" data-testid="${key}-error">${this.errors[key]}</p>` : nothing}
    ${this.notice[key] ? html`<p class="ok" role="status" data-testid="${key}-notice">${this.notice[key]}</p>` : nothing}`;
  }

  private renderList() {
    const m = this.meta;
    return html`
      <div class="head"><h1>Organisations</h1></div>
      <p class="muted">The organisations you belong to. Projects, members, teams and roles live in an organisation; your personal one is yours alone.</p>
      <section class="card" aria-labelledby="new-org-title">
        <h2 id="new-org-title">New organisation</h2>
        <form class="inline" @submit=${this.createOrg} data-testid="org-form">
          <label for="org-name" class="grow"
            >Name
            <input id="org-name" name="name" required maxlength="128" autocomplete="off" data-testid="org-name" />
          </label>
          <label for="org-slug"
            >Slug
            <input id="org-slug" name="slug" maxlength="64" autocomplete="off" pattern="[a-z0-9][a-z0-9\\-]*" title="lower-case letters, digits and '-'" class="mono" />
            <span class="hint muted">Optional.</span>
        </label>
          <label for="org-description" class="grow"
            >Description
            <input id="org-description" name="description" maxlength="2000" autocomplete="off" />
            <span class="hint muted">Optional.</span>
        </label>
          <button type="submit" class="primary" ?disabled=${this.busy === 'create-org'} data-testid="org-create">Create organisation</button>
        </form>
        ${this.sectionStatus('create-org')}
      </section>
      ${this.error ? html`<p class="error" role="alert">${this.error} <button @click=${() => this.load()}>Retry</button></p>` : nothing}
      ${this.loading && !this.orgs.length
        ? html`<p class="muted" role="status">Loading organisations…</p>`
        : !this.orgs.length && !this.error
          ? html`<p class="muted" data-testid="orgs-empty">You belong to no organisation yet.</p>`
          : this.orgs.length
            ? html`<table data-testid="orgs-table">
                ${tableHead(['Name', 'Slug', 'Description', 'Created'])}
                <tbody>
                  ${this.orgs.map(
                    (o) => html`<tr data-testid="org-row">
                      <td><a href="/orgs/${encodeURIComponent(o.id)}" data-testid="org-link">${o.name}</a> ${o.personal ? html`<span class="badge">personal</span>` : nothing}</td>
                      <td class="mono">${o.slug}</td>
                      <td class="wrap muted">${o.description || '—'}</td>
                      <td class="muted">${shortTime(o.createdAt)}</td>
                    </tr>`,
                  )}
                </tbody>
              </table>`
            : nothing}
      ${pager(m, { page: this.page, go: (page) => navigate(`/orgs?page=${page}`) })}
    `;
  }

  private renderOrg() {
    const o = this.org;
    if (this.error) return html`<p><a href="/orgs">← Organisations</a></p><p class="error" role="alert" data-testid="org-error">${this.error}</p>`;
    if (!o) return html`<p class="muted" role="status">Loading the organisation…</p>`;
    return html`
      <p><a href="/orgs">← Organisations</a></p>
      <div class="head">
        <h1 data-testid="org-title">${o.name}</h1>
        <span class="mono muted">${o.slug}</span>
        ${o.personal ? html`<span class="badge">personal</span>` : nothing}
      </div>
      ${o.description ? html`<p class="muted">${o.description}</p>` : nothing}
      ${this.renderMembers()} ${this.renderTeams()} ${this.renderRoles()} ${this.renderServiceAccounts()}
    `;
  }

  /** A two-click destructive button for the item `key` (`<kind>:<id>`). */
  private confirmButton(key: string, action: () => void, o: { label: string; ariaLabel: string; testId: string; confirmTestId: string }) {
    return confirmButton({ ...o, armed: this.confirm === key, arm: () => (this.confirm = key), confirm: action, disarm: () => (this.confirm = '') });
  }

  private roleOptions(selected = 'member') {
    const names = this.roles.length ? this.roles.map((r) => r.name) : ['owner', 'admin', 'member', 'viewer'];
    if (!names.includes(selected)) names.push(selected);
    return names.map((n) => html`<option value=${n} ?selected=${n === selected}>${n}</option>`);
  }

  private renderMembers() {
    return html`<section class="card" aria-labelledby="members-title" data-testid="members">
      <h2 id="members-title">Members</h2>
      ${this.errors['members-list'] ? html`<p class="error" role="alert">${this.errors['members-list']}</p>` : nothing}
      ${this.members.length
        ? html`<div class="table-wrap">
            <table data-testid="members-table">
              ${tableHead(['Email', 'Username', 'Kind', 'Role', 'Joined'], { actions: true })}
              <tbody>
                ${this.members.map(
                  (m) => html`<tr data-testid="member-row" data-email=${m.email}>
                    <td>${m.email || html`<span class="muted">—</span>`}</td>
                    <td class="mono">${m.username}</td>
                    <td>${m.kind === 'service' ? html`<span class="badge">service account</span>` : 'user'}</td>
                    <td>
                      <select
                        aria-label="Role of ${m.email || m.username}"
                        ?disabled=${this.busy === 'members'}
                        @change=${(e: Event) => this.changeRole(m, (e.target as HTMLSelectElement).value, e.target as HTMLSelectElement)}
                        data-testid="member-role"
                      >
                        ${this.roleOptions(m.role)}
                      </select>
                    </td>
                    <td class="muted">${shortTime(m.joinedAt)}</td>
                    <td>
                      ${this.confirmButton(`member:${m.userId}`, () => this.removeMember(m), {
                        label: 'Remove',
                        ariaLabel: `Remove ${m.email || m.username}`,
                        testId: 'remove-member',
                        confirmTestId: 'confirm-remove-member',
                      })}
                    </td>
                  </tr>`,
                )}
              </tbody>
            </table>
          </div>`
        : this.errors['members-list']
          ? nothing
          : html`<p class="muted">No members.</p>`}
      <form class="inline" @submit=${this.addMember} aria-label="Add a member" data-testid="member-form">
        <label for="member-email" class="grow"
          >Email of an existing account
          <input id="member-email" name="email" type="email" required autocomplete="off" data-testid="member-email" />
        </label>
        <label for="member-role"
          >Role
          <select id="member-role" name="role" data-testid="member-new-role">
            ${this.roleOptions('member')}
          </select>
        </label>
        <button type="submit" class="primary" ?disabled=${this.busy === 'members'} data-testid="member-add">Add member</button>
      </form>
      ${this.sectionStatus('members')}
    </section>`;
  }

  private renderTeams() {
    return html`<section class="card" aria-labelledby="teams-title" data-testid="teams">
      <h2 id="teams-title">Teams</h2>
      ${this.errors['teams-list'] ? html`<p class="error" role="alert">${this.errors['teams-list']}</p>` : nothing}
      ${this.teams.length
        ? html`<table data-testid="teams-table">
            ${tableHead(['Name', 'Description', 'Created'], { actions: true })}
            <tbody>
              ${this.teams.map(
                (t) => html`<tr data-testid="team-row">
                  <td>${t.name}</td>
                  <td class="wrap muted">${t.description || '—'}</td>
                  <td class="muted">${shortTime(t.createdAt)}</td>
                  <td>
                    ${this.confirmButton(`team:${t.id}`, () => this.deleteTeam(t), {
                      label: 'Delete',
                      ariaLabel: `Delete the team ${t.name}`,
                      testId: 'delete-team',
                      confirmTestId: 'confirm-delete-team',
                    })}
                  </td>
                </tr>`,
              )}
            </tbody>
          </table>`
        : this.errors['teams-list']
          ? nothing
          : html`<p class="muted" data-testid="teams-empty">No teams yet. A team gets roles on projects as a group.</p>`}
      <form class="inline" @submit=${this.createTeam} aria-label="Create a team" data-testid="team-form">
        <label for="team-name"
          >Team name
          <input id="team-name" name="name" required maxlength="128" autocomplete="off" data-testid="team-name" />
        </label>
        <label for="team-description" class="grow"
          >Description
          <input id="team-description" name="description" maxlength="2000" autocomplete="off" />
          <span class="hint muted">Optional.</span>
        </label>
        <button type="submit" class="primary" ?disabled=${this.busy === 'teams'} data-testid="team-create">Create team</button>
      </form>
      ${this.sectionStatus('teams')}
    </section>`;
  }

  private renderRoles() {
    return html`<section class="card" aria-labelledby="roles-title" data-testid="roles">
      <h2 id="roles-title">Roles</h2>
      <p class="muted">Permissions are <span class="mono">area:verb</span> patterns such as <span class="mono">runs:write</span> or <span class="mono">*:read</span>.</p>
      ${this.errors['roles-list'] ? html`<p class="error" role="alert">${this.errors['roles-list']}</p>` : nothing}
      ${this.roles.length
        ? html`<table data-testid="roles-table">
            ${tableHead(['Role', 'Permissions'], { actions: true })}
            <tbody>
              ${this.roles.map(
                (r) => html`<tr data-testid="role-row">
                  <td>${r.name} ${r.builtin ? html`<span class="badge">built-in</span>` : nothing}</td>
                  <td class="wrap">${r.permissions.map((p) => html`<span class="chip">${p}</span>`)}</td>
                  <td>
                    ${r.builtin
                      ? nothing
                      : this.confirmButton(`role:${r.id}`, () => this.deleteRole(r), {
                          label: 'Delete',
                          ariaLabel: `Delete the role ${r.name}`,
                          testId: 'delete-role',
                          confirmTestId: 'confirm-delete-role',
                        })}
                  </td>
                </tr>`,
              )}
            </tbody>
          </table>`
        : nothing}
      <form class="inline" @submit=${this.createRole} aria-label="Create a custom role" data-testid="role-form">
        <label for="role-name"
          >Role name
          <input id="role-name" name="name" required maxlength="63" autocomplete="off" data-testid="role-name" />
        </label>
        <label for="role-permissions" class="grow"
          >Permissions
          <input id="role-permissions" name="permissions" required autocomplete="off" class="mono" placeholder="*:read, runs:write" data-testid="role-permissions" />
          <span class="hint muted">Comma-separated.</span>
        </label>
        <button type="submit" class="primary" ?disabled=${this.busy === 'roles'} data-testid="role-create">Create role</button>
      </form>
      ${this.sectionStatus('roles')}
    </section>`;
  }

  private renderServiceAccounts() {
    return html`<section class="card" aria-labelledby="service-title" data-testid="service-accounts">
      <h2 id="service-title">Service accounts</h2>
      <p class="muted">For CI and automation: an account of this organisation that cannot sign in with a password and comes with an API key. It is listed among the members.</p>
      <form class="inline" @submit=${this.createServiceAccount} aria-label="Create a service account" data-testid="service-form">
        <label for="service-name"
          >Name
          <input id="service-name" name="name" required maxlength="64" autocomplete="off" placeholder="ci-bot" data-testid="service-name" />
        </label>
        <label for="service-role"
          >Role
          <select id="service-role" name="role" data-testid="service-role">
            ${this.roleOptions('member')}
          </select>
        </label>
        <label for="service-scopes" class="grow"
          >Key scopes
          <input id="service-scopes" name="scopes" autocomplete="off" class="mono" placeholder="runs:write" data-testid="service-scopes" />
          <span class="hint muted">Comma-separated, optional.</span>
        </label>
        <button type="submit" class="primary" ?disabled=${this.busy === 'service'} data-testid="service-create">Create service account</button>
      </form>
      ${this.sectionStatus('service')}
      ${this.serviceKey
        ? secretBox({
            value: this.serviceKey.key,
            warning: `Copy the API key of “${this.serviceKey.name}” now: it is shown only this once.`,
            inputId: 'service-key',
            inputLabel: "The service account's API key",
            testId: 'service-key-box',
            inputTestId: 'service-key',
            copied: this.copied,
            onCopied: (ok) => (this.copied = ok),
            onDone: () => (this.serviceKey = undefined),
            root: this.renderRoot,
          })
        : nothing}
    </section>`;
  }
}

customElements.define('wl-org-page', WlOrgPage);
