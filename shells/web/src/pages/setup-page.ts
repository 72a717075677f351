import { LitElement, css, html, nothing } from 'lit';
import { api } from '../api/client.js';
import { anonymousAuthApi } from '../api/services.js';
import { navigate } from '../router.js';
import { authForm, shared } from '../styles.js';
import { describeError } from '../util/errors.js';
import { newAccount, newPasswordFields, PASSWORDS_DIFFER, submittedForm } from '../util/forms.js';

/** The one-time token of the setup link (`/setup#token=…`). */
function tokenFromHash(hash: string): string {
  return new URLSearchParams(hash.replace(/^#/, '')).get('token') ?? '';
}

/**
 * <wl-setup-page>: the first start of a server without accounts. The link the
 * server logged carries a one-time token in its fragment (never sent to the
 * server in a request line); registering with it makes the site administrator.
 */
export class WlSetupPage extends LitElement {
  static override properties = {
    params: { attribute: false },
    query: { attribute: false },
    token: { state: true },
    busy: { state: true },
    error: { state: true },
  };

  static override styles = [
    shared,
    authForm,
    css`
      form {
        width: 100%;
        max-width: 420px;
      }
      h1,
      p {
        margin: 0;
      }
    `,
  ];

  declare params: Record<string, string>;
  declare query: URLSearchParams;
  declare token: string;
  declare busy: boolean;
  declare error: string;

  constructor() {
    super();
    this.params = {};
    this.query = new URLSearchParams();
    this.token = tokenFromHash(location.hash);
    this.busy = false;
    this.error = '';
  }

  override firstUpdated(): void {
    this.renderRoot.querySelector<HTMLInputElement>(this.token ? '#setup-email' : '#setup-token')?.focus();
  }

  private async submit(e: SubmitEvent): Promise<void> {
    const f = submittedForm(e);
    if (!f) return;
    const setupToken = f.get('token');
    const account = newAccount(f);
    if (!account) {
      this.error = PASSWORDS_DIFFER;
      return;
    }
    const { email, password } = account;
    this.busy = true;
    this.error = '';
    try {
      await anonymousAuthApi.register({ email, password, setupToken });
      // The token is spent: keep it out of the address bar and history.
      history.replaceState(null, '', '/setup');
      await api.login(email, password);
      navigate('/projects');
    } catch (err) {
      this.error = describeError(err);
    } finally {
      this.busy = false;
    }
  }

  override render() {
    return html`
      <form class="card" @submit=${this.submit} aria-labelledby="setup-title" data-testid="setup-form">
        <h1 id="setup-title">Set up wanLLMDB</h1>
        <p class="muted">Create the site administrator. The one-time setup token comes from the link the server logged at its first start.</p>
        <label for="setup-token"
          >Setup token
          <input
            id="setup-token"
            name="token"
            class="mono"
            required
            autocomplete="off"
            spellcheck="false"
            .value=${this.token}
            data-testid="setup-token"
          />
        </label>
        ${this.token ? nothing : html`<p class="muted" data-testid="setup-no-token">The address has no <span class="mono">#token=…</span>; paste the token from the server's log.</p>`}
        <label for="setup-email"
          >Email
          <input id="setup-email" name="email" type="email" autocomplete="username" required data-testid="setup-email" />
        </label>
        ${newPasswordFields('setup', 'setup')}
        ${this.error ? html`<p class="error" role="alert" data-testid="setup-error">${this.error}</p>` : nothing}
        <button type="submit" class="primary" ?disabled=${this.busy} data-testid="setup-submit">${this.busy ? 'Creating…' : 'Create administrator'}</button>
        <p class="muted">Already set up? <a href="/login">Sign in</a></p>
      </form>
    `;
  }
}

customElements.define('wl-setup-page', WlSetupPage);
