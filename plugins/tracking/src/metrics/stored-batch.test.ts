import { Errors } from '@wanllmdb/core';
import { describe, expect, it } from 'vitest';
import { encodeMetricBatch, type MetricColumns } from './metric-batch.js';
import { decodeStoredBatch, packMetricBatch } from './stored-batch.js';

const cols = (): MetricColumns => ({
  length: 3,
  step: Float64Array.of(0, 1, 2, 99),
  value: Float64Array.of(1.5, NaN, -Infinity, 99),
  time: Float64Array.of(1_700_000_000_000, 1_700_000_000_001, 1_700_000_000_002, 99),
  keyIndex: Int32Array.of(0, 1, 0, 1),
  keys: ['loss', 'grad/norm ü'],
});

const plain = (c: MetricColumns) => ({
  length: c.length,
  step: [...c.step.subarray(0, c.length)],
  value: [...c.value.subarray(0, c.length)],
  time: [...c.time.subarray(0, c.length)],
  keyIndex: [...c.keyIndex.subarray(0, c.length)],
  keys: c.keys,
});

describe('stored metric batches', () => {
  it('packs the first `length` points and reads them back, NaN and ±Infinity kept, columns in place', () => {
    const packed = packMetricBatch(cols());
    expect(packed.byteLength).toBe(16 + 3 * 28 + 4 + 4 + 4 + Buffer.byteLength('grad/norm ü'));
    const back = decodeStoredBatch(packed);
    expect(plain(back)).toEqual(plain(cols()));
    expect(back.step.buffer).toBe(packed.buffer);
  });

  it('reads packed bytes that are not 8-byte aligned (a slice of a larger buffer) from a copy', () => {
    const packed = packMetricBatch(cols());
    const shifted = new Uint8Array(packed.byteLength + 3).subarray(3);
    shifted.set(packed);
    expect(plain(decodeStoredBatch(shifted))).toEqual(plain(cols()));
  });

  it('reads Arrow IPC bytes as clients send them', () => {
    expect(plain(decodeStoredBatch(encodeMetricBatch(cols())))).toEqual(plain(cols()));
  });

  it('packs an empty batch', () => {
    const empty: MetricColumns = { length: 0, step: new Float64Array(0), value: new Float64Array(0), time: new Float64Array(0), keyIndex: new Int32Array(0), keys: [] };
    expect(plain(decodeStoredBatch(packMetricBatch(empty)))).toEqual(plain(empty));
  });

  it('refuses corrupt packed bytes with WLDB_ERR_INTERNAL instead of reading past them', () => {
    const packed = packMetricBatch(cols());
    const expectInternal = (bytes: Uint8Array, reason: RegExp) => {
      let caught: unknown;
      try {
        decodeStoredBatch(bytes);
      } catch (err) {
        caught = err;
      }
      expect(Errors.INTERNAL.is(caught)).toBe(true);
      expect((caught as Error).message).toMatch(reason);
    };
    expectInternal(packed.slice(0, 40), /cannot hold 3 points/);
    expectInternal(packed.slice(0, packed.byteLength - 2), /cut short/);
    const badIndex = packed.slice();
    new DataView(badIndex.buffer).setInt32(16 + 3 * 24 + 4, 7, true);
    expectInternal(badIndex, /point 1 has key index 7/);
    const newer = packed.slice();
    new DataView(newer.buffer).setUint32(4, 2, true);
    expectInternal(newer, /format version 2/);
  });
});
