import { css, html } from 'lit';
import { ifDefined } from 'lit/directives/if-defined.js';
import { copyText } from '../util/clipboard.js';

/** Styles of the "secret shown once" box (API keys, service accounts). */
export const secretBoxStyles = css`
  .secret {
    border: 1px solid var(--wl-warn);
    background: var(--wl-highlight);
    border-radius: var(--wl-radius);
    padding: var(--wl-gap);
    display: flex;
    flex-direction: column;
    gap: 8px;
    margin: var(--wl-gap) 0;
  }
  .secret input {
    flex: 1;
    min-width: 0;
    font-family: var(--wl-mono);
  }
  .secret .warn {
    font-weight: 600;
    margin: 0;
  }
`;

export interface SecretBoxOptions {
  /** The secret, shown once. */
  value: string;
  /** The warning above it (copy it now…). */
  warning: string;
  /** The id of the read-only input (copying falls back to selecting it). */
  inputId: string;
  inputLabel: string;
  testId: string;
  inputTestId: string;
  copyTestId?: string;
  doneTestId?: string;
  /** The last copy worked: the button says "Copied". */
  copied: boolean;
  /** The result of a copy (true: copied). */
  onCopied: (ok: boolean) => void;
  onDone: () => void;
  /** The host's render root, to find the input in. */
  root: HTMLElement | DocumentFragment;
}

/** A secret the server shows only once, in a read-only input with Copy and Done. */
export function secretBox(o: SecretBoxOptions) {
  const copy = async () => o.onCopied(await copyText(o.value, o.root.querySelector<HTMLInputElement>(`#${o.inputId}`)));
  return html`<div class="secret" role="status" data-testid=${o.testId}>
    <p class="warn">${o.warning}</p>
    <div class="row">
      <input id=${o.inputId} readonly aria-label=${o.inputLabel} .value=${o.value} @focus=${(e: FocusEvent) => (e.target as HTMLInputElement).select()} data-testid=${o.inputTestId} />
      <button @click=${copy} data-testid=${ifDefined(o.copyTestId)}>${o.copied ? 'Copied' : 'Copy'}</button>
      <button @click=${o.onDone} data-testid=${ifDefined(o.doneTestId)}>Done</button>
    </div>
  </div>`;
}
