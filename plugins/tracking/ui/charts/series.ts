/**
 * Pure helpers of the charts: decoding the server's columnar series,
 * smoothing, robust y ranges, merging live points, aligning many series on
 * one x axis for uPlot, and flattening/diffing run configs. No DOM here —
 * everything is unit-tested in node.
 */
import type { tracking } from '@wanllmdb/proto/client';

/**
 * One run × key series (columnar; one index per point or bucket): a
 * MetricSeries as `parseSeries` decodes it — NaN and ±Infinity numbers, which
 * JSON carries as strings, made numbers again; no wall times.
 */
export type Series = Omit<tracking.v1.MetricSeries, 'time'>;

/** A JSON double: a number or "NaN" / "Infinity" / "-Infinity" (the proto3 JSON spelling). */
function decodeNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (v === 'Infinity') return Infinity;
  if (v === '-Infinity') return -Infinity;
  if (typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v))) return Number(v);
  return NaN;
}

const numbers = (a: unknown): number[] => (Array.isArray(a) ? a.map(decodeNumber) : []);

/** A MetricSeries from the API (JSON), with missing min/max/count filled from the values. */
export function parseSeries(raw: unknown): Series {
  const s = (raw ?? {}) as Record<string, unknown>;
  const x = numbers(s.x);
  const value = numbers(s.value);
  const min = numbers(s.min);
  const max = numbers(s.max);
  const count = numbers(s.count);
  return {
    runId: String(s.runId ?? ''),
    key: String(s.key ?? ''),
    sampled: Boolean(s.sampled),
    x,
    value,
    min: min.length === value.length ? min : value.slice(),
    max: max.length === value.length ? max : value.slice(),
    count: count.length === value.length ? count : value.map(() => 1),
  };
}

export const seriesId = (runId: string, key: string): string => `${runId}:${key}`;

/**
 * Exponential moving average with debiasing (TensorBoard / W&B "smoothing"):
 * weight 0 returns the values, 0.99 is very smooth. Non-finite values stay
 * where they are and do not disturb the average.
 */
export function ema(values: ArrayLike<number>, weight: number): number[] {
  const w = Math.min(Math.max(weight, 0), 0.999);
  const out = new Array<number>(values.length);
  if (w === 0) {
    for (let i = 0; i < values.length; i++) out[i] = values[i]!;
    return out;
  }
  let acc = 0;
  let norm = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v)) {
      out[i] = v;
      continue;
    }
    acc = acc * w + (1 - w) * v;
    norm = norm * w + (1 - w);
    out[i] = acc / norm;
  }
  return out;
}

/** The q-quantile (0..1) of sorted values, interpolated. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const pos = Math.min(Math.max(q, 0), 1) * (n - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, n - 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/**
 * A y range that ignores outliers: the [lo, hi] quantiles of every finite
 * value (positive only for a log scale), padded by 5 % of the span. At most
 * `sample` values are looked at (evenly strided), so it stays fast for
 * 100 runs × 1,000 buckets. Undefined when there is nothing to range over.
 */
export function robustRange(columns: ArrayLike<number>[], opts: { lo?: number; hi?: number; log?: boolean; sample?: number } = {}): [number, number] | undefined {
  const { lo = 0.01, hi = 0.99, log = false, sample = 200_000 } = opts;
  let total = 0;
  for (const c of columns) total += c.length;
  if (total === 0) return undefined;
  const stride = Math.max(1, Math.ceil(total / sample));
  const buf = new Float64Array(Math.ceil(total / stride) + columns.length);
  let n = 0;
  let k = 0;
  for (const c of columns) {
    for (let i = 0; i < c.length; i++, k++) {
      if (k % stride !== 0) continue;
      const v = c[i]!;
      if (Number.isFinite(v) && (!log || v > 0)) buf[n++] = v;
    }
  }
  if (n === 0) return undefined;
  const sorted = buf.subarray(0, n).sort();
  let a = quantile(sorted, lo);
  let b = quantile(sorted, hi);
  if (log) {
    const la = Math.log10(a);
    const lb = Math.log10(b);
    const pad = (lb - la || 1) * 0.05;
    return [10 ** (la - pad), 10 ** (lb + pad)];
  }
  if (a === b) {
    const d = Math.abs(a) * 0.05 || 1;
    return [a - d, b + d];
  }
  const pad = (b - a) * 0.05;
  a -= pad;
  b += pad;
  return [a, b];
}

/**
 * Merges new points (a live update) into a series, in place: points after
 * the last x are appended, a point at an existing x replaces it, an earlier
 * one is inserted in order. Returns the series.
 */
export function mergeLive(into: Series, add: Pick<Series, 'x' | 'value'> & Partial<Pick<Series, 'min' | 'max' | 'count'>>): Series {
  for (let j = 0; j < add.x.length; j++) {
    const x = add.x[j]!;
    const v = add.value[j]!;
    const mn = add.min?.[j] ?? v;
    const mx = add.max?.[j] ?? v;
    const c = add.count?.[j] ?? 1;
    if (Number.isNaN(x)) continue;
    const n = into.x.length;
    if (n === 0 || x > into.x[n - 1]!) {
      into.x.push(x);
      into.value.push(v);
      into.min.push(mn);
      into.max.push(mx);
      into.count.push(c);
      continue;
    }
    // Binary search for the first index with x >= the new x.
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (into.x[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    if (into.x[lo] === x) {
      into.value[lo] = v;
      into.min[lo] = mn;
      into.max[lo] = mx;
      into.count[lo] = c;
    } else {
      into.x.splice(lo, 0, x);
      into.value.splice(lo, 0, v);
      into.min.splice(lo, 0, mn);
      into.max.splice(lo, 0, mx);
      into.count.splice(lo, 0, c);
    }
  }
  return into;
}

/** The last finite value of a column (the series' "current" value). */
export function lastFinite(values: ArrayLike<number>): number | undefined {
  for (let i = values.length - 1; i >= 0; i--) if (Number.isFinite(values[i]!)) return values[i]!;
  return values.length ? values[values.length - 1] : undefined;
}

export interface AlignInput {
  x: ArrayLike<number>;
  /** Columns sharing `x` (value, smoothed value, min, max …). */
  ys: ArrayLike<number>[];
}

export interface Aligned {
  x: number[];
  /** One output column per input column, in order (series by series), null where a series has no point. */
  ys: (number | null)[][];
  /** True when x values were snapped to a grid because the union was too large. */
  snapped: boolean;
}

/**
 * Puts many series on one shared x axis (uPlot's aligned data). When the
 * union of x values stays within `maxUnion` it is exact; otherwise x values
 * are snapped to a grid of `maxUnion` cells (the points are bucket
 * aggregates at that density anyway), so 100 runs × 1,000 buckets with
 * unrelated x values cost at most 100 × maxUnion cells.
 */
export function alignSeries(inputs: AlignInput[], maxUnion = 4000): Aligned {
  let total = 0;
  let lo = Infinity;
  let hi = -Infinity;
  for (const s of inputs) {
    total += s.x.length;
    for (let i = 0; i < s.x.length; i++) {
      const x = s.x[i]!;
      if (x < lo) lo = x;
      if (x > hi) hi = x;
    }
  }
  const columns = inputs.reduce((n, s) => n + s.ys.length, 0);
  if (total === 0 || !Number.isFinite(lo) || !Number.isFinite(hi)) return { x: [], ys: Array.from({ length: columns }, () => []), snapped: false };

  // Exact union when small enough.
  const all = new Float64Array(total);
  let n = 0;
  for (const s of inputs) for (let i = 0; i < s.x.length; i++) if (Number.isFinite(s.x[i]!)) all[n++] = s.x[i]!;
  const sorted = all.subarray(0, n).sort();
  let unique = 0;
  for (let i = 0; i < n; i++) if (i === 0 || sorted[i] !== sorted[i - 1]) sorted[unique++] = sorted[i]!;

  const snapped = unique > maxUnion;
  let xs: number[];
  let indexOf: (x: number) => number;
  if (!snapped) {
    xs = Array.from(sorted.subarray(0, unique));
    const where = new Map<number, number>();
    xs.forEach((x, i) => where.set(x, i));
    indexOf = (x) => where.get(x) ?? -1;
  } else {
    const cells = maxUnion;
    const span = hi - lo || 1;
    const used = new Int32Array(cells).fill(-1);
    for (let i = 0; i < unique; i++) used[Math.round(((sorted[i]! - lo) / span) * (cells - 1))] = 0;
    xs = [];
    for (let c = 0; c < cells; c++) if (used[c] === 0) (used[c] = xs.length), xs.push(lo + (c / (cells - 1)) * span);
    indexOf = (x) => (Number.isFinite(x) ? used[Math.round(((x - lo) / span) * (cells - 1))]! : -1);
  }

  const ys: (number | null)[][] = [];
  for (const s of inputs) {
    const outs = s.ys.map(() => new Array<number | null>(xs.length).fill(null));
    for (let i = 0; i < s.x.length; i++) {
      const at = indexOf(s.x[i]!);
      if (at < 0) continue;
      for (let c = 0; c < s.ys.length; c++) {
        const v = s.ys[c]![i]!;
        outs[c]![at] = Number.isFinite(v) ? v : null;
      }
    }
    ys.push(...outs);
  }
  return { x: xs, ys, snapped };
}

// ---------------------------------------------------------------- run fields

/** `{a: {b: 1}, c: [1, 2]}` → `{"a.b": 1, "c": [1, 2]}` (arrays are leaves). */
export function flatten(obj: unknown, prefix = '', out: Record<string, unknown> = {}): Record<string, unknown> {
  if (obj && typeof obj === 'object' && !Array.isArray(obj)) {
    const entries = Object.entries(obj as Record<string, unknown>);
    if (entries.length === 0 && prefix) out[prefix] = {};
    for (const [k, v] of entries) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (prefix) out[prefix] = obj;
  return out;
}

/**
 * A run field by path: `config.lr`, `config.model.layers`, `summary.loss`,
 * `summary.train/loss` (summary keys may hold "/" and "."), or a top-level
 * run field (`name`, `state`, `group`).
 */
export function fieldValue(run: Partial<tracking.v1.Run>, path: string): unknown {
  const dot = path.indexOf('.');
  const head = dot < 0 ? path : path.slice(0, dot);
  const rest = dot < 0 ? '' : path.slice(dot + 1);
  if ((head === 'config' || head === 'summary') && rest) {
    const root = run[head];
    if (!root) return undefined;
    if (rest in root) return root[rest];
    return flatten(root)[rest];
  }
  return runField(run, path);
}

/**
 * A top-level field of a run by its JSON name, as a column or an axis names
 * it (`name`, `state`, `group`, `exitCode`); undefined for a name that is
 * not one of the run's own fields.
 */
function runField(run: Partial<tracking.v1.Run>, name: string): unknown {
  return Object.hasOwn(run, name) ? (Reflect.get(run, name) as unknown) : undefined;
}

/** A field value as a number for a numeric axis (booleans 0/1, "NaN"/"Infinity" strings decoded), else undefined. */
function numericValue(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (v === 'NaN' || v === 'Infinity' || v === '-Infinity') return decodeNumber(v);
  return undefined;
}

export function formatValue(v: unknown): string {
  if (v === undefined) return '—';
  if (v === null) return 'null';
  if (typeof v === 'number') return formatNumber(v);
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e6 || a < 1e-4) return v.toExponential(3);
  if (Number.isInteger(v)) return String(v);
  return String(Number(v.toPrecision(5)));
}

export interface DiffRow {
  key: string;
  values: unknown[];
  differs: boolean;
}

/** Rows = the union of flattened config keys (sorted); `differs` when the runs' values are not all equal (a missing key counts). */
export function configDiff(configs: unknown[]): DiffRow[] {
  const flats = configs.map((c) => flatten(c ?? {}));
  const keys = [...new Set(flats.flatMap((f) => Object.keys(f)))].sort();
  return keys.map((key) => {
    const values = flats.map((f) => f[key]);
    const first = JSON.stringify(values[0]);
    return { key, values, differs: values.some((v) => JSON.stringify(v) !== first) };
  });
}

export interface KeyGroup {
  name: string;
  keys: string[];
  system: boolean;
}

/**
 * Metric keys grouped by their prefix (`train/loss` → "train"); keys without
 * a prefix go to "Charts", `system/…` keys to "System" (listed last).
 */
export function groupKeys(keys: string[]): KeyGroup[] {
  const groups = new Map<string, KeyGroup>();
  for (const key of [...keys].sort()) {
    if (key.startsWith('_')) continue;
    const slash = key.indexOf('/');
    const system = key.startsWith('system/') || key.startsWith('system.');
    const name = system ? 'System' : slash > 0 ? key.slice(0, slash) : 'Charts';
    let g = groups.get(name);
    if (!g) groups.set(name, (g = { name, keys: [], system }));
    g.keys.push(key);
  }
  return [...groups.values()].sort((a, b) => Number(a.system) - Number(b.system) || Number(b.name === 'Charts') - Number(a.name === 'Charts') || a.name.localeCompare(b.name));
}

// ---------------------------------------------------------------- colours

/** Twelve distinguishable hues, then golden-angle hues for more runs. */
const PALETTE = ['#2f6fed', '#e8590c', '#2b8a3e', '#c2255c', '#7048e8', '#0c8599', '#b7791f', '#5c940d', '#d6336c', '#1971c2', '#862e9c', '#e67700'];

export function seriesColor(i: number, dark = false): string {
  if (i < PALETTE.length) return PALETTE[i]!;
  const hue = Math.round((i * 137.508) % 360);
  return `hsl(${hue} 65% ${dark ? 62 : 45}%)`;
}

/** A colour scale for a value in 0..1 (viridis-like; readable on light and dark). */
export function rampColor(t: number): string {
  const stops = [
    [68, 1, 84],
    [59, 82, 139],
    [33, 145, 140],
    [94, 201, 98],
    [253, 231, 37],
  ] as const;
  const u = Math.min(Math.max(Number.isFinite(t) ? t : 0, 0), 1) * (stops.length - 1);
  const i = Math.min(Math.floor(u), stops.length - 2);
  const f = u - i;
  const a = stops[i]!;
  const b = stops[i + 1]!;
  const c = (k: 0 | 1 | 2) => Math.round(a[k] + (b[k] - a[k]) * f);
  return `rgb(${c(0)}, ${c(1)}, ${c(2)})`;
}

/** "Nice" tick values between lo and hi (about `count` of them). */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (lo === hi) return [lo];
  const span = hi - lo;
  const step0 = span / Math.max(count, 1);
  const mag = 10 ** Math.floor(Math.log10(step0));
  const norm = step0 / mag;
  const step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : Number(v.toPrecision(12)));
  return out;
}

// ---------------------------------------------------------------- axes of run fields

/** An axis over run field values: numeric (linear or log) or categorical (evenly spaced). */
export interface AxisScale {
  kind: 'number' | 'category';
  min: number;
  max: number;
  log: boolean;
  categories: string[];
  /** Value → 0..1, undefined when it cannot be placed (missing, non-finite, ≤ 0 on a log axis). */
  norm(v: unknown): number | undefined;
  /** A 0..1 position back to a value (numeric axes). */
  value(t: number): number;
}

function categoryOf(v: unknown): string {
  return v === undefined ? '∅' : typeof v === 'string' ? v : JSON.stringify(v);
}

/** Numeric when every present value is a number (or boolean), else categorical. */
export function axisScale(values: unknown[], log = false): AxisScale {
  const present = values.filter((v) => v !== undefined && v !== null);
  const nums = present.map(numericValue);
  const numeric = present.length > 0 && nums.every((n) => n !== undefined) && present.some((v) => typeof v === 'number');
  if (numeric) {
    const finite = (nums as number[]).filter((n) => Number.isFinite(n) && (!log || n > 0));
    let min = finite.length ? Math.min(...finite) : 0;
    let max = finite.length ? Math.max(...finite) : 1;
    const useLog = log && finite.length > 0;
    if (min === max) {
      const d = useLog ? min * 0.5 : Math.abs(min) * 0.05 || 1;
      min -= d;
      max += d;
    }
    const f = (x: number) => (useLog ? Math.log10(x) : x);
    const lo = f(min);
    const hi = f(max);
    return {
      kind: 'number',
      min,
      max,
      log: useLog,
      categories: [],
      norm: (v) => {
        const n = numericValue(v);
        if (n === undefined || !Number.isFinite(n) || (useLog && n <= 0)) return undefined;
        return (f(n) - lo) / (hi - lo);
      },
      value: (t) => (useLog ? 10 ** (lo + t * (hi - lo)) : lo + t * (hi - lo)),
    };
  }
  const categories = [...new Set(values.map(categoryOf))]
    .sort((a, b) => Number(a === '∅') - Number(b === '∅') || a.localeCompare(b, undefined, { numeric: true }));
  const index = new Map(categories.map((c, i) => [c, i]));
  return {
    kind: 'category',
    min: 0,
    max: Math.max(categories.length - 1, 0),
    log: false,
    categories,
    norm: (v) => {
      const i = index.get(categoryOf(v));
      if (i === undefined) return undefined;
      return categories.length === 1 ? 0.5 : i / (categories.length - 1);
    },
    value: (t) => t * Math.max(categories.length - 1, 0),
  };
}

/** Tick values of a log axis between min and max. */
export function logSplits(min: number, max: number): number[] {
  if (!(min > 0) || !(max > min)) return [min, max].filter((v) => v > 0);
  const lo = Math.floor(Math.log10(min));
  const hi = Math.ceil(Math.log10(max));
  const mults = hi - lo <= 2 ? [1, 2, 5] : [1];
  const every = Math.max(1, Math.ceil((hi - lo) / 8));
  const out: number[] = [];
  for (let e = lo; e <= hi; e += every) for (const m of mults) {
    const v = Number((m * 10 ** e).toPrecision(6));
    if (v >= min * (1 - 1e-9) && v <= max * (1 + 1e-9)) out.push(v);
  }
  return out.length >= 2 ? out : [min, Math.sqrt(min * max), max];
}
