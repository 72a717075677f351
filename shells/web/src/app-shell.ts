import { LitElement, css, html, nothing } from 'lit';
import type { auth } from '@wanllmdb/proto/client';
import { api, type AuthMode } from './api/client.js';
import { authApi } from './api/services.js';
import { loadPluginModules, onPanelsChange, pageTypes, registerUiPlugin } from './plugins.js';
import { interceptLinks, navigate, Router, type Match } from './router.js';
import { routes } from './routes.js';
import { shared } from './styles.js';
import { uiPlugins } from './ui-plugins.js';

type Theme = 'light' | 'dark';
const THEME_KEY = 'wanllmdb.theme';

/** The user's theme: the saved choice, else the system's. */
function initialTheme(): Theme {
  const saved = localStorage.getItem(THEME_KEY);
  if (saved === 'light' || saved === 'dark') return saved;
  return matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

/**
 * <wl-app>: header, navigation, theme, session, and the current page.
 * A page element gets `params` (path parameters) and `query` properties.
 */
export class WlApp extends LitElement {
  static override properties = {
    match: { state: true },
    mode: { state: true },
    me: { state: true },
    theme: { state: true },
    failure: { state: true },
  };
  static override styles = [
    shared,
    css`
      :host {
        display: flex;
        flex-direction: column;
        min-height: 100vh;
      }
      header {
        display: flex;
        align-items: center;
        gap: 16px;
        padding: 8px 20px;
        border-bottom: 1px solid var(--wl-border);
        background: var(--wl-surface);
      }
      .brand {
        font-weight: 700;
        color: var(--wl-text);
      }
      nav {
        display: flex;
        gap: 12px;
        flex: 1;
      }
      main {
        flex: 1;
        min-height: 0;
      }
    `,
  ];

  declare match: Match | undefined;
  declare mode: AuthMode | undefined;
  declare me: auth.v1.Me | undefined;
  declare theme: Theme;
  declare failure: string;
  private router = new Router(routes);
  /** The current page element, kept while only the query changes. */
  private page: HTMLElement | undefined;
  /** Undoes what `connectedCallback` hooked up (global listeners, subscriptions). */
  private disconnect: (() => void)[] = [];

  constructor() {
    super();
    this.theme = initialTheme();
    this.failure = '';
  }

  override connectedCallback(): void {
    super.connectedCallback();
    document.documentElement.dataset.theme = this.theme;
    for (const p of uiPlugins) registerUiPlugin(p);
    window.addEventListener('popstate', this.route);
    window.addEventListener('wl-navigate', this.route);
    this.disconnect = [
      interceptLinks(),
      // Plugins' pages join the routes (after the built-in ones, which they cannot shadow).
      onPanelsChange(() => {
        this.router = new Router([...routes, ...pageTypes().map((p) => ({ pattern: p.path, tag: p.element, load: () => customElements.whenDefined(p.element) }))]);
        this.requestUpdate();
      }),
      api.onSessionChange(() => void this.loadMe().then(this.route)),
      () => window.removeEventListener('popstate', this.route),
      () => window.removeEventListener('wl-navigate', this.route),
    ];
    void (async () => {
      this.mode = await api.authMode().catch(() => 'required' as const);
      await this.loadMe();
      const failures = await loadPluginModules();
      if (failures.length) console.warn('plugin UI modules that failed to load:', failures);
      this.route();
    })();
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    for (const undo of this.disconnect.splice(0)) undo();
  }

  private async loadMe(): Promise<void> {
    if (this.mode === 'off' || !api.signedIn) {
      this.me = undefined;
      return;
    }
    this.me = (await authApi.getMe({}).catch(() => undefined))?.data;
  }

  private readonly route = (): void => {
    if (!this.mode) return;
    if (location.pathname === '/' || location.pathname === '') return navigate('/projects', { replace: true });
    const m = this.router.match(location);
    if (m && !m.route.public && this.mode === 'required' && !api.signedIn) {
      return navigate(`/login?next=${encodeURIComponent(location.pathname + location.search)}`, { replace: true });
    }
    const same = m && this.match && m.route === this.match.route && JSON.stringify(m.params) === JSON.stringify(this.match.params);
    this.match = m;
    if (m && same && this.page) Object.assign(this.page, { query: m.query }); // same page, new query: keep its state
    else if (m) this.page = Object.assign(document.createElement(m.route.tag), { params: m.params, query: m.query });
    else this.page = undefined;
    if (m) void m.route.load().catch((e: unknown) => (this.failure = `This page failed to load: ${e instanceof Error ? e.message : String(e)}`));
  };

  private toggleTheme(): void {
    this.theme = this.theme === 'dark' ? 'light' : 'dark';
    localStorage.setItem(THEME_KEY, this.theme);
    document.documentElement.dataset.theme = this.theme;
  }

  private async signOut(): Promise<void> {
    await api.logout();
    navigate('/login');
  }

  override render() {
    const m = this.match;
    const page = this.page;
    return html`
      <header>
        <a class="brand" href="/projects">wanLLMDB</a>
        <nav>
          ${this.me || this.mode === 'off'
            ? html`<a href="/projects">Projects</a>${pageTypes()
                  .filter((p) => p.label && !p.path.includes(':'))
                  .map((p) => html`<a href=${p.path} data-plugin=${p.plugin}>${p.label}</a>`)}<a href="/settings">Settings</a>`
            : nothing}
        </nav>
        <button id="theme" title="Switch theme" @click=${this.toggleTheme}>${this.theme === 'dark' ? 'Light' : 'Dark'} theme</button>
        ${this.me
          ? html`<span class="muted" id="who">${this.me.user?.email ?? ''}</span><button id="sign-out" @click=${this.signOut}>Sign out</button>`
          : this.mode === 'off'
            ? html`<span class="muted">local</span>`
            : nothing}
      </header>
      <main>
        ${this.failure ? html`<p class="error page">${this.failure}</p>` : nothing}
        ${m ? page : this.mode ? html`<div class="page"><h1>Not found</h1><p>No page at ${location.pathname}. <a href="/projects">Projects</a></p></div>` : nothing}
      </main>
    `;
  }
}

customElements.define('wl-app', WlApp);
