/**
 * The bytes of one metric_chunks row: a 16-byte header, then the chunk's
 * columns one after another, each with an 8-byte column header and a payload
 * padded to 8 bytes. Little-endian throughout.
 *
 *   chunk header   0 "WMCK" magic · 4 u8 version (1) · 5 u8 kind (0 raw, 1 tiles)
 *                  6 u16 columns · 8 u32 n (items) · 12 u32 reserved
 *   column header  0 u8 encoding · 1-3 reserved · 4 u32 payload bytes
 *   payload        encoding 0 "f64":    n × f64
 *                  encoding 1 "linear": f64 a, f64 d — item i is a + i·d
 *                  encoding 2 "delta":  f64 first, then n-1 × i32 differences
 *
 * Raw columns: step, value, time. Tile columns: first_step, last_step,
 * first_time, last_time, min, max, sum, count, nan_count.
 *
 * Why these encodings: the history is written once per point and rewritten
 * for each partial chunk, and on SQLite the cost of ingest is the bytes
 * written. Steps are usually 0, 1, 2 … (linear, 16 bytes per column), times
 * integer milliseconds a few apart (4 bytes per item instead of 8), a tile
 * level's bucket counts constant and NaN counts zero (linear). The encoder
 * picks an encoding only when it reproduces every value exactly (it checks
 * each one), so any other data falls back to plain f64; values are always
 * f64. Decoding is a fill or a prefix sum over at most a chunk — plain f64
 * columns are views over the row's bytes when aligned.
 *
 * A bucket's min/max/sum ignore NaN values (counted in nan_count), so one NaN
 * does not hide a bucket's range; ±Infinity are real values. A bucket of only
 * NaN keeps min = +Infinity, max = -Infinity, sum = 0 (neutral for merging);
 * readers show it as NaN because count = nan_count.
 *
 * No imports: the aggregation worker loads this file.
 */
export const CHUNK_HEADER_BYTES = 16;
const COLUMN_HEADER_BYTES = 8;
const MAGIC = 0x4b434d57; // "WMCK" read as a little-endian u32
const VERSION = 1;

export const ChunkKind = { Raw: 0, Tiles: 1 } as const;
export type ChunkKind = (typeof ChunkKind)[keyof typeof ChunkKind];

const Encoding = { f64: 0, linear: 1, delta: 2 } as const;
type Encoding = (typeof Encoding)[keyof typeof Encoding];

export const RAW_COLUMNS = 3;
export const TILE_COLUMNS = 9;

/** Tile buckets in column form; arrays may be longer than `n`. */
export interface TileColumns {
  n: number;
  firstStep: Float64Array;
  lastStep: Float64Array;
  firstTime: Float64Array;
  lastTime: Float64Array;
  min: Float64Array;
  max: Float64Array;
  sum: Float64Array;
  count: Float64Array;
  nanCount: Float64Array;
}

/** Raw points in column form; arrays may be longer than `n`. */
export interface RawColumns {
  n: number;
  step: Float64Array;
  value: Float64Array;
  time: Float64Array;
}

export type DecodedChunk = { kind: typeof ChunkKind.Raw; raw: RawColumns } | { kind: typeof ChunkKind.Tiles; tiles: TileColumns };

export function allocTiles(capacity: number): TileColumns {
  // One allocation, nine views: fewer objects for the GC than nine arrays.
  const all = new Float64Array(capacity * TILE_COLUMNS);
  const column = (i: number) => all.subarray(i * capacity, (i + 1) * capacity);
  return {
    n: 0,
    firstStep: column(0),
    lastStep: column(1),
    firstTime: column(2),
    lastTime: column(3),
    min: column(4),
    max: column(5),
    sum: column(6),
    count: column(7),
    nanCount: column(8),
  };
}

export function tileColumnList(t: TileColumns): Float64Array[] {
  return [t.firstStep, t.lastStep, t.firstTime, t.lastTime, t.min, t.max, t.sum, t.count, t.nanCount];
}

const pad8 = (bytes: number) => Math.ceil(bytes / 8) * 8;
const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

/** The smallest encoding that reproduces v[from, to) exactly. `plain` columns (measured values) are always f64. */
function encodingOf(v: Float64Array, from: number, to: number, plain: boolean): Encoding {
  const n = to - from;
  if (plain || n < 3) return Encoding.f64;
  if (isLinear(v, from, to)) return Encoding.linear;
  return isSmallIntegerSteps(v, from, to) ? Encoding.delta : Encoding.f64;
}

function isLinear(v: Float64Array, from: number, to: number): boolean {
  const a = v[from]!;
  const d = v[from + 1]! - a;
  if (!Number.isFinite(a) || !Number.isFinite(d)) return false;
  for (let i = from + 2, k = 2; i < to; i++, k++) if (v[i] !== a + k * d) return false;
  return true;
}

/** Integers (within ±2^53) whose successive differences fit an i32. */
function isSmallIntegerSteps(v: Float64Array, from: number, to: number): boolean {
  let previous = v[from]!;
  if (!(Math.floor(previous) === previous && Math.abs(previous) <= Number.MAX_SAFE_INTEGER)) return false;
  for (let i = from + 1; i < to; i++) {
    const x = v[i]!;
    const diff = x - previous;
    if (!(Math.floor(x) === x && Math.abs(x) <= Number.MAX_SAFE_INTEGER && diff >= INT32_MIN && diff <= INT32_MAX)) return false;
    previous = x;
  }
  return true;
}

function payloadBytes(encoding: Encoding, n: number): number {
  return encoding === Encoding.linear ? 16 : encoding === Encoding.delta ? 8 + pad8((n - 1) * 4) : n * 8;
}

/** A chunk ready to be written: its size is known before any byte is. */
export interface ChunkPlan {
  bytes: number;
  /** Writes the chunk at `offset` (8-byte aligned) of `out`. */
  write(out: ArrayBuffer, offset: number): void;
}

/**
 * Plans the chunk of items [from, to) of `columns`. `plainColumns` lists
 * columns always stored as f64 (measured values, where no cheaper exact
 * encoding is likely and checking would only cost time).
 */
export function planChunk(kind: ChunkKind, columns: Float64Array[], from: number, to: number, plainColumns: readonly number[]): ChunkPlan {
  const n = to - from;
  const encodings = columns.map((c, i) => encodingOf(c, from, to, plainColumns.includes(i)));
  const sizes = encodings.map((e) => payloadBytes(e, n));
  const bytes = CHUNK_HEADER_BYTES + sizes.reduce((sum, s) => sum + COLUMN_HEADER_BYTES + s, 0);
  return {
    bytes,
    write(out, offset) {
      const view = new DataView(out, offset, bytes);
      view.setUint32(0, MAGIC, true);
      view.setUint8(4, VERSION);
      view.setUint8(5, kind);
      view.setUint16(6, columns.length, true);
      view.setUint32(8, n, true);
      view.setUint32(12, 0, true);
      let at = CHUNK_HEADER_BYTES;
      columns.forEach((column, c) => {
        const encoding = encodings[c]!;
        view.setUint8(at, encoding);
        view.setUint32(at + 4, sizes[c]!, true);
        const payload = offset + at + COLUMN_HEADER_BYTES;
        if (encoding === Encoding.f64) new Float64Array(out, payload, n).set(column.subarray(from, to));
        else if (encoding === Encoding.linear) new Float64Array(out, payload, 2).set([column[from]!, column[from + 1]! - column[from]!]);
        else {
          new Float64Array(out, payload, 1)[0] = column[from]!;
          const diffs = new Int32Array(out, payload + 8, n - 1);
          for (let i = 1; i < n; i++) diffs[i - 1] = column[from + i]! - column[from + i - 1]!;
        }
        at += COLUMN_HEADER_BYTES + sizes[c]!;
      });
    },
  };
}

/** Columns of a raw chunk always stored as f64: the values. */
export const RAW_PLAIN: readonly number[] = [1];
/** Columns of a tile chunk always stored as f64: min, max, sum. */
export const TILE_PLAIN: readonly number[] = [4, 5, 6];

/** A chunk as a fresh byte array (tests, small writes). */
export function encodeChunk(kind: ChunkKind, columns: Float64Array[], from: number, to: number): Uint8Array {
  const plan = planChunk(kind, columns, from, to, kind === ChunkKind.Raw ? RAW_PLAIN : TILE_PLAIN);
  const out = new ArrayBuffer(plan.bytes);
  plan.write(out, 0);
  return new Uint8Array(out);
}

function bad(message: string): Error {
  return new Error(`metric chunk is malformed: ${message}`);
}

/**
 * Reads a chunk. f64 columns are views over `bytes` when it is 8-byte
 * aligned (a copy otherwise), others are decoded into new arrays. Throws a
 * plain Error on bytes that are not a chunk: the caller reports it (the
 * worker has no access to the error catalogue).
 */
export function decodeChunk(bytes: Uint8Array): DecodedChunk {
  if (bytes.byteLength < CHUNK_HEADER_BYTES) throw bad(`${bytes.byteLength} bytes is shorter than its header`);
  const aligned = bytes.byteOffset % 8 === 0 ? bytes : bytes.slice();
  const view = new DataView(aligned.buffer, aligned.byteOffset, aligned.byteLength);
  const magic = view.getUint32(0, true);
  const version = view.getUint8(4);
  const kind = view.getUint8(5);
  const count = view.getUint16(6, true);
  const n = view.getUint32(8, true);
  if (magic !== MAGIC || version !== VERSION) throw bad(`magic 0x${magic.toString(16)} version ${version}; expected "WMCK" version ${VERSION}`);
  const expected = kind === ChunkKind.Raw ? RAW_COLUMNS : kind === ChunkKind.Tiles ? TILE_COLUMNS : -1;
  if (count !== expected) throw bad(`kind ${kind} with ${count} columns`);
  const columns: Float64Array[] = [];
  let at = CHUNK_HEADER_BYTES;
  for (let c = 0; c < count; c++) {
    if (at + COLUMN_HEADER_BYTES > aligned.byteLength) throw bad(`column ${c} starts past the end`);
    const encoding = view.getUint8(at);
    const size = view.getUint32(at + 4, true);
    const payload = aligned.byteOffset + at + COLUMN_HEADER_BYTES;
    if (at + COLUMN_HEADER_BYTES + size > aligned.byteLength || size !== payloadBytes(encoding as Encoding, n)) throw bad(`column ${c} has ${size} bytes`);
    if (encoding === Encoding.f64) columns.push(new Float64Array(aligned.buffer, payload, n));
    else if (encoding === Encoding.linear) {
      const [a, d] = new Float64Array(aligned.buffer, payload, 2) as unknown as [number, number];
      const out = new Float64Array(n);
      for (let i = 0; i < n; i++) out[i] = a + i * d;
      columns.push(out);
    } else if (encoding === Encoding.delta) {
      const out = new Float64Array(n);
      if (n > 0) out[0] = new Float64Array(aligned.buffer, payload, 1)[0]!;
      const diffs = new Int32Array(aligned.buffer, payload + 8, Math.max(0, n - 1));
      for (let i = 1; i < n; i++) out[i] = out[i - 1]! + diffs[i - 1]!;
      columns.push(out);
    } else throw bad(`column ${c} has unknown encoding ${encoding}`);
    at += COLUMN_HEADER_BYTES + size;
  }
  if (kind === ChunkKind.Raw) return { kind: ChunkKind.Raw, raw: { n, step: columns[0]!, value: columns[1]!, time: columns[2]! } };
  const [firstStep, lastStep, firstTime, lastTime, min, max, sum, countColumn, nanCount] = columns as [
    Float64Array, Float64Array, Float64Array, Float64Array, Float64Array, Float64Array, Float64Array, Float64Array, Float64Array,
  ];
  return { kind: ChunkKind.Tiles, tiles: { n, firstStep, lastStep, firstTime, lastTime, min, max, sum, count: countColumn, nanCount } };
}
