import { api } from './api/client.js';
import type { Route } from './router.js';

/**
 * What plugins add to the shell: panels (a custom element the workspace grid
 * can hold) and pages. Built-in panels register here exactly as a
 * third-party plugin's module does through `window.wanllmdb`.
 */
export interface PanelType {
  /** Unique, e.g. `tracking.line-chart`. */
  type: string;
  label: string;
  /** The custom element's tag; it gets `projectId`, `runIds` and `config` properties. */
  element: string;
  /** Who contributed it (`tracking`, or a third-party plugin id). */
  plugin: string;
  /** The panel config a new panel starts with. */
  defaults?: Record<string, unknown>;
}

/** A page a plugin adds at its own path (outside the built-in routes), optionally linked in the header. */
export interface PageType {
  /** `/hello` or `/hello/:id` (`:name` segments become the element's `params`). */
  path: string;
  /** The custom element's tag; it gets `params` and `query` properties like built-in pages. */
  element: string;
  /** Shown in the header navigation when given. */
  label?: string;
  plugin: string;
}

/** The pages a plugin can add a tab to: the project page (`/projects/:id/<name>`) and the run page (`/runs/:id/<name>`). */
export type TabHost = 'project' | 'run';

/**
 * A tab a plugin adds to a host page, after the page's own tabs. The tab is
 * at `/projects/:id/<name>` or `/runs/:id/<name>` (its state in the query, so
 * links and reloads keep it); the host creates the element once and sets,
 * on every render, on the project page `projectId`, `project` and `query`,
 * on the run page `runId`, `projectId`, `run` and `query`.
 */
export interface TabType {
  host: TabHost;
  /** The address segment and the tab's label (`artifacts` → "Artifacts"); kebab-case. A built-in tab of that name wins. */
  name: string;
  /** The custom element's tag. */
  element: string;
  plugin: string;
  /** Defines the element (a lazily loaded chunk); the host shows "Loading…" until it is defined. */
  load?: () => Promise<unknown>;
}

/**
 * A built-in plugin's UI, bundled with the shell (`ui-plugins.ts`): its pages
 * at fixed paths, and what it registers when the shell starts (panels, pages
 * — the same `registerPanel`/`registerPage` a third-party module calls
 * through `window.wanllmdb`). It lives in `plugins/<id>/ui/` and imports
 * only `@wanllmdb/web/kit` from the shell.
 */
export interface UiPlugin {
  /** The plugin's id (`tracking`). */
  id: string;
  /** Its pages, each a lazily loaded custom element: `{ pattern: '/runs/:id/:tab?', tag, load }`. */
  routes?: Route[];
  /** Tabs it adds to the project page and the run page (registered with `registerTab` when the shell starts). */
  tabs?: Omit<TabType, 'plugin'>[];
  /** Runs once when the shell starts. */
  register?(): void;
}

const panels = new Map<string, PanelType>();
const pages = new Map<string, PageType>();
const tabs = new Map<string, TabType>();
const listeners = new Set<() => void>();

export function registerPanel(p: PanelType): void {
  panels.set(p.type, p);
  for (const fn of listeners) fn();
}

export function registerPage(p: PageType): void {
  if (!p.path.startsWith('/') || p.path.startsWith('/api/') || p.path.startsWith('/ui/')) throw new Error(`A plugin page path must start with / and not be under /api or /ui: ${p.path}`);
  pages.set(p.path, p);
  for (const fn of listeners) fn();
}

export function registerTab(t: TabType): void {
  if (t.host !== 'project' && t.host !== 'run') throw new Error(`A tab goes on the "project" or the "run" page, not "${String(t.host)}"`);
  if (!/^[a-z][a-z0-9-]*$/.test(t.name)) throw new Error(`A tab name is a kebab-case word (it is the address segment): ${t.name}`);
  tabs.set(`${t.host}:${t.name}`, t);
  for (const fn of listeners) fn();
}

/** The tabs plugins added to a host page, in the order they were registered, without those a built-in tab of the page shadows. */
export function tabTypes(host: TabHost, builtIn: readonly string[] = []): TabType[] {
  return [...tabs.values()].filter((t) => t.host === host && !builtIn.includes(t.name));
}

const tabElements = new WeakMap<object, Map<string, HTMLElement>>();

/**
 * The element of a contributed tab for a host page: made once per host and
 * tag (it keeps its state while the host re-renders), with `props` set on it
 * each time. Put it in the host's template: `${tabElement(this, tab, {...})}`.
 */
export function tabElement(host: object, tab: TabType, props: Record<string, unknown>): HTMLElement {
  let made = tabElements.get(host);
  if (!made) tabElements.set(host, (made = new Map()));
  let el = made.get(tab.element);
  if (!el) made.set(tab.element, (el = document.createElement(tab.element)));
  return Object.assign(el, props);
}

/** Registers what a bundled plugin UI declares (its tabs), then runs its `register()`. */
export function registerUiPlugin(p: UiPlugin): void {
  for (const t of p.tabs ?? []) registerTab({ ...t, plugin: p.id });
  p.register?.();
}

export function pageTypes(): PageType[] {
  return [...pages.values()];
}

export function panelTypes(): PanelType[] {
  return [...panels.values()];
}

export function panelType(type: string): PanelType | undefined {
  return panels.get(type);
}

/** Called when a plugin registers a panel, a page or a tab. */
export function onPanelsChange(fn: () => void): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** The API a plugin's UI module sees as `window.wanllmdb`. */
export interface PluginUiApi {
  registerPanel(p: PanelType): void;
  registerPage(p: PageType): void;
  registerTab(t: TabType): void;
  api: typeof api;
}

declare global {
  interface Window {
    wanllmdb: PluginUiApi;
  }
}

export interface UiManifest {
  plugins: { plugin: string; modules: string[] }[];
}

/** Loads every plugin UI module the server lists; a failing one is reported, the rest still load. */
export async function loadPluginModules(): Promise<string[]> {
  window.wanllmdb = { registerPanel, registerPage, registerTab, api };
  const failures: string[] = [];
  // A kernel route, not a method of the contract.
  const manifest = await api.get<UiManifest>('/api/v1/ui/manifest').catch(() => ({ plugins: [] }) as UiManifest);
  await Promise.all(
    manifest.plugins.flatMap((p) =>
      p.modules.map((url) =>
        import(/* @vite-ignore */ url).catch((e: unknown) => {
          failures.push(`${p.plugin}: ${url}: ${e instanceof Error ? e.message : String(e)}`);
        }),
      ),
    ),
  );
  return failures;
}
