import { css, html, nothing } from 'lit';
import { ifDefined } from 'lit/directives/if-defined.js';
import type { api } from '@wanllmdb/proto/client';

/** The page a list shows, from `?page=` (1 when absent or not a positive whole number). */
export function pageFromQuery(query: URLSearchParams): number {
  const n = Number(query.get('page') ?? '1');
  return Number.isInteger(n) && n > 0 ? n : 1;
}

/** Styles of the `pager` bar. */
export const pagerStyles = css`
  .pager {
    display: flex;
    gap: 8px;
    align-items: center;
    justify-content: flex-end;
    margin-top: var(--wl-gap);
  }
`;

export interface PagerOptions {
  /** The page asked for (`?page=`). */
  page: number;
  /** Where to go: the page number to show. */
  go: (page: number) => void;
  /** Disables both buttons (a load in flight). */
  busy?: boolean;
  /** `<prefix>-prev`, `<prefix>-page`, `<prefix>-next` test ids. */
  testIdPrefix?: string;
}

/** Previous / "Page n of m" / Next under a paged list; nothing when it has one page. */
export function pager(meta: api.v1.PageMeta | undefined, o: PagerOptions) {
  if (!meta || meta.totalPages <= 1) return nothing;
  const id = (part: string) => (o.testIdPrefix ? `${o.testIdPrefix}-${part}` : undefined);
  return html`<nav class="pager" aria-label="Pages">
    <button ?disabled=${o.page <= 1 || !!o.busy} @click=${() => o.go(o.page - 1)} data-testid=${ifDefined(id('prev'))}>Previous</button>
    <span class="muted" data-testid=${ifDefined(id('page'))}>Page ${meta.page} of ${meta.totalPages}</span>
    <button ?disabled=${o.page >= meta.totalPages || !!o.busy} @click=${() => o.go(o.page + 1)} data-testid=${ifDefined(id('next'))}>Next</button>
  </nav>`;
}
