import { Errors } from '@wanllmdb/core';
import { decodeMetricBatch, type MetricColumns } from './metric-batch.js';

/**
 * How a pending batch is kept in `metric_batches.data` (ADR 0006): either the
 * Arrow IPC bytes exactly as a client sent them, or — for points that arrived
 * as JSON objects, or that screening changed — the columns packed as they
 * are in memory:
 *
 *   0  magic "WLMB" · 4 format version (1) · 8 points n · 12 keys k   (u32, little-endian)
 *   16 step f64[n] · value f64[n] · time f64[n] · keyIndex i32[n]
 *   then k keys, each a u32 byte length and its UTF-8 bytes
 *
 * A packed batch costs a copy of the columns to write (an Arrow IPC stream of
 * a 2-point batch took ~20 % of a small ingest call's CPU to write, and is
 * ~6× the bytes), and its columns are read in place. Arrow IPC can never
 * start with the magic: a stream starts with 0xFFFFFFFF (or, in the legacy
 * form, the metadata length, which "WLMB" would make 1.1 GB) and a file with
 * "ARROW1".
 */
const MAGIC = 0x424d4c57; // "WLMB" read as a little-endian u32
const VERSION = 1;
const HEADER_BYTES = 16;

/** The columns (their first `length` entries) packed for storage. */
export function packMetricBatch(cols: MetricColumns): Uint8Array<ArrayBuffer> {
  const n = cols.length;
  const encoder = new TextEncoder();
  const keys = cols.keys.map((k) => encoder.encode(k));
  const keyBytes = keys.reduce((sum, k) => sum + 4 + k.byteLength, 0);
  const buffer = new ArrayBuffer(HEADER_BYTES + n * 28 + keyBytes);
  const view = new DataView(buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint32(4, VERSION, true);
  view.setUint32(8, n, true);
  view.setUint32(12, keys.length, true);
  new Float64Array(buffer, HEADER_BYTES, n).set(cols.step.subarray(0, n));
  new Float64Array(buffer, HEADER_BYTES + n * 8, n).set(cols.value.subarray(0, n));
  new Float64Array(buffer, HEADER_BYTES + n * 16, n).set(cols.time.subarray(0, n));
  new Int32Array(buffer, HEADER_BYTES + n * 24, n).set(cols.keyIndex.subarray(0, n));
  const bytes = new Uint8Array(buffer);
  let at = HEADER_BYTES + n * 28;
  for (const key of keys) {
    view.setUint32(at, key.byteLength, true);
    bytes.set(key, at + 4);
    at += 4 + key.byteLength;
  }
  return bytes;
}

function corrupt(reason: string): Error {
  return Errors.INTERNAL(`A stored metric batch is corrupt (${reason}); it cannot be aggregated. Report this with the database file.`);
}

/**
 * The columns of stored batch bytes: a packed batch (columns read in place
 * when the bytes are 8-byte aligned, else from an aligned copy) or Arrow IPC.
 */
export function decodeStoredBatch(bytes: Uint8Array): MetricColumns {
  if (bytes.byteLength < HEADER_BYTES || new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true) !== MAGIC) return decodeMetricBatch(bytes);
  const own = bytes.byteOffset % 8 === 0 ? bytes : bytes.slice();
  const view = new DataView(own.buffer, own.byteOffset, own.byteLength);
  const version = view.getUint32(4, true);
  if (version !== VERSION) throw corrupt(`format version ${version}; this server reads ${VERSION}`);
  const n = view.getUint32(8, true);
  const k = view.getUint32(12, true);
  if (HEADER_BYTES + n * 28 + k * 4 > own.byteLength) throw corrupt(`${own.byteLength} bytes cannot hold ${n} points`);
  const base = own.byteOffset + HEADER_BYTES;
  const keyIndex = new Int32Array(own.buffer, base + n * 24, n);
  const decoder = new TextDecoder();
  const keys: string[] = [];
  let at = HEADER_BYTES + n * 28;
  for (let i = 0; i < k; i++) {
    if (at + 4 > own.byteLength) throw corrupt('its key list is cut short');
    const length = view.getUint32(at, true);
    if (at + 4 + length > own.byteLength) throw corrupt('its key list is cut short');
    keys.push(decoder.decode(own.subarray(at + 4, at + 4 + length)));
    at += 4 + length;
  }
  for (let i = 0; i < n; i++) if (!(keyIndex[i]! >= 0 && keyIndex[i]! < k)) throw corrupt(`point ${i} has key index ${keyIndex[i]}`);
  return {
    length: n,
    step: new Float64Array(own.buffer, base, n),
    value: new Float64Array(own.buffer, base + n * 8, n),
    time: new Float64Array(own.buffer, base + n * 16, n),
    keyIndex,
    keys,
  };
}
