// A page from a third-party plugin at /hello, linked in the header as "Hello".
// Like built-in pages it gets `params` and `query`; it reads the API with the user's session.
class HelloPage extends HTMLElement {
  connectedCallback() {
    const root = this.shadowRoot ?? this.attachShadow({ mode: 'open' });
    root.innerHTML = '<style>:host{display:block;padding:16px 20px;color:var(--wl-text)}</style><h1>Hello</h1><p data-testid="hello-page">Loading…</p>';
    window.wanllmdb.api.get('/api/v1/projects', { pageSize: 1 }).then(
      (r) => (root.querySelector('p').textContent = `Hello from a plugin page: you can see ${r.meta.total} project${r.meta.total === 1 ? '' : 's'}.`),
      (e) => (root.querySelector('p').textContent = `The projects could not be read: ${e.message}`),
    );
  }
}

customElements.define('hello-page', HelloPage);
window.wanllmdb.registerPage({ path: '/hello', element: 'hello-page', label: 'Hello', plugin: 'hello' });
