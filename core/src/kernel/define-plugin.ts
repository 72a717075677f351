import type { ServiceRef } from '@wanllmdb/proto';
import type { DependencyContainer, InjectionToken } from 'tsyringe';
import type { WanllmdbConfig } from '../config/config.js';
import { Errors } from '../errors.js';
import type { Migration } from '../storage/metadata/metadata-store.js';
import type { Logger } from './logger.js';

/** A lifecycle hook as a plugin sees it: it may tap, only the kernel calls. */
export interface PluginHook<Args extends unknown[]> {
  tapPromise(name: string, fn: (...args: Args) => Promise<void> | void): void;
}

export interface PluginHooks {
  /** Validate or extend the configuration before any service exists. */
  configure: PluginHook<[config: WanllmdbConfig]>;
  /** Root services exist: resolve them, build handlers. */
  register: PluginHook<[]>;
  /** After the kernel applied this plugin's declared migrations: data fix-ups. */
  migrate: PluginHook<[]>;
  /** Start background work (sweepers, workers). Runs in dependency order. */
  start: PluginHook<[]>;
  /** The server stopped taking calls: finish what is in flight. Reverse order. */
  beforeStop: PluginHook<[]>;
  /** Release resources. Reverse order. */
  stop: PluginHook<[]>;
}

/** What a plugin's `register` receives: the one way a plugin talks to the kernel. */
export interface PluginRegistrar {
  readonly pluginId: string;
  /** The plugin's own child container (root services resolve through it). */
  readonly container: DependencyContainer;
  readonly logger: Logger;
  readonly hooks: PluginHooks;
  resolve<T>(token: InjectionToken<T>): T;
  /** Declares the plugin's schema migrations; the kernel applies them in the migrate phase. */
  migrations(list: readonly Migration[]): void;
  /**
   * Mounts a service of the contract. `handlers` may be a factory, called in the
   * register phase once root services exist.
   */
  service<H>(ref: ServiceRef<H>, handlers: H | (() => H)): void;
  /** Offers a value to other plugins through the root container (e.g. this plugin's API). */
  provide<T>(token: InjectionToken<T>, value: T): void;
  /**
   * Adds ES modules to the web UI (absolute paths of built .js files). The
   * server lists them at `GET /api/v1/ui/manifest` and serves them at
   * `/ui/plugins/<plugin id>/<file name>`; the shell imports each, and the
   * module registers its panels with `window.wanllmdb.registerPanel(…)`.
   */
  ui(contribution: UiContribution): void;
}

export interface UiContribution {
  /** Absolute paths of ES module files; each file name must be unique within the plugin. */
  modules: readonly string[];
}

export interface PluginDefinition {
  /** kebab-case, unique: `tracking`, `trainer-lora`. */
  id: string;
  /** semver of the plugin. */
  version: string;
  /** Ids of plugins that must be registered and started before this one. */
  dependsOn?: readonly string[];
  register(r: PluginRegistrar): void | Promise<void>;
}

export interface Plugin extends Readonly<PluginDefinition> {
  readonly dependsOn: readonly string[];
  readonly kind: 'wanllmdb.plugin';
}

const ID = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;
const SEMVER = /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/;

/** Makes a plugin value. Misuse fails here, loudly, not at start-up. */
export function definePlugin(def: PluginDefinition): Plugin {
  if (!def || typeof def !== 'object') throw Errors.PLUGIN_INVALID('definePlugin needs an object { id, version, register }.');
  if (typeof def.id !== 'string' || !ID.test(def.id)) {
    throw Errors.PLUGIN_INVALID(`Plugin id ${JSON.stringify(def.id)} is not kebab-case (e.g. "trainer-lora"). Rename the plugin.`);
  }
  if (typeof def.version !== 'string' || !SEMVER.test(def.version)) {
    throw Errors.PLUGIN_INVALID(`Plugin "${def.id}" has version ${JSON.stringify(def.version)}; use semver such as "1.2.0".`);
  }
  if (typeof def.register !== 'function') throw Errors.PLUGIN_INVALID(`Plugin "${def.id}" has no register(r) function.`);
  const dependsOn = [...(def.dependsOn ?? [])];
  if (dependsOn.includes(def.id)) throw Errors.PLUGIN_CYCLE(`Plugin "${def.id}" depends on itself. Remove it from dependsOn.`);
  return Object.freeze({ ...def, dependsOn: Object.freeze(dependsOn), kind: 'wanllmdb.plugin' as const });
}
