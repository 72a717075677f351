import { Errors, type WldbError } from '@wanllmdb/core';

/**
 * The limit on distinct keys per run: metric keys (history, charts, the
 * automatic summary) and, separately, the keys a user sets in the summary.
 * Every key becomes part of the run's summary document, which every run
 * list reads and sends; 200,000 keys made one run list 8 MB and 1.6 s. A
 * W&B-style run logs tens to a few hundred keys, so the default stays well
 * out of the way of real use.
 */
export const KEY_LIMIT_SETTING = 'WANLLMDB_MAX_METRIC_KEYS_PER_RUN';
export const DEFAULT_MAX_KEYS_PER_RUN = 10_000;
const MAX_SETTING = 10_000_000;

/** The limit from the environment (unset: the default); a bad value stops start-up with a message naming the setting. */
export function maxKeysPerRunFrom(env: NodeJS.ProcessEnv, override?: number): number {
  if (override !== undefined) return checked(override, String(override));
  const raw = env[KEY_LIMIT_SETTING]?.trim();
  if (raw === undefined || raw === '') return DEFAULT_MAX_KEYS_PER_RUN;
  return checked(/^\d+$/.test(raw) ? Number(raw) : NaN, raw);
}

function checked(n: number, raw: string): number {
  if (Number.isSafeInteger(n) && n >= 1 && n <= MAX_SETTING) return n;
  throw Errors.CONFIG_INVALID(`${KEY_LIMIT_SETTING}=${JSON.stringify(raw)} is not a whole number from 1 to ${MAX_SETTING.toLocaleString('en')}. Fix or unset it (default ${DEFAULT_MAX_KEYS_PER_RUN.toLocaleString('en')}).`, [
    { field: KEY_LIMIT_SETTING, message: 'not an integer from 1 to 10000000' },
  ]);
}

/** WLDB_ERR_LIMIT_EXCEEDED for a write that would take a run past the limit; nothing of the write was stored. */
export function keyLimitExceeded(what: 'metric' | 'summary', runId: string, limit: number, has: number, adds: number): WldbError {
  const n = (x: number) => x.toLocaleString('en');
  const kind = what === 'metric' ? 'distinct metric keys' : 'summary keys';
  const write = what === 'metric' ? 'this batch' : 'this summary update';
  const advice =
    what === 'metric'
      ? 'Log fewer distinct keys (put steps, epochs or ids in the step or in config, not in key names)'
      : 'Set fewer summary keys (remove some by setting them to null)';
  return Errors.LIMIT_EXCEEDED(
    `Run ${runId} has ${n(has)} ${kind} and ${write} would add ${n(adds)} more, past the limit of ${n(limit)} per run (${KEY_LIMIT_SETTING}); none of it was stored. ${advice}, or raise ${KEY_LIMIT_SETTING} on the server.`,
    [{ field: KEY_LIMIT_SETTING, message: `at most ${limit} ${kind} per run; the run has ${has}, ${write} adds ${adds}` }],
  );
}
