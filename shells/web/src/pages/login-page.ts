import { LitElement, css, html, nothing } from 'lit';
import { api } from '../api/client.js';
import { anonymousAuthApi, authApi } from '../api/services.js';
import { navigate } from '../router.js';
import { authForm, shared } from '../styles.js';
import { describeError } from '../util/errors.js';
import { newAccount, newPasswordFields, PASSWORDS_DIFFER, submittedForm } from '../util/forms.js';

/** Where to go after signing in: a path of this app from `?next=`, never another origin. */
function safeNext(query: URLSearchParams | undefined): string {
  const next = query?.get('next') ?? '';
  if (!next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\') || next.startsWith('/login') || next.startsWith('/setup')) return '/projects';
  return next;
}

/**
 * <wl-login-page>: sign in with email and password, or create an account
 * when the server allows self-registration.
 */
export class WlLoginPage extends LitElement {
  static override properties = {
    params: { attribute: false },
    query: { attribute: false },
    busy: { state: true },
    error: { state: true },
    showRegister: { state: true },
    regBusy: { state: true },
    regError: { state: true },
    noAuth: { state: true },
  };

  static override styles = [
    shared,
    authForm,
    css`
      .box {
        width: 100%;
        max-width: 380px;
        display: flex;
        flex-direction: column;
        gap: 16px;
      }
      button[type='submit'] {
        margin-top: 4px;
      }
      .switch {
        text-align: center;
      }
      .link {
        background: none;
        border: none;
        padding: 0;
        color: var(--wl-accent);
        cursor: pointer;
      }
      .link:hover {
        text-decoration: underline;
      }
      h1 {
        margin: 0;
      }
      .error {
        margin: 0;
      }
    `,
  ];

  declare params: Record<string, string>;
  declare query: URLSearchParams;
  declare busy: boolean;
  declare error: string;
  declare showRegister: boolean;
  declare regBusy: boolean;
  declare regError: string;
  declare noAuth: boolean;

  constructor() {
    super();
    this.params = {};
    this.query = new URLSearchParams();
    this.busy = false;
    this.error = '';
    this.showRegister = false;
    this.regBusy = false;
    this.regError = '';
    this.noAuth = false;
  }

  override connectedCallback(): void {
    super.connectedCallback();
    if (this.query.get('register') !== null) this.showRegister = true;
    // Nothing to do here on a server without accounts, or with a live session.
    void api
      .authMode()
      .then((mode) => {
        if (mode === 'off') {
          this.noAuth = true;
          navigate(safeNext(this.query), { replace: true });
        } else if (api.signedIn) {
          return authApi.getMe({}).then(() => navigate(safeNext(this.query), { replace: true }));
        }
        return undefined;
      })
      .catch(() => undefined);
  }

  override firstUpdated(): void {
    this.renderRoot.querySelector<HTMLInputElement>(this.showRegister ? '#reg-email' : '#login-email')?.focus();
  }

  private async signIn(e: SubmitEvent): Promise<void> {
    const f = submittedForm(e);
    if (!f) return;
    this.busy = true;
    this.error = '';
    try {
      await api.login(f.get('email'), String(f.data.get('password')));
      navigate(safeNext(this.query));
    } catch (err) {
      this.error = describeError(err);
      this.renderRoot.querySelector<HTMLInputElement>('#login-password')?.select();
    } finally {
      this.busy = false;
    }
  }

  private async register(e: SubmitEvent): Promise<void> {
    const f = submittedForm(e);
    if (!f) return;
    const account = newAccount(f);
    if (!account) {
      this.regError = PASSWORDS_DIFFER;
      return;
    }
    const { email, password } = account;
    const username = f.get('username');
    this.regBusy = true;
    this.regError = '';
    try {
      await anonymousAuthApi.register({ email, password, ...(username ? { username } : {}) });
      await api.login(email, password);
      navigate(safeNext(this.query));
    } catch (err) {
      this.regError = describeError(err);
    } finally {
      this.regBusy = false;
    }
  }

  private toggleRegister(): void {
    this.showRegister = !this.showRegister;
    this.regError = '';
    void this.updateComplete.then(() => this.renderRoot.querySelector<HTMLInputElement>(this.showRegister ? '#reg-email' : '#login-email')?.focus());
  }

  override render() {
    if (this.noAuth) return html`<p class="muted">This server runs without accounts; no sign-in is needed.</p>`;
    return html`
      <div class="box">
        ${this.showRegister ? this.renderRegister() : this.renderSignIn()}
        <p class="switch muted">
          ${this.showRegister
            ? html`Already have an account? <button class="link" data-testid="show-login" @click=${this.toggleRegister}>Sign in</button>`
            : html`No account yet? <button class="link" data-testid="show-register" @click=${this.toggleRegister}>Create account</button>`}
        </p>
      </div>
    `;
  }

  private renderSignIn() {
    return html`
      <form class="card" @submit=${this.signIn} aria-labelledby="login-title" data-testid="login-form">
        <h1 id="login-title">Sign in to wanLLMDB</h1>
        <label for="login-email"
          >Email
          <input id="login-email" name="email" type="email" autocomplete="username" required autofocus data-testid="login-email" />
        </label>
        <label for="login-password"
          >Password
          <input id="login-password" name="password" type="password" autocomplete="current-password" required data-testid="login-password" />
        </label>
        ${this.error ? html`<p class="error" role="alert" data-testid="login-error">${this.error}</p>` : nothing}
        <button type="submit" class="primary" ?disabled=${this.busy} data-testid="login-submit">${this.busy ? 'Signing in…' : 'Sign in'}</button>
      </form>
    `;
  }

  private renderRegister() {
    return html`
      <form class="card" @submit=${this.register} aria-labelledby="reg-title" data-testid="register-form">
        <h1 id="reg-title">Create an account</h1>
        <label for="reg-email"
          >Email
          <input id="reg-email" name="email" type="email" autocomplete="email" required data-testid="register-email" />
        </label>
        <label for="reg-username"
          ><span>Username <span class="hint muted">(optional)</span></span>
          <input
            id="reg-username"
            name="username"
            autocomplete="username"
            pattern="[a-z0-9]([a-z0-9._\\-]{0,62}[a-z0-9])?"
            title="1–64 lower-case letters, digits, '.', '_' or '-', starting and ending with a letter or digit"
            data-testid="register-username"
          />
        </label>
        ${newPasswordFields('reg', 'register')}
        ${this.regError ? html`<p class="error" role="alert" data-testid="register-error">${this.regError}</p>` : nothing}
        <button type="submit" class="primary" ?disabled=${this.regBusy} data-testid="register-submit">${this.regBusy ? 'Creating…' : 'Create account'}</button>
      </form>
    `;
  }
}

customElements.define('wl-login-page', WlLoginPage);
