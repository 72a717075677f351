import { html } from 'lit';

/** A submitted form that passed the browser's own checks: the form, its data, and a field as trimmed text. */
export interface SubmittedForm {
  form: HTMLFormElement;
  data: FormData;
  /** A field as trimmed text ('' when absent). */
  get(name: string): string;
}

/** Stops the page load of a submit and reads its form; undefined when the browser's validation refuses it (and says why). */
export function submittedForm(e: SubmitEvent): SubmittedForm | undefined {
  e.preventDefault();
  const form = e.target as HTMLFormElement;
  if (!form.reportValidity()) return undefined;
  const data = new FormData(form);
  return { form, data, get: (name) => String(data.get(name) ?? '').trim() };
}

/** What a sign-up form says when its password and the repetition differ. */
export const PASSWORDS_DIFFER = 'The two passwords differ.';

/** The email (trimmed) and new password of a sign-up form (`email`, `password`, `confirm`); undefined when the two passwords differ. */
export function newAccount(f: SubmittedForm): { email: string; password: string } | undefined {
  const password = String(f.data.get('password'));
  if (password !== String(f.data.get('confirm'))) return undefined;
  return { email: f.get('email'), password };
}

/**
 * The new password and its repetition of a sign-up form (the fields `newAccount`
 * reads): ids `<id>-password` and `<id>-confirm`, test ids `<testId>-password`
 * and `<testId>-confirm`.
 */
export function newPasswordFields(id: string, testId: string) {
  return html`<label for="${id}-password"
      ><span>Password <span class="hint muted">(at least 8 characters)</span></span>
      <input id="${id}-password" name="password" type="password" autocomplete="new-password" required minlength="8" data-testid="${testId}-password" />
    </label>
    <label for="${id}-confirm"
      >Repeat the password
      <input id="${id}-confirm" name="confirm" type="password" autocomplete="new-password" required minlength="8" data-testid="${testId}-confirm" />
    </label>`;
}

/** A form field's value as a word of one of the contract's closed sets (`closedSets` of the generated code), or undefined for any other text. */
export function closedValue<T extends string>(words: readonly T[], value: string): T | undefined {
  return words.find((w) => w === value);
}
