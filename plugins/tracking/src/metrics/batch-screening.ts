import type { MetricColumns } from './metric-batch.js';
import type { MetricWarning } from './metric-store.js';

/**
 * What append checks point by point before storing a batch. A bad point is
 * dropped and reported (MetricWarning per key and reason) while the rest of
 * the batch is kept; only a batch that cannot be read at all is refused.
 *
 * Backwards steps are checked here, at append, not at aggregation: the
 * warnings must reach the caller in the answer to the call that carried the
 * points, and aggregation runs after that answer. The last step of each key
 * (over everything appended before, aggregated or not) comes from the
 * caller, read under the run's lock.
 */
export const MAX_BATCH_POINTS = 4_000_000;
export const MAX_BATCH_BYTES = 64 * 1024 * 1024;
export const MAX_KEY_LENGTH = 256;

export interface ScreenedBatch {
  /** The points to store: `cols` itself when nothing was dropped or changed. */
  cols: MetricColumns;
  /** True when `cols` is new (points dropped, times filled in): the batch must be encoded again. */
  changed: boolean;
  accepted: number;
  warnings: MetricWarning[];
  /** The new last step of every key that gained points. */
  lastSteps: Map<string, number>;
}

/** Points per entry of a key dictionary: batches may carry keys without points (the SDK sends its whole dictionary). */
export function pointsPerKey(keyIndex: Int32Array, length: number, keyCount: number): Int32Array {
  const counts = new Int32Array(keyCount);
  for (let i = 0; i < length; i++) counts[keyIndex[i]!]!++;
  return counts;
}

const Reason = { key: 0, step: 1, backwards: 2 } as const;
const REASONS = 3;

function keyProblem(key: string): string | undefined {
  if (key.length === 0) return 'The key is empty; every point needs a metric name.';
  if (key.length > MAX_KEY_LENGTH) return `The key is ${key.length} characters long; keys may have at most ${MAX_KEY_LENGTH}. Use a shorter name.`;
  return undefined;
}

/** A key as shown in a warning: long keys are cut so a warning stays small. */
const shown = (key: string) => (key.length > MAX_KEY_LENGTH ? `${key.slice(0, MAX_KEY_LENGTH)}…` : key);

/**
 * Screens the first `cols.length` points. `lastStep(key)` is the key's last
 * stored step (undefined before its first point); `now` replaces a time that
 * is 0 or not finite ("now" in the JSON API).
 */
export function screenBatch(cols: MetricColumns, lastStep: (key: string) => number | undefined, now: number): ScreenedBatch {
  const { length: n, step, value, time, keyIndex, keys } = cols;
  const k = keys.length;
  const problems = keys.map(keyProblem);
  const last = Float64Array.from(keys, (key) => lastStep(key) ?? -Infinity);
  const firstLast = Float64Array.from(last);
  const dropped = new Float64Array(k * REASONS);
  const gained = new Uint8Array(k);
  let keep: Uint8Array | undefined;
  let accepted = 0;
  let fillTime = false;

  for (let i = 0; i < n; i++) {
    const e = keyIndex[i]!;
    const s = step[i]!;
    const reason = problems[e] !== undefined ? Reason.key : !(s >= 0 && s < Infinity) ? Reason.step : s < last[e]! ? Reason.backwards : -1;
    if (reason >= 0) {
      dropped[e * REASONS + reason]!++;
      keep ??= new Uint8Array(n).fill(1, 0, i);
      continue;
    }
    last[e] = s;
    gained[e] = 1;
    accepted++;
    if (keep) keep[i] = 1;
    const t = time[i]!;
    if (t === 0 || !Number.isFinite(t)) fillTime = true;
  }

  const warnings: MetricWarning[] = [];
  for (let e = 0; e < k; e++) {
    const key = keys[e]!;
    const count = (r: number) => dropped[e * REASONS + r]!;
    if (count(Reason.key) > 0) warnings.push({ key: shown(key), message: `${problems[e]} Its ${count(Reason.key)} point(s) were dropped.`, dropped: count(Reason.key) });
    if (count(Reason.step) > 0) {
      warnings.push({
        key,
        message: `${count(Reason.step)} point(s) had a step that is negative, NaN or infinite and were dropped; steps must be finite numbers ≥ 0.`,
        dropped: count(Reason.step),
      });
    }
    if (count(Reason.backwards) > 0) {
      const before = firstLast[e]! > -Infinity ? ` (the key's last step was ${firstLast[e]})` : '';
      warnings.push({
        key,
        message: `${count(Reason.backwards)} point(s) had a step below an earlier step of this key${before} and were dropped; steps must not go backwards. Log increasing steps, or use a new run or key.`,
        dropped: count(Reason.backwards),
      });
    }
  }
  const lastSteps = new Map<string, number>();
  for (let e = 0; e < k; e++) if (gained[e]) lastSteps.set(keys[e]!, last[e]!);

  if (!keep && !fillTime) return { cols, changed: false, accepted, warnings, lastSteps };

  // Compact: only kept points, only keys that kept points, filled-in times.
  const slot = new Int32Array(k).fill(-1);
  const newKeys: string[] = [];
  for (let e = 0; e < k; e++) if (gained[e]) slot[e] = newKeys.push(keys[e]!) - 1;
  const out: MetricColumns = {
    length: accepted,
    step: new Float64Array(accepted),
    value: new Float64Array(accepted),
    time: new Float64Array(accepted),
    keyIndex: new Int32Array(accepted),
    keys: newKeys,
  };
  let o = 0;
  for (let i = 0; i < n; i++) {
    if (keep && !keep[i]) continue;
    const t = time[i]!;
    out.step[o] = step[i]!;
    out.value[o] = value[i]!;
    out.time[o] = t === 0 || !Number.isFinite(t) ? now : t;
    out.keyIndex[o] = slot[keyIndex[i]!]!;
    o++;
  }
  return { cols: out, changed: true, accepted, warnings, lastSteps };
}
