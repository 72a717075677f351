import { LitElement, css, html, nothing } from 'lit';
import type { ClientRequest, auth } from '@wanllmdb/proto/client';
import { api, dataOf, type AuthMode } from '../api/client.js';
import { authApi } from '../api/services.js';
import { navigate } from '../router.js';
import { confirmButton } from '../components/confirm-button.js';
import { secretBox, secretBoxStyles } from '../components/secret-box.js';
import { tableHead } from '../components/table-head.js';
import { cardSections, chip, factList, hintAndOk, shared, srOnly } from '../styles.js';
import { describeError } from '../util/errors.js';
import { commaList, shortTime } from '../util/format.js';
import { submittedForm } from '../util/forms.js';

/**
 * <wl-settings-page>: the signed-in account, its password, API keys and
 * sessions. On a server without accounts it says so.
 */
export class WlSettingsPage extends LitElement {
  static override properties = {
    params: { attribute: false },
    query: { attribute: false },
    mode: { state: true },
    me: { state: true },
    meError: { state: true },
    pwBusy: { state: true },
    pwError: { state: true },
    pwDone: { state: true },
    keys: { state: true },
    keysLoading: { state: true },
    keysError: { state: true },
    keyBusy: { state: true },
    keyError: { state: true },
    newKey: { state: true },
    copied: { state: true },
    confirmRevoke: { state: true },
    revokeError: { state: true },
    outError: { state: true },
  };

  static override styles = [
    shared,
    secretBoxStyles,
    hintAndOk,
    chip,
    srOnly,
    cardSections,
    factList,
    css`
      .page {
        max-width: 980px;
      }
      section {
        margin-bottom: 20px;
      }
      dl {
        gap: 6px 16px;
      }
      form.grid {
        display: grid;
        grid-template-columns: repeat(auto-fit, minmax(200px, 1fr));
        gap: 10px;
        align-items: start;
      }
      form.grid .actions,
      form.grid .full {
        grid-column: 1 / -1;
      }
      label {
        display: flex;
        flex-direction: column;
        gap: 4px;
        font-weight: 600;
      }
      label input {
        font-weight: 400;
      }
      .table-wrap {
        margin-top: var(--wl-gap);
      }
    `,
  ];

  declare params: Record<string, string>;
  declare query: URLSearchParams;
  declare mode: AuthMode | undefined;
  declare me: auth.v1.Me | undefined;
  declare meError: string;
  declare pwBusy: boolean;
  declare pwError: string;
  declare pwDone: boolean;
  declare keys: auth.v1.ApiKey[];
  declare keysLoading: boolean;
  declare keysError: string;
  declare keyBusy: boolean;
  declare keyError: string;
  declare newKey: { name: string; key: string } | undefined;
  declare copied: boolean;
  declare confirmRevoke: string;
  declare revokeError: string;
  declare outError: string;

  constructor() {
    super();
    this.params = {};
    this.query = new URLSearchParams();
    this.mode = undefined;
    this.me = undefined;
    this.meError = '';
    this.pwBusy = false;
    this.pwError = '';
    this.pwDone = false;
    this.keys = [];
    this.keysLoading = true;
    this.keysError = '';
    this.keyBusy = false;
    this.keyError = '';
    this.newKey = undefined;
    this.copied = false;
    this.confirmRevoke = '';
    this.revokeError = '';
    this.outError = '';
  }

  override connectedCallback(): void {
    super.connectedCallback();
    void this.init();
  }

  private async init(): Promise<void> {
    this.mode = await api.authMode().catch(() => 'required' as const);
    if (this.mode === 'off') return;
    await Promise.all([this.loadMe(), this.loadKeys()]);
  }

  private async loadMe(): Promise<void> {
    try {
      this.me = dataOf(await authApi.getMe({}));
      this.meError = '';
    } catch (e) {
      this.meError = describeError(e);
    }
  }

  private async loadKeys(): Promise<void> {
    this.keysLoading = true;
    try {
      this.keys = (await authApi.listApiKeys({})).data;
      this.keysError = '';
    } catch (e) {
      this.keysError = describeError(e);
    } finally {
      this.keysLoading = false;
    }
  }

  private async changePassword(e: SubmitEvent): Promise<void> {
    this.pwDone = false;
    const f = submittedForm(e);
    if (!f) return;
    const { form, data } = f;
    const currentPassword = String(data.get('current'));
    const newPassword = String(data.get('new'));
    if (newPassword !== String(data.get('confirm'))) {
      this.pwError = 'The new password and its repetition differ.';
      return;
    }
    this.pwBusy = true;
    this.pwError = '';
    try {
      await authApi.changePassword({ currentPassword, newPassword });
      form.reset();
      this.pwDone = true;
    } catch (err) {
      this.pwError = describeError(err);
    } finally {
      this.pwBusy = false;
    }
  }

  private async createKey(e: SubmitEvent): Promise<void> {
    const f = submittedForm(e);
    if (!f) return;
    const form = f.form;
    const name = f.get('name');
    const scopes = commaList(f.get('scopes'));
    const expiry = f.get('expires');
    const body: ClientRequest<auth.v1.CreateApiKeyRequest> = { name };
    if (scopes.length) body.scopes = scopes;
    // A date input means "through that day", in the reader's time zone.
    if (expiry) body.expiresAt = new Date(`${expiry}T23:59:59`).toISOString();
    this.keyBusy = true;
    this.keyError = '';
    this.copied = false;
    try {
      const created = dataOf(await authApi.createApiKey(body));
      this.newKey = { name: created.apiKey?.name || name, key: created.key };
      form.reset();
      await this.loadKeys();
      await this.updateComplete;
      this.renderRoot.querySelector<HTMLInputElement>('#new-key')?.select();
    } catch (err) {
      this.keyError = describeError(err);
    } finally {
      this.keyBusy = false;
    }
  }

  private async revoke(id: string): Promise<void> {
    this.revokeError = '';
    try {
      await authApi.revokeApiKey({ id });
      this.confirmRevoke = '';
      await this.loadKeys();
    } catch (e) {
      this.revokeError = describeError(e);
    }
  }

  private async signOutEverywhere(): Promise<void> {
    this.outError = '';
    try {
      await api.logout(true);
      navigate('/login');
    } catch (e) {
      this.outError = describeError(e);
    }
  }

  override render() {
    if (!this.mode) return html`<div class="page"><h1>Settings</h1><p class="muted" role="status">Loading…</p></div>`;
    if (this.mode === 'off') {
      return html`<div class="page">
        <h1>Settings</h1>
        <div class="card" data-testid="no-auth">
          <p><strong>This server runs without accounts.</strong></p>
          <p class="muted">
            It was started with <span class="mono">--no-auth</span> (or is embedded in a program): every caller is the local administrator, so there is no
            sign-in, password or API key to manage here. Start <span class="mono">wanllmdb serve</span> without <span class="mono">--no-auth</span> to require
            accounts.
          </p>
        </div>
      </div>`;
    }
    return html`<div class="page">
      <h1>Settings</h1>
      ${this.renderAccount()} ${this.renderPassword()} ${this.renderKeys()} ${this.renderSessions()}
    </div>`;
  }

  private renderAccount() {
    const me = this.me;
    const user = me?.user;
    return html`<section class="card" aria-labelledby="account-title" data-testid="account">
      <h2 id="account-title">Account</h2>
      ${this.meError ? html`<p class="error" role="alert">${this.meError}</p>` : nothing}
      ${!me && !this.meError ? html`<p class="muted" role="status">Loading…</p>` : nothing}
      ${me
        ? html`<dl>
              ${user
                ? html`<dt>Email</dt>
                    <dd data-testid="me-email">${user.email}</dd>
                    <dt>Username</dt>
                    <dd class="mono">${user.username}</dd>
                    ${user.fullName ? html`<dt>Name</dt><dd>${user.fullName}</dd>` : nothing}
                    <dt>Role</dt>
                    <dd>${user.isSuperuser ? 'Site administrator' : 'User'}</dd>`
                : nothing}
              <dt>Signed in with</dt>
              <dd>${me.authMethod === 'api_key' ? 'an API key' : me.authMethod || 'password'}</dd>
              <dt>Organisations</dt>
              <dd>
                ${me.memberships.length
                  ? me.memberships.map(
                      (m, i) => html`${i ? ', ' : ''}<a href="/orgs/${encodeURIComponent(m.organizationId)}">${m.organizationName}</a> <span class="muted">(${m.role})</span>`,
                    )
                  : html`<span class="muted">none</span>`}
                · <a href="/orgs" data-testid="orgs-link">Manage organisations</a>
              </dd>
            </dl>`
        : nothing}
    </section>`;
  }

  private renderPassword() {
    return html`<section class="card" aria-labelledby="password-title">
      <h2 id="password-title">Change password</h2>
      <form class="grid" @submit=${this.changePassword} data-testid="password-form">
        <label for="pw-current"
          >Current password
          <input id="pw-current" name="current" type="password" autocomplete="current-password" required data-testid="pw-current" />
        </label>
        <label for="pw-new"
          >New password
          <input id="pw-new" name="new" type="password" autocomplete="new-password" required minlength="8" data-testid="pw-new" />
          <span class="hint muted">At least 8 characters.</span>
        </label>
        <label for="pw-confirm"
          >Repeat the new password
          <input id="pw-confirm" name="confirm" type="password" autocomplete="new-password" required minlength="8" data-testid="pw-confirm" />
        </label>
        <div class="actions row">
          <button type="submit" class="primary" ?disabled=${this.pwBusy} data-testid="pw-submit">${this.pwBusy ? 'Changing…' : 'Change password'}</button>
          ${this.pwError ? html`<span class="error" role="alert" data-testid="pw-error">${this.pwError}</span>` : nothing}
          ${this.pwDone ? html`<span class="ok" role="status" data-testid="pw-done">Password changed. Your other sessions were signed out.</span>` : nothing}
        </div>
      </form>
    </section>`;
  }

  private renderKeys() {
    return html`<section class="card" aria-labelledby="keys-title" data-testid="api-keys">
      <h2 id="keys-title">API keys</h2>
      <p class="muted">
        For the SDK, scripts and CI: <span class="mono">WANLLMDB_API_KEY=wldb_…</span>. Scopes narrow what the key may do (default
        <span class="mono">*:*</span>, everything your roles allow).
      </p>
      <form class="grid" @submit=${this.createKey} data-testid="key-form">
        <label for="key-name"
          >Name
          <input id="key-name" name="name" required maxlength="128" autocomplete="off" placeholder="laptop, ci…" data-testid="key-name" />
        </label>
        <label for="key-scopes"
          >Scopes
          <input id="key-scopes" name="scopes" autocomplete="off" placeholder="runs:write, *:read" class="mono" data-testid="key-scopes" />
          <span class="hint muted">Comma-separated, optional.</span>
        </label>
        <label for="key-expires"
          >Expires
          <input id="key-expires" name="expires" type="date" min=${new Date().toISOString().slice(0, 10)} data-testid="key-expires" />
          <span class="hint muted">Optional, end of that day.</span>
        </label>
        <div class="actions row">
          <button type="submit" class="primary" ?disabled=${this.keyBusy} data-testid="key-create">${this.keyBusy ? 'Creating…' : 'Create API key'}</button>
          ${this.keyError ? html`<span class="error" role="alert" data-testid="key-error">${this.keyError}</span>` : nothing}
        </div>
      </form>
      ${this.newKey
        ? secretBox({
            value: this.newKey.key,
            warning: `Copy the key “${this.newKey.name}” now: it is shown only this once. The server keeps only a hash of it.`,
            inputId: 'new-key',
            inputLabel: 'The new API key',
            testId: 'new-key-box',
            inputTestId: 'new-key',
            copyTestId: 'copy-key',
            doneTestId: 'dismiss-key',
            copied: this.copied,
            onCopied: (ok) => (this.copied = ok),
            onDone: () => (this.newKey = undefined),
            root: this.renderRoot,
          })
        : nothing}
      ${this.revokeError ? html`<p class="error" role="alert" data-testid="revoke-error">${this.revokeError}</p>` : nothing}
      ${this.renderKeyList()}
    </section>`;
  }

  private renderKeyList() {
    if (this.keysLoading && !this.keys.length) return html`<p class="muted" role="status">Loading keys…</p>`;
    if (this.keysError) return html`<p class="error" role="alert">${this.keysError} <button @click=${() => this.loadKeys()}>Retry</button></p>`;
    if (!this.keys.length) return html`<p class="muted" data-testid="keys-empty">No API keys yet.</p>`;
    const now = Date.now();
    return html`<div class="table-wrap">
      <table data-testid="keys-table">
        ${tableHead(['Name', 'Key', 'Scopes', 'Created', 'Last used', 'Expires'], { actions: true })}
        <tbody>
          ${this.keys.map((k) => {
            const expired = !!k.expiresAt && Date.parse(k.expiresAt) <= now;
            return html`<tr data-testid="key-row" data-key-name=${k.name}>
              <td>${k.name}</td>
              <td class="mono">${k.prefix}…</td>
              <td>${(k.scopes.length ? k.scopes : ['*:*']).map((s) => html`<span class="chip">${s}</span>`)}</td>
              <td class="muted">${shortTime(k.createdAt)}</td>
              <td class="muted">${k.lastUsedAt ? shortTime(k.lastUsedAt) : 'never'}</td>
              <td class="muted">${k.expiresAt ? shortTime(k.expiresAt) : 'never'}${expired ? ' (expired)' : ''}</td>
              <td>
                ${k.revokedAt
                  ? html`<span class="muted">revoked ${shortTime(k.revokedAt)}</span>`
                  : confirmButton({
                      armed: this.confirmRevoke === k.id,
                      arm: () => (this.confirmRevoke = k.id),
                      confirm: () => this.revoke(k.id),
                      disarm: () => (this.confirmRevoke = ''),
                      label: 'Revoke',
                      confirmLabel: `Revoke “${k.name}”`,
                      ariaLabel: `Revoke the key ${k.name}`,
                      testId: 'revoke-key',
                      confirmTestId: 'confirm-revoke',
                    })}
              </td>
            </tr>`;
          })}
        </tbody>
      </table>
    </div>`;
  }

  private renderSessions() {
    return html`<section class="card" aria-labelledby="sessions-title">
      <h2 id="sessions-title">Sessions</h2>
      <p class="muted">Signing out everywhere ends every session of this account, on every device (API keys keep working).</p>
      <div class="row">
        <button class="danger" @click=${this.signOutEverywhere} data-testid="sign-out-everywhere">Sign out everywhere</button>
        ${this.outError ? html`<span class="error" role="alert">${this.outError}</span>` : nothing}
      </div>
    </section>`;
  }
}

customElements.define('wl-settings-page', WlSettingsPage);
