/** How the run page shows a run's state, its times and text matching a search. */
import { html, type TemplateResult } from 'lit';

export function stateColor(state: string): string {
  return state === 'running' ? 'var(--wl-accent)' : state === 'finished' ? 'var(--wl-ok)' : state === 'crashed' ? 'var(--wl-danger)' : state === 'killed' ? 'var(--wl-warn)' : 'var(--wl-muted)';
}

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '—';
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return d ? `${d}d ${h}h ${m}m` : h ? `${h}h ${m}m ${sec}s` : m ? `${m}m ${sec}s` : `${sec}s`;
}

export const when = (iso: string | undefined) => (iso ? new Date(iso).toLocaleString() : '—');

/** Splits text around case-insensitive matches of `needle`, marking them. */
export function highlight(text: string, needle: string): TemplateResult | string {
  if (!needle) return text;
  const lower = text.toLowerCase();
  const n = needle.toLowerCase();
  const parts: (TemplateResult | string)[] = [];
  let at = 0;
  for (let i = lower.indexOf(n); i >= 0; i = lower.indexOf(n, i + n.length)) {
    parts.push(text.slice(at, i), html`<mark>${text.slice(i, i + n.length)}</mark>`);
    at = i + n.length;
  }
  if (!parts.length) return text;
  parts.push(text.slice(at));
  return html`${parts}`;
}
