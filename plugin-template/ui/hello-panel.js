// A workspace panel from a third-party plugin: plain JavaScript, no build step.
// The shell gives it `projectId`, `runIds` and `config`; it may call the API
// through `window.wanllmdb.api` with the signed-in user's session.
class HelloRunsPanel extends HTMLElement {
  #runIds = [];
  /** Renders are async; only the latest one may write (an older one finishing last would show stale runs). */
  #renders = 0;
  set runIds(ids) {
    this.#runIds = Array.isArray(ids) ? ids : [];
    void this.#render();
  }
  get runIds() {
    return this.#runIds;
  }
  connectedCallback() {
    void this.#render();
  }
  async #render() {
    if (!this.isConnected) return;
    const turn = ++this.#renders;
    const root = this.shadowRoot ?? this.attachShadow({ mode: 'open' });
    const ids = this.#runIds;
    const runs = await Promise.all(ids.slice(0, 20).map((id) => window.wanllmdb.api.get(`/api/v1/runs/${id}`).then((r) => r.data, () => undefined)));
    if (turn !== this.#renders) return;
    const items = runs.filter(Boolean).map((r) => `<li>${escapeHtml(r.name)} <small>(${escapeHtml(r.state)})</small></li>`).join('');
    root.innerHTML = `<style>:host{display:block;padding:8px;color:var(--wl-text)} p{margin:0 0 6px}</style>
      <p data-testid="hello-panel">Hello from a plugin: ${ids.length} run${ids.length === 1 ? '' : 's'}</p><ul>${items}</ul>`;
  }
}

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

customElements.define('hello-runs-panel', HelloRunsPanel);
window.wanllmdb.registerPanel({ type: 'hello.runs', label: 'Hello (plugin)', element: 'hello-runs-panel', plugin: 'hello' });
