import { LitElement, css, html, nothing, svg, type PropertyValues } from 'lit';
import type { artifacts } from '@wanllmdb/plugin-artifacts/client';
import { artifactsApi, controlBar, describeError, navigate, runsApi, shared } from '@wanllmdb/web/kit';
import { layoutLineage } from './lineage-layout.js';
import { artifactsHref, runHref, type ArtifactsState } from './links.js';

type Node = artifacts.v1.LineageNode;
type Edge = artifacts.v1.LineageEdge;
type Direction = 'upstream' | 'downstream' | 'both';

const NODE_W = 190;
const NODE_H = 46;
const COL_GAP = 90;
const ROW_GAP = 26;
const PAD = 12;
/** Runs whose names are looked up for their nodes (the rest show their id). */
const NAMED_RUNS = 50;

/**
 * <wl-lineage-graph>: a lineage answer drawn as SVG — runs as rectangles,
 * artifact versions as rounded pills (coloured by type), arrows from what
 * was used to the run and from the run to what it logged; what made the
 * focus is to its left, what was made from it to its right. Clicking a run
 * opens its page; clicking a version opens it in its project's artifacts.
 */
export class WlLineageGraph extends LitElement {
  static override properties = {
    nodes: { attribute: false },
    edges: { attribute: false },
    focusId: { attribute: false },
    runNames: { attribute: false },
  };

  static override styles = [
    shared,
    css`
      .scroll {
        overflow: auto;
        border: 1px solid var(--wl-border);
        border-radius: var(--wl-radius);
        background: var(--wl-bg);
      }
      svg {
        display: block;
      }
      g.node {
        cursor: pointer;
      }
      g.node .shape {
        fill: var(--wl-surface);
        stroke: var(--wl-border);
        stroke-width: 1.5;
      }
      g.node:hover .shape,
      g.node:focus .shape {
        stroke: var(--wl-accent);
        stroke-width: 2;
      }
      g.node.focus .shape {
        stroke: var(--wl-accent);
        stroke-width: 2.5;
      }
      g.node.deleted {
        opacity: 0.55;
      }
      g.node:focus {
        outline: none;
      }
      text {
        fill: var(--wl-text);
        font: 12px var(--wl-font);
      }
      text.sub {
        fill: var(--wl-muted);
        font-size: 11px;
      }
      path.edge {
        fill: none;
        stroke: var(--wl-muted);
        stroke-width: 1.5;
      }
      path.edge.input {
        stroke-dasharray: 5 3;
      }
      marker path {
        fill: var(--wl-muted);
      }
      .legend {
        display: flex;
        gap: 16px;
        font-size: 12px;
        margin-top: 6px;
      }
      .legend span {
        display: inline-flex;
        align-items: center;
        gap: 4px;
      }
      .legend rect.key {
        fill: var(--wl-surface);
        stroke: var(--wl-muted);
      }
    `,
  ];

  declare nodes: Node[];
  declare edges: Edge[];
  declare focusId: string;
  declare runNames: ReadonlyMap<string, string>;

  constructor() {
    super();
    this.nodes = [];
    this.edges = [];
    this.focusId = '';
    this.runNames = new Map();
  }

  private open(n: Node): void {
    if (n.kind === 'run') navigate(runHref(n.runId));
    else if (!n.deleted) navigate(artifactsHref(n.projectId, { artifact: n.artifactId, v: n.version, view: 'lineage' }));
  }

  override render() {
    if (!this.nodes.length) return html`<p class="muted">No lineage.</p>`;
    const placed = layoutLineage(this.nodes, this.edges, this.focusId);
    const minCol = Math.min(...placed.map((p) => p.column));
    const maxCol = Math.max(...placed.map((p) => p.column));
    const rows = Math.max(...placed.map((p) => p.row)) + 1;
    const at = new Map(placed.map((p) => [p.id, { x: PAD + (p.column - minCol) * (NODE_W + COL_GAP), y: PAD + p.row * (NODE_H + ROW_GAP) }]));
    const width = PAD * 2 + (maxCol - minCol + 1) * NODE_W + (maxCol - minCol) * COL_GAP;
    const height = PAD * 2 + rows * NODE_H + (rows - 1) * ROW_GAP;
    const byId = new Map(this.nodes.map((n) => [n.id, n]));
    return html`<div class="scroll">
        <svg width=${width} height=${height} viewBox="0 0 ${width} ${height}" role="img" aria-label="Lineage graph" data-testid="lineage-graph">
          <defs>
            <marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0 0 L10 5 L0 10 z"></path></marker>
          </defs>
          ${this.edges.map((e) => {
            const a = at.get(e.from);
            const b = at.get(e.to);
            if (!a || !b) return nothing;
            const forward = b.x > a.x;
            const x1 = forward ? a.x + NODE_W : a.x;
            const x2 = forward ? b.x : b.x + NODE_W;
            const y1 = a.y + NODE_H / 2;
            const y2 = b.y + NODE_H / 2;
            const mx = (x1 + x2) / 2;
            const label = `${labelOf(byId.get(e.from), this.runNames)} → ${labelOf(byId.get(e.to), this.runNames)}`;
            return svg`<path class="edge ${e.kind}" d="M${x1} ${y1} C${mx} ${y1} ${mx} ${y2} ${x2} ${y2}" marker-end="url(#arrow)" data-testid="lineage-edge" data-from=${e.from} data-to=${e.to} data-kind=${e.kind} data-label=${label}><title>${e.kind}: ${label}</title></path>`;
          })}
          ${this.nodes.map((n) => {
            const p = at.get(n.id)!;
            const title = labelOf(n, this.runNames);
            const sub = n.kind === 'run' ? `run ${n.runId.slice(0, 10)}` : `${n.artifactType}${n.deleted ? ' · deleted' : ''}`;
            const shape =
              n.kind === 'run'
                ? svg`<rect class="shape" x="0" y="0" width=${NODE_W} height=${NODE_H} rx="3"></rect>`
                : svg`<rect class="shape" x="0" y="0" width=${NODE_W} height=${NODE_H} rx=${NODE_H / 2} style="stroke:${typeColour(n.artifactType)}"></rect>`;
            return svg`<g
              class="node ${n.kind}${n.id === this.focusId ? ' focus' : ''}${n.deleted ? ' deleted' : ''}"
              transform="translate(${p.x} ${p.y})"
              tabindex="0"
              role="link"
              aria-label=${`${n.kind === 'run' ? 'Run' : 'Version'} ${title}`}
              data-testid="lineage-node"
              data-node-id=${n.id}
              data-kind=${n.kind}
              data-label=${title}
              @click=${() => this.open(n)}
              @keydown=${(e: KeyboardEvent) => e.key === 'Enter' && this.open(n)}
            >${shape}<text x=${n.kind === 'run' ? 10 : 16} y="19">${clip(title, 26)}</text><text class="sub" x=${n.kind === 'run' ? 10 : 16} y="35">${sub}</text><title>${title}</title></g>`;
          })}
        </svg>
      </div>
      <div class="legend muted">
        <span><svg width="22" height="12"><rect class="key" x="1" y="1" width="20" height="10" rx="1"></rect></svg> run</span>
        <span><svg width="22" height="12"><rect class="key" x="1" y="1" width="20" height="10" rx="5"></rect></svg> artifact version</span>
        <span><svg width="28" height="12"><path class="edge input" d="M1 6 H27"></path></svg> used by the run</span>
        <span><svg width="28" height="12"><path class="edge" d="M1 6 H27"></path></svg> logged by the run</span>
      </div>`;
  }
}

/** How a node is named: `name:v3` for a version, the run's name (or id) for a run. */
export function labelOf(n: Node | undefined, runNames: ReadonlyMap<string, string>): string {
  if (!n) return '?';
  return n.kind === 'run' ? runNames.get(n.runId) || n.runId : `${n.artifactName}:${n.version}`;
}

function clip(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

function typeColour(type: string): string {
  return type === 'dataset' ? 'var(--wl-ok)' : type === 'model' ? 'var(--wl-accent)' : type === 'result' ? 'var(--wl-warn)' : 'var(--wl-muted)';
}

/** The names of the runs the caller may read (the first NAMED_RUNS; the rest keep their id). */
export async function runNamesOf(runIds: Iterable<string>): Promise<Map<string, string>> {
  const ids = [...new Set(runIds)].filter(Boolean).slice(0, NAMED_RUNS);
  const named = await Promise.all(ids.map((id) => runsApi.getRun({ id }).then((r) => [id, r.data?.name ?? ''] as const, () => [id, ''] as const)));
  return new Map(named.filter(([, name]) => name));
}

/**
 * <wl-artifact-lineage>: a version's lineage (GetLineage), with the number
 * of hops and the direction to follow, drawn by <wl-lineage-graph>.
 */
export class WlArtifactLineage extends LitElement {
  static override properties = {
    artifactId: { attribute: false },
    version: { attribute: false },
    hops: { attribute: false },
    direction: { attribute: false },
    go: { attribute: false },
    answer: { state: true },
    runNames: { state: true },
    loading: { state: true },
    error: { state: true },
  };

  static override styles = [shared, controlBar];

  declare artifactId: string;
  declare version: string;
  declare hops: number;
  declare direction: Direction;
  declare go: (change: Partial<ArtifactsState>) => void;
  declare answer: artifacts.v1.LineageResponse | undefined;
  declare runNames: ReadonlyMap<string, string>;
  declare loading: boolean;
  declare error: string;
  private seq = 0;
  private loadedFor = '';

  constructor() {
    super();
    this.artifactId = '';
    this.version = '';
    this.hops = 3;
    this.direction = 'both';
    this.go = () => undefined;
    this.answer = undefined;
    this.runNames = new Map();
    this.loading = false;
    this.error = '';
  }

  protected override willUpdate(_changed: PropertyValues<this>): void {
    const key = `${this.artifactId}\n${this.version}\n${this.hops}\n${this.direction}`;
    if (this.artifactId && this.version && key !== this.loadedFor) {
      this.loadedFor = key;
      void this.load();
    }
  }

  private async load(): Promise<void> {
    const seq = ++this.seq;
    this.loading = true;
    this.error = '';
    try {
      const answer = await artifactsApi.getLineage({ artifactId: this.artifactId, version: this.version, hops: this.hops, direction: this.direction });
      const names = await runNamesOf(answer.nodes.filter((n) => n.kind === 'run').map((n) => n.runId));
      if (seq !== this.seq) return;
      this.answer = answer;
      this.runNames = names;
    } catch (e) {
      if (seq === this.seq) (this.error = describeError(e)), (this.answer = undefined);
    } finally {
      if (seq === this.seq) this.loading = false;
    }
  }

  override render() {
    const a = this.answer;
    const focus = a?.nodes.find((n) => n.kind === 'version' && n.artifactId === this.artifactId && n.version === this.version)?.id ?? a?.nodes[0]?.id ?? '';
    return html`
      <div class="bar">
        <label>Hops
          <select data-testid="lineage-hops" @change=${(e: Event) => this.go({ hops: Number((e.target as HTMLSelectElement).value) })}>
            ${[1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((h) => html`<option value=${h} ?selected=${h === this.hops}>${h}</option>`)}
          </select>
        </label>
        <label>Direction
          <select data-testid="lineage-direction" @change=${(e: Event) => this.go({ direction: (e.target as HTMLSelectElement).value as Direction })}>
            ${(['both', 'upstream', 'downstream'] as const).map((d) => html`<option value=${d} ?selected=${d === this.direction}>${d === 'both' ? 'upstream and downstream' : d}</option>`)}
          </select>
        </label>
        ${this.loading ? html`<span class="muted" role="status">Loading…</span>` : nothing}
      </div>
      ${this.error ? html`<p class="error" role="alert" data-testid="lineage-error">${this.error}</p>` : nothing}
      ${a
        ? a.edges.length
          ? html`<wl-lineage-graph .nodes=${a.nodes} .edges=${a.edges} .focusId=${focus} .runNames=${this.runNames}></wl-lineage-graph>
              ${a.truncated ? html`<p class="muted">More runs and versions are reachable than shown; follow fewer hops or open a node.</p>` : nothing}`
          : html`<p class="muted" data-testid="lineage-empty">No run used or logged this version: log it with <span class="mono">run.logArtifact</span>, use it with <span class="mono">run.useArtifact</span>.</p>`
        : nothing}
    `;
  }
}

customElements.define('wl-lineage-graph', WlLineageGraph);
customElements.define('wl-artifact-lineage', WlArtifactLineage);
