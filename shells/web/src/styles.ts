import { css } from 'lit';

/** Shared element styles (buttons, inputs, tables, cards) for every page and panel. */
export const shared = css`
  :host {
    display: block;
    color: var(--wl-text);
    font: 14px/1.45 var(--wl-font);
  }
  a {
    color: var(--wl-accent);
    text-decoration: none;
  }
  a:hover {
    text-decoration: underline;
  }
  h1 {
    font-size: 20px;
    margin: 0 0 var(--wl-gap);
  }
  h2 {
    font-size: 16px;
    margin: var(--wl-gap) 0 8px;
  }
  button {
    font: inherit;
    padding: 5px 12px;
    border-radius: var(--wl-radius);
    border: 1px solid var(--wl-border);
    background: var(--wl-surface);
    color: var(--wl-text);
    cursor: pointer;
  }
  button.primary {
    background: var(--wl-accent);
    border-color: var(--wl-accent);
    color: var(--wl-accent-text);
  }
  button.danger {
    color: var(--wl-danger);
  }
  button:disabled {
    opacity: 0.5;
    cursor: default;
  }
  input,
  select,
  textarea {
    font: inherit;
    font-weight: 400;
    padding: 5px 8px;
    border-radius: var(--wl-radius);
    border: 1px solid var(--wl-border);
    background: var(--wl-bg);
    color: var(--wl-text);
  }
  table {
    border-collapse: collapse;
    width: 100%;
  }
  th,
  td {
    text-align: left;
    padding: 6px 8px;
    border-bottom: 1px solid var(--wl-border);
    white-space: nowrap;
  }
  th {
    color: var(--wl-muted);
    font-weight: 600;
  }
  .card {
    background: var(--wl-surface);
    border: 1px solid var(--wl-border);
    border-radius: var(--wl-radius);
    padding: var(--wl-gap);
  }
  .muted {
    color: var(--wl-muted);
  }
  .error {
    color: var(--wl-danger);
  }
  .row {
    display: flex;
    gap: 8px;
    align-items: center;
    flex-wrap: wrap;
  }
  .mono {
    font-family: var(--wl-mono);
  }
  .page {
    padding: 16px 20px;
  }
`;
