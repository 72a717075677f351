import { fileURLToPath } from 'node:url';
import { definePlugin } from '@wanllmdb/core';

/** The browser module that defines <hello-runs-panel> and registers it as a workspace panel. */
export const HELLO_PANEL_MODULE = fileURLToPath(new URL('../ui/hello-panel.js', import.meta.url));
/** The browser module that adds the page /hello (linked in the header). */
export const HELLO_PAGE_MODULE = fileURLToPath(new URL('../ui/hello-page.js', import.meta.url));

/**
 * A third-party plugin: it adds a panel type, `hello.runs`, to the web UI's
 * workspaces and a page at /hello, without any change to the shell. Load it with
 * `wanllmdb serve --plugins ./path/to/plugin-template/dist/index.js`.
 * A plugin can also add migrations, services (from its own .proto) and jobs
 * in `register(r)`; see docs/architecture.md.
 */
export const helloPlugin = definePlugin({
  id: 'hello',
  version: '0.1.0',
  register(r) {
    r.ui({ modules: [HELLO_PANEL_MODULE, HELLO_PAGE_MODULE] });
  },
});

export default helloPlugin;
