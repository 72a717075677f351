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
  /** Runs once when the shell starts. */
  register?(): void;
}

const panels = new Map<string, PanelType>();
const pages = new Map<string, PageType>();
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

export function pageTypes(): PageType[] {
  return [...pages.values()];
}

export function panelTypes(): PanelType[] {
  return [...panels.values()];
}

export function panelType(type: string): PanelType | undefined {
  return panels.get(type);
}

/** Called when a plugin registers a panel or a page. */
export function onPanelsChange(fn: () => void): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** The API a plugin's UI module sees as `window.wanllmdb`. */
export interface PluginUiApi {
  registerPanel(p: PanelType): void;
  registerPage(p: PageType): void;
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
  window.wanllmdb = { registerPanel, registerPage, api };
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
