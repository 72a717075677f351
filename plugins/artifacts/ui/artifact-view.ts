import { LitElement, css, html, nothing, type PropertyValues } from 'lit';
import type { artifacts } from '@wanllmdb/plugin-artifacts/client';
import { artifactsApi, badge, controlBar, dataOf, describeError, factList, navigate, pager, pagerStyles, shared, shortTime, tabBarStyles } from '@wanllmdb/web/kit';
import './dataset-validate.js';
import './diff-view.js';
import './files-browser.js';
import { runNamesOf } from './lineage-view.js';
import { artifactsHref, runHref, VIEWS, type ArtifactView, type ArtifactsState } from './links.js';
import { formatBytes, shortDigest } from './preview.js';

const VERSIONS_PAGE = 100;

/**
 * <wl-artifact-view>: one collection — its description, metadata and tags,
 * then (by `state.view`) its versions (with the selected version's
 * metadata, aliases to set, move or remove, and delete), the selected
 * version's files, a diff of two versions, the selected version's lineage,
 * or the history of its aliases. A dataset's version (or file) can be
 * validated (<wl-dataset-validate>).
 */
export class WlArtifactView extends LitElement {
  static override properties = {
    projectId: { attribute: false },
    artifactId: { attribute: false },
    state: { attribute: false },
    artifact: { state: true },
    versions: { state: true },
    versionsMeta: { state: true },
    versionsPage: { state: true },
    history: { state: true },
    error: { state: true },
    actionError: { state: true },
    busy: { state: true },
    armedDelete: { state: true },
    runNames: { state: true },
  };

  static override styles = [
    shared,
    badge,
    factList,
    controlBar,
    pagerStyles,
    tabBarStyles,
    css`
      .head {
        display: flex;
        align-items: baseline;
        gap: 12px;
        flex-wrap: wrap;
      }
      .head h1 {
        margin: 0;
      }
      pre.json {
        margin: 0;
        max-height: 320px;
        overflow: auto;
        font-family: var(--wl-mono);
        font-size: 12px;
        white-space: pre-wrap;
        word-break: break-word;
      }
      .cards {
        display: grid;
        grid-template-columns: repeat(auto-fit, minmax(320px, 1fr));
        gap: var(--wl-gap);
        margin: var(--wl-gap) 0;
      }
      .cards h2 {
        margin-top: 0;
      }
      tr.selected td {
        background: var(--wl-highlight, color-mix(in srgb, var(--wl-accent) 10%, transparent));
      }
      td.num {
        text-align: right;
        font-variant-numeric: tabular-nums;
      }
      .alias {
        display: inline-flex;
        align-items: center;
        gap: 2px;
        padding: 0 4px 0 8px;
        border-radius: 10px;
        background: color-mix(in srgb, var(--wl-accent) 15%, transparent);
        margin: 0 4px 2px 0;
        font-size: 12px;
      }
      .alias button {
        border: none;
        background: none;
        padding: 0 3px;
        color: var(--wl-muted);
      }
      dd {
        word-break: break-all;
      }
    `,
  ];

  declare projectId: string;
  declare artifactId: string;
  declare state: ArtifactsState;
  declare artifact: artifacts.v1.Artifact | undefined;
  declare versions: artifacts.v1.Version[] | undefined;
  declare versionsMeta: artifacts.v1.ListVersionsResponse['meta'];
  declare versionsPage: number;
  declare history: artifacts.v1.AliasEvent[] | undefined;
  declare error: string;
  declare actionError: string;
  declare busy: boolean;
  declare armedDelete: string;
  /** Names of the runs that logged the loaded versions. */
  declare runNames: ReadonlyMap<string, string>;
  private seq = 0;

  constructor() {
    super();
    this.projectId = '';
    this.artifactId = '';
    this.state = {};
    this.artifact = undefined;
    this.versions = undefined;
    this.versionsMeta = undefined;
    this.versionsPage = 1;
    this.history = undefined;
    this.error = '';
    this.actionError = '';
    this.busy = false;
    this.armedDelete = '';
    this.runNames = new Map();
  }

  protected override willUpdate(changed: PropertyValues<this>): void {
    if (changed.has('artifactId') && this.artifactId) {
      this.artifact = undefined;
      this.versions = undefined;
      this.history = undefined;
      this.versionsPage = 1;
      void this.load();
    } else if (changed.has('versionsPage')) void this.load();
    if (changed.has('state') && this.view === 'aliases' && !this.history) void this.loadHistory();
  }

  private get view(): ArtifactView {
    return this.state.view ?? 'versions';
  }

  /** The selected version: the address's, else the one "latest" names. */
  private get version(): string {
    return this.state.v || this.artifact?.latestVersion || '';
  }

  private async load(): Promise<void> {
    const seq = ++this.seq;
    this.error = '';
    try {
      const [a, v] = await Promise.all([
        artifactsApi.getArtifact({ id: this.artifactId }),
        artifactsApi.listVersions({ artifactId: this.artifactId, page: this.versionsPage, pageSize: VERSIONS_PAGE }),
      ]);
      if (seq !== this.seq) return;
      this.artifact = dataOf(a);
      this.versions = v.data;
      this.versionsMeta = v.meta;
      document.title = `${this.artifact.name} · artifacts · wanLLMDB`;
      void runNamesOf(v.data.map((x) => x.runId)).then((names) => {
        if (seq === this.seq) this.runNames = names;
      });
      if (this.view === 'aliases' || this.history) void this.loadHistory();
    } catch (e) {
      if (seq === this.seq) this.error = describeError(e);
    }
  }

  private async loadHistory(): Promise<void> {
    try {
      this.history = (await artifactsApi.listAliasHistory({ artifactId: this.artifactId, alias: '' })).data;
    } catch (e) {
      this.actionError = describeError(e);
    }
  }

  private go(change: Partial<ArtifactsState>, replace = false): void {
    navigate(artifactsHref(this.projectId, { ...this.state, ...change, artifact: this.artifactId }), { replace });
  }

  /** Runs a change (alias, delete), then reloads what it changed; its error shows above the versions. */
  private async act(what: () => Promise<unknown>): Promise<void> {
    this.busy = true;
    this.actionError = '';
    try {
      await what();
      await this.load();
      if (this.history) await this.loadHistory();
    } catch (e) {
      this.actionError = describeError(e);
    } finally {
      this.busy = false;
    }
  }

  private setAlias(e: SubmitEvent): void {
    e.preventDefault();
    const form = e.target as HTMLFormElement;
    const alias = String(new FormData(form).get('alias') ?? '').trim();
    if (!alias) {
      this.actionError = 'Name the alias (for example "production").';
      return;
    }
    void this.act(async () => {
      await artifactsApi.setAlias({ artifactId: this.artifactId, alias, version: this.version });
      form.reset();
    });
  }

  private removeAlias(alias: string): void {
    void this.act(() => artifactsApi.deleteAlias({ artifactId: this.artifactId, alias }));
  }

  private deleteVersion(version: string): void {
    this.armedDelete = '';
    void this.act(async () => {
      await artifactsApi.deleteVersion({ artifactId: this.artifactId, version });
      if (this.state.v === version) this.go({ v: undefined }, true);
    });
  }

  override render() {
    if (this.error && !this.artifact)
      return html`<p class="error" role="alert" data-testid="artifact-error">${this.error}</p>
        <a href=${artifactsHref(this.projectId)}>All artifacts</a>`;
    const a = this.artifact;
    if (!a) return html`<p class="muted" role="status">Loading artifact…</p>`;
    const view = this.view;
    return html`
      <div class="muted"><a href=${artifactsHref(this.projectId)} data-testid="artifacts-all">Artifacts</a> / ${a.type}</div>
      <div class="head">
        <h1 data-testid="artifact-name">${a.name}</h1>
        <span class="badge">${a.type}</span>
        ${a.tags.map((t) => html`<span class="badge">${t}</span>`)}
        <span class="muted">${a.versionCount} ${a.versionCount === 1 ? 'version' : 'versions'} committed</span>
      </div>
      ${a.description ? html`<p>${a.description}</p>` : nothing}
      ${this.error ? html`<p class="error" role="alert">${this.error}</p>` : nothing}
      <nav class="tabs" role="tablist">
        ${VIEWS.map(
          (v) => html`<a
            role="tab"
            href=${artifactsHref(this.projectId, { ...this.state, artifact: a.id, view: v === 'versions' ? undefined : v, file: undefined })}
            aria-selected=${v === view}
            data-testid="artifact-view-${v}"
            >${v[0]!.toUpperCase() + v.slice(1)}</a
          >`,
        )}
      </nav>
      ${this.actionError ? html`<p class="error" role="alert" data-testid="artifact-action-error">${this.actionError}</p>` : nothing}
      ${this.renderView(a, view)}
    `;
  }

  private renderView(a: artifacts.v1.Artifact, view: ArtifactView) {
    const version = this.version;
    const needVersion = (what: string) => html`<p class="muted" data-testid="artifact-no-version">This artifact has no committed version yet, so it has no ${what}.</p>`;
    switch (view) {
      case 'versions':
        return this.renderVersions(a);
      case 'files':
        return version
          ? html`${this.versionPicker()}
              <wl-artifact-files .artifactId=${a.id} .version=${version} .dir=${this.state.dir ?? ''} .file=${this.state.file ?? ''} .go=${(c: Partial<ArtifactsState>) => this.go(c)}></wl-artifact-files>
              ${a.type === 'dataset' ? html`<wl-dataset-validate style="display:block;margin-top:var(--wl-gap)" .datasetId=${a.id} .version=${version} .path=${this.state.file ?? ''}></wl-dataset-validate>` : nothing}`
          : needVersion('files');
      case 'diff':
        return html`<wl-artifact-diff .artifactId=${a.id} .versions=${this.versions ?? []} .from=${this.state.from ?? ''} .to=${this.state.to ?? ''} .go=${(c: Partial<ArtifactsState>) => this.go(c, true)}></wl-artifact-diff>`;
      case 'lineage':
        return version
          ? html`${this.versionPicker()}
              <wl-artifact-lineage
                .artifactId=${a.id}
                .version=${version}
                .hops=${this.state.hops ?? 3}
                .direction=${this.state.direction ?? 'both'}
                .go=${(c: Partial<ArtifactsState>) => this.go(c, true)}
              ></wl-artifact-lineage>`
          : needVersion('lineage');
      case 'aliases':
        return this.renderHistory();
    }
  }

  /** A select of the loaded versions that changes `?v=`. */
  private versionPicker() {
    const versions = this.versions ?? [];
    return html`<div class="bar">
      <label>Version
        <select data-testid="version-picker" @change=${(e: Event) => this.go({ v: (e.target as HTMLSelectElement).value, file: undefined, dir: undefined })}>
          ${versions.map((v) => html`<option value=${v.version} ?selected=${v.version === this.version}>${v.version}${v.aliases.length ? ` (${v.aliases.join(', ')})` : ''}</option>`)}
        </select>
      </label>
    </div>`;
  }

  private renderVersions(a: artifacts.v1.Artifact) {
    const versions = this.versions;
    if (!versions) return html`<p class="muted" role="status">Loading versions…</p>`;
    const selected = versions.find((v) => v.version === this.version);
    return html`
      ${versions.length
        ? html`<table data-testid="versions-table">
            <thead>
              <tr><th>Version</th><th>Aliases</th><th>Digest</th><th style="text-align:right">Size</th><th style="text-align:right">Files</th><th>Created</th><th>Run</th><th></th></tr>
            </thead>
            <tbody>
              ${versions.map(
                (v) => html`<tr class=${v.version === this.version ? 'selected' : ''} data-testid="version-row" data-version=${v.version}>
                  <td><a href=${artifactsHref(this.projectId, { ...this.state, artifact: a.id, v: v.version })} class="mono">${v.version}</a></td>
                  <td>${v.aliases.map((al) => html`<span class="alias">${al}</span>`)}</td>
                  <td class="mono" title=${v.digest}>${shortDigest(v.digest)}</td>
                  <td class="num">${formatBytes(v.size)}</td>
                  <td class="num">${v.fileCount}</td>
                  <td title=${v.createdAt}>${shortTime(v.createdAt)}</td>
                  <td>${v.runId ? html`<a href=${runHref(v.runId)} data-testid="version-run" title=${v.runId}>${this.runNames.get(v.runId) ?? html`<span class="mono">${v.runId.slice(0, 12)}</span>`}</a>` : html`<span class="muted">—</span>`}</td>
                  <td>
                    <a href=${artifactsHref(this.projectId, { artifact: a.id, v: v.version, view: 'files' })}>Files</a> ·
                    <a href=${artifactsHref(this.projectId, { artifact: a.id, v: v.version, view: 'lineage' })}>Lineage</a>
                  </td>
                </tr>`,
              )}
            </tbody>
          </table>`
        : html`<p class="muted" data-testid="artifact-no-version">No version yet: commit one with <span class="mono">run.logArtifact(…)</span> or <span class="mono">wanllmdb artifact put</span>.</p>`}
      ${pager(this.versionsMeta, { page: this.versionsPage, go: (p) => (this.versionsPage = p), testIdPrefix: 'versions' })}
      <div class="cards">
        ${selected ? this.renderVersionCard(a, selected) : nothing}
        <section class="card">
          <h2>Collection</h2>
          <dl>
            <dt>Id</dt>
            <dd class="mono">${a.id}</dd>
            <dt>Created</dt>
            <dd>${shortTime(a.createdAt)}</dd>
            <dt>Latest</dt>
            <dd class="mono">${a.latestVersion || '—'}</dd>
          </dl>
          <h2>Metadata</h2>
          ${metadataBlock(a.metadata, 'artifact-metadata')}
        </section>
      </div>
      ${a.type === 'dataset' && selected ? html`<wl-dataset-validate .datasetId=${a.id} .version=${selected.version} .path=${''}></wl-dataset-validate>` : nothing}
    `;
  }

  private renderVersionCard(a: artifacts.v1.Artifact, v: artifacts.v1.Version) {
    const custom = v.aliases.filter((al) => al !== 'latest');
    return html`<section class="card" data-testid="version-card" data-version=${v.version}>
      <h2>Version <span class="mono">${v.version}</span></h2>
      <dl>
        <dt>Digest</dt>
        <dd class="mono">${v.digest}</dd>
        <dt>Size</dt>
        <dd>${formatBytes(v.size)} in ${v.fileCount} ${v.fileCount === 1 ? 'file' : 'files'}</dd>
        <dt>Created</dt>
        <dd>${shortTime(v.createdAt)}</dd>
        <dt>Run</dt>
        <dd>${v.runId ? html`<a href=${runHref(v.runId)} title=${v.runId}>${this.runNames.get(v.runId) ?? html`<span class="mono">${v.runId}</span>`}</a>` : html`<span class="muted">none</span>`}</dd>
        ${v.description ? html`<dt>Description</dt><dd>${v.description}</dd>` : nothing}
        <dt>Aliases</dt>
        <dd data-testid="version-aliases">
          ${v.aliases.includes('latest') ? html`<span class="alias" title="moves by itself to each new version">latest</span>` : nothing}
          ${custom.map(
            (al) => html`<span class="alias" data-alias=${al}
              >${al}<button title="Remove the alias ${al}" aria-label="Remove the alias ${al}" ?disabled=${this.busy} @click=${() => this.removeAlias(al)} data-testid="alias-remove">×</button></span
            >`,
          )}
          ${!v.aliases.length ? html`<span class="muted">none</span>` : nothing}
        </dd>
      </dl>
      <form class="row" style="margin-top:8px" @submit=${this.setAlias} data-testid="alias-form">
        <input name="alias" placeholder="alias, e.g. production" aria-label="Alias to point at ${v.version}" maxlength="128" autocomplete="off" data-testid="alias-input" />
        <button type="submit" ?disabled=${this.busy} data-testid="alias-set" title="Sets the alias, moving it here if another version has it">Set alias</button>
        ${this.armedDelete === v.version
          ? html`<button type="button" class="danger" ?disabled=${this.busy} @click=${() => this.deleteVersion(v.version)} data-testid="version-delete-confirm">Delete ${v.version}</button
              ><button type="button" @click=${() => (this.armedDelete = '')}>Keep</button>`
          : html`<button type="button" class="danger" @click=${() => (this.armedDelete = v.version)} data-testid="version-delete">Delete version</button>`}
      </form>
      <p class="muted" style="font-size:12px">Aliases need the <span class="mono">artifacts:alias</span> permission, deleting <span class="mono">artifacts:delete</span>.</p>
      <h2>Metadata</h2>
      ${metadataBlock(v.metadata, 'version-metadata')}
      <p><a href=${artifactsHref(this.projectId, { artifact: a.id, view: 'aliases' })}>Alias history</a></p>
    </section>`;
  }

  private renderHistory() {
    const h = this.history;
    if (!h) return html`<p class="muted" role="status">Loading the alias history…</p>`;
    if (!h.length) return html`<p class="muted" data-testid="alias-history-empty">No alias has been set yet.</p>`;
    return html`<table data-testid="alias-history">
      <thead>
        <tr><th>When</th><th>Alias</th><th>Change</th><th>By</th></tr>
      </thead>
      <tbody>
        ${[...h].reverse().map(
          (e) => html`<tr>
            <td title=${e.at}>${shortTime(e.at)}</td>
            <td><span class="alias">${e.alias}</span></td>
            <td class="mono">${e.version ? (e.previousVersion ? `${e.previousVersion} → ${e.version}` : `→ ${e.version}`) : `removed from ${e.previousVersion}`}</td>
            <td class="mono muted">${e.actor}</td>
          </tr>`,
        )}
      </tbody>
    </table>`;
  }
}

/** A metadata object as pretty JSON; "none" when empty. */
function metadataBlock(m: object | undefined, testId: string) {
  if (!m || !Object.keys(m).length) return html`<p class="muted" data-testid=${testId}>none</p>`;
  return html`<pre class="json" data-testid=${testId}>${JSON.stringify(m, null, 2)}</pre>`;
}

customElements.define('wl-artifact-view', WlArtifactView);
