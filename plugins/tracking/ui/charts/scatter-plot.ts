import { html, type PropertyValues } from 'lit';
import type { tracking } from '@wanllmdb/proto/client';
import { CanvasChart } from './canvas-chart.js';
import { axisScale, fieldValue, formatNumber, formatValue, niceTicks, seriesColor, type AxisScale } from './series.js';
import { withAlpha, type ChartTheme } from './theme.js';
import { navigate } from '@wanllmdb/web/kit';

interface Placed {
  run: tracking.v1.Run;
  px: number;
  py: number;
  color: string;
}

const PAD = { left: 60, right: 16, top: 12, bottom: 40 };

/**
 * <wl-scatter-plot>: one point per run, `xField` against `yField` (paths
 * such as `config.lr`, `summary.loss`, `name`). Numeric fields get a linear
 * (or log) axis, others a categorical one. Hover shows the run, a click
 * opens it.
 */
export class WlScatterPlot extends CanvasChart {
  static override properties = {
    runs: { attribute: false },
    xField: { attribute: 'x-field' },
    yField: { attribute: 'y-field' },
    logX: { type: Boolean, attribute: 'log-x' },
    logY: { type: Boolean, attribute: 'log-y' },
    runColors: { attribute: false },
    height: { type: Number },
    fill: { type: Boolean, reflect: true },
  };

  declare runs: tracking.v1.Run[];
  declare xField: string;
  declare yField: string;
  declare logX: boolean;
  declare logY: boolean;
  declare runColors: Record<string, string>;
  declare height: number;
  private placed: Placed[] = [];
  private hover: Placed | undefined;

  constructor() {
    super();
    this.runs = [];
    this.xField = '';
    this.yField = '';
    this.logX = false;
    this.logY = false;
    this.runColors = {};
    this.fill = false;
    this.height = 300;
  }

  protected override willUpdate(changed: PropertyValues<this>): void {
    if (changed.has('height' as keyof WlScatterPlot)) this.chartHeight = this.height;
  }

  protected paint(ctx: CanvasRenderingContext2D, w: number, h: number, theme: ChartTheme): void {
    this.placed = [];
    const runs = this.runs ?? [];
    if (!this.xField || !this.yField || !runs.length) return;
    const xs = runs.map((r) => fieldValue(r, this.xField));
    const ys = runs.map((r) => fieldValue(r, this.yField));
    const sx = axisScale(xs, this.logX);
    const sy = axisScale(ys, this.logY);
    const pw = w - PAD.left - PAD.right;
    const ph = h - PAD.top - PAD.bottom;
    // 4 % inside the edges, so extreme points are not cut by the frame.
    const X = (t: number) => PAD.left + (0.04 + 0.92 * t) * pw;
    const Y = (t: number) => PAD.top + (1 - (0.04 + 0.92 * t)) * ph;

    // Grid and axes.
    ctx.strokeStyle = theme.border;
    ctx.fillStyle = theme.muted;
    ctx.lineWidth = 1;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    for (const [t, label] of ticks(sx, Math.max(2, Math.floor(pw / 90)))) {
      ctx.beginPath();
      ctx.moveTo(Math.round(X(t)) + 0.5, PAD.top);
      ctx.lineTo(Math.round(X(t)) + 0.5, PAD.top + ph);
      ctx.stroke();
      ctx.fillText(truncate(ctx, label, 90), X(t), PAD.top + ph + 5);
    }
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (const [t, label] of ticks(sy, Math.max(2, Math.floor(ph / 50)))) {
      ctx.beginPath();
      ctx.moveTo(PAD.left, Math.round(Y(t)) + 0.5);
      ctx.lineTo(PAD.left + pw, Math.round(Y(t)) + 0.5);
      ctx.stroke();
      ctx.fillText(truncate(ctx, label, PAD.left - 8), PAD.left - 6, Y(t));
    }
    ctx.fillStyle = theme.text;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'bottom';
    ctx.fillText(this.xField + (sx.log ? ' (log)' : ''), PAD.left + pw / 2, h - 2);
    ctx.save();
    ctx.translate(12, PAD.top + ph / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textBaseline = 'middle';
    ctx.fillText(this.yField + (sy.log ? ' (log)' : ''), 0, 0);
    ctx.restore();

    // Points: a categorical axis jitters a little so equal values stay visible.
    runs.forEach((run, i) => {
      const tx = sx.norm(xs[i]);
      const ty = sy.norm(ys[i]);
      if (tx === undefined || ty === undefined) return;
      const jx = sx.kind === 'category' ? jitter(run.id, 0) * Math.min(0.3 / Math.max(sx.categories.length, 1), 0.05) : 0;
      const jy = sy.kind === 'category' ? jitter(run.id, 1) * Math.min(0.3 / Math.max(sy.categories.length, 1), 0.05) : 0;
      this.placed.push({ run, px: X(tx + jx), py: Y(ty + jy), color: this.runColors?.[run.id] ?? seriesColor(i, theme.dark) });
    });
    const r = this.placed.length > 500 ? 2.5 : 4;
    for (const p of this.placed) {
      ctx.beginPath();
      ctx.arc(p.px, p.py, r, 0, Math.PI * 2);
      ctx.fillStyle = withAlpha(p.color, 0.8);
      ctx.fill();
    }
    if (this.hover) {
      const p = this.hover;
      ctx.beginPath();
      ctx.arc(p.px, p.py, r + 3, 0, Math.PI * 2);
      ctx.strokeStyle = theme.text;
      ctx.lineWidth = 2;
      ctx.stroke();
    }
  }

  private nearest(e: MouseEvent): Placed | undefined {
    const rect = this.canvas()!.getBoundingClientRect();
    const x = e.clientX - rect.left;
    const y = e.clientY - rect.top;
    let best: Placed | undefined;
    let bd = 12 * 12;
    for (const p of this.placed) {
      const d = (p.px - x) ** 2 + (p.py - y) ** 2;
      if (d < bd) (bd = d), (best = p);
    }
    return best;
  }

  private onMove(e: MouseEvent): void {
    const p = this.nearest(e);
    if (p !== this.hover) {
      this.hover = p;
      this.schedulePaint();
    }
    const c = this.canvas()!;
    c.style.cursor = p ? 'pointer' : 'default';
    if (!p) return this.tip(undefined);
    this.tip(
      [
        { text: p.run.name || p.run.id, bold: true, color: p.color },
        { text: `${this.xField}: ${formatValue(fieldValue(p.run, this.xField))}` },
        { text: `${this.yField}: ${formatValue(fieldValue(p.run, this.yField))}` },
      ],
      p.px,
      p.py,
    );
  }

  private onLeave(): void {
    this.hover = undefined;
    this.tip(undefined);
    this.schedulePaint();
  }

  private onClick(e: MouseEvent): void {
    const p = this.nearest(e);
    if (p) navigate(`/runs/${encodeURIComponent(p.run.id)}`);
  }

  override render() {
    const any = this.xField && this.yField && this.runs?.length;
    return html`<canvas
        style="height:${this.fill ? this.chartHeight : this.height}px"
        @mousemove=${this.onMove}
        @mouseleave=${this.onLeave}
        @click=${this.onClick}
        role="img"
        aria-label="Scatter plot of ${this.yField} against ${this.xField}"
      ></canvas
      ><div class="tip" style="display:none"></div>${any ? '' : html`<div class="empty">Choose an x and a y field</div>`}`;
  }
}

/** Tick positions (0..1) and labels of an axis. */
export function ticks(s: AxisScale, count: number): [number, string][] {
  if (s.kind === 'category') {
    const step = Math.max(1, Math.ceil(s.categories.length / Math.max(count, 1)));
    const n = s.categories.length;
    return s.categories.flatMap((c, i): [number, string][] => (i % step === 0 ? [[n === 1 ? 0.5 : i / (n - 1), c]] : []));
  }
  if (s.log) {
    const lo = Math.floor(Math.log10(s.min));
    const hi = Math.ceil(Math.log10(s.max));
    const out: [number, string][] = [];
    const every = Math.max(1, Math.ceil((hi - lo + 1) / Math.max(count, 1)));
    for (let e = lo; e <= hi; e += every) {
      const t = s.norm(10 ** e);
      if (t !== undefined && t >= -1e-9 && t <= 1 + 1e-9) out.push([t, formatNumber(10 ** e)]);
    }
    return out;
  }
  return niceTicks(s.min, s.max, count).map((v) => [s.norm(v)!, formatNumber(v)]);
}

function jitter(id: string, salt: number): number {
  let h = 2166136261 ^ salt;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 16777619);
  return ((h >>> 0) / 4294967295) * 2 - 1;
}

export function truncate(ctx: CanvasRenderingContext2D, text: string, max: number): string {
  if (ctx.measureText(text).width <= max) return text;
  let t = text;
  while (t.length > 1 && ctx.measureText(`${t}…`).width > max) t = t.slice(0, -1);
  return `${t}…`;
}

customElements.define('wl-scatter-plot', WlScatterPlot);

declare global {
  interface HTMLElementTagNameMap {
    'wl-scatter-plot': WlScatterPlot;
  }
}
