import { LitElement, css, html, nothing, type PropertyValues } from 'lit';
import { virtualize } from '@lit-labs/virtualizer/virtualize.js';
import type { tracking } from '@wanllmdb/proto/client';
import { watchProjectRuns, type LiveRunEvent } from '../charts/live.js';
import { ApiError, formatDuration, runDuration, runsApi, shared, shortTime } from '@wanllmdb/web/kit';

type Run = tracking.v1.Run;

/** The largest page ListRuns serves (run-service MAX_PAGE). */
const MAX_PAGE = 1000;
/** The first page: enough to fill the screen, quick to fetch and render. */
const FIRST_PAGE = 100;
const BASE_COLUMNS = ['name', 'state', 'created', 'duration', 'tags'] as const;
const DEFAULT_EXTRA = 4;
const ROW_HEIGHT = 34;
const MAX_KEY_DEPTH = 4;
/** Live run events are applied at most this often (a busy project does not re-render per event). */
const LIVE_BATCH_MS = 250;
/** Running runs' durations are redrawn this often. */
const TICK_MS = 5000;

/** The server sort field of a column (undefined: not sortable on the server). */
function sortField(column: string): string | undefined {
  if (column === 'name' || column === 'state') return column;
  if (column === 'created') return 'created_at';
  if (column.startsWith('config.') || column.startsWith('summary.')) return column;
  return undefined;
}

/** Leaf paths of a JSON object (`model.layers`), arrays and deep objects as one value. */
function leafKeys(obj: Record<string, unknown> | undefined, prefix = '', depth = 0, out: Set<string> = new Set()): Set<string> {
  if (!obj) return out;
  for (const [k, v] of Object.entries(obj)) {
    const path = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === 'object' && !Array.isArray(v) && depth < MAX_KEY_DEPTH) leafKeys(v as Record<string, unknown>, path, depth + 1, out);
    else out.add(path);
  }
  return out;
}

/** The value at a dotted path; a key that itself contains dots (`train/loss` has none, `a.b` might) is tried whole first. */
function valueAt(obj: Record<string, unknown> | undefined, path: string): unknown {
  if (!obj) return undefined;
  if (path in obj) return obj[path];
  let cur: unknown = obj;
  for (const part of path.split('.')) {
    if (!cur || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

function formatValue(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : Math.abs(v) >= 1e5 || Math.abs(v) < 1e-3 ? v.toExponential(3) : String(Number(v.toPrecision(5)));
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

const label = (c: string) => (c === 'created' ? 'Created' : c === 'duration' ? 'Duration' : c === 'name' ? 'Name' : c === 'state' ? 'State' : c === 'tags' ? 'Tags' : c);
const widthOf = (c: string) => (c === 'name' ? 220 : c === 'state' ? 96 : c === 'created' ? 150 : c === 'duration' ? 96 : c === 'tags' ? 160 : 130);

interface ColumnPrefs {
  columns: string[];
  pinned: string[];
}

type DisplayItem = { kind: 'group'; key: string; count: number; collapsed: boolean } | { kind: 'run'; run: Run; index: number };

/** The pending live change of one run (the last event wins; a deletion sticks). */
interface LiveChange {
  run?: Run;
  created: boolean;
  deleted: boolean;
}

/** The run's value of a server sort field (`created_at`, `name`, `config.lr`, …), comparable as JSON. */
function sortValue(run: Run, field: string): string {
  const v = field === 'created_at' ? run.createdAt : field === 'name' ? run.name : field === 'state' ? run.state : field.startsWith('config.') ? valueAt(run.config, field.slice(7)) : field.startsWith('summary.') ? valueAt(run.summary, field.slice(8)) : undefined;
  return JSON.stringify(v ?? null);
}

const isEmpty = (o: Record<string, unknown> | undefined) => !o || Object.keys(o).length === 0;

/**
 * <wl-runs-table projectId>: every run of a project in a virtualised table.
 * All pages load in the background (largest page, keyset cursor); the first
 * renders at once. Server-side sort and filter, client-side grouping, a
 * column chooser (add, remove, drag to reorder, pin left; kept per project
 * in localStorage), and row selection (`selected`, `wl-selection` event).
 * Live: one project-wide `runs:watch` stream (run changes, no metric
 * points) while connected; events are batched and applied in place —
 * rows update, new runs appear at the top (newest-first, unfiltered; else a
 * "N new runs" button), deleted runs go — keeping scroll, selection, sort
 * and filter.
 */
export class WlRunsTable extends LitElement {
  static override properties = {
    projectId: {},
    selected: { attribute: false },
    runs: { state: true },
    total: { state: true },
    loading: { state: true },
    error: { state: true },
    filterText: { state: true },
    sort: { state: true },
    groupBy: { state: true },
    collapsed: { state: true },
    prefs: { state: true },
    chooserOpen: { state: true },
    chooserSearch: { state: true },
    keysVersion: { state: true },
    newRuns: { state: true },
    orderChanged: { state: true },
    live: { state: true },
  };

  static override styles = [
    shared,
    css`
      .toolbar {
        display: flex;
        gap: 8px;
        align-items: center;
        flex-wrap: wrap;
        margin-bottom: 8px;
      }
      .toolbar input[type='search'] {
        flex: 1;
        min-width: 280px;
        font-family: var(--wl-mono);
      }
      .table {
        border: 1px solid var(--wl-border);
        border-radius: var(--wl-radius);
        background: var(--wl-bg);
        overflow: hidden;
      }
      .headwrap {
        overflow: hidden;
      }
      .body {
        height: var(--wl-runs-height, 65vh);
        overflow: auto;
      }
      .head,
      .tr {
        display: grid;
        align-items: center;
        min-width: max-content;
      }
      .head {
        position: relative;
        z-index: 3;
        background: var(--wl-surface);
        border-bottom: 1px solid var(--wl-border);
        font-weight: 600;
        color: var(--wl-muted);
      }
      .tr {
        height: ${ROW_HEIGHT}px;
        box-sizing: border-box;
        border-bottom: 1px solid var(--wl-border);
        width: 100%;
      }
      .tr:hover > .cell {
        background: var(--wl-surface);
      }
      .tr.selected > .cell {
        background: var(--wl-highlight);
      }
      .cell {
        padding: 0 8px;
        overflow: hidden;
        text-overflow: ellipsis;
        white-space: nowrap;
        height: 100%;
        display: flex;
        align-items: center;
        background: var(--wl-bg);
        box-sizing: border-box;
      }
      .head .cell {
        background: var(--wl-surface);
        height: 34px;
        gap: 4px;
        user-select: none;
      }
      .head .cell.sortable {
        cursor: pointer;
      }
      .head .cell.drop {
        box-shadow: inset 2px 0 0 var(--wl-accent);
      }
      .cell.pinned {
        position: sticky;
        z-index: 1;
      }
      .head .cell.pinned {
        z-index: 4;
      }
      .cell.pinned.last {
        border-right: 1px solid var(--wl-border);
      }
      .num {
        justify-content: flex-end;
        font-variant-numeric: tabular-nums;
      }
      .group {
        display: flex;
        align-items: center;
        gap: 8px;
        height: ${ROW_HEIGHT}px;
        padding: 0 8px;
        background: var(--wl-surface);
        border-bottom: 1px solid var(--wl-border);
        font-weight: 600;
        cursor: pointer;
        width: 100%;
        box-sizing: border-box;
      }
      .state {
        font-size: 12px;
        padding: 1px 8px;
        border-radius: 10px;
        border: 1px solid currentColor;
      }
      .state.running {
        color: var(--wl-accent);
      }
      .state.finished {
        color: var(--wl-ok);
      }
      .state.crashed {
        color: var(--wl-danger);
      }
      .state.killed {
        color: var(--wl-warn);
      }
      .tag {
        font-size: 12px;
        background: var(--wl-surface);
        border: 1px solid var(--wl-border);
        border-radius: 4px;
        padding: 0 5px;
        margin-right: 4px;
      }
      .chooser {
        position: absolute;
        right: 0;
        top: 36px;
        z-index: 10;
        width: 340px;
        max-height: 420px;
        overflow: auto;
        background: var(--wl-bg);
        border: 1px solid var(--wl-border);
        border-radius: var(--wl-radius);
        box-shadow: 0 6px 24px rgb(0 0 0 / 0.2);
        padding: 8px;
      }
      .chooser li {
        display: flex;
        gap: 6px;
        align-items: center;
        padding: 2px 0;
      }
      .chooser ul {
        list-style: none;
        margin: 6px 0;
        padding: 0;
      }
      .chooser li span {
        flex: 1;
        overflow: hidden;
        text-overflow: ellipsis;
      }
      .chooser button {
        padding: 0 6px;
        font-size: 12px;
      }
      .wrap {
        position: relative;
      }

      .status {
        font-size: 12px;
      }
      .empty {
        padding: 24px;
        text-align: center;
      }
      .hint {
        font-size: 12px;
        padding: 0 8px;
      }
      .live {
        font-size: 12px;
        color: var(--wl-ok);
      }
    `,
  ];

  declare projectId: string;
  declare selected: string[];
  declare runs: Run[];
  declare total: number;
  declare loading: boolean;
  declare error: string;
  declare filterText: string;
  declare sort: string;
  declare groupBy: string;
  declare collapsed: Set<string>;
  declare prefs: ColumnPrefs | undefined;
  declare chooserOpen: boolean;
  declare chooserSearch: string;
  declare keysVersion: number;
  /** Runs created since the last load that this sort/filter cannot place (shown as a button). */
  declare newRuns: number;
  /** A live change touched the sorted field: the server's order may differ now. */
  declare orderChanged: boolean;
  /** The live stream is open. */
  declare live: boolean;

  private stopLive: (() => void) | undefined;
  private liveProject = '';
  private pending = new Map<string, LiveChange>();
  private liveTimer: ReturnType<typeof setTimeout> | undefined;
  private tick: ReturnType<typeof setInterval> | undefined;
  private readonly newRunIds = new Set<string>();
  /** Live events changed the list during this load: later pages may repeat a row. */
  private liveTouched = false;
  private scrollShift = 0;
  private itemsCache: { runs: Run[]; groupBy: string; collapsed: Set<string>; items: DisplayItem[] } | undefined;

  private abort: AbortController | undefined;
  private readonly configKeys = new Set<string>();
  private readonly summaryKeys = new Set<string>();
  private anchor = -1;
  private dragging = '';
  private dropTarget = '';
  private appliedFilter = '';

  constructor() {
    super();
    this.projectId = '';
    this.selected = [];
    this.runs = [];
    this.total = 0;
    this.loading = false;
    this.error = '';
    this.filterText = '';
    this.sort = '-created_at';
    this.groupBy = '';
    this.collapsed = new Set();
    this.prefs = undefined;
    this.chooserOpen = false;
    this.chooserSearch = '';
    this.keysVersion = 0;
    this.newRuns = 0;
    this.orderChanged = false;
    this.live = false;
  }

  override connectedCallback(): void {
    super.connectedCallback();
    if (this.projectId) this.subscribe();
    this.tick = setInterval(() => {
      // Running runs' durations grow: redraw the visible rows (cheap; the items are cached).
      if (!document.hidden && this.runs.some((r) => r.state === 'running')) this.requestUpdate();
    }, TICK_MS);
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this.abort?.abort();
    this.unsubscribe();
    clearInterval(this.tick);
    this.tick = undefined;
  }

  protected override willUpdate(changed: PropertyValues<this>): void {
    if (changed.has('projectId') && this.projectId) {
      this.prefs = this.loadPrefs();
      this.configKeys.clear();
      this.summaryKeys.clear();
      void this.load();
      if (this.isConnected && this.liveProject !== this.projectId) this.subscribe();
    }
  }

  protected override updated(): void {
    // Rows inserted or removed above the viewport: keep the rows in view where they were.
    const shift = this.scrollShift;
    this.scrollShift = 0;
    if (!shift) return;
    const body = this.renderRoot.querySelector<HTMLElement>('.body');
    if (!body || body.scrollTop <= 0) return;
    // After the virtualizer has resized its content.
    requestAnimationFrame(() => (body.scrollTop = Math.max(0, body.scrollTop + shift * ROW_HEIGHT)));
  }

  // ------------------------------------------------------------ live updates

  private subscribe(): void {
    this.unsubscribe();
    const projectId = (this.liveProject = this.projectId);
    this.stopLive = watchProjectRuns(projectId, {
      onEvent: (e) => this.onLiveEvent(e),
      // (Re)opened: changes made before may have been missed — fetch the top page again and merge it.
      onOpen: () => {
        this.live = true;
        void this.reconcile(projectId);
      },
    });
  }

  private unsubscribe(): void {
    this.stopLive?.();
    this.stopLive = undefined;
    this.liveProject = '';
    this.live = false;
    clearTimeout(this.liveTimer);
    this.liveTimer = undefined;
    this.pending.clear();
  }

  private onLiveEvent(e: LiveRunEvent): void {
    if (e.kind === 'metrics' || !e.runId) return;
    this.queue(e.runId, e.kind, e.run);
  }

  private queue(runId: string, kind: string, run: Run | undefined): void {
    const prev = this.pending.get(runId);
    if (kind === 'deleted') this.pending.set(runId, { created: prev?.created ?? false, deleted: true });
    else if (run) this.pending.set(runId, { run, created: kind === 'created' || (prev?.created ?? false), deleted: false });
    else return;
    this.liveTimer ??= setTimeout(() => this.flushLive(), LIVE_BATCH_MS);
  }

  /** Merges the server's first page (what a missed event would have changed at the top). */
  private async reconcile(projectId: string): Promise<void> {
    try {
      const page = await runsApi.listRuns({ projectId, filter: this.appliedFilter, sort: this.sort, limit: FIRST_PAGE });
      if (projectId !== this.liveProject) return;
      // Top runs the table lacks are new (its first page is in; later pages only add older rows);
      // before the first page arrives there is nothing to compare with.
      const have = new Set(this.runs.map((r) => r.id));
      const compare = this.runs.length > 0 || !this.loading;
      for (const r of page.data) this.queue(r.id, have.has(r.id) || !compare ? 'updated' : 'created', r);
    } catch {
      /* the next open tries again */
    }
  }

  /** Applies the pending live changes in one pass over the rows (one new array per batch). */
  private flushLive(): void {
    this.liveTimer = undefined;
    const batch = this.pending;
    if (!batch.size) return;
    this.pending = new Map();
    const field = this.sort.replace(/^-/, '');
    const grouped = !!this.groupBy;
    const body = this.renderRoot.querySelector<HTMLElement>('.body');
    const firstVisible = !grouped && body ? Math.floor(body.scrollTop / ROW_HEIGHT) : 0;
    const removed = new Set<string>();
    let removedAbove = 0;
    let removedBeforeAnchor = 0;
    let orderChanged = false;
    let keysGrew = false;
    const present = new Set<string>();
    const old = this.runs;
    let next: Run[] | undefined;
    for (let i = 0; i < old.length; i++) {
      const r = old[i]!;
      const c = batch.get(r.id);
      if (!c) {
        next?.push(r);
        continue;
      }
      present.add(r.id);
      next ??= old.slice(0, i);
      if (c.deleted) {
        removed.add(r.id);
        if (i < firstVisible) removedAbove++;
        if (i < this.anchor) removedBeforeAnchor++;
        continue;
      }
      // An event too large for the bus comes without config and summary: keep what the row has.
      const incoming = c.run!;
      const run: Run = isEmpty(incoming.config) && isEmpty(incoming.summary) && !(isEmpty(r.config) && isEmpty(r.summary)) ? { ...incoming, config: r.config, summary: r.summary } : incoming;
      if (!orderChanged && old.length > 1 && sortValue(r, field) !== sortValue(run, field)) orderChanged = true;
      keysGrew = this.noteKeys(run) || keysGrew;
      next.push(run);
    }
    // New runs: at the top under the default order (newest first, no filter); else counted for the "show" button.
    const liveInsert = !this.appliedFilter && this.sort === '-created_at';
    const created: Run[] = [];
    for (const [id, c] of batch) {
      if (c.deleted) {
        if (this.newRunIds.delete(id)) this.newRuns = this.newRunIds.size;
        continue;
      }
      if (!c.created || present.has(id) || !c.run) continue;
      if (liveInsert) created.push(c.run);
      else {
        this.newRunIds.add(id);
        this.newRuns = this.newRunIds.size;
      }
    }
    if (created.length) {
      created.sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
      for (const r of created) keysGrew = this.noteKeys(r) || keysGrew;
      next = [...created, ...(next ?? old)];
    }
    if (!next) return;
    this.liveTouched = true;
    this.runs = next;
    this.total = Math.max(0, this.total + created.length - removed.size);
    if (orderChanged) this.orderChanged = true;
    if (keysGrew) this.keysVersion++;
    if (!grouped) this.scrollShift += created.length - removedAbove;
    if (this.anchor >= 0) this.anchor = grouped ? -1 : this.anchor + created.length - removedBeforeAnchor;
    if (removed.size && this.selected.some((id) => removed.has(id))) this.setSelection(this.selected.filter((id) => !removed.has(id)));
  }

  /** Adds a run's config and summary keys (column choices); true when there are new ones. */
  private noteKeys(run: Run): boolean {
    const before = this.configKeys.size + this.summaryKeys.size;
    leafKeys(run.config, '', 0, this.configKeys);
    leafKeys(run.summary, '', 0, this.summaryKeys);
    return this.configKeys.size + this.summaryKeys.size !== before;
  }

  private get storageKey(): string {
    return `wanllmdb.runs-table.${this.projectId}`;
  }

  private loadPrefs(): ColumnPrefs | undefined {
    try {
      const raw = localStorage.getItem(this.storageKey);
      if (!raw) return undefined;
      const p = JSON.parse(raw) as ColumnPrefs;
      if (Array.isArray(p.columns) && Array.isArray(p.pinned)) return p;
    } catch {
      /* a broken entry starts over */
    }
    return undefined;
  }

  private savePrefs(p: ColumnPrefs): void {
    this.prefs = p;
    localStorage.setItem(this.storageKey, JSON.stringify(p));
  }

  /** The visible columns, in order, pinned first. */
  get columns(): string[] {
    const p = this.prefs ?? this.defaultPrefs();
    const pinned = p.columns.filter((c) => p.pinned.includes(c));
    return [...pinned, ...p.columns.filter((c) => !p.pinned.includes(c))];
  }

  private defaultPrefs(): ColumnPrefs {
    return {
      columns: [...BASE_COLUMNS, ...[...this.configKeys].slice(0, DEFAULT_EXTRA).map((k) => `config.${k}`), ...[...this.summaryKeys].slice(0, DEFAULT_EXTRA).map((k) => `summary.${k}`)],
      pinned: ['name'],
    };
  }

  /** Loads every page: the first renders at once, the rest arrive in the background. */
  async load(): Promise<void> {
    this.abort?.abort();
    const abort = (this.abort = new AbortController());
    this.loading = true;
    this.error = '';
    this.newRunIds.clear();
    this.newRuns = 0;
    this.orderChanged = false;
    this.liveTouched = false;
    const filter = this.appliedFilter;
    let cursor = '';
    let first = true;
    try {
      do {
        // A small first page paints at once; the rest follow in the largest pages the API allows.
        const limit = first ? FIRST_PAGE : MAX_PAGE;
        const page = await runsApi.listRuns({ projectId: this.projectId, filter, sort: this.sort, cursor, limit }, { signal: abort.signal });
        if (abort.signal.aborted) return;
        for (const r of page.data) {
          leafKeys(r.config, '', 0, this.configKeys);
          leafKeys(r.summary, '', 0, this.summaryKeys);
        }
        let rows = page.data;
        if (!first && this.liveTouched) {
          // A live change may already have placed one of these rows.
          const have = new Set(this.runs.map((r) => r.id));
          rows = rows.filter((r) => !have.has(r.id));
        }
        this.runs = first ? rows : [...this.runs, ...rows];
        if (first) this.liveTouched = false;
        this.total = page.meta?.total ?? this.runs.length;
        this.keysVersion++;
        first = false;
        cursor = page.meta?.nextCursor ?? '';
      } while (cursor);
      // Keep only selections that still exist under this filter.
      const ids = new Set(this.runs.map((r) => r.id));
      const kept = this.selected.filter((id) => ids.has(id));
      if (kept.length !== this.selected.length) this.setSelection(kept);
    } catch (e) {
      if (abort.signal.aborted || (e instanceof DOMException && e.name === 'AbortError')) return;
      this.error = e instanceof ApiError ? e.message : String(e);
      if (first) this.runs = [];
    } finally {
      if (this.abort === abort) this.loading = false;
    }
  }

  private applyFilter(text: string): void {
    this.appliedFilter = text.trim();
    void this.load();
  }

  private onFilterKey(e: KeyboardEvent): void {
    if (e.key === 'Enter') this.applyFilter((e.target as HTMLInputElement).value);
  }

  private onFilterSearch(e: Event): void {
    // The clear button of a search field.
    const v = (e.target as HTMLInputElement).value;
    this.filterText = v;
    if (!v && this.appliedFilter) this.applyFilter('');
  }

  private clickHeader(column: string): void {
    const field = sortField(column);
    if (!field) return;
    // Same column: flip the direction; a new column starts ascending (newest first for the creation time).
    this.sort = this.sort === field ? `-${field}` : this.sort === `-${field}` ? field : column === 'created' ? `-${field}` : field;
    void this.load();
  }

  private sortMark(column: string): string {
    const field = sortField(column);
    if (!field) return '';
    if (this.sort === field) return '▲';
    if (this.sort === `-${field}`) return '▼';
    return '';
  }

  // ------------------------------------------------------------ selection

  private setSelection(ids: string[]): void {
    this.selected = ids;
    this.dispatchEvent(new CustomEvent('wl-selection', { detail: { runIds: ids }, bubbles: true, composed: true }));
  }

  private toggleRow(e: MouseEvent, index: number, runId: string): void {
    const order = this.visibleRuns();
    const sel = new Set(this.selected);
    const on = !sel.has(runId);
    if (e.shiftKey && this.anchor >= 0 && this.anchor < order.length) {
      const [a, b] = [Math.min(this.anchor, index), Math.max(this.anchor, index)];
      for (let i = a; i <= b; i++) {
        const id = order[i]!.id;
        if (on) sel.add(id);
        else sel.delete(id);
      }
    } else if (on) sel.add(runId);
    else sel.delete(runId);
    this.anchor = index;
    this.setSelection(this.runs.filter((r) => sel.has(r.id)).map((r) => r.id));
  }

  private toggleAll(): void {
    const visible = this.visibleRuns();
    const all = visible.length > 0 && visible.every((r) => this.selected.includes(r.id));
    this.setSelection(all ? [] : visible.map((r) => r.id));
  }

  // ------------------------------------------------------------ grouping

  private groupValue(run: Run): string {
    const key = this.groupBy;
    const v = key === 'group' ? run.group : key === 'jobType' ? run.jobType : key === 'state' ? run.state : valueAt(run.config, key.replace(/^config\./, ''));
    return v === undefined || v === null || v === '' ? '(none)' : formatValue(v);
  }

  private groups(): Map<string, Run[]> {
    const m = new Map<string, Run[]>();
    for (const r of this.runs) {
      const k = this.groupValue(r);
      let list = m.get(k);
      if (!list) m.set(k, (list = []));
      list.push(r);
    }
    return m;
  }

  /** The runs in display order, without collapsed groups (what shift-click ranges walk). */
  private visibleRuns(): Run[] {
    if (!this.groupBy) return this.runs;
    return [...this.groups()].filter(([k]) => !this.collapsed.has(k)).flatMap(([, runs]) => runs);
  }

  /** The display items, cached while the rows, grouping and collapsed groups stay the same (a redraw for the clock or the selection reuses them). */
  private displayItems(): DisplayItem[] {
    const c = this.itemsCache;
    if (c && c.runs === this.runs && c.groupBy === this.groupBy && c.collapsed === this.collapsed) return c.items;
    const items = this.buildItems();
    this.itemsCache = { runs: this.runs, groupBy: this.groupBy, collapsed: this.collapsed, items };
    return items;
  }

  private buildItems(): DisplayItem[] {
    if (!this.groupBy) return this.runs.map((run, index) => ({ kind: 'run', run, index }));
    const items: DisplayItem[] = [];
    let index = 0;
    for (const [key, runs] of this.groups()) {
      const collapsed = this.collapsed.has(key);
      items.push({ kind: 'group', key, count: runs.length, collapsed });
      if (!collapsed) for (const run of runs) items.push({ kind: 'run', run, index: index++ });
    }
    return items;
  }

  private toggleGroup(key: string): void {
    const next = new Set(this.collapsed);
    if (next.has(key)) next.delete(key);
    else next.add(key);
    this.collapsed = next;
  }

  // ------------------------------------------------------------ columns

  private allColumns(): string[] {
    return [...BASE_COLUMNS, ...[...this.configKeys].sort().map((k) => `config.${k}`), ...[...this.summaryKeys].sort().map((k) => `summary.${k}`)];
  }

  private setColumnShown(column: string, shown: boolean): void {
    const p = this.prefs ?? this.defaultPrefs();
    const columns = shown ? [...p.columns.filter((c) => c !== column), column] : p.columns.filter((c) => c !== column);
    this.savePrefs({ columns, pinned: p.pinned.filter((c) => columns.includes(c)) });
  }

  private togglePin(column: string): void {
    const p = this.prefs ?? this.defaultPrefs();
    const pinned = p.pinned.includes(column) ? p.pinned.filter((c) => c !== column) : [...p.pinned, column];
    this.savePrefs({ columns: p.columns.includes(column) ? p.columns : [...p.columns, column], pinned });
  }

  private moveColumn(column: string, before: string): void {
    if (column === before) return;
    const p = this.prefs ?? this.defaultPrefs();
    const cols = this.columns.filter((c) => c !== column);
    const at = cols.indexOf(before);
    cols.splice(at < 0 ? cols.length : at, 0, column);
    // Dropping among the pinned columns pins it; among the others unpins it.
    const beforePinned = p.pinned.includes(before);
    const pinned = beforePinned ? [...new Set([...p.pinned, column])] : p.pinned.filter((c) => c !== column);
    this.savePrefs({ columns: cols, pinned: cols.filter((c) => pinned.includes(c)) });
  }

  private resetColumns(): void {
    localStorage.removeItem(this.storageKey);
    this.prefs = undefined;
  }

  private onDragStart(e: DragEvent, column: string): void {
    this.dragging = column;
    e.dataTransfer?.setData('text/plain', column);
    if (e.dataTransfer) e.dataTransfer.effectAllowed = 'move';
  }

  private onDragOver(e: DragEvent, column: string): void {
    if (!this.dragging) return;
    e.preventDefault();
    if (this.dropTarget !== column) {
      this.dropTarget = column;
      this.requestUpdate();
    }
  }

  private onDrop(e: DragEvent, column: string): void {
    e.preventDefault();
    const from = this.dragging || e.dataTransfer?.getData('text/plain') || '';
    this.dragging = '';
    this.dropTarget = '';
    if (from) this.moveColumn(from, column);
    else this.requestUpdate();
  }

  // ------------------------------------------------------------ rendering

  private readonly syncHeader = (e: Event): void => {
    const wrap = this.renderRoot.querySelector<HTMLElement>('.headwrap');
    if (wrap) wrap.scrollLeft = (e.target as HTMLElement).scrollLeft;
  };

  private gridTemplate(cols: string[]): string {
    return `36px ${cols.map((c) => `${widthOf(c)}px`).join(' ')}`;
  }

  /** Left offsets of pinned columns (the checkbox column is always pinned). */
  private pinOffsets(cols: string[]): Map<string, number> {
    const pinned = new Set(this.prefs?.pinned ?? this.defaultPrefs().pinned);
    const out = new Map<string, number>();
    let left = 36;
    for (const c of cols) {
      if (!pinned.has(c)) break;
      out.set(c, left);
      left += widthOf(c);
    }
    return out;
  }

  private cell(run: Run, column: string) {
    switch (column) {
      case 'name':
        return html`<a href=${`/runs/${run.id}`} title=${run.name}>${run.name}</a>`;
      case 'state':
        return html`<span class="state ${run.state}">${run.state}</span>`;
      case 'created':
        return shortTime(run.createdAt);
      case 'duration':
        return formatDuration(runDuration(run));
      case 'tags':
        return run.tags.map((t) => html`<span class="tag">${t}</span>`);
      default: {
        const v = column.startsWith('config.') ? valueAt(run.config, column.slice(7)) : valueAt(run.summary, column.slice(8));
        return formatValue(v);
      }
    }
  }

  private renderRow(item: DisplayItem, cols: string[], pins: Map<string, number>, template: string) {
    if (item.kind === 'group') {
      return html`<div class="group" data-testid="run-group" data-group=${item.key} @click=${() => this.toggleGroup(item.key)}>
        <span>${item.collapsed ? '▸' : '▾'}</span><span>${this.groupBy} = ${item.key}</span><span class="muted">(${item.count})</span>
      </div>`;
    }
    const run = item.run;
    const selected = this.selected.includes(run.id);
    const lastPinned = [...pins.keys()].at(-1);
    return html`<div class="tr ${selected ? 'selected' : ''}" style="grid-template-columns:${template}" data-testid="run-row" data-run-id=${run.id}>
      <div class="cell pinned" style="left:0">
        <input
          type="checkbox"
          data-testid="run-select"
          data-run-id=${run.id}
          aria-label=${`Select ${run.name}`}
          .checked=${selected}
          @click=${(e: MouseEvent) => this.toggleRow(e, item.index, run.id)}
        />
      </div>
      ${cols.map((c) => {
        const left = pins.get(c);
        const numeric = c !== 'name' && c !== 'state' && c !== 'tags' && c !== 'created';
        return html`<div class="cell ${left !== undefined ? 'pinned' : ''} ${c === lastPinned ? 'last' : ''} ${numeric ? 'num' : ''}" style=${left !== undefined ? `left:${left}px` : ''} data-col=${c}>
          ${this.cell(run, c)}
        </div>`;
      })}
    </div>`;
  }

  private renderChooser() {
    const shown = new Set(this.columns);
    const pinned = new Set(this.prefs?.pinned ?? this.defaultPrefs().pinned);
    const q = this.chooserSearch.toLowerCase();
    const all = this.allColumns().filter((c) => !q || c.toLowerCase().includes(q));
    return html`<div class="chooser" data-testid="column-chooser">
      <div class="row">
        <input type="search" placeholder="Find a column" .value=${this.chooserSearch} @input=${(e: Event) => (this.chooserSearch = (e.target as HTMLInputElement).value)} />
        <button @click=${this.resetColumns} title="Back to the default columns">Reset</button>
        <button @click=${() => (this.chooserOpen = false)}>Close</button>
      </div>
      <p class="muted status">Drag column headers to reorder them; pinned columns stay on the left.</p>
      <ul>
        ${all.slice(0, 500).map(
          (c) => html`<li>
            <input type="checkbox" data-testid="column-toggle" data-col=${c} .checked=${shown.has(c)} @change=${(e: Event) => this.setColumnShown(c, (e.target as HTMLInputElement).checked)} />
            <span title=${c}>${label(c)}</span>
            <button data-testid="column-pin" data-col=${c} @click=${() => this.togglePin(c)}>${pinned.has(c) ? 'Unpin' : 'Pin'}</button>
          </li>`,
        )}
      </ul>
    </div>`;
  }

  override render() {
    void this.keysVersion;
    const cols = this.columns;
    const template = this.gridTemplate(cols);
    const pins = this.pinOffsets(cols);
    const lastPinned = [...pins.keys()].at(-1);
    const items = this.displayItems();
    const visible = this.visibleRuns();
    const allSelected = visible.length > 0 && visible.every((r) => this.selected.includes(r.id));
    const groupKeys = ['group', 'jobType', 'state', ...[...this.configKeys].sort().map((k) => `config.${k}`)];
    return html`
      <div class="toolbar">
        <input
          type="search"
          data-testid="runs-filter"
          placeholder='Filter, e.g. config.lr > 0.01 AND state = "finished"  (Enter)'
          .value=${this.filterText}
          @input=${this.onFilterSearch}
          @keydown=${this.onFilterKey}
          aria-label="Filter runs"
        />
        <button @click=${() => this.applyFilter(this.filterText)}>Apply</button>
        <label class="row"
          >Group by
          <select data-testid="group-by" .value=${this.groupBy} @change=${(e: Event) => ((this.groupBy = (e.target as HTMLSelectElement).value), (this.collapsed = new Set()))}>
            <option value="">(none)</option>
            ${groupKeys.map((k) => html`<option value=${k} ?selected=${k === this.groupBy}>${k}</option>`)}
          </select></label
        >
        <button data-testid="columns" @click=${() => (this.chooserOpen = !this.chooserOpen)}>Columns</button>
        <span class="muted status" data-testid="runs-count"
          >${this.loading ? `Loading ${this.runs.length} of ${this.total || '…'} runs` : `${this.total} runs`}${this.selected.length ? ` · ${this.selected.length} selected` : ''}</span
        >
        ${this.live ? html`<span class="live" data-testid="runs-live" title="Runs update as they change">● live</span>` : nothing}
        ${this.newRuns
          ? html`<button data-testid="runs-new" @click=${() => void this.load()}>${this.newRuns} new run${this.newRuns === 1 ? '' : 's'} — show</button>`
          : nothing}
        ${this.orderChanged
          ? html`<span class="muted hint" data-testid="runs-order-hint">Order may have changed — <a href="#" @click=${(e: Event) => (e.preventDefault(), void this.load())}>refresh</a></span>`
          : nothing}
      </div>
      ${this.error ? html`<p class="error" data-testid="runs-error">${this.error}</p>` : nothing}
      <div class="wrap">
        ${this.chooserOpen ? this.renderChooser() : nothing}
        <div class="table">
          <div class="headwrap">
          <div class="head" style="grid-template-columns:${template}">
            <div class="cell pinned" style="left:0">
              <input type="checkbox" data-testid="select-all" aria-label="Select all" .checked=${allSelected} @click=${this.toggleAll} />
            </div>
            ${cols.map((c) => {
              const left = pins.get(c);
              return html`<div
                class="cell ${sortField(c) ? 'sortable' : ''} ${left !== undefined ? 'pinned' : ''} ${c === lastPinned ? 'last' : ''} ${this.dropTarget === c ? 'drop' : ''}"
                style=${left !== undefined ? `left:${left}px` : ''}
                draggable="true"
                data-testid="column-header"
                data-col=${c}
                title=${sortField(c) ? `${c}: click to sort, drag to move` : `${c}: drag to move`}
                @click=${() => this.clickHeader(c)}
                @dragstart=${(e: DragEvent) => this.onDragStart(e, c)}
                @dragover=${(e: DragEvent) => this.onDragOver(e, c)}
                @dragleave=${() => ((this.dropTarget = ''), this.requestUpdate())}
                @drop=${(e: DragEvent) => this.onDrop(e, c)}
                @dragend=${() => ((this.dragging = ''), (this.dropTarget = ''), this.requestUpdate())}
              >
                <span style="overflow:hidden;text-overflow:ellipsis">${label(c)}</span><span>${this.sortMark(c)}</span>
              </div>`;
            })}
          </div>
          </div>
          ${items.length
            ? // The body is the virtualizer's own scroller; the header follows its horizontal scroll.
              html`<div class="body" @scroll=${this.syncHeader}>
                ${virtualize({ scroller: true, items, renderItem: (item: DisplayItem) => this.renderRow(item, cols, pins, template), keyFunction: (item: DisplayItem) => (item.kind === 'run' ? item.run.id : `group:${item.key}`) })}
              </div>`
            : html`<div class="empty muted">${this.loading ? 'Loading runs…' : this.appliedFilter ? 'No run matches this filter.' : 'No runs yet.'}</div>`}
        </div>
      </div>
    `;
  }
}

customElements.define('wl-runs-table', WlRunsTable);

declare global {
  interface HTMLElementTagNameMap {
    'wl-runs-table': WlRunsTable;
  }
}
