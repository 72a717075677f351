import { LitElement, css, html, nothing, type PropertyValues } from 'lit';
import type { artifacts } from '@wanllmdb/plugin-artifacts/client';
import { artifactsApi, controlBar, describeError, shared } from '@wanllmdb/web/kit';
import type { ArtifactsState } from './links.js';
import { formatBytes } from './preview.js';

/** Entries listed at most (the counts cover every file). */
const DIFF_LIMIT = 1000;

/**
 * <wl-artifact-diff>: what changed between two versions (`from` → `to`,
 * chosen from the loaded versions; by default the one before the latest and
 * the latest), computed by the server (DiffVersions): counts, the size
 * change, and each added, removed or changed file with its sizes.
 */
export class WlArtifactDiff extends LitElement {
  static override properties = {
    artifactId: { attribute: false },
    versions: { attribute: false },
    from: { attribute: false },
    to: { attribute: false },
    go: { attribute: false },
    diff: { state: true },
    loading: { state: true },
    error: { state: true },
    only: { state: true },
  };

  static override styles = [
    shared,
    controlBar,
    css`
      td.num {
        text-align: right;
        font-variant-numeric: tabular-nums;
      }
      td.path {
        white-space: normal;
        word-break: break-all;
      }
      .added {
        color: var(--wl-ok);
      }
      .removed {
        color: var(--wl-danger);
      }
      .changed {
        color: var(--wl-warn);
      }
      button[aria-pressed='true'] {
        border-color: var(--wl-accent);
        color: var(--wl-accent);
        font-weight: 600;
      }
      .counts span {
        margin-right: 12px;
        font-weight: 600;
      }
    `,
  ];

  declare artifactId: string;
  declare versions: artifacts.v1.Version[];
  declare from: string;
  declare to: string;
  declare go: (change: Partial<ArtifactsState>) => void;
  declare diff: artifacts.v1.DiffVersionsResponse | undefined;
  declare loading: boolean;
  declare error: string;
  declare only: '' | 'added' | 'removed' | 'changed';
  private seq = 0;
  private loadedFor = '';

  constructor() {
    super();
    this.artifactId = '';
    this.versions = [];
    this.from = '';
    this.to = '';
    this.go = () => undefined;
    this.diff = undefined;
    this.loading = false;
    this.error = '';
    this.only = '';
  }

  /** The two versions compared: the address's, else the one before the newest and the newest. */
  private get pair(): [string, string] {
    const newest = this.versions[0]?.version ?? '';
    const before = this.versions[1]?.version ?? newest;
    return [this.from || before, this.to || newest];
  }

  protected override willUpdate(changed: PropertyValues<this>): void {
    if (!(changed.has('artifactId') || changed.has('versions') || changed.has('from') || changed.has('to'))) return;
    const [from, to] = this.pair;
    const key = `${this.artifactId}\n${from}\n${to}`;
    if (from && to && key !== this.loadedFor) {
      this.loadedFor = key;
      void this.load(from, to);
    }
  }

  private async load(from: string, to: string): Promise<void> {
    const seq = ++this.seq;
    this.loading = true;
    this.error = '';
    try {
      const d = await artifactsApi.diffVersions({ artifactId: this.artifactId, from, to, limit: DIFF_LIMIT });
      if (seq === this.seq) this.diff = d;
    } catch (e) {
      if (seq === this.seq) (this.error = describeError(e)), (this.diff = undefined);
    } finally {
      if (seq === this.seq) this.loading = false;
    }
  }

  override render() {
    if (this.versions.length < 2) return html`<p class="muted" data-testid="diff-need-two">A diff needs two versions; this artifact has ${this.versions.length}.</p>`;
    const [from, to] = this.pair;
    const select = (which: 'from' | 'to', value: string) =>
      html`<select aria-label=${which === 'from' ? 'From version' : 'To version'} data-testid="diff-${which}" @change=${(e: Event) => this.go({ [which]: (e.target as HTMLSelectElement).value })}>
        ${this.versions.map((v) => html`<option value=${v.version} ?selected=${v.version === value}>${v.version}${v.aliases.length ? ` (${v.aliases.join(', ')})` : ''}</option>`)}
      </select>`;
    return html`
      <div class="bar">
        <span>From</span>${select('from', from)}<span>to</span>${select('to', to)}
        <button @click=${() => this.go({ from: to, to: from })} title="Swap the two versions">⇄ Swap</button>
      </div>
      ${this.error ? html`<p class="error" role="alert" data-testid="diff-error">${this.error}</p>` : nothing}
      ${this.renderDiff()}
    `;
  }

  private renderDiff() {
    const d = this.diff;
    if (!d) return this.loading ? html`<p class="muted" role="status">Comparing…</p>` : nothing;
    const total = d.added + d.removed + d.changed;
    const entries = this.only ? d.data.filter((e) => e.status === this.only) : d.data;
    const filter = (s: typeof this.only, label: string) =>
      html`<button aria-pressed=${this.only === s} @click=${() => (this.only = s)}>${label}</button>`;
    return html`
      <p class="counts" data-testid="diff-summary" aria-busy=${this.loading}>
        <span class="added" data-testid="diff-added">+${d.added} added</span>
        <span class="removed" data-testid="diff-removed">−${d.removed} removed</span>
        <span class="changed" data-testid="diff-changed">~${d.changed} changed</span>
        <span class="muted">size ${d.sizeDelta >= 0 ? '+' : '−'}${formatBytes(Math.abs(d.sizeDelta))}</span>
      </p>
      ${total
        ? html`<div class="bar">${filter('', 'All')}${filter('added', 'Added')}${filter('removed', 'Removed')}${filter('changed', 'Changed')}</div>
            <table data-testid="diff-table">
              <thead>
                <tr><th>Change</th><th>Path</th><th style="text-align:right">Size before</th><th style="text-align:right">Size after</th></tr>
              </thead>
              <tbody>
                ${entries.map(
                  (e) => html`<tr data-testid="diff-row" data-status=${e.status} data-path=${e.path}>
                    <td class=${e.status}>${e.status}</td>
                    <td class="path mono">${e.path}</td>
                    <td class="num">${e.status === 'added' ? '—' : formatBytes(e.fromSize)}</td>
                    <td class="num">${e.status === 'removed' ? '—' : formatBytes(e.toSize)}</td>
                  </tr>`,
                )}
              </tbody>
            </table>
            ${d.data.length < total ? html`<p class="muted">The first ${d.data.length} of ${total} changes.</p>` : nothing}`
        : html`<p class="muted" data-testid="diff-same">The two versions hold the same files.</p>`}
    `;
  }
}

customElements.define('wl-artifact-diff', WlArtifactDiff);
