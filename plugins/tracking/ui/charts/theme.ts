/** Chart colours come from the theme's custom properties, so light and dark both read well. */
export interface ChartTheme {
  dark: boolean;
  text: string;
  muted: string;
  border: string;
  surface: string;
  bg: string;
  accent: string;
  highlight: string;
  font: string;
}

export function readTheme(el: Element): ChartTheme {
  const cs = getComputedStyle(el);
  const v = (name: string, fallback: string) => cs.getPropertyValue(name).trim() || fallback;
  const dark = document.documentElement.dataset.theme === 'dark';
  return {
    dark,
    text: v('--wl-text', dark ? '#e3e7ec' : '#1d2430'),
    muted: v('--wl-muted', dark ? '#9aa5b4' : '#5b6675'),
    border: v('--wl-border', dark ? '#2c333d' : '#dde1e6'),
    surface: v('--wl-surface', dark ? '#1b2027' : '#f6f7f9'),
    bg: v('--wl-bg', dark ? '#12151a' : '#ffffff'),
    accent: v('--wl-accent', '#2f6fed'),
    highlight: v('--wl-highlight', '#fff3bf'),
    font: v('--wl-font', 'system-ui, sans-serif'),
  };
}

/** Calls `fn` when <html data-theme> changes; returns the stop function. */
export function onThemeChange(fn: () => void): () => void {
  const mo = new MutationObserver(() => fn());
  mo.observe(document.documentElement, { attributes: true, attributeFilter: ['data-theme'] });
  return () => mo.disconnect();
}

/** `#rrggbb` / `rgb()` / `hsl()` with an alpha. */
export function withAlpha(color: string, alpha: number): string {
  const hex = /^#([0-9a-f]{6})$/i.exec(color);
  if (hex) {
    const n = parseInt(hex[1]!, 16);
    return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
  }
  if (/^(rgb|hsl)\(/.test(color)) return color.replace(/\)$/, ` / ${alpha})`).replace(/,/g, ' ').replace(/\s+/g, ' ');
  return color;
}
