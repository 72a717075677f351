import { LitElement, css, html, nothing, type PropertyValues } from 'lit';
import { virtualize } from '@lit-labs/virtualizer/virtualize.js';
import type { tracking } from '@wanllmdb/proto/client';
import { formatDuration, runDuration, shared, shortTime } from '@wanllmdb/web/kit';
import { ColumnChoice, gridTemplate, keyCell, label, sortField } from './runs-table-columns.js';
import { RunsTableData, type DisplayItem } from './runs-table-data.js';

type Run = tracking.v1.Run;

const ROW_HEIGHT = 34;

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
 * and filter. The rows and what changes them are `RunsTableData`'s; the
 * columns are `ColumnChoice`'s.
 */
export class WlRunsTable extends LitElement {
  static override properties = {
    projectId: {},
    selected: { attribute: false },
    filterText: { state: true },
    chooserOpen: { state: true },
    chooserSearch: { state: true },
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
  /** The filter box's text (applied on Enter or Apply). */
  declare filterText: string;
  declare chooserOpen: boolean;
  declare chooserSearch: string;

  private readonly data = new RunsTableData(this, {
    select: (ids) => this.setSelection(ids),
    firstVisibleRow: () => {
      const body = this.body();
      return body ? Math.floor(body.scrollTop / ROW_HEIGHT) : 0;
    },
  });
  private readonly columnChoice = new ColumnChoice(this.data.keys, () => this.requestUpdate());
  private dragging = '';
  private dropTarget = '';

  constructor() {
    super();
    this.projectId = '';
    this.selected = [];
    this.filterText = '';
    this.chooserOpen = false;
    this.chooserSearch = '';
  }

  protected override willUpdate(changed: PropertyValues<this>): void {
    if (changed.has('projectId') && this.projectId) {
      this.columnChoice.open(this.projectId);
      this.data.open();
    }
  }

  protected override updated(): void {
    // Rows inserted or removed above the viewport: keep the rows in view where they were.
    const shift = this.data.takeScrollShift();
    if (!shift) return;
    const body = this.body();
    if (!body || body.scrollTop <= 0) return;
    // After the virtualizer has resized its content.
    requestAnimationFrame(() => (body.scrollTop = Math.max(0, body.scrollTop + shift * ROW_HEIGHT)));
  }

  /** Loads every page: the first renders at once, the rest arrive in the background. */
  load(): Promise<void> {
    return this.data.load();
  }

  /** The visible columns, in order, pinned first. */
  get columns(): string[] {
    return this.columnChoice.shown;
  }

  private setSelection(ids: string[]): void {
    this.selected = ids;
    this.dispatchEvent(new CustomEvent('wl-selection', { detail: { runIds: ids }, bubbles: true, composed: true }));
  }

  private body(): HTMLElement | null {
    return this.renderRoot.querySelector<HTMLElement>('.body');
  }

  // ------------------------------------------------------------ events

  private onFilterKey(e: KeyboardEvent): void {
    if (e.key === 'Enter') this.data.setFilter((e.target as HTMLInputElement).value);
  }

  private onFilterSearch(e: Event): void {
    // The clear button of a search field.
    const v = (e.target as HTMLInputElement).value;
    this.filterText = v;
    if (!v && this.data.filter) this.data.setFilter('');
  }

  private sortMark(column: string): string {
    const field = sortField(column);
    if (!field) return '';
    if (this.data.sort === field) return '▲';
    if (this.data.sort === `-${field}`) return '▼';
    return '';
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
    if (from) this.columnChoice.move(from, column);
    else this.requestUpdate();
  }

  // ------------------------------------------------------------ rendering

  private readonly syncHeader = (e: Event): void => {
    const wrap = this.renderRoot.querySelector<HTMLElement>('.headwrap');
    if (wrap) wrap.scrollLeft = (e.target as HTMLElement).scrollLeft;
  };

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
      default:
        return keyCell(run, column);
    }
  }

  private renderRow(item: DisplayItem, cols: string[], pins: Map<string, number>, template: string) {
    if (item.kind === 'group') {
      return html`<div class="group" data-testid="run-group" data-group=${item.key} @click=${() => this.data.toggleGroup(item.key)}>
        <span>${item.collapsed ? '▸' : '▾'}</span><span>${this.data.groupBy} = ${item.key}</span><span class="muted">(${item.count})</span>
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
          @click=${(e: MouseEvent) => this.data.toggleRow(item.index, run.id, e.shiftKey)}
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
    const pinned = this.columnChoice.pinned;
    const q = this.chooserSearch.toLowerCase();
    const all = this.data.keys.all().filter((c) => !q || c.toLowerCase().includes(q));
    return html`<div class="chooser" data-testid="column-chooser">
      <div class="row">
        <input type="search" placeholder="Find a column" .value=${this.chooserSearch} @input=${(e: Event) => (this.chooserSearch = (e.target as HTMLInputElement).value)} />
        <button @click=${() => this.columnChoice.reset()} title="Back to the default columns">Reset</button>
        <button @click=${() => (this.chooserOpen = false)}>Close</button>
      </div>
      <p class="muted status">Drag column headers to reorder them; pinned columns stay on the left.</p>
      <ul>
        ${all.slice(0, 500).map(
          (c) => html`<li>
            <input type="checkbox" data-testid="column-toggle" data-col=${c} .checked=${shown.has(c)} @change=${(e: Event) => this.columnChoice.setShown(c, (e.target as HTMLInputElement).checked)} />
            <span title=${c}>${label(c)}</span>
            <button data-testid="column-pin" data-col=${c} @click=${() => this.columnChoice.togglePin(c)}>${pinned.has(c) ? 'Unpin' : 'Pin'}</button>
          </li>`,
        )}
      </ul>
    </div>`;
  }

  override render() {
    const data = this.data;
    const cols = this.columns;
    const template = gridTemplate(cols);
    const pins = this.columnChoice.pinOffsets(cols);
    const lastPinned = [...pins.keys()].at(-1);
    const items = data.displayItems();
    const groupKeys = ['group', 'jobType', 'state', ...data.keys.configColumns()];
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
        <button @click=${() => data.setFilter(this.filterText)}>Apply</button>
        <label class="row"
          >Group by
          <select data-testid="group-by" .value=${data.groupBy} @change=${(e: Event) => data.setGroupBy((e.target as HTMLSelectElement).value)}>
            <option value="">(none)</option>
            ${groupKeys.map((k) => html`<option value=${k} ?selected=${k === data.groupBy}>${k}</option>`)}
          </select></label
        >
        <button data-testid="columns" @click=${() => (this.chooserOpen = !this.chooserOpen)}>Columns</button>
        <span class="muted status" data-testid="runs-count"
          >${data.loading ? `Loading ${data.runs.length} of ${data.total || '…'} runs` : `${data.total} runs`}${this.selected.length ? ` · ${this.selected.length} selected` : ''}</span
        >
        ${data.live ? html`<span class="live" data-testid="runs-live" title="Runs update as they change">● live</span>` : nothing}
        ${data.newRuns
          ? html`<button data-testid="runs-new" @click=${() => void this.load()}>${data.newRuns} new run${data.newRuns === 1 ? '' : 's'} — show</button>`
          : nothing}
        ${data.orderChanged
          ? html`<span class="muted hint" data-testid="runs-order-hint">Order may have changed — <a href="#" @click=${(e: Event) => (e.preventDefault(), void this.load())}>refresh</a></span>`
          : nothing}
      </div>
      ${data.error ? html`<p class="error" data-testid="runs-error">${data.error}</p>` : nothing}
      <div class="wrap">
        ${this.chooserOpen ? this.renderChooser() : nothing}
        <div class="table">
          <div class="headwrap">
          <div class="head" style="grid-template-columns:${template}">
            <div class="cell pinned" style="left:0">
              <input type="checkbox" data-testid="select-all" aria-label="Select all" .checked=${data.allSelected()} @click=${() => data.toggleAll()} />
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
                @click=${() => data.sortBy(c)}
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
            : html`<div class="empty muted">${data.loading ? 'Loading runs…' : data.filter ? 'No run matches this filter.' : 'No runs yet.'}</div>`}
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
