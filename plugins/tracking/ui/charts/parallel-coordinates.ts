import { html, type PropertyValues } from 'lit';
import type { tracking } from '@wanllmdb/proto/client';
import { CanvasChart } from './canvas-chart.js';
import { ticks, truncate } from './scatter-plot.js';
import { axisScale, fieldValue, formatValue, rampColor, type AxisScale } from './series.js';
import { withAlpha, type ChartTheme } from './theme.js';
import { navigate } from '@wanllmdb/web/kit';

/** The part of the colour ramp that reads on the theme's background (no near-black on dark, no pale yellow on white). */
const ramp = (t: number, dark: boolean) => (dark ? 0.22 + 0.78 * t : 0.9 * t);

const PAD = { left: 48, right: 64, top: 28, bottom: 22 };

interface Line {
  run: tracking.v1.Run;
  /** Pixel y per axis (NaN where the run has no value). */
  ys: number[];
  color: string;
  metric: number | undefined;
}

/**
 * <wl-parallel-coordinates>: one vertical axis per chosen field (config
 * keys, then the metric last), one polyline per run coloured by the metric.
 * Drag along an axis to brush (keep runs in that range; click the axis to
 * clear); hover highlights a run, a click opens it.
 */
export class WlParallelCoordinates extends CanvasChart {
  static override properties = {
    runs: { attribute: false },
    axes: { attribute: false },
    metric: {},
    height: { type: Number },
    fill: { type: Boolean, reflect: true },
    brushes: { state: true },
  };

  declare runs: tracking.v1.Run[];
  /** Field paths of the axes before the metric, e.g. `config.lr`. */
  declare axes: string[];
  /** The metric's field path (`summary.loss`): the last axis and the colour. */
  declare metric: string;
  declare height: number;
  /** Axis index → brushed 0..1 range. */
  declare brushes: Map<number, [number, number]>;
  private lines: Line[] = [];
  private scales: AxisScale[] = [];
  private axisX: number[] = [];
  private hover: Line | undefined;
  private drag: { axis: number; from: number; to: number } | undefined;

  constructor() {
    super();
    this.runs = [];
    this.axes = [];
    this.metric = '';
    this.fill = false;
    this.height = 320;
    this.brushes = new Map();
  }

  protected override willUpdate(changed: PropertyValues<this>): void {
    if (changed.has('height' as keyof WlParallelCoordinates)) this.chartHeight = this.height;
    if (changed.has('axes' as keyof WlParallelCoordinates) || changed.has('metric' as keyof WlParallelCoordinates)) this.brushes = new Map();
  }

  protected override belowCanvas(): number {
    return this.brushes.size ? 20 : 0;
  }

  private fields(): string[] {
    return [...(this.axes ?? []), ...(this.metric ? [this.metric] : [])];
  }

  private kept(line: Line): boolean {
    for (const [a, [lo, hi]] of this.brushes) {
      const t = this.scales[a]?.norm(fieldValue(line.run, this.fields()[a]!));
      if (t === undefined || t < lo || t > hi) return false;
    }
    return true;
  }

  protected paint(ctx: CanvasRenderingContext2D, w: number, h: number, theme: ChartTheme): void {
    const fields = this.fields();
    const runs = this.runs ?? [];
    this.lines = [];
    if (fields.length < 2 || !runs.length) return;
    this.scales = fields.map((f) => axisScale(runs.map((r) => fieldValue(r, f))));
    const pw = w - PAD.left - PAD.right;
    const ph = h - PAD.top - PAD.bottom;
    this.axisX = fields.map((_, i) => PAD.left + (fields.length === 1 ? pw / 2 : (i / (fields.length - 1)) * pw));
    const Y = (t: number) => PAD.top + (1 - t) * ph;
    const metricScale = this.metric ? this.scales[fields.length - 1]! : undefined;

    for (const run of runs) {
      const ys = fields.map((f, i) => {
        const t = this.scales[i]!.norm(fieldValue(run, f));
        return t === undefined ? NaN : Y(t);
      });
      const mt = metricScale?.norm(fieldValue(run, this.metric));
      this.lines.push({ run, ys, metric: mt, color: mt === undefined ? theme.muted : rampColor(ramp(mt, theme.dark)) });
    }

    // Lines: brushed-out runs faint, the rest coloured by the metric, the hovered one on top.
    const many = this.lines.length > 200;
    const drawLine = (l: Line) => {
      ctx.beginPath();
      let pen = false;
      l.ys.forEach((y, i) => {
        if (Number.isNaN(y)) return void (pen = false);
        if (pen) ctx.lineTo(this.axisX[i]!, y);
        else ctx.moveTo(this.axisX[i]!, y);
        pen = true;
      });
      ctx.stroke();
    };
    ctx.lineWidth = 1;
    ctx.strokeStyle = withAlpha(theme.muted, 0.15);
    const active: Line[] = [];
    for (const l of this.lines) if (this.kept(l)) active.push(l);
    else drawLine(l);
    // Best metric values last, so they are on top.
    active.sort((a, b) => (a.metric ?? -1) - (b.metric ?? -1));
    ctx.lineWidth = many ? 1 : 1.5;
    for (const l of active) {
      ctx.strokeStyle = many ? withAlpha(l.color, 0.6) : l.color;
      drawLine(l);
    }
    if (this.hover) {
      ctx.lineWidth = 3;
      ctx.strokeStyle = theme.text;
      drawLine(this.hover);
    }

    // Axes with ticks and titles; brushes as bands.
    fields.forEach((f, i) => {
      const x = Math.round(this.axisX[i]!) + 0.5;
      const s = this.scales[i]!;
      ctx.strokeStyle = theme.text;
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(x, PAD.top);
      ctx.lineTo(x, PAD.top + ph);
      ctx.stroke();
      const b = this.drag?.axis === i ? ([Math.min(this.drag.from, this.drag.to), Math.max(this.drag.from, this.drag.to)] as [number, number]) : this.brushes.get(i);
      if (b) {
        ctx.fillStyle = withAlpha(theme.accent, 0.25);
        ctx.fillRect(x - 7, Y(b[1]), 14, Y(b[0]) - Y(b[1]));
        ctx.strokeStyle = theme.accent;
        ctx.strokeRect(x - 7, Y(b[1]), 14, Y(b[0]) - Y(b[1]));
      }
      ctx.fillStyle = theme.muted;
      ctx.textAlign = i === fields.length - 1 ? 'left' : 'right';
      ctx.textBaseline = 'middle';
      for (const [t, label] of ticks(s, Math.max(2, Math.floor(ph / 40)))) {
        ctx.fillRect(x - 3, Math.round(Y(t)), 6, 1);
        ctx.fillText(truncate(ctx, label, i === fields.length - 1 ? PAD.right - 8 : 70), i === fields.length - 1 ? x + 6 : x - 6, Y(t));
      }
      ctx.fillStyle = i === fields.length - 1 && this.metric ? theme.accent : theme.text;
      ctx.textAlign = 'center';
      ctx.textBaseline = 'bottom';
      const room = fields.length > 1 ? pw / (fields.length - 1) - 6 : pw;
      ctx.fillText(truncate(ctx, f.replace(/^(config|summary)\./, ''), Math.max(40, room)), x, PAD.top - 8);
    });

    // Colour ramp of the metric.
    if (metricScale?.kind === 'number') {
      const gx = w - 14;
      for (let k = 0; k < ph; k++) {
        ctx.fillStyle = rampColor(ramp(1 - k / ph, theme.dark));
        ctx.fillRect(gx, PAD.top + k, 8, 1);
      }
    }
  }

  private pos(e: MouseEvent): { x: number; y: number } {
    const rect = this.canvas()!.getBoundingClientRect();
    return { x: e.clientX - rect.left, y: e.clientY - rect.top };
  }

  private tOf(y: number): number {
    const ph = this.chartHeight - PAD.top - PAD.bottom;
    return Math.min(1, Math.max(0, 1 - (y - PAD.top) / ph));
  }

  private axisAt(x: number): number {
    let best = -1;
    let bd = 14;
    this.axisX.forEach((ax, i) => {
      const d = Math.abs(ax - x);
      if (d < bd) (bd = d), (best = i);
    });
    return best;
  }

  private nearestLine(x: number, y: number): Line | undefined {
    let best: Line | undefined;
    let bd = 8;
    for (const l of this.lines) {
      if (!this.kept(l)) continue;
      for (let i = 0; i + 1 < l.ys.length; i++) {
        const x0 = this.axisX[i]!;
        const x1 = this.axisX[i + 1]!;
        if (x < x0 || x > x1) continue;
        const y0 = l.ys[i]!;
        const y1 = l.ys[i + 1]!;
        if (Number.isNaN(y0) || Number.isNaN(y1)) continue;
        const d = Math.abs(y0 + ((y1 - y0) * (x - x0)) / (x1 - x0) - y);
        if (d < bd) (bd = d), (best = l);
      }
    }
    return best;
  }

  private onDown(e: MouseEvent): void {
    const { x, y } = this.pos(e);
    const axis = this.axisAt(x);
    if (axis < 0) return;
    e.preventDefault();
    const t = this.tOf(y);
    this.drag = { axis, from: t, to: t };
    const move = (ev: MouseEvent) => {
      if (!this.drag) return;
      this.drag.to = this.tOf(this.pos(ev).y);
      this.schedulePaint();
    };
    const up = () => {
      window.removeEventListener('mousemove', move);
      window.removeEventListener('mouseup', up);
      const d = this.drag;
      this.drag = undefined;
      if (!d) return;
      const brushes = new Map(this.brushes);
      if (Math.abs(d.to - d.from) < 0.01) brushes.delete(d.axis);
      else brushes.set(d.axis, [Math.min(d.from, d.to), Math.max(d.from, d.to)]);
      this.brushes = brushes;
      this.dispatchEvent(new CustomEvent('wl-brush', { detail: { runIds: this.lines.filter((l) => this.kept(l)).map((l) => l.run.id) }, bubbles: true, composed: true }));
    };
    window.addEventListener('mousemove', move);
    window.addEventListener('mouseup', up);
  }

  private onMove(e: MouseEvent): void {
    if (this.drag) return;
    const { x, y } = this.pos(e);
    const c = this.canvas()!;
    const onAxis = this.axisAt(x) >= 0;
    const l = onAxis ? undefined : this.nearestLine(x, y);
    c.style.cursor = onAxis ? 'ns-resize' : l ? 'pointer' : 'default';
    if (l !== this.hover) {
      this.hover = l;
      this.schedulePaint();
    }
    if (!l) return this.tip(undefined);
    this.tip(
      [{ text: l.run.name || l.run.id, bold: true }, ...this.fields().map((f) => ({ text: `${f.replace(/^(config|summary)\./, '')}: ${formatValue(fieldValue(l.run, f))}` }))],
      x,
      y,
    );
  }

  private onLeave(): void {
    this.hover = undefined;
    this.tip(undefined);
    this.schedulePaint();
  }

  private onClick(e: MouseEvent): void {
    const { x, y } = this.pos(e);
    if (this.axisAt(x) >= 0) return;
    const l = this.nearestLine(x, y);
    if (l) navigate(`/runs/${encodeURIComponent(l.run.id)}`);
  }

  override render() {
    const ok = this.fields().length >= 2 && this.runs?.length;
    const kept = this.brushes.size ? this.lines.filter((l) => this.kept(l)).length : undefined;
    return html`<canvas
        style="height:${this.fill ? this.chartHeight : this.height}px"
        @mousedown=${this.onDown}
        @mousemove=${this.onMove}
        @mouseleave=${this.onLeave}
        @click=${this.onClick}
        role="img"
        aria-label="Parallel coordinates of ${this.fields().join(', ')}"
      ></canvas
      ><div class="tip" style="display:none"></div>
      ${ok ? '' : html`<div class="empty">Choose at least one parameter and a metric</div>`}
      ${kept !== undefined ? html`<div class="muted" style="font-size:12px">${kept} of ${this.lines.length} runs in the brushed ranges · click an axis to clear its brush</div>` : ''}`;
  }
}



customElements.define('wl-parallel-coordinates', WlParallelCoordinates);

declare global {
  interface HTMLElementTagNameMap {
    'wl-parallel-coordinates': WlParallelCoordinates;
  }
}
