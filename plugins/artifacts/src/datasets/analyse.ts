import { toWldbError } from '@wanllmdb/core';
import type { artifacts } from '../gen/index.js';
import type { FileSource } from './file-source.js';
import { checkRecord, detectFormat, MAX_PROBLEMS_PER_ROW, textLength, type FileFormat, type RecordFormat } from './formats.js';
import { openRows } from './readers.js';

type ValidationError = artifacts.v1.ValidationError;
type FileValidation = artifacts.v1.FileValidation;
type FileProfile = artifacts.v1.FileProfile;

/** Collects problems: all counted, the first `max` kept. */
export class ErrorLog {
  readonly errors: ValidationError[] = [];
  count = 0;
  constructor(readonly max: number) {}
  add(e: ValidationError): void {
    this.count++;
    if (this.errors.length < this.max) this.errors.push(e);
  }
  get truncated(): boolean {
    return this.count > this.errors.length;
  }
}

const describeError = (err: unknown): string => {
  const e = toWldbError(err);
  return e.code === 'WLDB_ERR_INTERNAL' ? `the file could not be read: ${(err as Error).message ?? String(err)}` : e.message;
};

/**
 * Checks every row of one file against a record schema (`auto`: the schema
 * of the first record that is an object), streaming it: memory stays
 * bounded by one row (one Parquet window).
 */
export async function validateFile(src: FileSource, fileFormat: FileFormat, requested: RecordFormat | 'auto', log: ErrorLog, signal?: AbortSignal): Promise<FileValidation> {
  const result: FileValidation = { path: src.path, fileFormat, format: requested === 'auto' ? '' : requested, rows: 0, invalidRows: 0, columns: [] };
  let format: RecordFormat | undefined = requested === 'auto' ? undefined : requested;
  /** Rows met before a format could be detected (none of them an object that fits a schema). */
  const undetected: { row: number; line: number; value: unknown }[] = [];
  let overflow = 0;
  try {
    const reader = await openRows(src, fileFormat, { signal });
    for await (const item of reader.rows()) {
      if (signal?.aborted) break;
      result.rows++;
      if (item.error !== undefined) {
        result.invalidRows++;
        log.add({ path: src.path, row: item.row, line: item.line, field: '', reason: item.error });
        continue;
      }
      if (!format) {
        format = detectFormat(item.value);
        if (!format) {
          // Kept to check once the format is known: few, since a row may be a 16 MiB line.
          if (undetected.length < MAX_UNDETECTED) undetected.push({ row: item.row, line: item.line, value: item.value });
          else overflow++; // beyond them: counted, not listed
          continue;
        }
        result.format = format;
      }
      const problems = checkRecord(format, item.value);
      if (problems.length) {
        result.invalidRows++;
        for (const p of problems.slice(0, MAX_PROBLEMS_PER_ROW)) log.add({ path: src.path, row: item.row, line: item.line, field: p.field, reason: p.reason });
        if (problems.length > MAX_PROBLEMS_PER_ROW) log.count += problems.length - MAX_PROBLEMS_PER_ROW;
      }
    }
    result.columns = [...reader.columns];
  } catch (err) {
    log.add({ path: src.path, row: -1, line: 0, field: '', reason: describeError(err) });
    result.invalidRows = Math.max(result.invalidRows, 1);
    return result;
  }
  if (!format && result.rows > result.invalidRows) {
    log.add({
      path: src.path,
      row: -1,
      line: 0,
      field: '',
      reason: 'no record fits a known schema: give records "instruction"/"output" (alpaca), "conversations" (sharegpt), "messages" (OpenAI chat) or "text", or name the format',
    });
    result.invalidRows += result.rows - result.invalidRows;
  } else if (format && undetected.length) {
    // Rows before the first recognisable record are checked against the schema found after them.
    for (const u of undetected) {
      const problems = checkRecord(format, u.value);
      result.invalidRows++;
      for (const p of problems.slice(0, MAX_PROBLEMS_PER_ROW)) log.add({ path: src.path, row: u.row, line: u.line, field: p.field, reason: p.reason });
    }
    result.invalidRows += overflow;
    log.count += overflow;
  }
  return result;
}

/** Power-of-two buckets of lengths: 0, 1, 2–3, 4–7, … */
export class LengthHistogram {
  private readonly counts: number[] = [];
  min = Number.POSITIVE_INFINITY;
  max = 0;
  sum = 0;
  n = 0;
  add(length: number): void {
    const k = length === 0 ? 0 : Math.floor(Math.log2(length)) + 1;
    this.counts[k] = (this.counts[k] ?? 0) + 1;
    this.min = Math.min(this.min, length);
    this.max = Math.max(this.max, length);
    this.sum += length;
    this.n++;
  }
  buckets(): artifacts.v1.HistogramBucket[] {
    return Array.from({ length: this.counts.length }, (_, k) => ({ min: k === 0 ? 0 : 2 ** (k - 1), max: k === 0 ? 0 : 2 ** k - 1, count: this.counts[k] ?? 0 }));
  }
}

interface ColumnStats {
  nonNull: number;
  types: Set<string>;
  lengths: LengthHistogram;
}

const jsonType = (v: unknown): string =>
  Array.isArray(v) || ArrayBuffer.isView(v) ? (v instanceof Uint8Array ? 'bytes' : 'array') : v instanceof Date ? 'string' : typeof v === 'bigint' ? 'number' : typeof v === 'object' ? 'object' : typeof v;

/** Columns profiled per file at most. */
const MAX_COLUMNS = 1000;
/** Rows of no recognisable format kept, before the format is known, to be checked against it. */
const MAX_UNDETECTED = 100;

/** Rows, columns (nulls, types, string lengths) and the distribution of text lengths of one file, streamed. */
export async function profileFile(src: FileSource, fileFormat: FileFormat, maxRows: number, signal?: AbortSignal): Promise<FileProfile> {
  const reader = await openRows(src, fileFormat, { signal });
  const columns = new Map<string, ColumnStats>();
  const text = new LengthHistogram();
  let rows = 0;
  let unreadable = 0;
  let format: RecordFormat | undefined;
  let truncated = false;
  for await (const item of reader.rows()) {
    if (signal?.aborted) break;
    if (maxRows && rows >= maxRows) {
      truncated = true;
      break;
    }
    rows++;
    if (item.error !== undefined) {
      unreadable++;
      continue;
    }
    format ??= detectFormat(item.value);
    text.add(textLength(format, item.value));
    const record = item.value;
    if (typeof record !== 'object' || record === null || Array.isArray(record)) continue;
    for (const [key, v] of Object.entries(record)) {
      let c = columns.get(key);
      if (!c) {
        if (columns.size >= MAX_COLUMNS) continue;
        columns.set(key, (c = { nonNull: 0, types: new Set(), lengths: new LengthHistogram() }));
      }
      if (v === null || v === undefined) continue;
      c.nonNull++;
      c.types.add(jsonType(v));
      if (typeof v === 'string') c.lengths.add(v.length);
    }
  }
  // Columns named by the file (CSV header, Parquet schema) come first, in their order, even when always null.
  const order = [...reader.columns, ...[...columns.keys()].filter((k) => !reader.columns.includes(k))];
  const readable = rows - unreadable;
  return {
    path: src.path,
    fileFormat,
    format: format ?? '',
    rows,
    unreadableRows: unreadable,
    columns: order.map((name) => {
      const c = columns.get(name);
      return {
        name,
        nulls: readable - (c?.nonNull ?? 0),
        nonNull: c?.nonNull ?? 0,
        types: [...(c?.types ?? [])].sort(),
        minLength: c?.lengths.n ? c.lengths.min : 0,
        maxLength: c?.lengths.max ?? 0,
        meanLength: c?.lengths.n ? c.lengths.sum / c.lengths.n : 0,
      };
    }),
    textMin: text.n ? text.min : 0,
    textMax: text.max,
    textMean: text.n ? text.sum / text.n : 0,
    textLengthHistogram: text.buckets(),
    truncated,
  };
}
