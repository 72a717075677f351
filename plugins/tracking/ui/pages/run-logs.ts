import { LitElement, css, html, nothing, type PropertyValues } from 'lit';
import '@lit-labs/virtualizer';
import type { LitVirtualizer } from '@lit-labs/virtualizer/LitVirtualizer.js';
import type { tracking } from '@wanllmdb/proto/client';
import { controlBar, shared } from '@wanllmdb/web/kit';
import { highlight } from './run-format.js';
import { RunLogsFeed } from './run-logs-data.js';

type LogLine = tracking.v1.LogLine;

/** <wl-run-logs>: the run's console, virtualised; search highlights; follow keeps loading new lines (`RunLogsFeed`). */
export class WlRunLogs extends LitElement {
  static override properties = {
    runId: { attribute: false },
    running: { type: Boolean },
    search: { state: true },
    onlyMatches: { state: true },
    follow: { state: true },
    current: { state: true },
  };
  static override styles = [
    shared,
    controlBar,
    css`
      lit-virtualizer {
        height: calc(100vh - 260px);
        min-height: 300px;
        border: 1px solid var(--wl-border);
        border-radius: var(--wl-radius);
        background: var(--wl-surface);
        font: 12px/1.5 var(--wl-mono);
      }
      .line {
        display: flex;
        gap: 10px;
        width: 100%;
        padding: 0 8px;
        box-sizing: border-box;
        white-space: pre-wrap;
        word-break: break-all;
      }
      .line .n {
        color: var(--wl-muted);
        min-width: 5ch;
        text-align: right;
        user-select: none;
        flex: none;
      }
      .line.stderr .t {
        color: var(--wl-danger);
      }
      .line.current {
        background: color-mix(in srgb, var(--wl-accent) 14%, transparent);
      }
      mark {
        background: var(--wl-highlight);
        color: inherit;
      }
    `,
  ];

  declare runId: string;
  declare running: boolean;
  declare search: string;
  declare onlyMatches: boolean;
  declare follow: boolean;
  declare current: number;
  private readonly feed = new RunLogsFeed(this, () => {
    if (this.follow) void this.updateComplete.then(() => this.scrollToLine(this.visible().length - 1, 'end'));
  });

  constructor() {
    super();
    this.runId = '';
    this.running = false;
    this.search = '';
    this.onlyMatches = false;
    this.follow = true;
    this.current = -1;
  }

  /** The lines loaded so far (the newest `MAX_LOG_LINES`). */
  get lines(): LogLine[] {
    return this.feed.lines;
  }

  protected override updated(changed: PropertyValues<this>): void {
    if ((changed.has('running' as keyof WlRunLogs) || changed.has('follow' as keyof WlRunLogs)) && this.running && this.follow) this.feed.resume();
  }

  private visible(): LogLine[] {
    const q = this.search.trim().toLowerCase();
    return q && this.onlyMatches ? this.lines.filter((l) => l.line.toLowerCase().includes(q)) : this.lines;
  }

  private matchIndexes(): number[] {
    const q = this.search.trim().toLowerCase();
    if (!q) return [];
    const out: number[] = [];
    this.visible().forEach((l, i) => l.line.toLowerCase().includes(q) && out.push(i));
    return out;
  }

  private scrollToLine(index: number, block: ScrollLogicalPosition = 'center'): void {
    const v = this.renderRoot.querySelector<LitVirtualizer>('lit-virtualizer');
    if (index >= 0) v?.element(index)?.scrollIntoView({ block });
  }

  private jump(dir: 1 | -1): void {
    const m = this.matchIndexes();
    if (!m.length) return;
    const pos = m.findIndex((i) => (dir > 0 ? i > this.current : i >= this.current));
    let next: number;
    if (dir > 0) next = pos < 0 ? m[0]! : m[pos]!;
    else next = pos <= 0 ? m[m.length - 1]! : m[pos - 1]!;
    this.current = next;
    this.follow = false;
    this.scrollToLine(next);
  }

  override render() {
    const q = this.search.trim();
    const items = this.visible();
    const count = q ? this.matchIndexes().length : 0;
    return html`
      <div class="bar">
        <input
          type="search"
          class="log-search"
          placeholder="Search the log"
          .value=${this.search}
          @input=${(e: Event) => ((this.search = (e.target as HTMLInputElement).value), (this.current = -1))}
          @keydown=${(e: KeyboardEvent) => e.key === 'Enter' && this.jump(e.shiftKey ? -1 : 1)}
        />
        ${q
          ? html`<span class="muted matches">${count} matching line${count === 1 ? '' : 's'}</span>
              <button @click=${() => this.jump(-1)} ?disabled=${!count}>↑</button><button @click=${() => this.jump(1)} ?disabled=${!count}>↓</button>
              <label><input type="checkbox" .checked=${this.onlyMatches} @change=${(e: Event) => (this.onlyMatches = (e.target as HTMLInputElement).checked)} /> only matches</label>`
          : nothing}
        <span style="flex:1"></span>
        <label title="Keep loading new lines and stay at the end"
          ><input type="checkbox" class="follow" .checked=${this.follow} @change=${(e: Event) => (this.follow = (e.target as HTMLInputElement).checked)} /> follow${this.running ? '' : ' (run ended)'}</label
        >
        <span class="muted">${this.lines.length.toLocaleString()} lines${this.feed.loading ? ' · loading…' : ''}</span>
      </div>
      ${this.feed.error ? html`<p class="error">${this.feed.error}</p>` : nothing}
      ${this.lines.length || this.feed.loading
        ? html`<lit-virtualizer
            scroller
            .items=${items}
            .keyFunction=${(l: LogLine) => l.seq}
            .renderItem=${(l: LogLine, i: number) =>
              html`<div class="line ${l.stream} ${i === this.current ? 'current' : ''}" data-seq=${l.seq}>
                <span class="n">${l.seq}</span><span class="t">${highlight(l.line, q)}</span>
              </div>`}
          ></lit-virtualizer>`
        : html`<p class="muted">No console output${this.running ? ' yet' : ''}.</p>`}
    `;
  }
}
customElements.define('wl-run-logs', WlRunLogs);
