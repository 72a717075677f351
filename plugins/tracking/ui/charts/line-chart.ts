import { LitElement, css, html, nothing, unsafeCSS, type PropertyValues } from 'lit';
import uPlot from 'uplot';
import uplotCss from 'uplot/dist/uPlot.min.css?inline';
import { chartOverlays } from './chart-styles.js';
import { LineChartData, REFETCH_DEBOUNCE_MS } from './line-chart-data.js';
import { alignSeries, ema, formatNumber, logSplits, robustRange, seriesColor, seriesId, type Series } from './series.js';
import { onThemeChange, readTheme, withAlpha, type ChartTheme } from './theme.js';
import { shared } from '@wanllmdb/web/kit';

interface Entry {
  id: string;
  runId: string;
  key: string;
  label: string;
  color: string;
  /** uPlot series index of the main (smoothed) line. */
  main: number;
  /** Further uPlot series of this entry (raw faint line, min, max). */
  extra: number[];
}

const TOOLTIP_ROWS = 12;

/** Arrays and plain objects compare by content: a parent re-rendering `[run.id]` does not refetch. */
export const contentChanged = (a: unknown, b: unknown): boolean => a !== b && JSON.stringify(a) !== JSON.stringify(b);

function xLabel(xKey: string): string {
  return xKey === 'step' ? 'Step' : xKey === '_time' ? 'Time' : xKey === '_relative' ? 'Relative time (s)' : xKey;
}

/**
 * <wl-line-chart>: metric series of runs × keys on uPlot. Data comes
 * downsampled from `MetricService.QueryMetrics` at about one bucket per
 * pixel; zooming (drag), panning (shift+drag) and resetting (double-click)
 * re-query the new x range, so a zoomed-in view shows every point. With
 * `live`, new points arrive over the shared runs:watch stream.
 *
 * The legend lists each series as `[data-series="<runId>:<key>"]` with
 * `data-last` (its last value); clicking one hides or shows it. The host
 * carries `data-drawn-theme` (light/dark, the theme of the last drawing) and,
 * once the server has subscribed its live stream, `data-live="open"`: states
 * a test or bench waits for instead of a guessed delay. The series and
 * their queries are `LineChartData`'s.
 */
export class WlLineChart extends LitElement {
  static override properties = {
    runIds: { attribute: false, hasChanged: contentChanged },
    keys: { attribute: false, hasChanged: contentChanged },
    xKey: { attribute: 'x-key' },
    smoothing: { type: Number },
    logScale: { type: Boolean, attribute: 'log-scale' },
    ignoreOutliers: { type: Boolean, attribute: 'ignore-outliers' },
    live: { type: Boolean },
    band: { type: Boolean },
    runNames: { attribute: false, hasChanged: contentChanged },
    runColors: { attribute: false, hasChanged: contentChanged },
    projectId: { attribute: 'project-id' },
    height: { type: Number },
    fill: { type: Boolean, reflect: true },
    chartTitle: { attribute: 'chart-title' },
    hidden_: { state: true },
    range: { state: true },
    version: { state: true },
  };

  static override styles = [
    shared,
    unsafeCSS(uplotCss),
    chartOverlays,
    css`
      :host {
        display: block;
        position: relative;
        min-width: 0;
      }
      :host([fill]) {
        height: 100%;
        display: flex;
        flex-direction: column;
        overflow: hidden;
      }
      :host([fill]) .plot {
        flex: 1;
        min-height: 80px !important;
      }
      .head {
        display: flex;
        align-items: center;
        gap: 8px;
        min-height: 24px;
      }
      .title {
        font-weight: 600;
        flex: 1;
        overflow: hidden;
        text-overflow: ellipsis;
        white-space: nowrap;
      }
      .head button {
        padding: 1px 8px;
        font-size: 12px;
      }
      .plot {
        position: relative;
        width: 100%;
      }
      .plot.shifting {
        cursor: grab;
      }
      .u-legend {
        display: none;
      }
      .u-select {
        background: color-mix(in srgb, var(--wl-accent) 18%, transparent);
      }
      .tip {
        max-width: 320px;
      }
      .tip .x {
        color: var(--wl-muted);
        margin-bottom: 2px;
      }
      .tip .r {
        display: flex;
        gap: 6px;
        align-items: center;
      }
      .tip .r.near {
        font-weight: 700;
      }
      .tip .r .n {
        flex: 1;
        overflow: hidden;
        text-overflow: ellipsis;
      }
      .sw {
        width: 10px;
        height: 3px;
        border-radius: 2px;
        flex: none;
      }
      .legend {
        display: flex;
        flex-wrap: wrap;
        gap: 2px 12px;
        font-size: 12px;
        max-height: 72px;
        overflow: auto;
        margin-top: 4px;
      }
      .legend .item {
        display: inline-flex;
        align-items: center;
        gap: 5px;
        cursor: pointer;
        user-select: none;
        max-width: 260px;
      }
      .legend .item.off {
        opacity: 0.4;
      }
      .legend .item.off .sw {
        background: var(--wl-muted) !important;
      }
      .legend .name {
        overflow: hidden;
        text-overflow: ellipsis;
        white-space: nowrap;
      }
      .legend .val {
        color: var(--wl-muted);
        font-variant-numeric: tabular-nums;
      }
      .err {
        color: var(--wl-danger);
        font-size: 12px;
      }
    `,
  ];

  declare runIds: string[];
  declare keys: string[];
  declare xKey: string;
  declare smoothing: number;
  declare logScale: boolean;
  declare ignoreOutliers: boolean;
  declare live: boolean;
  declare band: boolean;
  declare runNames: Record<string, string>;
  declare runColors: Record<string, string>;
  declare projectId: string;
  declare height: number;
  /** Fill the parent's height (a workspace panel) instead of a fixed `height`. */
  declare fill: boolean;
  declare chartTitle: string;
  /** Series ids the user hid (legend clicks). */
  declare hidden_: Set<string>;
  /** The zoomed x range, undefined for all. */
  declare range: [number, number] | undefined;
  declare version: number;

  /** Milliseconds the last full (re)build or data update of the plot took. */
  renderMs = 0;

  private readonly data = new LineChartData(this, { width: () => this.width, changed: () => this.scheduleDraw() });
  private entries: Entry[] = [];
  private plot: uPlot | undefined;
  private structure = '';
  private theme: ChartTheme | undefined;
  private robust: [number, number] | undefined;
  private frame = 0;
  private resizeObserver: ResizeObserver | undefined;
  private stopTheme: (() => void) | undefined;
  private width = 0;
  private tip: HTMLDivElement | undefined;

  constructor() {
    super();
    this.runIds = [];
    this.keys = [];
    this.xKey = 'step';
    this.smoothing = 0;
    this.logScale = false;
    this.ignoreOutliers = false;
    this.live = false;
    this.band = true;
    this.runNames = {};
    this.runColors = {};
    this.projectId = '';
    this.height = 240;
    this.fill = false;
    this.chartTitle = '';
    this.hidden_ = new Set();
    this.range = undefined;
    this.version = 0;
  }

  /** The last value of a series (raw, unsmoothed), or undefined when it has none. */
  lastValue(runId: string, key: string): number | undefined {
    return this.data.lastValue(runId, key);
  }

  /** The last query's round trip (request → JSON) and the decoding of its series. */
  get timing(): { requestMs: number; parseMs: number } {
    return this.data.timing;
  }

  /** Re-queries the current range (e.g. after the page learnt of new data). */
  refresh(): void {
    this.data.scheduleFetch(0);
  }

  override connectedCallback(): void {
    super.connectedCallback();
    this.stopTheme = onThemeChange(() => {
      this.theme = undefined;
      this.structure = '';
      this.scheduleDraw();
      this.requestUpdate();
    });
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this.stopTheme?.();
    this.resizeObserver?.disconnect();
    this.resizeObserver = undefined;
    cancelAnimationFrame(this.frame);
    this.frame = 0;
    this.plot?.destroy();
    this.plot = undefined;
    this.structure = '';
  }

  protected override firstUpdated(): void {
    this.observeSize();
  }

  private observeSize(): void {
    const box = this.renderRoot.querySelector<HTMLElement>('.plot');
    if (!box || this.resizeObserver) return;
    let lastH = 0;
    this.resizeObserver = new ResizeObserver(() => {
      const w = Math.floor(box.clientWidth);
      const h = this.plotHeight();
      if (!w || (w === this.width && h === lastH)) return;
      lastH = h;
      const wider = w > this.data.fetchedWidth * 1.5;
      this.width = w;
      if (this.plot) this.plot.setSize({ width: w, height: h });
      else this.scheduleDraw();
      if (!wider) return;
      // Much wider than the data was fetched for: fetch more buckets.
      this.data.scheduleFetch(REFETCH_DEBOUNCE_MS);
    });
    this.resizeObserver.observe(box);
    this.resizeObserver.observe(this);
    this.width = Math.floor(box.clientWidth);
  }

  protected override updated(changed: PropertyValues<this>): void {
    if (!this.resizeObserver) this.observeSize();
    const refetch = ['runIds', 'keys', 'xKey'].some((k) => changed.has(k as keyof WlLineChart));
    if (refetch) {
      if (changed.has('xKey' as keyof WlLineChart)) this.range = undefined;
      this.data.reset();
    }
    if (refetch || changed.has('live' as keyof WlLineChart) || changed.has('projectId' as keyof WlLineChart)) this.data.syncLive();
    const restyle = ['smoothing', 'logScale', 'ignoreOutliers', 'band', 'runNames', 'runColors', 'height', 'fill'].some((k) => changed.has(k as keyof WlLineChart));
    if (restyle) {
      this.structure = '';
      this.scheduleDraw();
    }
  }

  // ---------------------------------------------------------------- drawing

  private plotHeight(): number {
    if (this.fill) {
      const head = this.renderRoot.querySelector<HTMLElement>('.head')?.offsetHeight ?? 24;
      const legend = this.renderRoot.querySelector<HTMLElement>('.legend')?.offsetHeight ?? 20;
      return Math.max(80, Math.floor(this.clientHeight - head - Math.max(legend, 18) - 8));
    }
    return Math.max(80, this.height);
  }

  private scheduleDraw(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.draw();
    });
  }

  private labelOf(runId: string, key: string): string {
    const name = this.runNames?.[runId] || runId.slice(0, 8);
    if (this.runIds.length <= 1) return key;
    return this.keys.length > 1 ? `${name} · ${key}` : name;
  }

  private colorOf(runIdx: number, keyIdx: number, n: number): string {
    const runId = this.runIds[runIdx]!;
    if (this.runColors?.[runId] && this.keys.length === 1) return this.runColors[runId]!;
    const dark = this.theme?.dark ?? false;
    if (this.runIds.length > 1 && this.keys.length === 1) return seriesColor(runIdx, dark);
    return seriesColor(n, dark);
  }

  private draw(): void {
    const box = this.renderRoot.querySelector<HTMLElement>('.plot');
    if (!box) return;
    const t0 = performance.now();
    this.theme ??= readTheme(this);
    const theme = this.theme;

    // The series to show, in run × key order.
    const list: { runId: string; key: string; s: Series; color: string }[] = [];
    let n = 0;
    this.runIds.forEach((runId, ri) =>
      this.keys.forEach((key, ki) => {
        const s = this.data.series.get(seriesId(runId, key));
        if (s && s.x.length) list.push({ runId, key, s, color: this.colorOf(ri, ki, n) });
        n++;
      }),
    );
    const many = list.length > 10;
    const smoothing = Math.min(Math.max(this.smoothing || 0, 0), 0.99);
    const withRaw = smoothing > 0 && !many;
    const withBand = this.band && list.length <= 8 && list.some(({ s }) => s.sampled);

    const entries: Entry[] = [];
    const inputs: { x: number[]; ys: number[][] }[] = [];
    const uSeries: uPlot.Series[] = [{ label: xLabel(this.xKey) }];
    const bands: uPlot.Band[] = [];
    const smoothedCols: number[][] = [];
    for (const { runId, key, s, color } of list) {
      const id = seriesId(runId, key);
      const show = !this.hidden_.has(id);
      const smoothed = smoothing > 0 ? ema(s.value, smoothing) : s.value;
      smoothedCols.push(show ? smoothed : []);
      const ys: number[][] = [smoothed];
      const main = uSeries.length;
      const label = this.labelOf(runId, key);
      uSeries.push({ label, stroke: color, width: many ? 1 : 1.5, spanGaps: true, show, points: { show: false } });
      const extra: number[] = [];
      if (withRaw) {
        ys.push(s.value);
        extra.push(uSeries.length);
        uSeries.push({ label: `${label} (raw)`, stroke: withAlpha(color, 0.28), width: 1, spanGaps: true, show, points: { show: false } });
      }
      if (withBand) {
        ys.push(s.max, s.min);
        const hi = uSeries.length;
        extra.push(hi, hi + 1);
        uSeries.push({ label: `${label} max`, stroke: 'transparent', width: 0, spanGaps: true, show, points: { show: false } });
        uSeries.push({ label: `${label} min`, stroke: 'transparent', width: 0, spanGaps: true, show, points: { show: false } });
        bands.push({ series: [hi, hi + 1], fill: withAlpha(color, 0.12) });
      }
      inputs.push({ x: s.x, ys });
      entries.push({ id, runId, key, label, color, main, extra });
    }
    this.entries = entries;

    const aligned = alignSeries(inputs, Math.max(2000, this.data.maxPoints() * 4));
    if (this.logScale) for (const col of aligned.ys) for (let i = 0; i < col.length; i++) if (col[i] !== null && col[i]! <= 0) col[i] = null;
    const data = [aligned.x, ...aligned.ys] as uPlot.AlignedData;
    this.robust = this.ignoreOutliers ? robustRange(smoothedCols, { log: this.logScale }) : undefined;

    const structure = JSON.stringify([entries.map((e) => [e.id, e.color, e.label, e.extra.length]), this.xKey, this.logScale, this.ignoreOutliers, this.height, withRaw, withBand, theme.dark]);
    const width = Math.max(100, this.width || box.clientWidth || 600);
    if (this.plot && structure === this.structure) {
      this.plot.batch(() => {
        this.plot!.setData(data, true);
        if (this.range) this.plot!.setScale('x', { min: this.range[0], max: this.range[1] });
      });
    } else {
      this.plot?.destroy();
      this.structure = structure;
      this.plot = new uPlot(this.options(theme, width, uSeries, bands), data, box);
      this.bindPan(this.plot);
      if (this.range) this.plot.setScale('x', { min: this.range[0], max: this.range[1] });
    }
    this.renderMs = performance.now() - t0;
    this.dataset.drawnTheme = theme.dark ? 'dark' : 'light';
    this.version++;
    this.dispatchEvent(new CustomEvent('wl-chart-rendered', { detail: { ms: this.renderMs, series: entries.length, points: aligned.x.length, ...this.timing } }));
  }

  private options(theme: ChartTheme, width: number, series: uPlot.Series[], bands: uPlot.Band[]): uPlot.Options {
    const axis = (): uPlot.Axis => ({
      stroke: theme.muted,
      grid: { stroke: withAlpha(theme.border, 0.9), width: 1 },
      ticks: { stroke: theme.border, width: 1, size: 4 },
      font: `11px ${theme.font}`,
    });
    const yAxis: uPlot.Axis = { ...axis(), size: 56, values: (_u, splits) => splits.map((v) => (v == null ? '' : formatNumber(v))) };
    // Log scale: ticks and grid at powers of ten (with 2× and 5× when the range spans few decades).
    if (this.logScale) yAxis.splits = (_u, _i, min, max) => logSplits(min, max);
    const xAxis: uPlot.Axis = { ...axis(), size: 32 };
    if (this.xKey !== '_time') xAxis.values = (_u, splits) => splits.map((v) => (v == null ? '' : formatNumber(v)));
    return {
      width,
      height: this.plotHeight(),
      ms: 1,
      pxAlign: 0,
      legend: { show: false },
      padding: [8, 12, 0, 0],
      series,
      bands,
      scales: {
        x: { time: this.xKey === '_time' },
        y: {
          distr: this.logScale ? 3 : 1,
          range: (u, min, max) => {
            if (this.robust) return this.robust;
            if (this.logScale) {
              if (!(min > 0) || !(max > 0)) return [1e-3, 1];
              const pad = (Math.log10(max) - Math.log10(min) || 1) * 0.05;
              return [10 ** (Math.log10(min) - pad), 10 ** (Math.log10(max) + pad)];
            }
            if (min === max) {
              const d = Math.abs(min) * 0.05 || 1;
              return [min - d, max + d];
            }
            return uPlot.rangeNum(min, max, 0.05, true) as [number, number];
          },
        },
      },
      axes: [xAxis, yAxis],
      cursor: {
        drag: { x: true, y: false, setScale: false },
        points: { show: series.length <= 21, size: 6 },
        focus: { prox: 16 },
        bind: {
          dblclick: () => () => {
            this.resetZoom();
            return null;
          },
        },
      },
      focus: { alpha: series.length > 21 ? 0.35 : 0.5 },
      hooks: {
        setSelect: [
          (u) => {
            const sel = u.select;
            if (sel.width < 4) return;
            const a = u.posToVal(sel.left, 'x');
            const b = u.posToVal(sel.left + sel.width, 'x');
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            this.zoomTo([Math.min(a, b), Math.max(a, b)]);
          },
        ],
        setCursor: [(u) => this.showTip(u)],
      },
    };
  }

  /** Shift+drag pans the x range; the new range is re-queried when the drag ends. */
  private bindPan(u: uPlot): void {
    const over = u.over;
    over.addEventListener(
      'mousedown',
      (e) => {
        if (!e.shiftKey || e.button !== 0) return;
        e.stopImmediatePropagation();
        e.preventDefault();
        const min0 = u.scales.x!.min!;
        const max0 = u.scales.x!.max!;
        const perPx = (max0 - min0) / Math.max(1, over.clientWidth);
        const x0 = e.clientX;
        const move = (ev: MouseEvent) => {
          const dx = (ev.clientX - x0) * perPx;
          u.setScale('x', { min: min0 - dx, max: max0 - dx });
        };
        const up = () => {
          window.removeEventListener('mousemove', move);
          window.removeEventListener('mouseup', up);
          this.zoomTo([u.scales.x!.min!, u.scales.x!.max!]);
        };
        window.addEventListener('mousemove', move);
        window.addEventListener('mouseup', up);
      },
      { capture: true },
    );
  }

  /** Shows a range now (scale) and re-queries it at full detail (debounced). */
  zoomTo(range: [number, number]): void {
    if (!(range[1] > range[0])) return;
    this.range = range;
    this.plot?.setScale('x', { min: range[0], max: range[1] });
    this.data.scheduleFetch(REFETCH_DEBOUNCE_MS);
    this.dispatchEvent(new CustomEvent('wl-zoom', { detail: { range }, bubbles: true, composed: true }));
  }

  resetZoom(): void {
    if (!this.range) return;
    this.range = undefined;
    this.data.scheduleFetch(0);
    this.dispatchEvent(new CustomEvent('wl-zoom', { detail: { range: undefined }, bubbles: true, composed: true }));
  }

  private panBy(fraction: number): void {
    const u = this.plot;
    if (!u || u.scales.x!.min == null || u.scales.x!.max == null) return;
    const d = (u.scales.x!.max - u.scales.x!.min) * fraction;
    this.zoomTo([u.scales.x!.min + d, u.scales.x!.max + d]);
  }

  private showTip(u: uPlot): void {
    const tip = (this.tip ??= this.renderRoot.querySelector<HTMLDivElement>('.tip') ?? undefined);
    if (!tip) return;
    const idx = u.cursor.idx;
    const left = u.cursor.left ?? -1;
    const top = u.cursor.top ?? -1;
    if (idx == null || left < 0 || !this.entries.length) {
      tip.style.display = 'none';
      return;
    }
    const xs = u.data[0];
    const rows: { e: Entry; v: number; dy: number }[] = [];
    for (const e of this.entries) {
      if (this.hidden_.has(e.id)) continue;
      const col = u.data[e.main]!;
      // Nearest point of this series around the cursor (series of other runs leave gaps in the shared x).
      let j = -1;
      for (let d = 0; d < 64; d++) {
        if (idx - d >= 0 && col[idx - d] != null) {
          j = idx - d;
          break;
        }
        if (idx + d < col.length && col[idx + d] != null) {
          j = idx + d;
          break;
        }
      }
      if (j < 0) continue;
      const v = col[j] as number;
      rows.push({ e, v, dy: Math.abs(u.valToPos(v, 'y') - top) });
    }
    if (!rows.length) {
      tip.style.display = 'none';
      return;
    }
    let nearest = rows[0]!;
    for (const r of rows) if (r.dy < nearest.dy) nearest = r;
    rows.sort((a, b) => b.v - a.v);
    let shown = rows;
    if (rows.length > TOOLTIP_ROWS) {
      const at = rows.indexOf(nearest);
      const from = Math.max(0, Math.min(rows.length - TOOLTIP_ROWS, at - TOOLTIP_ROWS / 2));
      shown = rows.slice(from, from + TOOLTIP_ROWS);
    }
    const x = xs[idx]!;
    const xText = this.xKey === '_time' ? new Date(x).toLocaleString() : `${xLabel(this.xKey)} ${formatNumber(x)}`;
    tip.replaceChildren();
    const head = document.createElement('div');
    head.className = 'x';
    head.textContent = xText + (rows.length > shown.length ? ` · ${shown.length} of ${rows.length}` : '');
    tip.append(head);
    for (const r of shown) {
      const row = document.createElement('div');
      row.className = r === nearest ? 'r near' : 'r';
      const sw = document.createElement('span');
      sw.className = 'sw';
      sw.style.background = r.e.color;
      const name = document.createElement('span');
      name.className = 'n';
      name.textContent = r.e.label;
      const val = document.createElement('span');
      val.textContent = formatNumber(r.v);
      row.append(sw, name, val);
      tip.append(row);
    }
    tip.style.display = 'block';
    const plotBox = this.renderRoot.querySelector<HTMLElement>('.plot')!;
    const overRect = u.over.getBoundingClientRect();
    const boxRect = plotBox.getBoundingClientRect();
    const ox = overRect.left - boxRect.left;
    const oy = overRect.top - boxRect.top;
    const tw = tip.offsetWidth;
    const px = ox + left + 14 + tw > boxRect.width ? ox + left - tw - 14 : ox + left + 14;
    tip.style.left = `${Math.max(0, px)}px`;
    tip.style.top = `${Math.max(0, oy + Math.min(top, overRect.height - tip.offsetHeight) - 8)}px`;
  }

  private toggle(e: Entry, ev: MouseEvent): void {
    const hidden = new Set(this.hidden_);
    if (ev.altKey || ev.metaKey) {
      // Alt-click: show only this one (again: show all).
      const onlyThis = this.entries.every((x) => x.id === e.id || hidden.has(x.id)) && !hidden.has(e.id);
      hidden.clear();
      if (!onlyThis) for (const x of this.entries) if (x.id !== e.id) hidden.add(x.id);
    } else if (hidden.has(e.id)) hidden.delete(e.id);
    else hidden.add(e.id);
    this.hidden_ = hidden;
    const u = this.plot;
    if (u)
      u.batch(() => {
        for (const x of this.entries) {
          const show = !hidden.has(x.id);
          if (u.series[x.main]!.show !== show) for (const i of [x.main, ...x.extra]) u.setSeries(i, { show });
        }
      });
    if (this.ignoreOutliers) {
      this.structure = '';
      this.scheduleDraw();
    }
  }

  override render() {
    const hasData = this.entries.length > 0;
    return html`
      <div class="head">
        <span class="title" title=${this.chartTitle || this.keys.join(', ')}>${this.chartTitle || this.keys.join(', ')}</span>
        ${this.data.loading ? html`<span class="muted" style="font-size:12px">loading…</span>` : nothing}
        ${this.range
          ? html`<button title="Pan left" @click=${() => this.panBy(-0.5)}>◀</button><button title="Pan right" @click=${() => this.panBy(0.5)}>▶</button
              ><button class="reset" title="Show the whole run (double-click the chart)" @click=${() => this.resetZoom()}>Reset zoom</button>`
          : nothing}
      </div>
      ${this.data.error ? html`<div class="err">${this.data.error}</div>` : nothing}
      <div class="plot" style="min-height:${this.fill ? 80 : this.plotHeight()}px" title="Drag to zoom · shift+drag to pan · double-click to reset">
        <div class="tip" style="display:none"></div>
        ${!hasData && !this.data.loading ? html`<div class="empty">No data${this.range ? ' in this range' : ''}</div>` : nothing}
      </div>
      <div class="legend">
        ${this.entries.map((e) => {
          const last = this.lastValue(e.runId, e.key);
          const off = this.hidden_.has(e.id);
          return html`<span
            class="item ${off ? 'off' : ''}"
            data-series=${e.id}
            data-last=${last === undefined ? '' : String(last)}
            title="${e.label} — click to ${off ? 'show' : 'hide'}, alt-click to show only this"
            @click=${(ev: MouseEvent) => this.toggle(e, ev)}
            ><span class="sw" style="background:${e.color}"></span><span class="name">${e.label}</span
            ><span class="val">${last === undefined ? '' : formatNumber(last)}</span></span
          >`;
        })}
      </div>
    `;
  }
}

customElements.define('wl-line-chart', WlLineChart);

declare global {
  interface HTMLElementTagNameMap {
    'wl-line-chart': WlLineChart;
  }
}
