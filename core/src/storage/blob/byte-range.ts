import { Errors } from '../../errors.js';
import type { ByteRange } from './blob-store.js';

/** Inclusive bounds of a range that fits inside an object. */
export interface ResolvedRange {
  start: number;
  end: number;
}

/** Rejects ranges that no object could satisfy (negative, fractional, end before start). */
export function assertRangeShape(range: ByteRange): void {
  const { start, end } = range;
  const startOk = Number.isSafeInteger(start) && start >= 0;
  const endOk = end === undefined || (Number.isSafeInteger(end) && end >= start);
  if (!startOk || !endOk) {
    throw Errors.BLOB_RANGE_INVALID(
      `Byte range ${formatRange(range)} is invalid; start and end must be whole numbers with 0 <= start <= end (end is inclusive).`,
      [{ field: 'range', message: 'need 0 <= start <= end' }],
    );
  }
}

/** Checks `range` against an object of `size` bytes and fills in an open end. */
export function resolveRange(range: ByteRange, size: number, digest: string): ResolvedRange {
  assertRangeShape(range);
  const end = range.end ?? size - 1;
  if (range.start >= size || end >= size) {
    const fix = size === 0 ? 'it is empty, so read it without a range' : `ask for 0 <= start <= end < ${size} (end is inclusive)`;
    throw Errors.BLOB_RANGE_INVALID(
      `Byte range ${formatRange(range)} is outside blob ${digest} of ${size} bytes; ${fix}.`,
      [{ field: 'range', message: `must lie within the blob's ${size} bytes` }],
    );
  }
  return { start: range.start, end };
}

export function formatRange(range: ByteRange): string {
  return `${range.start}-${range.end ?? ''}`;
}
