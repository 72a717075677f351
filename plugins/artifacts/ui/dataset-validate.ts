import { LitElement, css, html, nothing, type PropertyValues } from 'lit';
import type { artifacts } from '@wanllmdb/plugin-artifacts/client';
import { controlBar, datasetsApi, describeError, factList, shared } from '@wanllmdb/web/kit';

/** Bad rows listed in the report (all are counted). */
const ERRORS_SHOWN = 100;

/**
 * <wl-dataset-validate>: a "Validate" button for a dataset's version (or one
 * of its files, `path`) that runs ValidateDataset and shows the report: the
 * record format detected, rows, invalid rows and the first bad rows.
 */
export class WlDatasetValidate extends LitElement {
  static override properties = {
    datasetId: { attribute: false },
    version: { attribute: false },
    path: { attribute: false },
    report: { state: true },
    error: { state: true },
    busy: { state: true },
  };

  static override styles = [
    shared,
    controlBar,
    factList,
    css`
      h2 {
        margin-top: 0;
      }
      td.num {
        text-align: right;
        font-variant-numeric: tabular-nums;
      }
      td.reason {
        white-space: normal;
      }
      .ok {
        color: var(--wl-ok);
      }
    `,
  ];

  declare datasetId: string;
  declare version: string;
  declare path: string;
  declare report: artifacts.v1.ValidationReport | undefined;
  declare error: string;
  declare busy: boolean;
  private seq = 0;

  constructor() {
    super();
    this.datasetId = '';
    this.version = '';
    this.path = '';
    this.report = undefined;
    this.error = '';
    this.busy = false;
  }

  protected override willUpdate(changed: PropertyValues<this>): void {
    if (changed.has('datasetId') || changed.has('version') || changed.has('path')) {
      // A report is of one version (and file): another's is not this one's.
      this.seq++;
      this.report = undefined;
      this.error = '';
      this.busy = false;
    }
  }

  private async validate(): Promise<void> {
    const seq = ++this.seq;
    this.busy = true;
    this.error = '';
    try {
      const r = await datasetsApi.validateDataset({ id: this.datasetId, version: this.version, path: this.path, format: 'auto', maxErrors: ERRORS_SHOWN });
      if (seq === this.seq) this.report = r;
    } catch (e) {
      if (seq === this.seq) this.error = describeError(e);
    } finally {
      if (seq === this.seq) this.busy = false;
    }
  }

  override render() {
    const what = this.path ? html`<span class="mono">${this.path}</span>` : html`version <span class="mono">${this.version}</span>`;
    return html`<section class="card" data-testid="dataset-validation" aria-busy=${this.busy}>
      <h2>Validation</h2>
      <div class="bar">
        <button @click=${() => this.validate()} ?disabled=${this.busy || !this.version} data-testid="dataset-validate">${this.busy ? 'Validating…' : 'Validate'}</button>
        <span class="muted">Checks every row of ${what}${this.path ? '' : '’s data files (JSONL, JSON, CSV, Parquet)'} against its record format (alpaca, sharegpt, messages, text).</span>
      </div>
      ${this.error ? html`<p class="error" role="alert" data-testid="validation-error-message">${this.error}</p>` : nothing}
      ${this.report ? this.renderReport(this.report) : nothing}
    </section>`;
  }

  private renderReport(r: artifacts.v1.ValidationReport) {
    const formats = [...new Set(r.fileResults.map((f) => f.format || `${f.fileFormat} (no record format)`))];
    return html`<div data-testid="validation-report" data-valid=${r.valid}>
      <dl>
        <dt>Format</dt>
        <dd data-testid="validation-format">${formats.length ? formats.join(', ') : html`<span class="muted">none</span>`}</dd>
        <dt>Files</dt>
        <dd>${r.files}${r.skipped.length ? html` <span class="muted" title=${r.skipped.join('\n')}>(${r.skipped.length} not data, skipped)</span>` : nothing}</dd>
        <dt>Rows</dt>
        <dd data-testid="validation-rows">${r.rows}</dd>
        <dt>Invalid rows</dt>
        <dd data-testid="validation-invalid">${r.invalidRows}</dd>
      </dl>
      ${r.valid
        ? html`<p class="ok" role="status" data-testid="validation-ok">No problems: ${r.files ? `all ${r.rows} ${r.rows === 1 ? 'row is' : 'rows are'} valid.` : 'no data file to check.'}</p>`
        : html`<p class="muted">
              ${r.errorCount} ${r.errorCount === 1 ? 'problem' : 'problems'}${r.errorsTruncated ? html`; the first ${r.errors.length} listed` : nothing}.
            </p>
            <table data-testid="validation-errors">
              <thead>
                <tr><th>File</th><th style="text-align:right">Line</th><th>Field</th><th>Reason</th></tr>
              </thead>
              <tbody>
                ${r.errors.map(
                  (e) => html`<tr data-testid="validation-error" data-path=${e.path} data-line=${e.line}>
                    <td class="mono">${e.path}</td>
                    <td class="num mono" title=${`row ${e.row}`}>${e.line || '—'}</td>
                    <td class="mono">${e.field || html`<span class="muted">—</span>`}</td>
                    <td class="reason">${e.reason}</td>
                  </tr>`,
                )}
              </tbody>
            </table>`}
    </div>`;
  }
}

customElements.define('wl-dataset-validate', WlDatasetValidate);
