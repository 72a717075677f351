import { LitElement, css, html, nothing, type PropertyValues } from 'lit';
import { artifacts } from '@wanllmdb/plugin-artifacts/client';
import { api, artifactsApi, controlBar, describeError, httpRoute, shared } from '@wanllmdb/web/kit';
import type { ArtifactsState } from './links.js';
import { decodeHead, foldByPrefix, formatBytes, looksBinary, parseDelimited, parseJsonLines, prettyJson, previewKind, shortDigest, type PreviewKind, type Table } from './preview.js';

/** Files listed per page (ListVersionFiles' cursor pages). */
const FILES_PAGE = 1000;
/** Bytes read of a text, JSON, CSV or JSON Lines file for its preview. */
const TEXT_CAP = 256 * 1024;
/** An image larger than this is not shown, only offered for download. */
const IMAGE_CAP = 16 * 1024 * 1024;
/** Rows shown of a CSV or JSON Lines file. */
const TABLE_ROWS = 50;

type FileEntry = artifacts.v1.FileEntry;

/** Where a version's file downloads from (a link's href, what `api.download` fetches). */
/** A file's bytes through this server (`noRedirect`: a presigned S3 link would be a cross-origin fetch the bucket's CORS may refuse). */
export const fileHref = (artifactId: string, version: string, path: string): string => httpRoute(artifacts.v1.ArtifactService, 'downloadFile', { artifactId, version, path, noRedirect: true }).path;

/**
 * <wl-artifact-files>: a version's files under a directory (`dir`, folded
 * by path prefix: one row per subdirectory with its files and bytes), a
 * page at a time, and a preview of the chosen `file`.
 */
export class WlArtifactFiles extends LitElement {
  static override properties = {
    artifactId: { attribute: false },
    version: { attribute: false },
    dir: { attribute: false },
    file: { attribute: false },
    go: { attribute: false },
    files: { state: true },
    cursor: { state: true },
    loading: { state: true },
    error: { state: true },
  };

  static override styles = [
    shared,
    controlBar,
    css`
      .layout {
        display: grid;
        grid-template-columns: minmax(320px, 1fr) minmax(360px, 1.4fr);
        gap: var(--wl-gap);
        align-items: start;
      }
      @media (max-width: 1000px) {
        .layout {
          grid-template-columns: 1fr;
        }
      }
      td.num {
        text-align: right;
        font-variant-numeric: tabular-nums;
      }
      tr.selected td {
        background: color-mix(in srgb, var(--wl-accent) 10%, transparent);
      }
      td.name {
        white-space: normal;
        word-break: break-all;
      }
      .crumbs a,
      .crumbs span {
        font-family: var(--wl-mono);
      }
    `,
  ];

  declare artifactId: string;
  declare version: string;
  declare dir: string;
  declare file: string;
  declare go: (change: Partial<ArtifactsState>) => void;
  declare files: FileEntry[] | undefined;
  declare cursor: string;
  declare loading: boolean;
  declare error: string;
  private seq = 0;

  constructor() {
    super();
    this.artifactId = '';
    this.version = '';
    this.dir = '';
    this.file = '';
    this.go = () => undefined;
    this.files = undefined;
    this.cursor = '';
    this.loading = false;
    this.error = '';
  }

  protected override willUpdate(changed: PropertyValues<this>): void {
    if (changed.has('artifactId') || changed.has('version') || changed.has('dir')) {
      this.files = undefined;
      this.cursor = '';
      void this.loadPage();
    }
  }

  /** The next page of files under `dir` (the first when nothing is loaded). */
  private async loadPage(): Promise<void> {
    const seq = ++this.seq;
    this.loading = true;
    this.error = '';
    try {
      const r = await artifactsApi.listVersionFiles({ artifactId: this.artifactId, version: this.version, prefix: this.dir, cursor: this.cursor, limit: FILES_PAGE });
      if (seq !== this.seq) return;
      this.files = [...(this.files ?? []), ...r.data];
      this.cursor = r.nextCursor;
    } catch (e) {
      if (seq === this.seq) this.error = describeError(e);
    } finally {
      if (seq === this.seq) this.loading = false;
    }
  }

  override render() {
    const files = this.files;
    const selected = this.file ? files?.find((f) => f.path === this.file) : undefined;
    return html`
      ${this.error ? html`<p class="error" role="alert" data-testid="files-error">${this.error} <button @click=${() => this.loadPage()}>Retry</button></p>` : nothing}
      <div class="layout">
        <div>
          ${this.renderCrumbs()}
          ${files ? this.renderList(files) : html`<p class="muted" role="status">Loading files…</p>`}
        </div>
        <div>
          ${this.file
            ? html`<wl-artifact-file-preview
                .artifactId=${this.artifactId}
                .version=${this.version}
                .path=${this.file}
                .entry=${selected}
              ></wl-artifact-file-preview>`
            : html`<p class="muted card">Choose a file to preview it.</p>`}
        </div>
      </div>
    `;
  }

  private renderCrumbs() {
    const parts = this.dir.split('/').filter(Boolean);
    return html`<div class="bar crumbs" data-testid="files-path">
      <a href="#" @click=${(e: Event) => (e.preventDefault(), this.go({ dir: undefined, file: undefined }))}>${this.version}</a>
      ${parts.map((p, i) => {
        const prefix = `${parts.slice(0, i + 1).join('/')}/`;
        return html`/ ${i === parts.length - 1 ? html`<span>${p}</span>` : html`<a href="#" @click=${(e: Event) => (e.preventDefault(), this.go({ dir: prefix, file: undefined }))}>${p}</a>`}`;
      })}
    </div>`;
  }

  private renderList(files: FileEntry[]) {
    if (!files.length) return html`<p class="muted" data-testid="files-empty">${this.dir ? `No files under ${this.dir}.` : 'This version has no files.'}</p>`;
    const rows = foldByPrefix(files, this.dir);
    return html`<table data-testid="files-table">
        <thead>
          <tr><th>Name</th><th style="text-align:right">Size</th><th>Digest</th></tr>
        </thead>
        <tbody>
          ${rows.map((r) =>
            r.kind === 'dir'
              ? html`<tr data-testid="dir-row" data-dir=${r.prefix}>
                  <td class="name"><a href="#" @click=${(e: Event) => (e.preventDefault(), this.go({ dir: r.prefix, file: undefined }))}>${r.name}/</a> <span class="muted">${r.files}${this.cursor ? '+' : ''} ${r.files === 1 && !this.cursor ? 'file' : 'files'}</span></td>
                  <td class="num">${formatBytes(r.size)}</td>
                  <td></td>
                </tr>`
              : html`<tr class=${r.file.path === this.file ? 'selected' : ''} data-testid="file-row" data-path=${r.file.path}>
                  <td class="name"><a href="#" @click=${(e: Event) => (e.preventDefault(), this.go({ file: r.file.path }))} data-testid="file-link">${r.name}</a></td>
                  <td class="num">${formatBytes(r.file.size)}</td>
                  <td class="mono muted" title=${r.file.ref ? r.file.ref.uri : r.file.digest}>${r.file.ref ? 'reference' : shortDigest(r.file.digest)}</td>
                </tr>`,
          )}
        </tbody>
      </table>
      <div class="bar" style="margin-top:8px">
        <span class="muted">${files.length} files${this.dir ? ` under ${this.dir}` : ''}${this.cursor ? ' loaded' : ''}</span>
        ${this.cursor ? html`<button ?disabled=${this.loading} @click=${() => this.loadPage()} data-testid="files-more">Load more</button>` : nothing}
      </div>`;
  }
}

/**
 * <wl-artifact-file-preview>: one file of a version — JSON pretty-printed,
 * text, CSV/TSV and JSON Lines as a table of their first rows (read from the
 * file's first 256 KB), images as an <img>; with its size, digest and a
 * download link.
 */
export class WlArtifactFilePreview extends LitElement {
  static override properties = {
    artifactId: { attribute: false },
    version: { attribute: false },
    path: { attribute: false },
    entry: { attribute: false },
    loading: { state: true },
    error: { state: true },
    text: { state: true },
    table: { state: true },
    imageUrl: { state: true },
    truncated: { state: true },
    binary: { state: true },
    note: { state: true },
  };

  static override styles = [
    shared,
    controlBar,
    css`
      pre {
        margin: 0;
        max-height: 560px;
        overflow: auto;
        font-family: var(--wl-mono);
        font-size: 12px;
        white-space: pre-wrap;
        word-break: break-word;
      }
      .table-wrap {
        max-height: 560px;
        overflow: auto;
      }
      td {
        max-width: 320px;
        overflow: hidden;
        text-overflow: ellipsis;
        font-family: var(--wl-mono);
        font-size: 12px;
      }
      img {
        max-width: 100%;
        max-height: 560px;
        display: block;
        background: repeating-conic-gradient(var(--wl-border) 0% 25%, transparent 0% 50%) 50% / 16px 16px;
      }
      h2 {
        margin-top: 0;
        word-break: break-all;
      }
    `,
  ];

  declare artifactId: string;
  declare version: string;
  declare path: string;
  declare entry: FileEntry | undefined;
  declare loading: boolean;
  declare error: string;
  declare text: string;
  declare table: (Table & { invalid?: number }) | undefined;
  declare imageUrl: string;
  declare truncated: boolean;
  declare binary: boolean;
  declare note: string;
  private seq = 0;

  constructor() {
    super();
    this.artifactId = '';
    this.version = '';
    this.path = '';
    this.entry = undefined;
    this.loading = false;
    this.error = '';
    this.text = '';
    this.table = undefined;
    this.imageUrl = '';
    this.truncated = false;
    this.binary = false;
    this.note = '';
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this.dropImage();
  }

  protected override willUpdate(changed: PropertyValues<this>): void {
    if (changed.has('artifactId') || changed.has('version') || changed.has('path')) void this.load();
  }

  private dropImage(): void {
    if (this.imageUrl) URL.revokeObjectURL(this.imageUrl);
    this.imageUrl = '';
  }

  private get kind(): PreviewKind {
    return previewKind(this.path);
  }

  private async load(): Promise<void> {
    const seq = ++this.seq;
    this.dropImage();
    Object.assign(this, { loading: true, error: '', text: '', table: undefined, truncated: false, binary: false, note: '' });
    const kind = this.kind;
    const size = this.entry ? Number(this.entry.size) : undefined;
    const href = fileHref(this.artifactId, this.version, this.path);
    try {
      if (this.entry?.ref) {
        this.note = `A reference to ${this.entry.ref.uri}: its bytes are kept there, not in this version.`;
        return;
      }
      if (kind === 'binary') {
        this.binary = true;
        return;
      }
      if (kind === 'image') {
        if (size !== undefined && size > IMAGE_CAP) {
          this.note = `The image is ${formatBytes(size)}: download it to see it.`;
          return;
        }
        const blob = await api.download(href, { maxBytes: IMAGE_CAP });
        if (seq !== this.seq) return;
        // The server names the type by the file's extension; an <img> needs it for SVG.
        const typed = this.path.toLowerCase().endsWith('.svg') && blob.type !== 'image/svg+xml' ? new Blob([blob], { type: 'image/svg+xml' }) : blob;
        this.imageUrl = URL.createObjectURL(typed);
        return;
      }
      const blob = await api.download(href, { maxBytes: TEXT_CAP });
      if (seq !== this.seq) return;
      const bytes = new Uint8Array(await blob.arrayBuffer());
      if (seq !== this.seq) return;
      const truncated = size !== undefined ? size > bytes.length : bytes.length >= TEXT_CAP;
      this.truncated = truncated;
      if (looksBinary(bytes)) {
        this.binary = true;
        return;
      }
      const text = decodeHead(bytes, truncated);
      if (kind === 'json') this.text = (!truncated && prettyJson(text)) || text;
      else if (kind === 'jsonl') this.table = parseJsonLines(text, TABLE_ROWS, truncated);
      else if (kind === 'csv' || kind === 'tsv') this.table = parseDelimited(text, TABLE_ROWS, kind === 'tsv' ? '\t' : ',', truncated);
      else this.text = text;
    } catch (e) {
      if (seq === this.seq) this.error = describeError(e);
    } finally {
      if (seq === this.seq) this.loading = false;
    }
  }

  private async download(e: Event): Promise<void> {
    e.preventDefault();
    try {
      const url = URL.createObjectURL(await api.download(fileHref(this.artifactId, this.version, this.path)));
      const a = Object.assign(document.createElement('a'), { href: url, download: this.path.split('/').pop() || 'file' });
      a.click();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } catch (err) {
      this.error = describeError(err);
    }
  }

  override render() {
    const e = this.entry;
    return html`<section class="card" data-testid="file-preview" data-path=${this.path} data-kind=${this.kind} aria-busy=${this.loading}>
      <h2 class="mono">${this.path}</h2>
      <div class="bar muted">
        ${e ? html`<span>${formatBytes(e.size)}</span><span class="mono" title=${e.digest}>${shortDigest(e.digest ? `sha256:${e.digest}` : '')}</span>` : nothing}
        ${e?.ref ? nothing : html`<a href=${fileHref(this.artifactId, this.version, this.path)} download @click=${this.download} data-testid="file-download">Download</a>`}
      </div>
      ${this.renderBody()}
    </section>`;
  }

  private renderBody() {
    if (this.error) return html`<p class="error" role="alert" data-testid="preview-error">${this.error}</p>`;
    if (this.loading) return html`<p class="muted" role="status">Loading the preview…</p>`;
    if (this.note) return html`<p class="muted" data-testid="preview-note">${this.note}</p>`;
    if (this.binary) return html`<p class="muted" data-testid="preview-binary">A binary file: download it to open it.</p>`;
    const cut = this.truncated ? html`<p class="muted" data-testid="preview-truncated">The first ${formatBytes(TEXT_CAP)} of the file.</p>` : nothing;
    if (this.imageUrl) return html`<img src=${this.imageUrl} alt=${this.path} data-testid="preview-image" />`;
    if (this.table) {
      const t = this.table;
      if (!t.columns.length) return html`<p class="muted" data-testid="preview-empty">The file is empty.</p>`;
      return html`${cut}
        <p class="muted">The first ${t.rows.length} rows${t.invalid ? html`; ${t.invalid} lines are not JSON` : nothing}.</p>
        <div class="table-wrap">
          <table data-testid="preview-table">
            <thead>
              <tr>${t.columns.map((c) => html`<th>${c}</th>`)}</tr>
            </thead>
            <tbody>
              ${t.rows.map((r) => html`<tr>${t.columns.map((_, i) => html`<td title=${r[i] ?? ''}>${r[i] ?? ''}</td>`)}</tr>`)}
            </tbody>
          </table>
        </div>`;
    }
    if (!this.text) return html`<p class="muted" data-testid="preview-empty">The file is empty.</p>`;
    return html`${cut}<pre data-testid="preview-text">${this.text}</pre>`;
  }
}

customElements.define('wl-artifact-files', WlArtifactFiles);
customElements.define('wl-artifact-file-preview', WlArtifactFilePreview);
