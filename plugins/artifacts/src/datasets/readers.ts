import { Readable } from 'node:stream';
import { parse as parseCsv, type CsvError, type Options as CsvOptions } from 'csv-parse';
import { parquetMetadataAsync, parquetReadObjects, parquetSchema } from 'hyparquet';
import { Errors } from '@wanllmdb/core';
import type { FileSource } from './file-source.js';
import type { FileFormat } from './formats.js';

/** One row of a data file. */
export interface RowItem {
  /** 0-based row of the file (blank JSONL lines and the CSV header are not rows). */
  row: number;
  /** 1-based line where the row starts (JSONL, CSV); 0 for Parquet and JSON arrays. */
  line: number;
  /** The record: a parsed JSON value, a CSV row as {column: text}, a Parquet row object. */
  value?: unknown;
  /** Why the row could not be read; `raw` holds (the start of) its text. */
  error?: string;
  raw?: string;
}

export interface RowReader {
  /** Known from the start for Parquet, after the header for CSV, and from the rows read for JSON. */
  readonly columns: string[];
  /** Rows of the file when known without reading it all (Parquet); -1 otherwise. */
  readonly totalRows: number;
  /** Rows from `offset` on; stop iterating at any time (the file stops being read). */
  rows(): AsyncGenerator<RowItem>;
}

/** A JSONL line (or a CSV record) longer than this is reported, not read. */
export const MAX_LINE_BYTES = 16 * 1024 * 1024;
/** A .json file is parsed whole: up to this size (JSONL streams any size). */
export const MAX_JSON_FILE_BYTES = 64 * 1024 * 1024;
/** Rows read from Parquet per call (a row group is read in windows of this many rows). */
const PARQUET_WINDOW = 10_000;
const RAW_PREVIEW = 200;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A row's text, cut for a report. */
const rawOf = (bytes: Buffer): string => bytes.subarray(0, RAW_PREVIEW * 4).toString('utf8').slice(0, RAW_PREVIEW);

/** Lines of a byte stream (LF or CRLF), in bounded memory: a line longer than `max` comes as `tooLong` with its first bytes only. */
export async function* splitLines(source: AsyncIterable<Buffer>, max = MAX_LINE_BYTES): AsyncGenerator<{ line: number; bytes: Buffer; tooLong: boolean }> {
  let parts: Buffer[] = [];
  let length = 0;
  let tooLong = false;
  let line = 0;
  const take = (tail: Buffer) => {
    const whole = parts.length ? Buffer.concat([...parts, tail]) : tail;
    parts = [];
    length = 0;
    const long = tooLong;
    tooLong = false;
    const bytes = whole.length && whole[whole.length - 1] === 0x0d ? whole.subarray(0, whole.length - 1) : whole;
    return { line: ++line, bytes, tooLong: long };
  };
  /** What is kept of an over-long line: its first bytes. */
  const head = Math.min(max, 64 * 1024);
  const keep = (piece: Buffer) => {
    if (tooLong) return;
    if (length + piece.length > max) {
      tooLong = true;
      const start = Buffer.concat([...parts, piece.subarray(0, Math.max(0, head - length))]).subarray(0, head);
      parts = [Buffer.from(start)];
      length = start.length;
      return;
    }
    parts.push(piece);
    length += piece.length;
  };
  for await (const chunk of source) {
    let at = 0;
    for (let nl = chunk.indexOf(0x0a, at); nl !== -1; nl = chunk.indexOf(0x0a, at)) {
      const piece = chunk.subarray(at, nl);
      if (tooLong || length + piece.length > max) {
        keep(piece);
        yield take(Buffer.alloc(0));
      } else yield take(piece);
      at = nl + 1;
    }
    if (at < chunk.length) keep(Buffer.from(chunk.subarray(at))); // copied: the stream may reuse its buffer
  }
  if (length || tooLong) yield take(Buffer.alloc(0));
}

function jsonlReader(src: FileSource, offset: number, signal?: AbortSignal): RowReader {
  const columns: string[] = [];
  const seen = new Set<string>();
  return {
    columns,
    totalRows: -1,
    async *rows() {
      let row = -1;
      for await (const { line, bytes, tooLong } of splitLines(src.stream(signal))) {
        if (!tooLong && isBlank(bytes)) continue;
        row++;
        if (row < offset) continue;
        if (tooLong) {
          yield { row, line, error: `the line is longer than ${MAX_LINE_BYTES / 1024 / 1024} MiB`, raw: rawOf(bytes) };
          continue;
        }
        let text: string;
        try {
          text = utf8.decode(bytes);
        } catch {
          yield { row, line, error: 'the line is not valid UTF-8', raw: rawOf(bytes) };
          continue;
        }
        let value: unknown;
        try {
          value = JSON.parse(text);
        } catch (err) {
          yield { row, line, error: `invalid JSON: ${(err as Error).message}`, raw: text.slice(0, RAW_PREVIEW) };
          continue;
        }
        noteColumns(value, columns, seen);
        yield { row, line, value };
      }
    },
  };
}

const isBlank = (b: Buffer) => {
  for (const c of b) if (c !== 0x20 && c !== 0x09 && c !== 0x0d && c !== 0xef && c !== 0xbb && c !== 0xbf) return false;
  return true;
};

function noteColumns(value: unknown, columns: string[], seen: Set<string>) {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || columns.length >= 1000) return;
  for (const k of Object.keys(value)) {
    if (!seen.has(k)) {
      seen.add(k);
      columns.push(k);
    }
  }
}

function jsonArrayReader(src: FileSource, offset: number, signal?: AbortSignal): RowReader {
  const columns: string[] = [];
  const seen = new Set<string>();
  return {
    columns,
    totalRows: -1,
    async *rows() {
      if (src.size > MAX_JSON_FILE_BYTES) {
        throw Errors.LIMIT_EXCEEDED(`${src.path} is a ${Math.round(src.size / 1024 / 1024)} MiB JSON file; a .json file is read whole, up to ${MAX_JSON_FILE_BYTES / 1024 / 1024} MiB. Store large data as JSONL (one record per line), which is read as a stream.`, [
          { field: 'path', message: 'JSON file too large' },
        ]);
      }
      const parts: Buffer[] = [];
      for await (const chunk of src.stream(signal)) parts.push(chunk);
      let data: unknown;
      try {
        data = JSON.parse(utf8.decode(Buffer.concat(parts)));
      } catch (err) {
        throw Errors.VALIDATION(`${src.path} is not valid JSON: ${(err as Error).message}`, [{ field: 'path', message: 'invalid JSON' }]);
      }
      if (!Array.isArray(data)) throw Errors.VALIDATION(`${src.path} holds a JSON ${typeof data === 'object' && data ? 'object' : typeof data}, not an array of records. Store records as a JSON array, or as JSONL.`, [{ field: 'path', message: 'not an array' }]);
      for (let row = offset; row < data.length; row++) {
        noteColumns(data[row], columns, seen);
        yield { row, line: 0, value: data[row] };
      }
    },
  };
}

function csvReader(src: FileSource, offset: number, signal?: AbortSignal): RowReader {
  const columns: string[] = [];
  return {
    columns,
    totalRows: -1,
    async *rows() {
      /** Records and skipped (malformed) records in file order, numbered as the parser meets them. */
      let next = -1; // -1: the header
      const skipped: RowItem[] = [];
      const parser = parseCsv({
        bom: true,
        relax_column_count: true,
        relax_quotes: false,
        skip_empty_lines: true,
        skip_records_with_error: true,
        max_record_size: MAX_LINE_BYTES,
        on_record: (record: string[], ctx: { lines: number }) => {
          const embedded = record.reduce((n, f) => n + countNewlines(f), 0);
          return { record, row: next++, line: Number(ctx.lines) - embedded };
        },
        on_skip: (err: CsvError | undefined, raw: string | undefined) => {
          const row = next++;
          if (row >= 0) skipped.push({ row, line: Number(err?.lines ?? 0), error: `malformed CSV: ${err?.message ?? 'unreadable record'}`, raw: (raw ?? '').slice(0, RAW_PREVIEW) });
          return undefined;
        },
      } as unknown as CsvOptions);
      const source = Readable.from(src.stream(signal));
      source.on('error', (err) => parser.destroy(err));
      source.pipe(parser);
      try {
        for await (const item of parser as AsyncIterable<{ record: string[]; row: number; line: number }>) {
          while (skipped.length && skipped[0]!.row < item.row) {
            const s = skipped.shift()!;
            if (s.row >= offset) yield s;
          }
          if (item.row < 0) {
            columns.push(...item.record.map((c, i) => c.trim() || `column_${i + 1}`));
            continue;
          }
          if (item.row < offset) continue;
          if (item.record.length !== columns.length) {
            yield { row: item.row, line: item.line, error: `has ${item.record.length} columns, the header has ${columns.length}`, raw: item.record.join(',').slice(0, RAW_PREVIEW) };
            continue;
          }
          const value: Record<string, string> = {};
          columns.forEach((c, i) => (value[c] = item.record[i]!));
          yield { row: item.row, line: item.line, value };
        }
        for (const s of skipped) if (s.row >= offset) yield s;
      } finally {
        source.destroy();
        parser.destroy();
      }
    },
  };
}

const countNewlines = (s: string) => {
  let n = 0;
  for (let i = s.indexOf('\n'); i !== -1; i = s.indexOf('\n', i + 1)) n++;
  return n;
};

async function parquetReader(src: FileSource, offset: number): Promise<RowReader> {
  const file = { byteLength: src.size, slice: (start: number, end?: number) => src.slice(start, end) };
  let metadata;
  try {
    metadata = await parquetMetadataAsync(file);
  } catch (err) {
    throw Errors.VALIDATION(`${src.path} is not a readable Parquet file: ${(err as Error).message}`, [{ field: 'path', message: 'not Parquet' }]);
  }
  const columns = parquetSchema(metadata).children.map((c) => c.element.name);
  const total = Number(metadata.num_rows);
  return {
    columns,
    totalRows: total,
    async *rows() {
      let groupStart = 0;
      for (const group of metadata.row_groups) {
        const groupEnd = groupStart + Number(group.num_rows);
        for (let from = Math.max(groupStart, offset); from < groupEnd; from += PARQUET_WINDOW) {
          const to = Math.min(groupEnd, from + PARQUET_WINDOW);
          const rows = await parquetReadObjects({ file, metadata, rowStart: from, rowEnd: to, useOffsetIndex: true }); // only the pages of these rows, where the file has an offset index
          for (let i = 0; i < rows.length; i++) yield { row: from + i, line: 0, value: rows[i] };
        }
        groupStart = groupEnd;
      }
    },
  };
}

/** The rows of a data file from row `offset` on. */
export async function openRows(src: FileSource, format: FileFormat, opts: { offset?: number; signal?: AbortSignal } = {}): Promise<RowReader> {
  const offset = opts.offset ?? 0;
  switch (format) {
    case 'jsonl':
      return jsonlReader(src, offset, opts.signal);
    case 'json':
      return jsonArrayReader(src, offset, opts.signal);
    case 'csv':
      return csvReader(src, offset, opts.signal);
    case 'parquet':
      return parquetReader(src, offset);
  }
}
