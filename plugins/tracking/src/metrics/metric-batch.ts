import {
  Dictionary,
  Field,
  Float64,
  Int32,
  makeData,
  makeVector,
  RecordBatch,
  RecordBatchReader,
  RecordBatchStreamWriter,
  Schema,
  Struct,
  Type,
  Utf8,
  type Data,
  type DataType,
  type Vector,
} from 'apache-arrow';
import { Errors } from '@wanllmdb/core';

/**
 * The metrics wire format shared by the SDK and the server: one Arrow IPC
 * *stream* holding a record batch with the columns
 *
 *   step: Float64, key: Dictionary<Int32, Utf8>, value: Float64, time: Float64 (epoch ms)
 *
 * in column form, so neither side ever makes a JS object per point. A batch of
 * 100,000 points is ~2.8 MB of IPC bytes, written and read as whole buffers.
 */
export interface MetricColumns {
  /** Points in the batch; only the first `length` entries of each array count. */
  length: number;
  step: Float64Array;
  value: Float64Array;
  /** Wall time in epoch milliseconds. */
  time: Float64Array;
  /** Index into `keys` of each point's key. */
  keyIndex: Int32Array;
  /** The distinct keys (the dictionary). */
  keys: string[];
}

/** Column names of the wire schema, in the order they are written. */
export const METRIC_BATCH_COLUMNS = ['step', 'key', 'value', 'time'] as const;

const SCHEMA_TEXT = 'step: Float64, key: Dictionary<Int32, Utf8>, value: Float64, time: Float64 (epoch ms)';

/** Encodes a string list as Arrow Utf8 data (offsets + bytes) without an intermediate vector builder. */
function utf8Data(strings: readonly string[]): Data<Utf8> {
  const encoder = new TextEncoder();
  const encoded = strings.map((s) => encoder.encode(s));
  const offsets = new Int32Array(strings.length + 1);
  let total = 0;
  for (let i = 0; i < encoded.length; i++) {
    total += encoded[i]!.byteLength;
    offsets[i + 1] = total;
  }
  const bytes = new Uint8Array(total);
  for (let i = 0; i < encoded.length; i++) bytes.set(encoded[i]!, offsets[i]);
  return makeData({ type: new Utf8(), length: strings.length, nullCount: 0, valueOffsets: offsets, data: bytes });
}

/**
 * Encodes the first `cols.length` points as Arrow IPC stream bytes. The typed
 * arrays go into Arrow Data as they are (views, no per-point work); the only
 * copy is the IPC writer assembling the output buffer. Indices are not checked
 * here (decoding checks them), so encoding stays a pair of memcpys.
 */
export function encodeMetricBatch(cols: MetricColumns): Uint8Array {
  const n = cols.length;
  if (!Number.isSafeInteger(n) || n < 0) {
    throw Errors.VALIDATION(`encodeMetricBatch: length must be a non-negative integer, got ${String(n)}.`);
  }
  for (const name of ['step', 'value', 'time', 'keyIndex'] as const) {
    if (cols[name].length < n) {
      throw Errors.VALIDATION(`encodeMetricBatch: column ${name} holds ${cols[name].length} entries but length is ${n}; pass arrays at least \`length\` long.`);
    }
  }
  const float = (values: Float64Array) => makeData({ type: new Float64(), length: n, nullCount: 0, data: values.subarray(0, n) });
  const keyType = new Dictionary(new Utf8(), new Int32(), 0);
  const key = makeData({
    type: keyType,
    length: n,
    nullCount: 0,
    data: cols.keyIndex.subarray(0, n),
    dictionary: makeVector(utf8Data(cols.keys)),
  });
  const fields = [
    new Field('step', new Float64(), false),
    new Field('key', keyType, false),
    new Field('value', new Float64(), false),
    new Field('time', new Float64(), false),
  ];
  const schema = new Schema(fields);
  const struct = makeData({ type: new Struct(fields), length: n, nullCount: 0, children: [float(cols.step), key, float(cols.value), float(cols.time)] });
  return RecordBatchStreamWriter.writeAll([new RecordBatch(schema, struct)]).toUint8Array(true);
}

function invalid(reason: string, cause?: unknown): Error {
  return Errors.VALIDATION(
    `The metric batch was refused: ${reason}. Send one Arrow IPC stream with the columns ${SCHEMA_TEXT}, ` +
      'as encodeMetricBatch() of @wanllmdb/plugin-tracking (or the SDK) writes it.',
    [{ field: 'arrow_ipc', message: reason }],
    cause,
  );
}

const isFloat64 = (type: DataType) => type.typeId === Type.Float && (type as Float64).precision === 2;
const isIndexType = (type: DataType) => type.typeId === Type.Int && (type as Int32).bitWidth <= 32;

/** One column of every record batch, checked against the wire schema. */
function columnOf(schema: Schema, name: string): number {
  const index = schema.fields.findIndex((f) => f.name === name);
  if (index < 0) throw invalid(`it has no column "${name}" (columns: ${schema.fields.map((f) => f.name).join(', ') || 'none'})`);
  const type = schema.fields[index]!.type;
  const ok =
    name === 'key'
      ? type.typeId === Type.Utf8 || (type.typeId === Type.Dictionary && (type as Dictionary).dictionary.typeId === Type.Utf8 && isIndexType((type as Dictionary).indices))
      : isFloat64(type);
  if (!ok) throw invalid(`column "${name}" has type ${String(type)}`);
  return index;
}

/** Float64 values of one batch's column; nulls (if any) become NaN in a copy. */
function floatValues(data: Data): Float64Array {
  const values = (data.values as Float64Array).subarray(data.offset, data.offset + data.length);
  if (data.nullCount === 0) return values;
  const copy = Float64Array.from(values);
  for (let i = 0; i < data.length; i++) if (!data.getValid(i)) copy[i] = NaN;
  return copy;
}

/** Strings of a Utf8 dictionary (null entries read as ""), decoded straight from its offsets and bytes. */
function dictionaryStrings(dictionary: Vector): string[] {
  const out = new Array<string>(dictionary.length);
  const decoder = new TextDecoder();
  let i = 0;
  for (const chunk of dictionary.data as Data<Utf8>[]) {
    const offsets = chunk.valueOffsets;
    const bytes = chunk.values;
    for (let j = chunk.offset, end = chunk.offset + chunk.length; j < end; j++) {
      out[i++] = chunk.nullCount > 0 && !chunk.getValid(j - chunk.offset) ? '' : decoder.decode(bytes.subarray(offsets[j]!, offsets[j + 1]!));
    }
  }
  return out;
}

/** Key indices of one batch into `keys` (shared by all batches), extending it as needed. */
function keyIndices(data: Data, keys: string[], slots: Map<string, number>): Int32Array {
  const n = data.length;
  const slotOf = (s: string) => {
    let slot = slots.get(s);
    if (slot === undefined) {
      slot = keys.push(s) - 1;
      slots.set(s, slot);
    }
    return slot;
  };
  if (data.type.typeId === Type.Utf8) {
    const out = new Int32Array(n);
    const vector = makeVector(data as Data<Utf8>);
    for (let i = 0; i < n; i++) out[i] = slotOf(vector.get(i) ?? '');
    return out;
  }
  const dictionary = data.dictionary;
  const strings = dictionary ? dictionaryStrings(dictionary) : [];
  const raw = (data.values as Int32Array).subarray(data.offset, data.offset + n);
  const nullSlot = data.nullCount > 0 ? slotOf('') : -1;
  const map = new Int32Array(strings.length);
  let identity = raw instanceof Int32Array && data.nullCount === 0;
  for (let d = 0; d < strings.length; d++) {
    map[d] = slotOf(strings[d]!);
    identity &&= map[d] === d;
  }
  // The common case (one batch, Int32 indices, no nulls, distinct keys) keeps the indices as they are: zero-copy.
  if (identity) {
    checkIndexRange(raw as Int32Array, strings.length);
    return raw as Int32Array;
  }
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    if (nullSlot >= 0 && !data.getValid(i)) {
      out[i] = nullSlot;
      continue;
    }
    const index = raw[i]!;
    if (!(index >= 0 && index < strings.length)) throw badIndex(i, index, strings.length);
    out[i] = map[index]!;
  }
  return out;
}

const badIndex = (point: number, index: number, size: number) => invalid(`point ${point} has key index ${index}, outside the dictionary of ${size} keys`);

/** Throws unless every index is in [0, size): a monomorphic min/max pass (~1 ms per million points). */
function checkIndexRange(indices: Int32Array, size: number): void {
  let min = 0;
  let max = -1;
  for (let i = 0; i < indices.length; i++) {
    const v = indices[i]!;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (min < 0 || max >= size) {
    const point = indices.findIndex((v) => v < 0 || v >= size);
    throw badIndex(point, indices[point]!, size);
  }
}

function concatFloat(parts: Float64Array[], total: number): Float64Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Float64Array(total);
  let at = 0;
  for (const part of parts) (out.set(part, at), (at += part.length));
  return out;
}

function concatInt(parts: Int32Array[], total: number): Int32Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Int32Array(total);
  let at = 0;
  for (const part of parts) (out.set(part, at), (at += part.length));
  return out;
}

/**
 * Decodes Arrow IPC bytes (stream, or file format) into columns. With one
 * record batch of the wire schema the columns are views over `bytes` (no
 * copy); several batches are concatenated. Extra columns are ignored (newer
 * writers may add some); a key column of plain Utf8 is accepted too. Anything
 * else — bytes that are not Arrow IPC, missing columns, wrong types, key
 * indices outside the dictionary — throws WLDB_ERR_VALIDATION.
 */
export function decodeMetricBatch(bytes: Uint8Array): MetricColumns {
  if (!(bytes instanceof Uint8Array) || bytes.byteLength === 0) throw invalid('it is empty');
  // Arrow views Float64 buffers in place, which needs 8-byte alignment of the input.
  const aligned = bytes.byteOffset % 8 === 0 ? bytes : bytes.slice();
  let schema: Schema | undefined;
  let batches: RecordBatch[];
  try {
    const reader = RecordBatchReader.from(aligned).open();
    // Read the schema before the batches: the reader forgets it once drained.
    schema = reader.schema as Schema | undefined;
    batches = reader.readAll();
  } catch (err) {
    throw invalid(`it is not Arrow IPC (${err instanceof Error ? err.message : String(err)})`, err);
  }
  if (!schema) throw invalid('it is not Arrow IPC (no schema message)');
  const columns = METRIC_BATCH_COLUMNS.map((name) => columnOf(schema, name));
  const [stepAt, keyAt, valueAt, timeAt] = columns as [number, number, number, number];

  const steps: Float64Array[] = [];
  const values: Float64Array[] = [];
  const times: Float64Array[] = [];
  const indices: Int32Array[] = [];
  const keys: string[] = [];
  const slots = new Map<string, number>();
  let length = 0;
  for (const batch of batches) {
    if (batch.numRows === 0) continue;
    const children = batch.data.children;
    steps.push(floatValues(children[stepAt]!));
    values.push(floatValues(children[valueAt]!));
    times.push(floatValues(children[timeAt]!));
    indices.push(keyIndices(children[keyAt]!, keys, slots));
    length += batch.numRows;
  }
  if (length === 0) return { length: 0, step: new Float64Array(0), value: new Float64Array(0), time: new Float64Array(0), keyIndex: new Int32Array(0), keys: [] };
  return {
    length,
    step: concatFloat(steps, length),
    value: concatFloat(values, length),
    time: concatFloat(times, length),
    keyIndex: concatInt(indices, length),
    keys,
  };
}
