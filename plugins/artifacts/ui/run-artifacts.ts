import { LitElement, css, html, nothing, type PropertyValues } from 'lit';
import type { artifacts } from '@wanllmdb/plugin-artifacts/client';
import { artifactsApi, badge, describeError, shared, shortTime } from '@wanllmdb/web/kit';
import { artifactsHref } from './links.js';

type Node = artifacts.v1.LineageNode;

/**
 * <wl-run-artifacts>, the run page's Artifacts tab: the artifact versions
 * the run used (its inputs) and logged (its outputs) — its lineage one hop
 * each way (GetRunLineage) — each linked to the version in its project.
 */
export class WlRunArtifacts extends LitElement {
  static override properties = {
    runId: { attribute: false },
    answer: { state: true },
    error: { state: true },
  };

  static override styles = [
    shared,
    badge,
    css`
      .cards {
        display: grid;
        grid-template-columns: repeat(auto-fit, minmax(360px, 1fr));
        gap: var(--wl-gap);
        align-items: start;
      }
      .cards h2 {
        margin-top: 0;
      }
    `,
  ];

  declare runId: string;
  declare answer: artifacts.v1.LineageResponse | undefined;
  declare error: string;
  private seq = 0;

  constructor() {
    super();
    this.runId = '';
    this.answer = undefined;
    this.error = '';
  }

  protected override willUpdate(changed: PropertyValues<this>): void {
    if (changed.has('runId') && this.runId) void this.load();
  }

  private async load(): Promise<void> {
    const seq = ++this.seq;
    this.error = '';
    this.answer = undefined;
    try {
      const a = await artifactsApi.getRunLineage({ runId: this.runId, direction: 'both', hops: 1 });
      if (seq === this.seq) this.answer = a;
    } catch (e) {
      if (seq === this.seq) this.error = describeError(e);
    }
  }

  override render() {
    if (this.error) return html`<p class="error" role="alert" data-testid="run-artifacts-error">${this.error} <button @click=${() => this.load()}>Retry</button></p>`;
    const a = this.answer;
    if (!a) return html`<p class="muted" role="status">Loading the run's artifacts…</p>`;
    const me = `run:${this.runId}`;
    const byId = new Map(a.nodes.map((n) => [n.id, n]));
    const inputs = a.edges.filter((e) => e.kind === 'input' && e.to === me).map((e) => ({ node: byId.get(e.from), at: e.at }));
    const outputs = a.edges.filter((e) => e.kind === 'output' && e.from === me).map((e) => ({ node: byId.get(e.to), at: e.at }));
    return html`<div class="cards">
      <section class="card" data-testid="run-inputs">
        <h2>Inputs <span class="muted">(used)</span></h2>
        ${this.table(inputs, 'This run used no artifact (run.useArtifact records one).', 'Used')}
      </section>
      <section class="card" data-testid="run-outputs">
        <h2>Outputs <span class="muted">(logged)</span></h2>
        ${this.table(outputs, 'This run logged no artifact (run.logArtifact records one).', 'Logged')}
      </section>
    </div>`;
  }

  private table(rows: { node: Node | undefined; at: string }[], empty: string, when: string) {
    const shown = rows.filter((r): r is { node: Node; at: string } => !!r.node);
    if (!shown.length) return html`<p class="muted">${empty}</p>`;
    return html`<table>
      <thead>
        <tr><th>Artifact</th><th>Type</th><th>Version</th><th>${when}</th></tr>
      </thead>
      <tbody>
        ${shown.map(
          ({ node: n, at }) => html`<tr data-testid="run-artifact-row" data-name=${n.artifactName} data-version=${n.version}>
            <td>${n.deleted ? html`${n.artifactName} <span class="muted">(deleted)</span>` : html`<a href=${artifactsHref(n.projectId, { artifact: n.artifactId, v: n.version })}>${n.artifactName}</a>`}</td>
            <td><span class="badge">${n.artifactType}</span></td>
            <td class="mono">
              ${n.deleted ? n.version : html`<a href=${artifactsHref(n.projectId, { artifact: n.artifactId, v: n.version, view: 'lineage' })} title="Lineage of ${n.artifactName}:${n.version}">${n.version}</a>`}
            </td>
            <td title=${at}>${shortTime(at)}</td>
          </tr>`,
        )}
      </tbody>
    </table>
    ${nothing}`;
  }
}

customElements.define('wl-run-artifacts', WlRunArtifacts);
