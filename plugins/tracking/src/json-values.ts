import type { ErrorDetail } from '@wanllmdb/core';
import type { JsonObject, JsonValue } from '@wanllmdb/proto';

/**
 * JSON values of runs (config, summary) as they are stored and served.
 *
 * JSON has no NaN or ±Infinity, but metrics produce them. Everywhere a run's
 * JSON is stored (the `config`, `summary` columns, config history) and
 * served (Struct values), a non-finite number is the *string* "NaN",
 * "Infinity" or "-Infinity" — the proto3 JSON mapping's spelling of a
 * double. The run filter reads "Infinity"/"-Infinity" strings back as
 * numbers when comparing or sorting; "NaN" compares like SQL NULL (never
 * matches, sorts last). The price: a user string "NaN" is indistinguishable
 * from the number NaN, as on any JSON wire.
 */
export const NON_FINITE_STRINGS = ['NaN', 'Infinity', '-Infinity'] as const;

export function encodeNumber(n: number): number | string {
  if (Number.isFinite(n)) return n;
  return Number.isNaN(n) ? 'NaN' : n > 0 ? 'Infinity' : '-Infinity';
}

/** `value` with every non-finite number (at any depth) replaced by its string spelling. */
export function encodeNonFinite(value: unknown): JsonValue {
  if (typeof value === 'number') return encodeNumber(value);
  if (Array.isArray(value)) return value.map(encodeNonFinite);
  if (value !== null && typeof value === 'object') {
    const out: JsonObject = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = encodeNonFinite(v);
    return out;
  }
  return value as JsonValue;
}

/** A double from a number or one of the strings "NaN", "Infinity", "-Infinity"; undefined otherwise. */
export function decodeNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (v === 'NaN') return NaN;
  if (v === 'Infinity') return Infinity;
  if (v === '-Infinity') return -Infinity;
  return undefined;
}

export interface JsonLimits {
  maxBytes: number;
  maxDepth: number;
}

/**
 * Problems with a JSON object a caller sent: too large, too deep, or holding
 * a NUL character (PostgreSQL's jsonb refuses U+0000, so neither store takes it).
 */
export function checkJsonObject(value: unknown, field: string, limits: JsonLimits, problems: ErrorDetail[]): JsonObject {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    problems.push({ field, message: 'must be a JSON object' });
    return {};
  }
  const encoded = encodeNonFinite(value) as JsonObject;
  const text = JSON.stringify(encoded);
  if (Buffer.byteLength(text) > limits.maxBytes) problems.push({ field, message: `is larger than ${limits.maxBytes} bytes of JSON` });
  else if (text.includes('\\u0000')) problems.push({ field, message: 'contains a NUL character (\\u0000), which cannot be stored' });
  else if (depthOf(encoded) > limits.maxDepth) problems.push({ field, message: `is nested deeper than ${limits.maxDepth} levels` });
  return encoded;
}

function depthOf(v: JsonValue): number {
  if (v === null || typeof v !== 'object') return 0;
  let max = 0;
  for (const x of Array.isArray(v) ? v : Object.values(v)) max = Math.max(max, depthOf(x));
  return max + 1;
}

export const isPlainObject = (v: unknown): v is JsonObject => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Parses a JSON column (TEXT on SQLite; jsonb, already parsed by the driver, on PostgreSQL). */
export function parseJsonColumn<T extends JsonValue>(v: unknown, fallback: T): T {
  if (v === null || v === undefined) return fallback;
  return (typeof v === 'string' ? JSON.parse(v) : v) as T;
}
