import { LitElement, css, html, nothing, type TemplateResult } from 'lit';
import type { tracking } from '@wanllmdb/proto/client';
import { flatten, formatNumber, formatValue } from '../charts/series.js';
import { runDuration, shared } from '@wanllmdb/web/kit';
import { formatDuration, highlight, stateColor, when } from './run-format.js';

type Run = tracking.v1.Run;

/** <wl-config-tree>: a nested object as an expandable tree; a search filters keys and values (matches highlighted). */
export class WlConfigTree extends LitElement {
  static override properties = { value: { attribute: false }, search: {} };
  static override styles = [
    shared,
    css`
      ul {
        list-style: none;
        margin: 0;
        padding-left: 16px;
      }
      :host > ul {
        padding-left: 0;
      }
      li {
        padding: 1px 0;
      }
      summary {
        cursor: pointer;
      }
      .k {
        color: var(--wl-muted);
      }
      .v {
        font-family: var(--wl-mono);
        word-break: break-all;
      }
      mark {
        background: var(--wl-highlight);
        color: inherit;
      }
      .flat td {
        white-space: normal;
      }
    `,
  ];
  declare value: unknown;
  declare search: string;

  constructor() {
    super();
    this.value = {};
    this.search = '';
  }

  private node(key: string, v: unknown, depth: number): TemplateResult {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const entries = Object.entries(v as Record<string, unknown>);
      return html`<li>
        <details ?open=${depth < 2}>
          <summary><span class="k">${key}</span> <span class="muted">{${entries.length}}</span></summary>
          <ul>
            ${entries.map(([k, x]) => this.node(k, x, depth + 1))}
          </ul>
        </details>
      </li>`;
    }
    return html`<li data-key=${key}><span class="k">${key}:</span> <span class="v">${formatValue(v)}</span></li>`;
  }

  override render() {
    const obj = (this.value ?? {}) as Record<string, unknown>;
    if (!Object.keys(obj).length) return html`<p class="muted">Empty.</p>`;
    const q = this.search.trim();
    if (q) {
      const rows = Object.entries(flatten(obj)).filter(([k, v]) => `${k} ${formatValue(v)}`.toLowerCase().includes(q.toLowerCase()));
      if (!rows.length) return html`<p class="muted">Nothing matches “${q}”.</p>`;
      return html`<table class="flat">
        ${rows.map(([k, v]) => html`<tr data-key=${k}><td class="k">${highlight(k, q)}</td><td class="v">${highlight(formatValue(v), q)}</td></tr>`)}
      </table>`;
    }
    return html`<ul>
      ${Object.entries(obj).map(([k, v]) => this.node(k, v, 0))}
    </ul>`;
  }
}
customElements.define('wl-config-tree', WlConfigTree);

/** What the overview shows besides the run (the page's state), and what its controls do. */
export interface OverviewView {
  now: number;
  editing: '' | 'name' | 'notes';
  saving: boolean;
  summarySearch: string;
  configSearch: string;
  searchSummary(text: string): void;
  searchConfig(text: string): void;
  editNotes(): void;
  /** Saves the notes being edited. */
  saveNotes(): void;
  cancelEdit(): void;
  setTags(tags: string[]): void;
}

/** The run page's overview tab: the run, its code and environment, notes and tags, summary and config. */
export function overviewTab(run: Run, view: OverviewView): TemplateResult {
  const git: Partial<tracking.v1.GitInfo> = run.git ?? {};
  const env: Partial<tracking.v1.RunEnvironment> = run.environment ?? {};
  const summary = Object.entries(run.summary ?? {})
    .filter(([k]) => !view.summarySearch || k.toLowerCase().includes(view.summarySearch.toLowerCase()))
    .sort(([a], [b]) => a.localeCompare(b));
  return html`
    <div class="grid2">
      <section class="card" id="about">
        <h2>Run</h2>
        <dl>
          <dt>State</dt>
          <dd>
            <span class="state ${run.state}" style="color:${stateColor(run.state)}"><span class="dot" style="background:${stateColor(run.state)}"></span>${run.state}</span>
            ${run.exitCode !== undefined && run.exitCode !== null ? html`<span class="muted">(exit code ${run.exitCode})</span>` : nothing}
          </dd>
          <dt>Started</dt>
          <dd>${when(run.startedAt)}</dd>
          <dt>${run.finishedAt ? 'Finished' : 'Last heartbeat'}</dt>
          <dd>${when(run.finishedAt || run.heartbeatAt)}</dd>
          <dt>Duration</dt>
          <dd class="duration">${formatDuration(runDuration(run, view.now))}</dd>
          ${run.group ? html`<dt>Group</dt><dd>${run.group}</dd>` : nothing} ${run.jobType ? html`<dt>Job type</dt><dd>${run.jobType}</dd>` : nothing}
          <dt>Run id</dt>
          <dd class="mono">${run.id}</dd>
          ${run.createdBy ? html`<dt>Created by</dt><dd>${run.createdBy}</dd>` : nothing}
        </dl>
      </section>
      <section class="card" id="environment">
        <h2>Code and environment</h2>
        <dl>
          <dt>Git commit</dt>
          <dd class="mono">${git.commit ? html`${git.commit.slice(0, 12)}${git.dirty ? html` <span class="muted">(dirty)</span>` : nothing}` : '—'}</dd>
          <dt>Branch</dt>
          <dd>${git.branch || '—'}</dd>
          <dt>Remote</dt>
          <dd>${git.remote ? (/^https?:\/\//.test(git.remote) ? html`<a href=${git.remote} target="_blank" rel="noopener">${git.remote}</a>` : git.remote) : '—'}</dd>
          <dt>Host</dt>
          <dd>${env.host || '—'}</dd>
          <dt>OS</dt>
          <dd>${env.os || '—'}</dd>
          <dt>Runtime</dt>
          <dd>${env.runtime || '—'}</dd>
          <dt>Command</dt>
          <dd class="mono command">${env.command || '—'}</dd>
          ${env.pid ? html`<dt>PID</dt><dd>${env.pid}</dd>` : nothing}
        </dl>
      </section>
      <section class="card" id="notes">
        <h2>Notes</h2>
        ${view.editing === 'notes'
          ? html`<textarea id="notes-input" .value=${run.notes ?? ''} @keydown=${(e: KeyboardEvent) => e.key === 'Escape' && view.cancelEdit()}></textarea>
              <div class="row">
                <button class="primary" id="save-notes" ?disabled=${view.saving} @click=${() => view.saveNotes()}>Save</button
                ><button @click=${() => view.cancelEdit()}>Cancel</button>
              </div>`
          : html`<div class="notes editable" id="notes-text" title="Click to edit" @click=${() => view.editNotes()}>${run.notes || html`<span class="muted">Add notes…</span>`}</div>`}
        <h2>Tags</h2>
        <div id="tags">
          ${(run.tags ?? []).map(
            (t) => html`<span class="tag" data-tag=${t}>${t}<button title="Remove ${t}" @click=${() => view.setTags(run.tags.filter((x) => x !== t))}>×</button></span>`,
          )}
          <input
            id="tag-input"
            placeholder="Add a tag ↵"
            size="12"
            @keydown=${(e: KeyboardEvent) => {
              const input = e.target as HTMLInputElement;
              if (e.key === 'Enter' && input.value.trim()) {
                view.setTags([...(run.tags ?? []), ...input.value.split(',')]);
                input.value = '';
              }
            }}
          />
        </div>
      </section>
      <section class="card" id="summary">
        <h2>Summary</h2>
        <input type="search" placeholder="Filter" .value=${view.summarySearch} @input=${(e: Event) => view.searchSummary((e.target as HTMLInputElement).value)} />
        ${summary.length
          ? html`<table class="summary">
              ${summary.map(([k, v]) => html`<tr data-key=${k}><td>${k}</td><td class=${typeof v === 'number' ? 'num' : ''}>${typeof v === 'number' ? formatNumber(v) : formatValue(v)}</td></tr>`)}
            </table>`
          : html`<p class="muted">No summary values.</p>`}
      </section>
    </div>
    <section class="card" id="config" style="margin-top:var(--wl-gap)">
      <div class="row" style="justify-content:space-between">
        <h2 style="margin:0">Config</h2>
        <input type="search" id="config-search" placeholder="Search keys and values" .value=${view.configSearch} @input=${(e: Event) => view.searchConfig((e.target as HTMLInputElement).value)} />
      </div>
      <wl-config-tree .value=${run.config ?? {}} .search=${view.configSearch}></wl-config-tree>
    </section>
  `;
}
