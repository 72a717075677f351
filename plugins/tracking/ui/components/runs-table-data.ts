import type { ReactiveController, ReactiveControllerHost } from 'lit';
import type { tracking } from '@wanllmdb/proto/client';
import { watchProjectRuns, type LiveRunEvent } from '../charts/live.js';
import { ApiError, runsApi } from '@wanllmdb/web/kit';
import { RunKeys, formatValue, sortField, valueAt } from './runs-table-columns.js';

type Run = tracking.v1.Run;

/** The largest page ListRuns serves (run-service MAX_PAGE). */
const MAX_PAGE = 1000;
/** The first page: enough to fill the screen, quick to fetch and render. */
const FIRST_PAGE = 100;
/** Live run events are applied at most this often (a busy project does not re-render per event). */
const LIVE_BATCH_MS = 250;
/** Running runs' durations are redrawn this often. */
const TICK_MS = 5000;

export type DisplayItem = { kind: 'group'; key: string; count: number; collapsed: boolean } | { kind: 'run'; run: Run; index: number };

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

/** The table the data serves: its project and selection. */
export type RunsTableHost = ReactiveControllerHost & { readonly projectId: string; readonly selected: string[] };

/** What the data needs of the table's view. */
export interface RunsTableView {
  /** Sets the selection and announces it. */
  select(ids: string[]): void;
  /** The index of the first row in view (rows coming and going above it shift the view). */
  firstVisibleRow(): number;
}

/**
 * The rows of a runs table and what changes them: every page of the
 * project's runs (largest page, keyset cursor; the first shown at once),
 * the server-side sort and filter, the project-wide `runs:watch` stream
 * (events batched and applied in place), client-side grouping and the row
 * selection. The host re-renders on every change.
 */
export class RunsTableData implements ReactiveController {
  runs: Run[] = [];
  total = 0;
  loading = false;
  error = '';
  /** The server sort: a sort field, `-` first for descending. */
  sort = '-created_at';
  /** The filter the rows were loaded with. */
  filter = '';
  groupBy = '';
  collapsed = new Set<string>();
  /** Runs created since the last load that this sort/filter cannot place (shown as a button). */
  newRuns = 0;
  /** A live change touched the sorted field: the server's order may differ now. */
  orderChanged = false;
  /** The live stream is open. */
  live = false;
  readonly keys = new RunKeys();

  private connected = false;
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
  /** The row a shift-click range starts at (the last row clicked). */
  private anchor = -1;

  constructor(
    private readonly host: RunsTableHost,
    private readonly view: RunsTableView,
  ) {
    host.addController(this);
  }

  hostConnected(): void {
    this.connected = true;
    if (this.host.projectId) this.subscribe();
    this.tick = setInterval(() => {
      // Running runs' durations grow: redraw the visible rows (cheap; the items are cached).
      if (!document.hidden && this.runs.some((r) => r.state === 'running')) this.host.requestUpdate();
    }, TICK_MS);
  }

  hostDisconnected(): void {
    this.connected = false;
    this.abort?.abort();
    this.unsubscribe();
    clearInterval(this.tick);
    this.tick = undefined;
  }

  /** Loads the host's (new) project and watches it. */
  open(): void {
    this.keys.clear();
    void this.load();
    if (this.connected && this.liveProject !== this.host.projectId) this.subscribe();
  }

  /** Rows inserted (+) or removed (−) above the view since the last call: scroll by as many to keep the rows in view where they were. */
  takeScrollShift(): number {
    const shift = this.scrollShift;
    this.scrollShift = 0;
    return shift;
  }

  // ------------------------------------------------------------ loading

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
    this.host.requestUpdate();
    const filter = this.filter;
    let cursor = '';
    let first = true;
    try {
      do {
        // A small first page paints at once; the rest follow in the largest pages the API allows.
        const limit = first ? FIRST_PAGE : MAX_PAGE;
        const page = await runsApi.listRuns({ projectId: this.host.projectId, filter, sort: this.sort, cursor, limit }, { signal: abort.signal });
        if (abort.signal.aborted) return;
        for (const r of page.data) this.keys.note(r);
        let rows = page.data;
        if (!first && this.liveTouched) {
          // A live change may already have placed one of these rows.
          const have = new Set(this.runs.map((r) => r.id));
          rows = rows.filter((r) => !have.has(r.id));
        }
        this.runs = first ? rows : [...this.runs, ...rows];
        if (first) this.liveTouched = false;
        this.total = page.meta?.total ?? this.runs.length;
        this.host.requestUpdate();
        first = false;
        cursor = page.meta?.nextCursor ?? '';
      } while (cursor);
      // Keep only selections that still exist under this filter.
      const ids = new Set(this.runs.map((r) => r.id));
      const kept = this.host.selected.filter((id) => ids.has(id));
      if (kept.length !== this.host.selected.length) this.view.select(kept);
    } catch (e) {
      if (abort.signal.aborted || (e instanceof DOMException && e.name === 'AbortError')) return;
      this.error = e instanceof ApiError ? e.message : String(e);
      if (first) this.runs = [];
      this.host.requestUpdate();
    } finally {
      if (this.abort === abort) {
        this.loading = false;
        this.host.requestUpdate();
      }
    }
  }

  setFilter(text: string): void {
    this.filter = text.trim();
    void this.load();
  }

  /** Sorts by a column (on the server): the same column flips the direction; a new column starts ascending (newest first for the creation time). */
  sortBy(column: string): void {
    const field = sortField(column);
    if (!field) return;
    this.sort = this.sort === field ? `-${field}` : this.sort === `-${field}` ? field : column === 'created' ? `-${field}` : field;
    void this.load();
  }

  // ------------------------------------------------------------ live updates

  private subscribe(): void {
    this.unsubscribe();
    const projectId = (this.liveProject = this.host.projectId);
    this.stopLive = watchProjectRuns(projectId, {
      onEvent: (e) => this.onLiveEvent(e),
      // (Re)opened: changes made before may have been missed — fetch the top page again and merge it.
      onOpen: () => {
        this.live = true;
        this.host.requestUpdate();
        void this.reconcile(projectId);
      },
    });
  }

  private unsubscribe(): void {
    this.stopLive?.();
    this.stopLive = undefined;
    this.liveProject = '';
    if (this.live) {
      this.live = false;
      this.host.requestUpdate();
    }
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
      const page = await runsApi.listRuns({ projectId, filter: this.filter, sort: this.sort, limit: FIRST_PAGE });
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
    const firstVisible = grouped ? 0 : this.view.firstVisibleRow();
    const removed = new Set<string>();
    let removedAbove = 0;
    let removedBeforeAnchor = 0;
    let orderChanged = false;
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
      this.keys.note(run);
      next.push(run);
    }
    // New runs: at the top under the default order (newest first, no filter); else counted for the "show" button.
    const liveInsert = !this.filter && this.sort === '-created_at';
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
      for (const r of created) this.keys.note(r);
      next = [...created, ...(next ?? old)];
    }
    this.host.requestUpdate();
    if (!next) return;
    this.liveTouched = true;
    this.runs = next;
    this.total = Math.max(0, this.total + created.length - removed.size);
    if (orderChanged) this.orderChanged = true;
    if (!grouped) this.scrollShift += created.length - removedAbove;
    if (this.anchor >= 0) this.anchor = grouped ? -1 : this.anchor + created.length - removedBeforeAnchor;
    if (removed.size && this.host.selected.some((id) => removed.has(id))) this.view.select(this.host.selected.filter((id) => !removed.has(id)));
  }

  // ------------------------------------------------------------ selection

  /** Selects or unselects a row; `range` (a shift-click) does the same to every row from the last one clicked. */
  toggleRow(index: number, runId: string, range: boolean): void {
    const order = this.visibleRuns();
    const sel = new Set(this.host.selected);
    const on = !sel.has(runId);
    if (range && this.anchor >= 0 && this.anchor < order.length) {
      const [a, b] = [Math.min(this.anchor, index), Math.max(this.anchor, index)];
      for (let i = a; i <= b; i++) {
        const id = order[i]!.id;
        if (on) sel.add(id);
        else sel.delete(id);
      }
    } else if (on) sel.add(runId);
    else sel.delete(runId);
    this.anchor = index;
    this.view.select(this.runs.filter((r) => sel.has(r.id)).map((r) => r.id));
  }

  /** Every visible row is selected. */
  allSelected(): boolean {
    const visible = this.visibleRuns();
    return visible.length > 0 && visible.every((r) => this.host.selected.includes(r.id));
  }

  toggleAll(): void {
    this.view.select(this.allSelected() ? [] : this.visibleRuns().map((r) => r.id));
  }

  // ------------------------------------------------------------ grouping

  setGroupBy(key: string): void {
    this.groupBy = key;
    this.collapsed = new Set();
    this.host.requestUpdate();
  }

  toggleGroup(key: string): void {
    const next = new Set(this.collapsed);
    if (next.has(key)) next.delete(key);
    else next.add(key);
    this.collapsed = next;
    this.host.requestUpdate();
  }

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
  displayItems(): DisplayItem[] {
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
}
