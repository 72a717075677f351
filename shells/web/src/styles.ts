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

/** Text for screen readers only (a column header of row actions, say). */
export const srOnly = css`
  .sr-only {
    position: absolute;
    width: 1px;
    height: 1px;
    overflow: hidden;
    clip: rect(0 0 0 0);
    white-space: nowrap;
  }
`;

/** A rounded label beside a name (`personal`, `team`, `built-in`). */
export const badge = css`
  .badge {
    display: inline-block;
    padding: 0 8px;
    border-radius: 999px;
    border: 1px solid var(--wl-border);
    font-size: 12px;
    color: var(--wl-muted);
  }
`;

/** A small monospaced tag for a permission or a scope. */
export const chip = css`
  .chip {
    display: inline-block;
    padding: 0 6px;
    margin: 1px 2px 1px 0;
    border: 1px solid var(--wl-border);
    border-radius: 4px;
    font-family: var(--wl-mono);
    font-size: 12px;
  }
`;

/** The hint under a field and a success line (management pages). */
export const hintAndOk = css`
  .hint {
    font-weight: 400;
    font-size: 12px;
  }
  .ok {
    color: var(--wl-ok);
  }
`;

/** A one-line form of labelled fields with its button level with them (`.grow` widths are the host's). */
export const inlineForm = css`
  form.inline {
    display: flex;
    gap: 8px;
    align-items: flex-start;
    flex-wrap: wrap;
    margin: var(--wl-gap) 0 0;
  }
  form.inline > button {
    /* level with the fields, below their one-line labels */
    margin-top: calc(1.45em + 4px);
  }
  form.inline label {
    display: flex;
    flex-direction: column;
    gap: 4px;
    font-weight: 600;
  }
  form.inline label input,
  form.inline label select {
    font-weight: 400;
  }
`;

/** The centred one-form pages (sign in, set up): a column of labelled full-width fields. */
export const authForm = css`
  :host {
    display: flex;
    justify-content: center;
    padding: 48px 16px;
  }
  form {
    display: flex;
    flex-direction: column;
    gap: 10px;
  }
  label {
    display: flex;
    flex-direction: column;
    gap: 4px;
    font-weight: 600;
  }
  label .hint {
    font-weight: 400;
  }
  input {
    width: 100%;
    box-sizing: border-box;
    font-weight: 400;
  }
`;

/** A page's title row: the name, then small facts beside it (a slug, badges). */
export const pageHead = css`
  .head {
    display: flex;
    align-items: baseline;
    gap: 12px;
    flex-wrap: wrap;
  }
  .head h1 {
    margin: 0;
  }
`;

/** The card sections of a management page: headings flush with the card's top, tables that scroll sideways, tight paragraphs. */
export const cardSections = css`
  section h2 {
    margin-top: 0;
  }
  .table-wrap {
    overflow-x: auto;
  }
  p {
    margin: 6px 0;
  }
`;

/** A `<dl>` of facts: the terms (muted) in one column, their values beside them. */
export const factList = css`
  dl {
    display: grid;
    grid-template-columns: max-content 1fr;
    gap: 4px 16px;
    margin: 0;
  }
  dt {
    color: var(--wl-muted);
  }
  dd {
    margin: 0;
  }
`;

/** A `.bar` of controls above what they act on (search, options, buttons), wrapping as it must. */
export const controlBar = css`
  .bar {
    display: flex;
    gap: 8px;
    align-items: center;
    flex-wrap: wrap;
    margin-bottom: 8px;
  }
`;
