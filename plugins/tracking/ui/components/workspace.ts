import { LitElement, css, html, nothing, type PropertyValues } from 'lit';
import { repeat } from 'lit/directives/repeat.js';
import { tracking, type JsonObject } from '@wanllmdb/proto/client';
import { ApiError, closedValue, controlBar, dataOf, errorMessage, metricsApi, onPanelsChange, panelType, panelTypes, shared, viewsApi } from '@wanllmdb/web/kit';

/** One panel of the grid: where it sits (12 columns, rows of ROW_PX) and its own config. */
export interface PanelSpec {
  id: string;
  type: string;
  x: number;
  y: number;
  w: number;
  h: number;
  config: Record<string, unknown>;
}

/** What a saved view stores (the `spec` of the ViewService). */
export interface WorkspaceSpec {
  version: 1;
  panels: PanelSpec[];
}

/** A view of the ViewService with its spec read as a workspace layout. */
export type SavedView = Omit<tracking.v1.View, 'spec'> & { spec: WorkspaceSpec };

/** A view as the server answers it, its spec read (`readSpec`). */
const savedView = (view: tracking.v1.View): SavedView => ({ ...view, spec: readSpec(view.spec) });

/** A layout as the ViewService stores it: plain JSON (panel configs are JSON values the panels set). */
const specJson = (spec: WorkspaceSpec): JsonObject => spec as unknown as JsonObject;

const COLUMNS = 12;
const ROW_PX = 70;
const GAP_PX = 10;
const DEFAULT_W = 6;
const DEFAULT_H = 4;
const MAX_DEFAULT_PANELS = 6;
const LINE_CHART = 'tracking.line-chart';
/** Runs asked for their metric keys when the default layout is made. */
const KEY_SAMPLE = 10;

const overlaps = (a: PanelSpec, b: PanelSpec) => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;

/**
 * Settles a layout after `moved` changed: panels it now overlaps are pushed
 * down below it (and so on), then everything floats up as far as it can.
 */
export function settle(panels: PanelSpec[], moved?: string): PanelSpec[] {
  const out = panels.map((p) => ({ ...p }));
  const fixed = moved ? out.find((p) => p.id === moved) : undefined;
  // Top to bottom, the moved panel first among equals: each panel rises as far as nothing above blocks it.
  const order = [...out].sort((a, b) => a.y - b.y || (a === fixed ? -1 : b === fixed ? 1 : a.x - b.x));
  const placed: PanelSpec[] = [];
  if (fixed) placed.push(fixed);
  for (const p of order) {
    if (p === fixed) continue;
    p.y = 0;
    while (placed.some((q) => overlaps(p, q))) p.y++;
    placed.push(p);
  }
  return out;
}

/** The first free spot for a w×h panel, scanning rows top to bottom. */
function freeSpot(panels: PanelSpec[], w: number, h: number): { x: number; y: number } {
  for (let y = 0; ; y++) {
    for (let x = 0; x + w <= COLUMNS; x++) {
      const probe = { id: '', type: '', x, y, w, h, config: {} };
      if (!panels.some((p) => overlaps(p, probe))) return { x, y };
    }
  }
}

const newPanelId = () => (crypto.randomUUID ? crypto.randomUUID() : `p${Date.now()}${Math.random()}`).slice(0, 8);

/** A spec from the server or storage, cleaned: unknown fields dropped, positions clamped. */
function readSpec(raw: unknown): WorkspaceSpec {
  const panels = Array.isArray((raw as WorkspaceSpec | undefined)?.panels) ? (raw as WorkspaceSpec).panels : [];
  const int = (v: unknown, min: number, max: number, d: number) => (typeof v === 'number' && Number.isFinite(v) ? Math.min(max, Math.max(min, Math.round(v))) : d);
  return {
    version: 1,
    panels: panels
      .filter((p) => p && typeof p.type === 'string')
      .map((p) => {
        const w = int(p.w, 1, COLUMNS, DEFAULT_W);
        return {
          id: typeof p.id === 'string' && p.id ? p.id : newPanelId(),
          type: p.type,
          w,
          h: int(p.h, 1, 40, DEFAULT_H),
          x: int(p.x, 0, COLUMNS - w, 0),
          y: int(p.y, 0, 10_000, 0),
          config: p.config && typeof p.config === 'object' ? p.config : {},
        };
      }),
  };
}

interface Gesture {
  id: string;
  mode: 'move' | 'resize';
  startX: number;
  startY: number;
  orig: PanelSpec;
  pointerId: number;
}

/**
 * <wl-workspace projectId runIds>: a 12-column grid of panels (any panel
 * type a plugin registered) to add, remove, move and resize with the
 * pointer, and full-screen (Esc returns). The layout is a saved view's spec:
 * choose among the project's views (personal and shared), save, save as,
 * delete; the last view used in a project opens again.
 */
export class WlWorkspace extends LitElement {
  static override properties = {
    projectId: {},
    runIds: { attribute: false },
    spec: { state: true },
    views: { state: true },
    current: { state: true },
    dirty: { state: true },
    error: { state: true },
    notice: { state: true },
    fullscreen: { state: true },
    saveAsOpen: { state: true },
    adding: { state: true },
    busy: { state: true },
    typesVersion: { state: true },
  };

  static override styles = [
    shared,
    controlBar,
    css`
      .bar {
        margin-bottom: 10px;
      }
      .bar .spacer {
        flex: 1;
      }
      .grid {
        position: relative;
        display: grid;
        grid-template-columns: repeat(${COLUMNS}, minmax(0, 1fr));
        grid-auto-rows: ${ROW_PX}px;
        gap: ${GAP_PX}px;
        min-height: ${ROW_PX * 3}px;
        touch-action: none;
      }
      .panel {
        position: relative;
        display: flex;
        flex-direction: column;
        min-width: 0;
        min-height: 0;
        background: var(--wl-surface);
        border: 1px solid var(--wl-border);
        border-radius: var(--wl-radius);
        overflow: hidden;
      }
      .panel.active {
        z-index: 5;
        box-shadow: 0 8px 28px rgb(0 0 0 / 0.25);
        opacity: 0.92;
      }
      .panel.fullscreen {
        position: fixed;
        inset: 0;
        z-index: 100;
        border-radius: 0;
        background: var(--wl-bg);
      }
      .panel header {
        display: flex;
        align-items: center;
        gap: 4px;
        padding: 2px 4px 2px 8px;
        border-bottom: 1px solid var(--wl-border);
        cursor: grab;
        user-select: none;
        font-size: 12px;
        color: var(--wl-muted);
      }
      .panel.fullscreen header {
        cursor: default;
      }
      .panel header .title {
        flex: 1;
        overflow: hidden;
        text-overflow: ellipsis;
        white-space: nowrap;
      }
      .panel header button {
        padding: 0 6px;
        font-size: 12px;
        border: none;
        background: transparent;
      }
      .panel .body {
        flex: 1;
        min-height: 0;
        overflow: auto;
        padding: 6px 8px;
      }
      .resize {
        position: absolute;
        right: 0;
        bottom: 0;
        width: 16px;
        height: 16px;
        cursor: nwse-resize;
        background: linear-gradient(135deg, transparent 50%, var(--wl-muted) 50%, var(--wl-muted) 60%, transparent 60%, transparent 75%, var(--wl-muted) 75%, var(--wl-muted) 85%, transparent 85%);
      }
      .ghost {
        border: 2px dashed var(--wl-accent);
        border-radius: var(--wl-radius);
        pointer-events: none;
      }
      .saveas {
        display: flex;
        gap: 8px;
        align-items: center;
        flex-wrap: wrap;
        padding: 8px;
        margin-bottom: 10px;
      }
      .empty {
        grid-column: 1 / -1;
        grid-row: 1 / span 3;
        display: flex;
        align-items: center;
        justify-content: center;
        border: 1px dashed var(--wl-border);
        border-radius: var(--wl-radius);
      }
      .dirty {
        color: var(--wl-warn);
        font-size: 12px;
      }
    `,
  ];

  declare projectId: string;
  declare runIds: string[];
  declare spec: WorkspaceSpec;
  declare views: SavedView[];
  declare current: SavedView | undefined;
  declare dirty: boolean;
  declare error: string;
  declare notice: string;
  declare fullscreen: string;
  declare saveAsOpen: boolean;
  declare adding: string;
  declare busy: boolean;
  declare typesVersion: number;

  /** Panel elements by panel id: created once, given new properties on each render. */
  private readonly elements = new Map<string, HTMLElement>();
  private gesture: Gesture | undefined;
  private ghost: PanelSpec | undefined;
  private offPanels: (() => void) | undefined;
  private loadSeq = 0;

  constructor() {
    super();
    this.projectId = '';
    this.runIds = [];
    this.spec = { version: 1, panels: [] };
    this.views = [];
    this.current = undefined;
    this.dirty = false;
    this.error = '';
    this.notice = '';
    this.fullscreen = '';
    this.saveAsOpen = false;
    this.adding = '';
    this.busy = false;
    this.typesVersion = 0;
  }

  override connectedCallback(): void {
    super.connectedCallback();
    window.addEventListener('keydown', this.onKey);
    this.offPanels = onPanelsChange(() => this.typesVersion++);
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    window.removeEventListener('keydown', this.onKey);
    this.offPanels?.();
  }

  protected override willUpdate(changed: PropertyValues<this>): void {
    if (changed.has('projectId') && this.projectId) void this.open();
  }

  private get lastViewKey(): string {
    return `wanllmdb.workspace.${this.projectId}`;
  }

  /** Loads the project's views and reopens the last one used (else the default layout). */
  private async open(): Promise<void> {
    const seq = ++this.loadSeq;
    this.error = '';
    try {
      this.views = await this.fetchViews();
      if (seq !== this.loadSeq) return;
      if (this.dirty) return; // the user changed the layout while it loaded: keep their work
      const last = localStorage.getItem(this.lastViewKey);
      const view = last ? this.views.find((v) => v.id === last) : undefined;
      if (view) this.useView(view);
      else await this.useDefault();
    } catch (e) {
      this.error = describe(e);
    }
  }

  private async fetchViews(): Promise<SavedView[]> {
    const r = await viewsApi.listViews({ projectId: this.projectId });
    return r.data.map(savedView);
  }

  private useView(view: SavedView): void {
    this.current = view;
    this.spec = readSpec(view.spec);
    this.dirty = false;
    localStorage.setItem(this.lastViewKey, view.id);
  }

  /** One line chart per metric key the runs share (at most six). */
  private async useDefault(): Promise<void> {
    this.current = undefined;
    localStorage.removeItem(this.lastViewKey);
    this.dirty = false;
    this.spec = { version: 1, panels: [] };
    const keys = await this.commonMetricKeys().catch(() => []);
    if (this.current || this.dirty) return; // a view was chosen, or the layout edited, meanwhile
    const defaults = panelType(LINE_CHART)?.defaults ?? {};
    const panels: PanelSpec[] = keys.slice(0, MAX_DEFAULT_PANELS).map((key, i) => ({
      id: newPanelId(),
      type: LINE_CHART,
      x: (i % 2) * DEFAULT_W,
      y: Math.floor(i / 2) * DEFAULT_H,
      w: DEFAULT_W,
      h: DEFAULT_H,
      config: { ...defaults, keys: [key], title: key },
    }));
    this.spec = { version: 1, panels };
  }

  /** Metric keys every sampled run has (in the first run's order), else the most frequent ones. */
  private async commonMetricKeys(): Promise<string[]> {
    const runs = this.runIds.slice(0, KEY_SAMPLE);
    if (!runs.length) return [];
    const lists = await Promise.all(
      runs.map((id) => metricsApi.listMetricKeys({ runId: id }).then((r) => r.data.map((k) => k.key), () => [] as string[])),
    );
    const counts = new Map<string, number>();
    for (const list of lists) for (const k of new Set(list)) counts.set(k, (counts.get(k) ?? 0) + 1);
    const common = [...counts].filter(([, n]) => n === lists.length).map(([k]) => k);
    const keys = common.length ? common : [...counts].sort((a, b) => b[1] - a[1]).map(([k]) => k);
    return keys.filter((k) => !k.startsWith('_')).sort((a, b) => a.localeCompare(b));
  }

  private onSelectView(e: Event): void {
    const id = (e.target as HTMLSelectElement).value;
    if (this.dirty && !confirm('Discard the unsaved changes of this workspace?')) {
      (e.target as HTMLSelectElement).value = this.current?.id ?? '';
      return;
    }
    const view = this.views.find((v) => v.id === id);
    if (view) this.useView(view);
    else void this.useDefault();
  }

  // ------------------------------------------------------------ saving

  private async save(): Promise<void> {
    if (!this.current) {
      this.saveAsOpen = true;
      return;
    }
    await this.run(async () => {
      const view = savedView(dataOf(await viewsApi.updateView({ id: this.current!.id, spec: specJson(this.spec) })));
      this.afterSave(view, `Saved "${view.name}".`);
    });
  }

  private async saveAs(e: Event): Promise<void> {
    e.preventDefault();
    const form = e.target as HTMLFormElement;
    const name = (form.elements.namedItem('name') as HTMLInputElement).value.trim();
    const scope = closedValue(tracking.v1.closedSets.CreateViewRequest.scope, (form.elements.namedItem('scope') as HTMLSelectElement).value);
    if (!name) {
      this.error = 'Give the view a name.';
      return;
    }
    await this.run(async () => {
      const view = savedView(dataOf(await viewsApi.createView({ projectId: this.projectId, name, scope, spec: specJson(this.spec) })));
      this.saveAsOpen = false;
      this.afterSave(view, `Saved as "${view.name}" (${view.scope}).`);
    });
  }

  private afterSave(view: SavedView, notice: string): void {
    this.views = [...this.views.filter((v) => v.id !== view.id), view].sort((a, b) => a.name.localeCompare(b.name));
    this.current = view;
    this.dirty = false;
    this.notice = notice;
    localStorage.setItem(this.lastViewKey, view.id);
  }

  private async deleteView(): Promise<void> {
    const view = this.current;
    if (!view || !confirm(`Delete the ${view.scope} view "${view.name}"?`)) return;
    await this.run(async () => {
      await viewsApi.deleteView({ id: view.id });
      this.views = this.views.filter((v) => v.id !== view.id);
      this.notice = `Deleted "${view.name}".`;
      await this.useDefault();
    });
  }

  private async run(fn: () => Promise<void>): Promise<void> {
    this.busy = true;
    this.error = '';
    this.notice = '';
    try {
      await fn();
    } catch (e) {
      this.error = describe(e);
    } finally {
      this.busy = false;
    }
  }

  // ------------------------------------------------------------ editing

  private setPanels(panels: PanelSpec[]): void {
    this.spec = { version: 1, panels };
    this.dirty = true;
  }

  private addPanel(): void {
    const type = this.adding || panelTypes()[0]?.type;
    const pt = type ? panelType(type) : undefined;
    if (!pt) return;
    const spot = freeSpot(this.spec.panels, DEFAULT_W, DEFAULT_H);
    const panel: PanelSpec = { id: newPanelId(), type: pt.type, ...spot, w: DEFAULT_W, h: DEFAULT_H, config: structuredClone(pt.defaults ?? {}) };
    this.setPanels([...this.spec.panels, panel]);
  }

  private removePanel(id: string): void {
    this.elements.delete(id);
    if (this.fullscreen === id) this.fullscreen = '';
    this.setPanels(settle(this.spec.panels.filter((p) => p.id !== id)));
  }

  private onPanelConfig(id: string, e: Event): void {
    const config = (e as CustomEvent<Record<string, unknown>>).detail;
    if (!config || typeof config !== 'object') return;
    this.setPanels(this.spec.panels.map((p) => (p.id === id ? { ...p, config } : p)));
  }

  private readonly onKey = (e: KeyboardEvent): void => {
    if (e.key === 'Escape' && this.fullscreen) {
      this.fullscreen = '';
      e.stopPropagation();
    }
  };

  /** Pixel size of one grid cell step (column + gap, row + gap). */
  private cellSize(): { cw: number; rh: number } {
    const grid = this.renderRoot.querySelector<HTMLElement>('.grid');
    const width = grid?.clientWidth ?? 1200;
    return { cw: (width - GAP_PX * (COLUMNS - 1)) / COLUMNS + GAP_PX, rh: ROW_PX + GAP_PX };
  }

  private startGesture(e: PointerEvent, panel: PanelSpec, mode: Gesture['mode']): void {
    if (e.button !== 0 || this.fullscreen) return;
    if (mode === 'move' && (e.target as HTMLElement).closest('button')) return;
    e.preventDefault();
    (e.currentTarget as HTMLElement).setPointerCapture(e.pointerId);
    this.gesture = { id: panel.id, mode, startX: e.clientX, startY: e.clientY, orig: { ...panel }, pointerId: e.pointerId };
    this.ghost = { ...panel };
    this.requestUpdate();
  }

  private moveGesture(e: PointerEvent): void {
    const g = this.gesture;
    if (!g || e.pointerId !== g.pointerId) return;
    const { cw, rh } = this.cellSize();
    const dx = Math.round((e.clientX - g.startX) / cw);
    const dy = Math.round((e.clientY - g.startY) / rh);
    const o = g.orig;
    const next =
      g.mode === 'move'
        ? { ...o, x: Math.min(COLUMNS - o.w, Math.max(0, o.x + dx)), y: Math.max(0, o.y + dy) }
        : { ...o, w: Math.min(COLUMNS - o.x, Math.max(2, o.w + dx)), h: Math.max(2, o.h + dy) };
    if (this.ghost && next.x === this.ghost.x && next.y === this.ghost.y && next.w === this.ghost.w && next.h === this.ghost.h) return;
    this.ghost = next;
    this.spec = { version: 1, panels: settle(this.spec.panels.map((p) => (p.id === g.id ? next : p)), g.id) };
  }

  private endGesture(e: PointerEvent): void {
    const g = this.gesture;
    if (!g || e.pointerId !== g.pointerId) return;
    this.gesture = undefined;
    this.ghost = undefined;
    const now = this.spec.panels.find((p) => p.id === g.id);
    if (now && (now.x !== g.orig.x || now.y !== g.orig.y || now.w !== g.orig.w || now.h !== g.orig.h)) this.setPanels(settle(this.spec.panels));
    else this.requestUpdate();
  }

  // ------------------------------------------------------------ rendering

  private panelElement(panel: PanelSpec): HTMLElement {
    let el = this.elements.get(panel.id);
    const pt = panelType(panel.type);
    const tag = pt?.element;
    if (!el || (tag && el.localName !== tag)) {
      if (tag) {
        el = document.createElement(tag);
        el.addEventListener('wl-panel-config', (e) => {
          e.stopPropagation();
          this.onPanelConfig(panel.id, e);
        });
      } else {
        el = document.createElement('p');
        el.className = 'muted';
        el.textContent = `No plugin provides the panel type "${panel.type}" (is its plugin loaded?).`;
      }
      this.elements.set(panel.id, el);
    }
    if (tag) {
      // Only new values reach the element, so it does not re-query for an unchanged layout.
      const target = el as HTMLElement & { projectId?: string; runIds?: string[]; config?: Record<string, unknown> };
      if (target.projectId !== this.projectId) target.projectId = this.projectId;
      if (target.runIds !== this.runIds) target.runIds = this.runIds;
      if (target.config !== panel.config) target.config = panel.config;
    }
    return el;
  }

  private renderPanel(panel: PanelSpec) {
    const pt = panelType(panel.type);
    const full = this.fullscreen === panel.id;
    const active = this.gesture?.id === panel.id;
    const title = (typeof panel.config.title === 'string' && panel.config.title) || pt?.label || panel.type;
    return html`<section
      class="panel ${full ? 'fullscreen' : ''} ${active ? 'active' : ''}"
      style="grid-column:${panel.x + 1} / span ${panel.w};grid-row:${panel.y + 1} / span ${panel.h}"
      data-panel-type=${panel.type}
      data-panel-id=${panel.id}
    >
      <header
        data-testid="panel-handle"
        @pointerdown=${(e: PointerEvent) => this.startGesture(e, panel, 'move')}
        @pointermove=${this.moveGesture}
        @pointerup=${this.endGesture}
        @pointercancel=${this.endGesture}
      >
        <span class="title" title=${title}>${title}</span>
        <button title=${full ? 'Back (Esc)' : 'Full screen'} data-testid="panel-fullscreen" @click=${() => (this.fullscreen = full ? '' : panel.id)}>${full ? '✕ Esc' : '⤢'}</button>
        ${full ? nothing : html`<button title="Remove panel" data-testid="panel-remove" @click=${() => this.removePanel(panel.id)}>✕</button>`}
      </header>
      <div class="body">${this.panelElement(panel)}</div>
      ${full
        ? nothing
        : html`<div
            class="resize"
            title="Drag to resize"
            data-testid="panel-resize"
            @pointerdown=${(e: PointerEvent) => this.startGesture(e, panel, 'resize')}
            @pointermove=${this.moveGesture}
            @pointerup=${this.endGesture}
            @pointercancel=${this.endGesture}
          ></div>`}
    </section>`;
  }

  override render() {
    void this.typesVersion;
    const types = panelTypes();
    const current = this.current;
    // Drop elements of panels that are gone.
    for (const id of this.elements.keys()) if (!this.spec.panels.some((p) => p.id === id)) this.elements.delete(id);
    const ghost = this.ghost;
    return html`
      <div class="bar">
        <label class="row"
          >View
          <select data-testid="views" @change=${this.onSelectView} .value=${current?.id ?? ''}>
            <option value="" ?selected=${!current}>Default layout</option>
            ${this.views.map((v) => html`<option value=${v.id} ?selected=${v.id === current?.id}>${v.name} (${v.scope})</option>`)}
          </select></label
        >
        ${this.dirty ? html`<span class="dirty" data-testid="unsaved">unsaved changes</span>` : nothing}
        <button class="primary" data-testid="save-view" ?disabled=${this.busy} @click=${this.save} title=${current ? `Save to "${current.name}"` : 'Save as a new view'}>Save</button>
        <button data-testid="save-view-as" ?disabled=${this.busy} @click=${() => (this.saveAsOpen = !this.saveAsOpen)}>Save as…</button>
        ${current ? html`<button class="danger" data-testid="delete-view" ?disabled=${this.busy} @click=${this.deleteView}>Delete view</button>` : nothing}
        <span class="spacer"></span>
        <select data-testid="panel-type" aria-label="Panel type" @change=${(e: Event) => (this.adding = (e.target as HTMLSelectElement).value)}>
          ${types.map((t) => html`<option value=${t.type} ?selected=${t.type === (this.adding || types[0]?.type)}>${t.label}</option>`)}
        </select>
        <button data-testid="add-panel" ?disabled=${!types.length} @click=${this.addPanel}>Add panel</button>
      </div>
      ${this.saveAsOpen
        ? html`<form class="saveas card" @submit=${this.saveAs}>
            <input name="name" data-testid="view-name" placeholder="View name" maxlength="255" required .value=${current ? `${current.name} copy` : ''} />
            <select name="scope" data-testid="view-scope">
              <option value="personal">Personal (only me)</option>
              <option value="shared">Shared with the project</option>
            </select>
            <button class="primary" type="submit" data-testid="save-view-confirm" ?disabled=${this.busy}>Save view</button>
            <button type="button" @click=${() => (this.saveAsOpen = false)}>Cancel</button>
          </form>`
        : nothing}
      ${this.error ? html`<p class="error" data-testid="workspace-error">${this.error}</p>` : nothing}
      ${this.notice ? html`<p class="muted" data-testid="workspace-notice">${this.notice}</p>` : nothing}
      ${this.runIds.length ? nothing : html`<p class="muted">No runs selected: panels show nothing until the project has runs.</p>`}
      <div class="grid">
        ${this.spec.panels.length ? nothing : html`<div class="empty muted">No panels. Pick a type and “Add panel”.</div>`}
        ${ghost ? html`<div class="ghost" style="grid-column:${ghost.x + 1} / span ${ghost.w};grid-row:${ghost.y + 1} / span ${ghost.h}"></div>` : nothing}
        ${repeat(this.spec.panels, (p) => p.id, (p) => this.renderPanel(p))}
      </div>
    `;
  }
}

function describe(e: unknown): string {
  if (e instanceof ApiError) return e.details.length ? `${e.message} (${e.details.map((d) => `${d.field ?? ''} ${d.message}`).join('; ')})` : e.message;
  return errorMessage(e);
}

customElements.define('wl-workspace', WlWorkspace);

declare global {
  interface HTMLElementTagNameMap {
    'wl-workspace': WlWorkspace;
  }
}
