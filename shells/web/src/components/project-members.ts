import { LitElement, css, html, nothing, type PropertyValues } from 'lit';
import { auth } from '@wanllmdb/proto/client';
import { ApiError } from '../api/client.js';
import { orgsApi } from '../api/services.js';
import { badge, cardSections, hintAndOk, inlineForm, shared, srOnly } from '../styles.js';
import { errorMessage as describe } from '../util/errors.js';
import { closedValue, submittedForm } from '../util/forms.js';
import { confirmButton } from './confirm-button.js';
import { tableHead } from './table-head.js';

type Grant = auth.v1.ProjectGrant;

const BUILTIN_ROLES = ['owner', 'admin', 'member', 'viewer'];

/** 403/404: the caller may not see this (the server hides what one may not read). */
const refused = (e: unknown) => e instanceof ApiError && (e.status === 403 || e.status === 404);

/**
 * <wl-project-members>: who has which role on one project (users and teams
 * of the project's organisation), and a form to grant or take roles away.
 * Callers who may not list the organisation's members see a read-only note
 * instead of the form; the server's refusals show next to the form.
 */
export class WlProjectMembers extends LitElement {
  static override properties = {
    projectId: { attribute: false },
    orgId: { attribute: false },
    orgName: { attribute: false },
    grants: { state: true },
    members: { state: true },
    teams: { state: true },
    roles: { state: true },
    loading: { state: true },
    listError: { state: true },
    listRefused: { state: true },
    pickRefused: { state: true },
    busy: { state: true },
    error: { state: true },
    notice: { state: true },
    confirm: { state: true },
  };

  static override styles = [
    shared,
    inlineForm,
    hintAndOk,
    badge,
    srOnly,
    cardSections,
    css`
      form.inline .grow {
        flex: 1;
        min-width: 220px;
      }
    `,
  ];

  declare projectId: string;
  declare orgId: string;
  /** The organisation's name, when the page knows it. */
  declare orgName: string;
  declare grants: Grant[];
  declare members: auth.v1.Member[];
  declare teams: auth.v1.Team[];
  declare roles: auth.v1.Role[];
  declare loading: boolean;
  /** Why the grants could not be listed (other than a refusal). */
  declare listError: string;
  /** The caller may not list the project's grants. */
  declare listRefused: boolean;
  /** The caller may not list the organisation's members or teams: no form. */
  declare pickRefused: boolean;
  declare busy: boolean;
  declare error: string;
  declare notice: string;
  /** `<subjectType>:<subjectId>` of a grant waiting for the second click of Remove. */
  declare confirm: string;

  constructor() {
    super();
    this.projectId = '';
    this.orgId = '';
    this.orgName = '';
    this.grants = [];
    this.members = [];
    this.teams = [];
    this.roles = [];
    this.loading = true;
    this.listError = '';
    this.listRefused = false;
    this.pickRefused = false;
    this.busy = false;
    this.error = '';
    this.notice = '';
    this.confirm = '';
  }

  protected override willUpdate(changed: PropertyValues<this>): void {
    if ((changed.has('projectId') || changed.has('orgId')) && this.projectId) void this.load();
  }

  private async load(): Promise<void> {
    this.loading = true;
    try {
      await Promise.all([this.loadGrants(), this.orgId ? this.loadChoices() : undefined]);
    } finally {
      this.loading = false;
    }
  }

  private async loadGrants(): Promise<void> {
    try {
      this.grants = (await orgsApi.listProjectGrants({ projectId: this.projectId })).data;
      this.listError = '';
      this.listRefused = false;
    } catch (e) {
      this.grants = [];
      this.listRefused = refused(e);
      this.listError = this.listRefused ? '' : describe(e);
    }
  }

  /** The org's members, teams and roles: what the form offers. */
  private async loadChoices(): Promise<void> {
    const [members, teams, roles] = await Promise.allSettled([
      orgsApi.listMembers({ orgId: this.orgId }),
      orgsApi.listTeams({ orgId: this.orgId }),
      orgsApi.listRoles({ orgId: this.orgId }),
    ]);
    this.pickRefused = [members, teams].some((r) => r.status === 'rejected' && refused(r.reason));
    const failed = [members, teams].find((r): r is PromiseRejectedResult => r.status === 'rejected' && !refused(r.reason));
    if (failed) this.error = describe(failed.reason);
    this.members = members.status === 'fulfilled' ? members.value.data : [];
    this.teams = teams.status === 'fulfilled' ? teams.value.data : [];
    this.roles = roles.status === 'fulfilled' ? roles.value.data : [];
  }

  private roleNames(): string[] {
    return this.roles.length ? this.roles.map((r) => r.name) : BUILTIN_ROLES;
  }

  private subjectLabel(type: string, id: string): string {
    if (type === 'team') return this.teams.find((t) => t.id === id)?.name ?? id;
    const m = this.members.find((x) => x.userId === id);
    return m ? m.email || m.username : id;
  }

  private async run(fn: () => Promise<string>): Promise<boolean> {
    this.busy = true;
    this.error = '';
    this.notice = '';
    try {
      this.notice = await fn();
      return true;
    } catch (e) {
      this.error = describe(e);
      return false;
    } finally {
      this.busy = false;
    }
  }

  private async grantRole(e: SubmitEvent): Promise<void> {
    const f = submittedForm(e);
    if (!f) return;
    const subject = f.get('subject');
    const role = f.get('role');
    const cut = subject.indexOf(':');
    const subjectType = closedValue(auth.v1.closedSets.SetProjectGrantRequest.subjectType, subject.slice(0, cut));
    const subjectId = subject.slice(cut + 1);
    if (!subjectType) {
      this.error = 'Choose a user or a team to grant the role to.';
      return;
    }
    await this.run(async () => {
      await orgsApi.setProjectGrant({ projectId: this.projectId, subjectType, subjectId, role });
      await this.loadGrants();
      return `${this.subjectLabel(subjectType, subjectId)} now has the role ${role} on this project.`;
    });
  }

  private async removeGrant(g: Grant): Promise<void> {
    await this.run(async () => {
      await orgsApi.removeProjectGrant({ projectId: this.projectId, subjectType: g.subjectType, subjectId: g.subjectId });
      this.confirm = '';
      await this.loadGrants();
      return `Removed the grant of ${g.subjectName || this.subjectLabel(g.subjectType, g.subjectId)}.`;
    });
  }

  private renderTable() {
    if (this.listRefused) return html`<p class="muted" data-testid="project-members-hidden">You may not see who has roles on this project.</p>`;
    if (this.listError) return html`<p class="error" role="alert" data-testid="project-members-list-error">${this.listError} <button @click=${() => this.load()}>Retry</button></p>`;
    if (this.loading && !this.grants.length) return html`<p class="muted" role="status">Loading members…</p>`;
    if (!this.grants.length)
      return html`<p class="muted" data-testid="project-members-empty">No grants on this project: members of the organisation have their organisation role here.</p>`;
    return html`<div class="table-wrap">
      <table data-testid="project-members-table">
        ${tableHead(['Name', 'Type', 'Role'], { actions: true })}
        <tbody>
          ${this.grants.map((g) => {
            const key = `${g.subjectType}:${g.subjectId}`;
            const name = g.subjectName || this.subjectLabel(g.subjectType, g.subjectId);
            return html`<tr data-testid="project-member-row" data-subject-type=${g.subjectType} data-subject-id=${g.subjectId}>
              <td>${name}</td>
              <td>${g.subjectType === 'team' ? html`<span class="badge">team</span>` : 'user'}</td>
              <td data-testid="project-member-role">${g.role}</td>
              <td>
                ${confirmButton({
                  armed: this.confirm === key,
                  arm: () => (this.confirm = key),
                  confirm: () => this.removeGrant(g),
                  disarm: () => (this.confirm = ''),
                  busy: this.busy,
                  label: 'Remove',
                  ariaLabel: `Remove the grant of ${name}`,
                  testId: 'remove-grant',
                  confirmTestId: 'confirm-remove-grant',
                })}
              </td>
            </tr>`;
          })}
        </tbody>
      </table>
    </div>`;
  }

  private renderForm() {
    if (!this.orgId) return html`<p class="muted">This project belongs to no organisation, so it cannot have grants.</p>`;
    if (this.pickRefused)
      return html`<p class="muted" data-testid="project-members-readonly">You may not list the organisation's members, so you cannot grant roles here. Ask an owner or admin of the organisation.</p>`;
    const users = this.members;
    const granted = new Map(this.grants.map((g) => [`${g.subjectType}:${g.subjectId}`, g.role]));
    const has = (key: string) => (granted.has(key) ? ` (has ${granted.get(key)})` : '');
    return html`<form class="inline" @submit=${this.grantRole} aria-label="Grant a role on this project" data-testid="grant-form">
      <label for="grant-subject" class="grow"
        >User or team
        <select id="grant-subject" name="subject" required data-testid="grant-subject">
          <option value="">Choose…</option>
          ${users.length
            ? html`<optgroup label="Members">
                ${users.map(
                  (m) => html`<option value=${`user:${m.userId}`}>${m.email || m.username}${m.kind === 'service' ? ' (service account)' : ''}${has(`user:${m.userId}`)}</option>`,
                )}
              </optgroup>`
            : nothing}
          ${this.teams.length
            ? html`<optgroup label="Teams">${this.teams.map((t) => html`<option value=${`team:${t.id}`}>${t.name}${has(`team:${t.id}`)}</option>`)}</optgroup>`
            : nothing}
        </select>
        <span class="hint muted">Members and teams of the project's organisation. Granting again changes the role.</span>
      </label>
      <label for="grant-role"
        >Role
        <select id="grant-role" name="role" data-testid="grant-role">
          ${this.roleNames().map((n) => html`<option value=${n} ?selected=${n === 'member'}>${n}</option>`)}
        </select>
      </label>
      <button type="submit" class="primary" ?disabled=${this.busy} data-testid="grant-submit">Grant</button>
    </form>`;
  }

  override render() {
    return html`<section class="card" aria-labelledby="project-members-title" data-testid="project-members">
      <h2 id="project-members-title">Members</h2>
      ${this.orgId
        ? html`<p class="muted">
            Roles on this project, on top of the organisation roles of
            <a href=${`/orgs/${encodeURIComponent(this.orgId)}`} data-testid="project-members-org">${this.orgName || 'its organisation'}</a>.
          </p>`
        : nothing}
      ${this.renderTable()} ${this.renderForm()}
      ${this.error ? html`<p class="error" role="alert" data-testid="project-members-error">${this.error}</p>` : nothing}
      ${this.notice ? html`<p class="ok" role="status" data-testid="project-members-notice">${this.notice}</p>` : nothing}
    </section>`;
  }
}

customElements.define('wl-project-members', WlProjectMembers);

declare global {
  interface HTMLElementTagNameMap {
    'wl-project-members': WlProjectMembers;
  }
}
