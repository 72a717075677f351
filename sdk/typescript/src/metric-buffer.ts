/**
 * The hot path of `run.log()`: points go into preallocated columnar typed
 * arrays (step, value, time: Float64Array; keyIndex: Int32Array, an index
 * into the run's key list through a Map), never into per-point objects. A
 * full chunk is handed over whole (its buffers are transferred to the sink
 * worker) and fresh arrays take its place.
 */

/** What `run.log()` accepts as values: numbers, booleans (0/1), bigints, and nested objects of those ("a/b" keys). */
export type MetricValue = number | boolean | bigint;
export interface MetricData {
  [key: string]: MetricValue | MetricData | null | undefined;
}

export interface LogOptions {
  /**
   * The step of these values. Steps never go backwards: a step below the
   * current one is refused with a warning. Without it the run's own counter
   * is used.
   */
  step?: number;
  /**
   * Whether this call completes the step (the counter moves on). Default:
   * true without `step`, false with `step` (as in W&B: more values may be
   * logged at the same step).
   */
  commit?: boolean;
}

/** The columns of one full or partial chunk, ready to transfer. */
export interface Chunk {
  length: number;
  step: Float64Array;
  value: Float64Array;
  time: Float64Array;
  keyIndex: Int32Array;
  /** Keys first seen since the previous chunk, in index order (the worker keeps the whole list). */
  newKeys: string[];
  /** Bytes of the four buffers (what the chunk weighs while in flight, counted in BYTES_IN_FLIGHT). */
  bytes: number;
}

export const MAX_KEY_LENGTH = 256;
/** Names the chart query uses for its x axes; a metric of that name could never be charted. */
export const RESERVED_KEYS: ReadonlySet<string> = new Set(['step', '_step', '_time', '_relative', '_runtime', '_timestamp']);
/** Bytes one point takes in the columns (3 × Float64 + Int32). */
export const BYTES_PER_POINT = 28;

export interface MetricBufferOptions {
  /** Points per chunk (a full chunk is shipped at once). */
  chunkPoints: number;
  /** Receives every chunk, full or partial, in order. */
  ship: (chunk: Chunk) => void;
  /** Prints a warning (rate-limited by the buffer itself). */
  warn: (message: string) => void;
  /** Wall clock, epoch ms. */
  now?: () => number;
  /** First step (a resumed run continues after its last step). */
  startStep?: number;
  /** Column arrays of `chunkPoints` entries to reuse for the next chunk, when there are some. */
  reuse?: () => { step: Float64Array; value: Float64Array; time: Float64Array; keyIndex: Int32Array } | undefined;
}

const MAX_DISTINCT_WARNINGS = 100;

export class MetricBuffer {
  /** The current step: where the next `log()` without `step` goes. */
  step: number;
  private readonly chunkPoints: number;
  private readonly shipChunk: (chunk: Chunk) => void;
  private readonly warnSink: (message: string) => void;
  private readonly now: () => number;
  private readonly reuse?: MetricBufferOptions['reuse'];
  private steps: Float64Array;
  private values: Float64Array;
  private times: Float64Array;
  private keyIndex: Int32Array;
  private length = 0;
  private readonly keyMap = new Map<string, number>();
  /** Every key in index order. */
  readonly keys: string[] = [];
  /** Keys[0 … shippedKeys) have been sent to the worker. */
  private shippedKeys = 0;
  private readonly refusedKeys = new Set<string>();
  private readonly warned = new Set<string>();
  /** Points accepted in total. */
  points = 0;

  constructor(opts: MetricBufferOptions) {
    if (!Number.isSafeInteger(opts.chunkPoints) || opts.chunkPoints < 1) throw new RangeError(`chunkPoints must be a positive integer, got ${opts.chunkPoints}`);
    this.chunkPoints = opts.chunkPoints;
    this.shipChunk = opts.ship;
    this.warnSink = opts.warn;
    this.now = opts.now ?? Date.now;
    this.reuse = opts.reuse;
    this.step = opts.startStep ?? 0;
    this.steps = new Float64Array(this.chunkPoints);
    this.values = new Float64Array(this.chunkPoints);
    this.times = new Float64Array(this.chunkPoints);
    this.keyIndex = new Int32Array(this.chunkPoints);
  }

  /** Points waiting in the current chunk. */
  get pending(): number {
    return this.length;
  }

  log(data: MetricData, opts?: LogOptions): void {
    let step = this.step;
    let commit = true;
    if (opts !== undefined) {
      if (opts.step !== undefined) {
        const s = opts.step;
        if (typeof s !== 'number' || !Number.isFinite(s)) {
          this.warn('step-invalid', `run.log(): step ${String(s)} is not a finite number; these values were not logged. Pass { step: <number> } or leave it out.`);
          return;
        }
        if (s < this.step) {
          this.warn(
            `step-back`,
            `run.log(): step ${s} is below the current step ${this.step}; steps never go backwards, so these values were not logged. ` +
              'Log a growing step, or log your own x axis as a key (e.g. { epoch }).',
          );
          return;
        }
        step = this.step = s;
        commit = opts.commit === true;
      } else if (opts.commit === false) {
        commit = false;
      }
    }
    if (data === null || typeof data !== 'object') {
      this.warn('data-invalid', `run.log() takes an object of numbers such as { loss: 0.5 }, not ${data === null ? 'null' : typeof data}.`);
      return;
    }
    const time = this.now();
    for (const key in data) this.logValue(key, data[key], step, time, 1);
    if (commit) this.step = step + 1;
  }

  /** One point with its own step and time (system metrics), outside the step counter. */
  logAt(key: string, step: number, value: number, time: number): void {
    this.append(key, step, value, time, true);
  }

  /**
   * Ships the points waiting in the current chunk (copies of their used part;
   * the big arrays stay for the next points). No-op when empty.
   */
  shipPartial(): void {
    const n = this.length;
    if (n === 0) return;
    this.length = 0;
    this.shipChunk({
      length: n,
      step: this.steps.slice(0, n),
      value: this.values.slice(0, n),
      time: this.times.slice(0, n),
      keyIndex: this.keyIndex.slice(0, n),
      newKeys: this.takeNewKeys(),
      bytes: n * BYTES_PER_POINT,
    });
  }

  private shipFull(): void {
    const chunk: Chunk = {
      length: this.length,
      step: this.steps,
      value: this.values,
      time: this.times,
      keyIndex: this.keyIndex,
      newKeys: this.takeNewKeys(),
      bytes: this.length * BYTES_PER_POINT,
    };
    this.length = 0;
    const reused = this.reuse?.();
    if (reused && reused.step.length === this.chunkPoints) {
      this.steps = reused.step;
      this.values = reused.value;
      this.times = reused.time;
      this.keyIndex = reused.keyIndex;
    } else {
      this.steps = new Float64Array(this.chunkPoints);
      this.values = new Float64Array(this.chunkPoints);
      this.times = new Float64Array(this.chunkPoints);
      this.keyIndex = new Int32Array(this.chunkPoints);
    }
    this.shipChunk(chunk);
  }

  private takeNewKeys(): string[] {
    if (this.shippedKeys === this.keys.length) return [];
    const out = this.keys.slice(this.shippedKeys);
    this.shippedKeys = this.keys.length;
    return out;
  }

  private nested(prefix: string, obj: MetricData, step: number, time: number, depth: number): void {
    if (depth > 8) {
      this.refuseValue(prefix, obj);
      return;
    }
    for (const k in obj) this.logValue(`${prefix}/${k}`, obj[k], step, time, depth + 1);
  }

  /** One value of `run.log()` as a point of `key`; an object is logged as "key/…" keys `depth` levels down. */
  private logValue(key: string, v: MetricValue | MetricData | null | undefined, step: number, time: number, depth: number): void {
    if (typeof v === 'number') this.append(key, step, v, time);
    else if (typeof v === 'boolean') this.append(key, step, v ? 1 : 0, time);
    else if (typeof v === 'bigint') this.append(key, step, Number(v), time);
    else if (v !== null && typeof v === 'object' && !Array.isArray(v)) this.nested(key, v as MetricData, step, time, depth);
    else if (v !== undefined && v !== null) this.refuseValue(key, v);
  }

  /** Writes one point into the columns (skipped when its key is refused); ships the chunk when it is full. */
  private append(key: string, step: number, value: number, time: number, internal = false): void {
    let index = this.keyMap.get(key);
    if (index === undefined) {
      index = this.addKey(key, internal);
      if (index < 0) return;
    }
    const i = this.length;
    this.steps[i] = step;
    this.values[i] = value;
    this.times[i] = time;
    this.keyIndex[i] = index;
    this.points++;
    if (++this.length === this.chunkPoints) this.shipFull();
  }

  /** Validates a new key; returns its index, or -1 (with a warning, once) when refused. */
  private addKey(key: string, internal = false): number {
    if (this.refusedKeys.has(key)) return -1;
    const problem = keyProblem(key, internal);
    if (problem) {
      this.refusedKeys.add(key);
      this.warn(`key:${key}`, `run.log(): key ${JSON.stringify(key.length > 64 ? `${key.slice(0, 64)}…` : key)} ${problem}; its values are not logged.`);
      return -1;
    }
    const index = this.keys.push(key) - 1;
    this.keyMap.set(key, index);
    return index;
  }

  private refuseValue(key: string, v: unknown): void {
    const what = Array.isArray(v) ? 'an array' : typeof v === 'string' ? 'a string' : `a ${typeof v}`;
    this.warn(
      `value:${key}`,
      `run.log(): ${JSON.stringify(key)} is ${what}; only numbers (NaN and ±Infinity included), booleans (logged as 0/1) and nested objects of them are metrics. ` +
        'This value was skipped; put other values in run.summary or run.config.',
    );
  }

  private warn(tag: string, message: string): void {
    if (this.warned.has(tag)) return;
    if (this.warned.size >= MAX_DISTINCT_WARNINGS) return;
    this.warned.add(tag);
    if (this.warned.size === MAX_DISTINCT_WARNINGS) message += ' (further run.log() warnings are not shown)';
    this.warnSink(message);
  }
}

/** Why a key cannot be a metric, or '' when it can. */
export function keyProblem(key: string, internal = false): string {
  if (key.length === 0) return 'is empty';
  if (key.length > MAX_KEY_LENGTH) return `is ${key.length} characters long; keys are at most ${MAX_KEY_LENGTH}`;
  if (!internal && RESERVED_KEYS.has(key)) return `is reserved for the x axes of charts (${[...RESERVED_KEYS].join(', ')}); pick another name`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f]/.test(key)) return 'contains control characters';
  return '';
}
