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
/** The largest value the setting takes. */
export const MAX_KEYS_PER_RUN_SETTING = 10_000_000;

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
