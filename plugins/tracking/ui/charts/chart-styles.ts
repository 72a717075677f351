import { css } from 'lit';

/** A chart's hover tooltip (`.tip`) and its centred "no data" note (`.empty`). */
export const chartOverlays = css`
  .tip {
    position: absolute;
    z-index: 5;
    pointer-events: none;
    background: var(--wl-surface);
    border: 1px solid var(--wl-border);
    border-radius: var(--wl-radius);
    box-shadow: 0 2px 10px rgb(0 0 0 / 0.18);
    padding: 6px 8px;
    font-size: 12px;
    white-space: nowrap;
  }
  .empty {
    position: absolute;
    inset: 0;
    display: grid;
    place-items: center;
    color: var(--wl-muted);
    pointer-events: none;
  }
`;
