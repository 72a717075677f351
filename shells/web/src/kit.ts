/**
 * What the shell offers a plugin's UI (`@wanllmdb/web/kit`): the API client
 * and the generated service clients, shared styles, the router, the panel
 * and page registry, and small helpers. A built-in plugin's UI
 * (`plugins/<id>/ui/`) imports only this from the shell.
 */
export * from './api/client.js';
export * from './api/services.js';
export * from './styles.js';
export * from './util/errors.js';
export * from './util/format.js';
export * from './util/forms.js';
export * from './components/tab-bar.js';
export * from './components/pager.js';
export * from './components/table-head.js';
export * from './plugins.js';
export { navigate, type Route } from './router.js';
