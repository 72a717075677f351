import { html } from 'lit';

export interface ConfirmButtonOptions {
  /** The first click was given: show the confirming pair. */
  armed: boolean;
  /** The first click. */
  arm: () => void;
  /** The second click: do it. */
  confirm: () => void;
  /** "Keep": back to the one button. */
  disarm: () => void;
  /** The text of the button (`Remove`, `Delete`, `Revoke`). */
  label: string;
  /** The text of the confirming button; `label` by default. */
  confirmLabel?: unknown;
  /** What the first button does, for screen readers (`Remove the grant of …`). */
  ariaLabel: string;
  testId: string;
  confirmTestId: string;
  /** Disables the confirming button (an action in flight). */
  busy?: boolean;
}

/**
 * A destructive action that asks twice: a danger button that, clicked, turns
 * into the action's own button and "Keep". The host keeps which row is armed.
 */
export function confirmButton(o: ConfirmButtonOptions) {
  return o.armed
    ? html`<span class="row"
        ><button class="danger" ?disabled=${o.busy ?? false} @click=${o.confirm} data-testid=${o.confirmTestId}>${o.confirmLabel ?? o.label}</button
        ><button @click=${o.disarm}>Keep</button></span
      >`
    : html`<button class="danger" aria-label=${o.ariaLabel} @click=${o.arm} data-testid=${o.testId}>${o.label}</button>`;
}
