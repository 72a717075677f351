import { fileURLToPath } from 'node:url';
import { coreServices, definePlugin, setting, type CallContext, type MetadataStore } from '@wanllmdb/core';
import { hello } from './gen/index.js';

/** The browser module that defines <hello-runs-panel> and registers it as a workspace panel. */
export const HELLO_PANEL_MODULE = fileURLToPath(new URL('../ui/hello-panel.js', import.meta.url));
/** The browser module that adds the page /hello (linked in the header). */
export const HELLO_PAGE_MODULE = fileURLToPath(new URL('../ui/hello-page.js', import.meta.url));
/** The plugin's own contract: proto/wanllmdb/hello/v1/hello.proto. */
export const HELLO_PROTO_DIR = fileURLToPath(new URL('../proto', import.meta.url));

const migrations = [
  {
    version: 1,
    name: 'greeting counts',
    up: 'CREATE TABLE hello_greetings (project_id TEXT PRIMARY KEY, count BIGINT NOT NULL, last_at BIGINT NOT NULL)',
  },
];

/** The project the host authorised (the method's `(wanllmdb.auth.v1.resource)`), by its canonical id. */
const projectOf = (ctx: CallContext) => ctx.resources.find((r) => r.type === 'project')!.id;

function helloHandlers(db: MetadataStore, now: () => number, greeting: string): hello.v1.HelloServiceHandlers<CallContext> {
  const count = async (projectId: string) => Number((await db.query<{ count: number }>('SELECT count FROM hello_greetings WHERE project_id = ?', [projectId]))[0]?.count ?? 0);
  return {
    async greet(req, ctx) {
      const projectId = projectOf(ctx);
      await db.run(
        'INSERT INTO hello_greetings (project_id, count, last_at) VALUES (?, 1, ?) ON CONFLICT (project_id) DO UPDATE SET count = hello_greetings.count + 1, last_at = excluded.last_at',
        [projectId, now()],
      );
      return { message: `${greeting}, ${req.name || 'world'}!`, count: await count(projectId) };
    },
    async getGreetings(_req, ctx) {
      return { message: '', count: await count(projectOf(ctx)) };
    },
  };
}

/**
 * A third-party plugin, built like the built-in ones (see docs/plugins.md):
 * its own contract (`proto/`, served over gRPC, HTTP/JSON and in process
 * with the permissions it declares), a migration, a setting, a service —
 * and, in the web UI, a panel type `hello.runs` and a page at /hello.
 * Load it with `wanllmdb serve --plugins ./path/to/plugin-template/dist/index.js`.
 */
export const helloPlugin = definePlugin({
  id: 'hello',
  version: '0.1.0',
  proto: HELLO_PROTO_DIR,
  deps: { db: coreServices.db, clock: coreServices.clock },
  settings: {
    greeting: setting.string({ env: 'WANLLMDB_HELLO_GREETING', default: 'Hello', doc: 'the word the hello plugin greets with' }),
  },
  init(ctx) {
    const { db, clock } = ctx.deps;
    ctx.migrations(migrations);
    ctx.service(hello.v1.HelloService, helloHandlers(db, () => clock.now(), ctx.settings.greeting));
    ctx.ui({ modules: [HELLO_PANEL_MODULE, HELLO_PAGE_MODULE] });
  },
});

export default helloPlugin;
