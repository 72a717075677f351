import { Dictionary, Field, Float64, Int8, RecordBatch, RecordBatchStreamWriter, Schema, Struct, Utf8, makeData, tableToIPC, tableFromArrays, vectorFromArray } from 'apache-arrow';
import { Errors } from '@wanllmdb/core';
import { describe, expect, it } from 'vitest';
import { decodeMetricBatch, encodeMetricBatch, type MetricColumns } from './metric-batch.js';

function columns(points: { key: string; step: number; value: number; time: number }[]): MetricColumns {
  const keys: string[] = [];
  const slot = new Map<string, number>();
  const cols: MetricColumns = {
    length: points.length,
    step: new Float64Array(points.length),
    value: new Float64Array(points.length),
    time: new Float64Array(points.length),
    keyIndex: new Int32Array(points.length),
    keys,
  };
  points.forEach((p, i) => {
    let k = slot.get(p.key);
    if (k === undefined) slot.set(p.key, (k = keys.push(p.key) - 1));
    cols.step[i] = p.step;
    cols.value[i] = p.value;
    cols.time[i] = p.time;
    cols.keyIndex[i] = k;
  });
  return cols;
}

/** The points of decoded columns as plain objects, for comparisons. */
function points(cols: MetricColumns) {
  return Array.from({ length: cols.length }, (_, i) => ({
    key: cols.keys[cols.keyIndex[i]!]!,
    step: cols.step[i]!,
    value: cols.value[i]!,
    time: cols.time[i]!,
  }));
}

describe('metric batch codec', () => {
  it('round-trips points, keeping NaN and ±Infinity', () => {
    const logged = [
      { key: 'loss', step: 0, value: 1.5, time: 1_700_000_000_000 },
      { key: 'acc', step: 0, value: NaN, time: 1_700_000_000_001 },
      { key: 'loss', step: 1, value: Infinity, time: 1_700_000_000_002 },
      { key: 'grad/norm ü', step: 2, value: -Infinity, time: 1_700_000_000_003 },
      { key: 'loss', step: 3, value: -0.25, time: 1_700_000_000_004 },
    ];
    const decoded = decodeMetricBatch(encodeMetricBatch(columns(logged)));
    expect(decoded.length).toBe(5);
    expect(points(decoded)).toEqual(logged);
  });

  it('encodes only the first `length` entries of longer (reused) buffers', () => {
    const cols = columns([
      { key: 'a', step: 1, value: 10, time: 5 },
      { key: 'b', step: 2, value: 20, time: 6 },
      { key: 'a', step: 3, value: 30, time: 7 },
    ]);
    const decoded = decodeMetricBatch(encodeMetricBatch({ ...cols, length: 2 }));
    expect(points(decoded)).toEqual([
      { key: 'a', step: 1, value: 10, time: 5 },
      { key: 'b', step: 2, value: 20, time: 6 },
    ]);
  });

  it('carries 10,000 distinct keys', () => {
    const n = 20_000;
    const keys = Array.from({ length: 10_000 }, (_, i) => `layer.${i}/weight_norm`);
    const cols: MetricColumns = {
      length: n,
      step: Float64Array.from({ length: n }, (_, i) => Math.floor(i / 10_000)),
      value: Float64Array.from({ length: n }, (_, i) => i * 0.5),
      time: Float64Array.from({ length: n }, (_, i) => 1e12 + i),
      keyIndex: Int32Array.from({ length: n }, (_, i) => i % 10_000),
      keys,
    };
    const decoded = decodeMetricBatch(encodeMetricBatch(cols));
    expect(decoded.keys).toEqual(keys);
    expect(Array.from(decoded.keyIndex)).toEqual(Array.from(cols.keyIndex));
    expect(Array.from(decoded.value)).toEqual(Array.from(cols.value));
  });

  it('round-trips an empty batch', () => {
    const decoded = decodeMetricBatch(encodeMetricBatch(columns([])));
    expect(decoded.length).toBe(0);
  });

  it('decodes without copying the float columns when the bytes are aligned', () => {
    const bytes = encodeMetricBatch(columns([{ key: 'a', step: 1, value: 2, time: 3 }]));
    const decoded = decodeMetricBatch(bytes);
    expect(decoded.value.buffer).toBe(bytes.buffer);
    expect(decoded.keyIndex.buffer).toBe(bytes.buffer);
  });

  it('decodes bytes at an unaligned offset (a slice of a larger message)', () => {
    const bytes = encodeMetricBatch(columns([{ key: 'a', step: 1, value: 2, time: 3 }]));
    const carrier = new Uint8Array(bytes.byteLength + 3);
    carrier.set(bytes, 3);
    expect(points(decodeMetricBatch(carrier.subarray(3)))).toEqual([{ key: 'a', step: 1, value: 2, time: 3 }]);
  });

  it('rejects garbage, empty and truncated bytes with WLDB_ERR_VALIDATION', () => {
    const garbage = new Uint8Array(1000).map((_, i) => (i * 7919) % 251);
    for (const bad of [garbage, new Uint8Array(0), new TextEncoder().encode('{"step":1}')]) {
      expect(() => decodeMetricBatch(bad)).toThrow(expect.objectContaining({ code: Errors.VALIDATION.code }));
    }
    const good = encodeMetricBatch(columns([{ key: 'a', step: 1, value: 2, time: 3 }]));
    expect(() => decodeMetricBatch(good.subarray(0, good.byteLength - 20))).toThrow(expect.objectContaining({ code: Errors.VALIDATION.code }));
  });

  it('rejects a stream with the wrong schema, naming the column', () => {
    const wrong = tableToIPC(tableFromArrays({ step: new Float64Array([1]), value: new Float64Array([2]) }), 'stream');
    expect(() => decodeMetricBatch(wrong)).toThrow(/no column "key"/);
    const intStep = tableToIPC(
      tableFromArrays({ step: new Int32Array([1]), key: ['a'], value: new Float64Array([2]), time: new Float64Array([3]) }),
      'stream',
    );
    expect(() => decodeMetricBatch(intStep)).toThrow(/column "step" has type Int32/);
  });

  it('rejects key indices outside the dictionary', () => {
    const cols = columns([{ key: 'a', step: 1, value: 2, time: 3 }]);
    cols.keyIndex[0] = 5;
    expect(() => decodeMetricBatch(encodeMetricBatch(cols))).toThrow(/key index 5/);
  });

  it('accepts what other Arrow writers produce: plain Utf8 keys, Int8 indices, several batches', () => {
    const plain = tableToIPC(
      tableFromArrays({ step: new Float64Array([1, 2]), key: ['x', 'y'], value: new Float64Array([3, 4]), time: new Float64Array([5, 6]) }),
      'stream',
    );
    expect(points(decodeMetricBatch(plain))).toEqual([
      { key: 'x', step: 1, value: 3, time: 5 },
      { key: 'y', step: 2, value: 4, time: 6 },
    ]);

    const keyType = new Dictionary(new Utf8(), new Int8(), 0);
    const fields = [new Field('step', new Float64()), new Field('key', keyType), new Field('value', new Float64()), new Field('time', new Float64())];
    const schema = new Schema(fields);
    const batch = (step: number, key: string[], index: number) =>
      new RecordBatch(
        schema,
        makeData({
          type: new Struct(fields),
          length: 1,
          children: [
            makeData({ type: new Float64(), length: 1, data: new Float64Array([step]) }),
            makeData({ type: keyType, length: 1, data: new Int8Array([index]), dictionary: vectorFromArray(key, new Utf8()) }),
            makeData({ type: new Float64(), length: 1, data: new Float64Array([step * 10]) }),
            makeData({ type: new Float64(), length: 1, data: new Float64Array([step * 100]) }),
          ],
        }),
      );
    const two = RecordBatchStreamWriter.writeAll([batch(1, ['p', 'q'], 1), batch(2, ['q', 'p'], 1)]).toUint8Array(true);
    expect(points(decodeMetricBatch(two))).toEqual([
      { key: 'q', step: 1, value: 10, time: 100 },
      { key: 'p', step: 2, value: 20, time: 200 },
    ]);
  });

  it('encodes a million points fast, without per-point objects', () => {
    const n = 1_000_000;
    const cols: MetricColumns = {
      length: n,
      step: Float64Array.from({ length: n }, (_, i) => i),
      value: Float64Array.from({ length: n }, (_, i) => Math.sin(i)),
      time: new Float64Array(n).fill(1e12),
      keyIndex: Int32Array.from({ length: n }, (_, i) => i & 3),
      keys: ['a', 'b', 'c', 'd'],
    };
    encodeMetricBatch(cols);
    const start = performance.now();
    const bytes = encodeMetricBatch(cols);
    const encodeMs = performance.now() - start;
    const decoded = decodeMetricBatch(bytes);
    expect(decoded.length).toBe(n);
    expect(decoded.value[12345]).toBe(Math.sin(12345));
    expect(encodeMs).toBeLessThan(500);
  });
});
