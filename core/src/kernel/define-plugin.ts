import { isAbsolute } from 'node:path';
import type { ServiceRef } from '@wanllmdb/proto';
import { Errors } from '../errors.js';
import type { Auth } from '../rpc/auth.js';
import type { Migration } from '../storage/metadata/metadata-store.js';
import type { Logger } from './logger.js';
import { isRef, type Ref } from './refs.js';
import type { SettingsOf, SettingsSpec } from './settings.js';

/** What a plugin lists in `deps`: a name for each ref it needs. */
export type DepsSpec = Readonly<Record<string, Ref<unknown>>>;
/** The values of the refs, as `init` receives them. */
export type DepsOf<D extends DepsSpec> = { readonly [K in keyof D]: D[K] extends Ref<infer T> ? T : never };

/** Work a plugin runs in a lifecycle phase. */
export type PhaseWork = () => Promise<void> | void;

/**
 * What a plugin's `init` receives: its dependencies and settings, already
 * there, and the calls that declare what it adds. Everything is declared
 * during `init`; a call after it returned is refused.
 */
export interface PluginContext<D extends DepsSpec = DepsSpec, S extends SettingsSpec = SettingsSpec> {
  readonly pluginId: string;
  /** The values of the plugin's `deps`. */
  readonly deps: DepsOf<D>;
  /** The plugin's settings, read and checked by the kernel. */
  readonly settings: SettingsOf<S>;
  readonly logger: Logger;
  /** Schema migrations; the kernel applies them right after `init`, before any plugin that depends on this one starts its own. */
  migrations(list: readonly Migration[]): void;
  /** Mounts a service of the contract (served over gRPC, HTTP/JSON and in process). */
  service<H>(ref: ServiceRef<H>, handlers: H): void;
  /** Provides the value of a ref this plugin owns (`createApiRef({ plugin: <this id> })`) to the plugins that depend on it. */
  provide<T>(ref: Ref<T>, value: T): void;
  /** Becomes the kernel's authentication and authorisation (the auth plugin); without one, a single local user. */
  provideAuth(auth: Auth): void;
  /**
   * Adds ES modules to the web UI (absolute paths of built .js files). The
   * server lists them at `GET /api/v1/ui/manifest` and serves them at
   * `/ui/plugins/<plugin id>/<file name>`; the shell imports each, and the
   * module registers its panels with `window.wanllmdb.registerPanel(…)`.
   */
  ui(contribution: UiContribution): void;
  /** After every plugin's migrations: data fix-ups. */
  onMigrated(work: PhaseWork): void;
  /** Start background work (sweepers, workers); in dependency order, before the server listens. */
  onStart(work: PhaseWork): void;
  /** The server stopped taking calls: finish what is in flight. Reverse order. */
  onBeforeStop(work: PhaseWork): void;
  /** Release resources. Reverse order. */
  onStop(work: PhaseWork): void;
}

export interface UiContribution {
  /** Absolute paths of ES module files; each file name must be unique within the plugin. */
  modules: readonly string[];
}

export interface PluginDefinition<D extends DepsSpec, S extends SettingsSpec> {
  /** kebab-case, unique: `tracking`, `trainer-lora`. */
  id: string;
  /** semver of the plugin. */
  version: string;
  /** What the plugin needs: core services (`coreServices.db` …) and other plugins' APIs (their refs). */
  deps?: D;
  /** The plugin's settings (`setting.int({ env, default, min, max, doc })` …). */
  settings?: S;
  /**
   * The plugin's own contract: an absolute folder holding
   * `wanllmdb/<area>/v1/*.proto`. Its services are served over gRPC,
   * HTTP/JSON and in process like core's, with the same permission and
   * resource options enforced; generate its types with proto's gen-types.
   */
  proto?: string;
  /** Builds the plugin once its deps exist; declares services, migrations, provided APIs and lifecycle work on `ctx`. */
  init(ctx: PluginContext<D, S>): void | Promise<void>;
}

export interface Plugin {
  readonly kind: 'wanllmdb.plugin';
  readonly id: string;
  readonly version: string;
  readonly deps: DepsSpec;
  readonly settings: SettingsSpec;
  /** The folder of the plugin's own .proto files, if it has any. */
  readonly proto: string | undefined;
  /** The plugins whose refs this one depends on (core aside), in the order of `deps`. */
  readonly dependsOn: readonly string[];
  readonly init: (ctx: PluginContext) => void | Promise<void>;
}

const ID = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;
const SEMVER = /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/;

/** Makes a plugin value. Misuse fails here, loudly, not at start-up. */
export function definePlugin<D extends DepsSpec = Record<never, never>, S extends SettingsSpec = Record<never, never>>(def: PluginDefinition<D, S>): Plugin {
  if (!def || typeof def !== 'object') throw Errors.PLUGIN_INVALID('definePlugin needs an object { id, version, deps, settings, init }.');
  if (typeof def.id !== 'string' || !ID.test(def.id)) {
    throw Errors.PLUGIN_INVALID(`Plugin id ${JSON.stringify(def.id)} is not kebab-case (e.g. "trainer-lora"). Rename the plugin.`);
  }
  if (typeof def.version !== 'string' || !SEMVER.test(def.version)) {
    throw Errors.PLUGIN_INVALID(`Plugin "${def.id}" has version ${JSON.stringify(def.version)}; use semver such as "1.2.0".`);
  }
  if (typeof def.init !== 'function') throw Errors.PLUGIN_INVALID(`Plugin "${def.id}" has no init(ctx) function.`);
  const deps: DepsSpec = { ...(def.deps ?? {}) };
  for (const [name, ref] of Object.entries(deps)) {
    if (!isRef(ref)) throw Errors.PLUGIN_INVALID(`Dependency "${name}" of plugin "${def.id}" is not a ref. Use coreServices.… or another plugin's exported ref.`);
    if (ref.owner === def.id) throw Errors.PLUGIN_CYCLE(`Plugin "${def.id}" depends on its own ref "${ref.id}". Use the value directly.`);
  }
  const settings: SettingsSpec = { ...(def.settings ?? {}) };
  for (const [name, s] of Object.entries(settings)) {
    if ((s as { kind?: unknown })?.kind !== 'wanllmdb.setting') throw Errors.PLUGIN_INVALID(`Setting "${name}" of plugin "${def.id}" is not made with setting.int / setting.string / setting.bool.`);
  }
  if (def.proto !== undefined && (typeof def.proto !== 'string' || !isAbsolute(def.proto))) {
    throw Errors.PLUGIN_INVALID(`Plugin "${def.id}" gives proto ${JSON.stringify(def.proto)}: give the absolute folder that holds wanllmdb/<area>/v1/*.proto (fileURLToPath(new URL('../proto', import.meta.url))).`);
  }
  const dependsOn = [...new Set(Object.values(deps).map((r) => r.owner))].filter((owner) => owner !== 'core');
  return Object.freeze({
    kind: 'wanllmdb.plugin' as const,
    id: def.id,
    version: def.version,
    deps: Object.freeze(deps),
    settings: Object.freeze(settings),
    proto: def.proto,
    dependsOn: Object.freeze(dependsOn),
    init: def.init as (ctx: PluginContext) => void | Promise<void>,
  });
}
