import { html, nothing } from 'lit';

/**
 * A table's header row: a `<th scope="col">` a column and, with `actions`, a
 * last column for the row buttons that only screen readers name (the host
 * adds `srOnly` from styles.ts).
 */
export function tableHead(columns: readonly string[], o: { actions?: boolean } = {}) {
  return html`<thead>
    <tr>
      ${columns.map((c) => html`<th scope="col">${c}</th>`)}
      ${o.actions ? html`<th scope="col"><span class="sr-only">Actions</span></th>` : nothing}
    </tr>
  </thead>`;
}
