import { css, html } from 'lit';

/** Styles of the tab bar `tabBar` renders (add to the host's `styles`). */
export const tabBarStyles = css`
  nav.tabs {
    display: flex;
    gap: 4px;
    border-bottom: 1px solid var(--wl-border);
    margin: 12px 0 16px;
  }
  nav.tabs a {
    padding: 6px 14px;
    color: var(--wl-muted);
    border-bottom: 2px solid transparent;
    margin-bottom: -1px;
  }
  nav.tabs a[aria-selected='true'] {
    color: var(--wl-text);
    border-bottom-color: var(--wl-accent);
    font-weight: 600;
  }
  nav.tabs a:hover {
    text-decoration: none;
    color: var(--wl-text);
  }
`;

/**
 * A page's tab bar: one link per tab (an address of its own, so reloads and
 * shared links keep the tab), the current one marked `aria-selected`.
 * Each link carries `data-tab` and `data-testid="tab-<name>"`.
 */
export function tabBar<T extends string>(tabs: readonly T[], current: T, href: (tab: T) => string) {
  return html`<nav class="tabs" role="tablist">
    ${tabs.map(
      (t) => html`<a role="tab" href=${href(t)} aria-selected=${t === current} data-tab=${t} data-testid=${`tab-${t}`}>${t[0]!.toUpperCase() + t.slice(1)}</a>`,
    )}
  </nav>`;
}
