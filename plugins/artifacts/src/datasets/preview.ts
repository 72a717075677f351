import { contentTypeOf } from '@wanllmdb/core';
import type { JsonObject } from '@wanllmdb/proto';
import type { artifacts } from '../gen/index.js';
import type { FileSource } from './file-source.js';
import { fileFormatOf, toJsonValue } from './formats.js';
import { openRows, splitLines } from './readers.js';

type PreviewResponse = artifacts.v1.PreviewResponse;

/** A text line is cut to this many characters in a preview. */
export const MAX_PREVIEW_LINE = 64 * 1024;
/** Bytes looked at to tell text from binary. */
const SNIFF_BYTES = 8192;

/** Whether the first bytes of a file look like text: no NUL, valid UTF-8 (a multi-byte character cut at the end is allowed). */
export function looksLikeText(head: Buffer): boolean {
  if (head.includes(0)) return false;
  for (let cut = 0; cut < 4 && cut <= head.length; cut++) {
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(head.subarray(0, head.length - cut));
      return true;
    } catch {
      // try without a possibly cut last character
    }
  }
  return false;
}

type Page = Pick<PreviewResponse, 'kind' | 'fileFormat' | 'contentType' | 'size' | 'offset' | 'limit' | 'columns' | 'rows' | 'lines' | 'hasMore' | 'totalRows'>;

/** A page of a file: rows of a data file, lines of a text file, or what a binary file is. */
export async function previewFile(src: FileSource, offset: number, limit: number, signal?: AbortSignal): Promise<Page> {
  const contentType = contentTypeOf(src.path);
  const base = { contentType, size: src.size, offset, limit, columns: [], rows: [], lines: [], hasMore: false, totalRows: -1 };
  const format = fileFormatOf(src.path);
  if (format) {
    const reader = await openRows(src, format, { offset, signal });
    const rows: artifacts.v1.PreviewRow[] = [];
    let hasMore = false;
    for await (const item of reader.rows()) {
      if (rows.length === limit) {
        hasMore = true;
        break;
      }
      const value = toJsonValue(item.value);
      const data = (item.error !== undefined ? {} : typeof value === 'object' && value !== null && !Array.isArray(value) ? value : { value }) as JsonObject;
      rows.push({ row: item.row, line: item.line, data, error: item.error ?? '', raw: item.raw ?? '' });
    }
    return { ...base, kind: 'table', fileFormat: format, columns: [...reader.columns], rows, hasMore, totalRows: reader.totalRows };
  }
  const head = Buffer.from(await src.slice(0, SNIFF_BYTES));
  if (!looksLikeText(head)) return { ...base, kind: 'binary', fileFormat: '' };
  const lines: string[] = [];
  let hasMore = false;
  for await (const { line, bytes } of splitLines(src.stream(signal), MAX_PREVIEW_LINE * 4)) {
    if (line <= offset) continue;
    if (lines.length === limit) {
      hasMore = true;
      break;
    }
    lines.push(bytes.toString('utf8').slice(0, MAX_PREVIEW_LINE));
  }
  return { ...base, kind: 'text', fileFormat: '', lines, hasMore };
}
