import { fileURLToPath } from 'node:url';
import { coreServices, definePlugin, Errors, setting, type CallContext, type MetadataStore, type ResourceDirectory } from '@wanllmdb/core';
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

function helloHandlers(db: MetadataStore, resources: ResourceDirectory, now: () => number, greeting: string): hello.v1.HelloServiceHandlers<CallContext> {
  /**
   * The project's canonical id: as the host placed it for authorisation (the
   * method's `(wanllmdb.auth.v1.resource)`), or — without the auth plugin,
   * which passes the ref on unplaced (no `projectId`; its id may be a slug) —
   * looked up the same way. NOT_FOUND when there is none.
   */
  const projectOf = async (ctx: CallContext, ref: string) => {
    const project = ctx.resources.find((r) => r.type === 'project' && r.projectId) ?? (await resources.resolve({ type: 'project', id: ref }, ctx.principal));
    if (!project) throw Errors.NOT_FOUND(`Project ${ref} does not exist. List projects with GET /api/v1/projects.`, [{ field: 'projectId', message: 'no such project' }]);
    return project.id;
  };
  const count = async (projectId: string) => Number((await db.query<{ count: number }>('SELECT count FROM hello_greetings WHERE project_id = ?', [projectId]))[0]?.count ?? 0);
  return {
    async greet(req, ctx) {
      const projectId = await projectOf(ctx, req.projectId);
      await db.run(
        'INSERT INTO hello_greetings (project_id, count, last_at) VALUES (?, 1, ?) ON CONFLICT (project_id) DO UPDATE SET count = hello_greetings.count + 1, last_at = excluded.last_at',
        [projectId, now()],
      );
      return { message: `${greeting}, ${req.name || 'world'}!`, count: await count(projectId) };
    },
    async getGreetings(req, ctx) {
      return { message: '', count: await count(await projectOf(ctx, req.projectId)) };
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
  deps: { db: coreServices.db, clock: coreServices.clock, resources: coreServices.resources },
  settings: {
    greeting: setting.string({ env: 'WANLLMDB_HELLO_GREETING', default: 'Hello', doc: 'the word the hello plugin greets with' }),
  },
  init(ctx) {
    const { db, clock, resources } = ctx.deps;
    ctx.migrations(migrations);
    ctx.service(hello.v1.HelloService, helloHandlers(db, resources, () => clock.now(), ctx.settings.greeting));
    ctx.ui({ modules: [HELLO_PANEL_MODULE, HELLO_PAGE_MODULE] });
  },
});

export default helloPlugin;
