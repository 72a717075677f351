import { api } from './api/client.js';

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

const panels = new Map<string, PanelType>();
const listeners = new Set<() => void>();

export function registerPanel(p: PanelType): void {
  panels.set(p.type, p);
  for (const fn of listeners) fn();
}

export function panelTypes(): PanelType[] {
  return [...panels.values()];
}

export function panelType(type: string): PanelType | undefined {
  return panels.get(type);
}

export function onPanelsChange(fn: () => void): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** The API a plugin's UI module sees as `window.wanllmdb`. */
export interface PluginUiApi {
  registerPanel(p: PanelType): void;
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
  window.wanllmdb = { registerPanel, api };
  const failures: string[] = [];
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
