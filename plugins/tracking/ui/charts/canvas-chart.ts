import { LitElement, css } from 'lit';
import { chartOverlays } from './chart-styles.js';
import { onThemeChange, readTheme, type ChartTheme } from './theme.js';
import { shared } from '@wanllmdb/web/kit';


/**
 * The base of the canvas charts: a device-pixel-ratio-aware canvas that
 * follows its box's width and the theme; subclasses implement `paint`.
 */
export abstract class CanvasChart extends LitElement {
  static override styles = [
    shared,
    chartOverlays,
    css`
      :host {
        display: block;
        position: relative;
      }
      :host([fill]) {
        height: 100%;
        overflow: hidden;
      }
      canvas {
        display: block;
        width: 100%;
      }
    `,
  ];

  /** Fill the parent's height (a workspace panel) instead of a fixed height. */
  declare fill: boolean;
  protected width = 0;
  protected chartHeight = 300;
  protected theme: ChartTheme | undefined;
  private observer: ResizeObserver | undefined;
  private stopTheme: (() => void) | undefined;
  private frame = 0;

  override connectedCallback(): void {
    super.connectedCallback();
    this.stopTheme = onThemeChange(() => {
      this.theme = undefined;
      this.schedulePaint();
    });
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this.stopTheme?.();
    this.observer?.disconnect();
    this.observer = undefined;
    cancelAnimationFrame(this.frame);
    this.frame = 0;
  }

  protected canvas(): HTMLCanvasElement | null {
    return this.renderRoot.querySelector('canvas');
  }

  protected override updated(): void {
    const c = this.canvas();
    if (c && !this.observer) {
      this.observer = new ResizeObserver(() => {
        const w = Math.floor(c.clientWidth);
        const h = this.fill ? this.fillHeight() : this.chartHeight;
        if (w && (w !== this.width || h !== this.chartHeight)) {
          this.width = w;
          this.chartHeight = h;
          this.schedulePaint();
        }
      });
      this.observer.observe(c);
      this.observer.observe(this);
      this.width = Math.floor(c.clientWidth);
    }
    this.schedulePaint();
  }

  /** The canvas height that fills the host, less what else the chart shows below it. */
  protected fillHeight(): number {
    return Math.max(120, Math.floor(this.clientHeight - this.belowCanvas()));
  }

  protected belowCanvas(): number {
    return 0;
  }

  protected schedulePaint(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      const c = this.canvas();
      if (!c) return;
      if (this.fill) this.chartHeight = this.fillHeight();
      this.theme ??= readTheme(this);
      const dpr = window.devicePixelRatio || 1;
      const w = this.width || c.clientWidth || 400;
      const h = this.chartHeight;
      if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
        c.width = Math.round(w * dpr);
        c.height = Math.round(h * dpr);
        c.style.height = `${h}px`;
      }
      const ctx = c.getContext('2d');
      if (!ctx) return;
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, w, h);
      ctx.font = `11px ${this.theme.font}`;
      this.paint(ctx, w, h, this.theme);
      // A state to wait for (tests, screenshots): the theme this canvas was last painted in.
      this.dataset.drawnTheme = this.theme.dark ? 'dark' : 'light';
    });
  }

  protected abstract paint(ctx: CanvasRenderingContext2D, w: number, h: number, theme: ChartTheme): void;

  /** Shows the tooltip element (`.tip`) with lines of text near (x, y) in canvas coordinates; hides it for none. */
  protected tip(lines: { text: string; bold?: boolean; color?: string }[] | undefined, x = 0, y = 0): void {
    const tip = this.renderRoot.querySelector<HTMLElement>('.tip');
    if (!tip) return;
    if (!lines?.length) {
      tip.style.display = 'none';
      return;
    }
    tip.replaceChildren(
      ...lines.map((l) => {
        const d = document.createElement('div');
        d.textContent = l.text;
        if (l.bold) d.style.fontWeight = '700';
        if (l.color) d.style.color = l.color;
        return d;
      }),
    );
    tip.style.display = 'block';
    const w = tip.offsetWidth;
    tip.style.left = `${x + 14 + w > this.width ? Math.max(0, x - w - 14) : x + 14}px`;
    tip.style.top = `${Math.max(0, Math.min(y - 10, this.chartHeight - tip.offsetHeight))}px`;
  }
}

