import { parquetWriteBuffer } from 'hyparquet-writer';
import { describe, expect, it } from 'vitest';
import { ErrorLog, LengthHistogram, profileFile, validateFile } from './analyse.js';
import type { FileSource } from './file-source.js';
import { checkRecord, detectFormat } from './formats.js';
import { looksLikeText, previewFile } from './preview.js';
import { openRows, splitLines, type RowItem } from './readers.js';

/** A file held in memory, handed out in pieces of `piece` bytes (so lines and records cross chunk bounds). */
function memory(path: string, bytes: Buffer | string, piece = 7): FileSource {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes);
  return {
    path,
    size: buf.length,
    async *stream() {
      for (let at = 0; at < buf.length; at += piece) yield Buffer.from(buf.subarray(at, at + piece));
    },
    async slice(start, end = buf.length) {
      const b = buf.subarray(start, end);
      return b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer;
    },
  };
}

async function all(src: FileSource, format: 'jsonl' | 'csv' | 'parquet' | 'json', offset = 0): Promise<RowItem[]> {
  const out: RowItem[] = [];
  for await (const r of (await openRows(src, format, { offset })).rows()) out.push(r);
  return out;
}

describe('dataset readers', () => {
  it('splits lines across chunk bounds, strips CR, and cuts an over-long line without holding it', async () => {
    const lines = [];
    for await (const l of splitLines(memory('a', 'ab\r\ncdefghij\n\nxyz', 3).stream(), 5)) lines.push({ line: l.line, text: l.bytes.toString(), tooLong: l.tooLong });
    expect(lines).toEqual([
      { line: 1, text: 'ab', tooLong: false },
      { line: 2, text: expect.stringMatching(/^cdefg/), tooLong: true },
      { line: 3, text: '', tooLong: false },
      { line: 4, text: 'xyz', tooLong: false },
    ]);
  });

  it('reads JSONL rows with their lines, skipping blank lines and reporting bad JSON', async () => {
    const rows = await all(memory('d.jsonl', '{"text":"a"}\n\n{"text":\n[1,2]\n'), 'jsonl');
    expect(rows).toEqual([
      { row: 0, line: 1, value: { text: 'a' } },
      { row: 1, line: 3, error: expect.stringMatching(/^invalid JSON/), raw: '{"text":' },
      { row: 2, line: 4, value: [1, 2] },
    ]);
    expect((await all(memory('d.jsonl', '{"a":1}\n{"a":2}\n{"a":3}'), 'jsonl', 2)).map((r) => r.value)).toEqual([{ a: 3 }]);
  });

  it('reads CSV records with the line they start on, quoted newlines included, and flags a wrong column count', async () => {
    const csv = 'instruction,input,output\n"say\nhi",,hello\nadd 1+1,,2\nonly,two\n"unterminated,x,y\n';
    const rows = await all(memory('d.csv', csv, 5), 'csv');
    expect(rows[0]).toEqual({ row: 0, line: 2, value: { instruction: 'say\nhi', input: '', output: 'hello' } });
    expect(rows[1]).toEqual({ row: 1, line: 4, value: { instruction: 'add 1+1', input: '', output: '2' } });
    expect(rows[2]).toMatchObject({ row: 2, line: 5, error: 'has 2 columns, the header has 3' });
    expect(rows[3]).toMatchObject({ row: 3, error: expect.stringMatching(/^malformed CSV/) });
    expect(rows).toHaveLength(4);
  });

  it('checks each record schema and detects it from the fields', () => {
    expect(detectFormat({ instruction: 'a', input: '', output: 'b' })).toBe('alpaca');
    expect(detectFormat({ conversations: [] })).toBe('sharegpt');
    expect(detectFormat({ messages: [] })).toBe('messages');
    expect(detectFormat({ text: 'x' })).toBe('text');
    expect(detectFormat({ foo: 1 })).toBeUndefined();
    expect(checkRecord('alpaca', { instruction: 'a', output: 'b' })).toEqual([]);
    expect(checkRecord('alpaca', { instruction: 'a', input: 3 })).toEqual([
      { field: 'input', reason: 'must be a string, not a number' },
      { field: 'output', reason: 'is missing' },
    ]);
    expect(checkRecord('sharegpt', { conversations: [] })).toEqual([{ field: 'conversations', reason: expect.stringMatching(/^is empty/) }]);
    expect(checkRecord('sharegpt', { conversations: [{ from: 'human', value: 'hi' }, { from: 'robot', value: 1 }] }).map((p) => p.field)).toEqual(['conversations[1].from', 'conversations[1].value']);
    expect(checkRecord('sharegpt', { conversations: '[{"from":"human","value":"hi"}]' })).toEqual([]); // a CSV cell holding JSON
    expect(checkRecord('messages', { messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: null, tool_calls: [{ id: 'x' }] }] })).toEqual([]);
    expect(checkRecord('messages', { messages: [{ role: 'bot', content: 'hi' }, { role: 'user' }] }).map((p) => p.field)).toEqual(['messages[0].role', 'messages[1].content']);
    expect(checkRecord('text', { text: '  ' })).toEqual([{ field: 'text', reason: 'is empty' }]);
    expect(checkRecord('text', 'plain')).toEqual([{ field: '', reason: 'must be a JSON object, not a string' }]);
  });

  it('validates a file with auto-detection, counting every problem and listing the first ones', async () => {
    const lines = [
      JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }),
      ...Array.from({ length: 5 }, () => JSON.stringify({ messages: [] })),
      'not json',
    ];
    const log = new ErrorLog(3);
    const result = await validateFile(memory('chat.jsonl', lines.join('\n')), 'jsonl', 'auto', log);
    expect(result).toMatchObject({ format: 'messages', rows: 7, invalidRows: 6, columns: ['messages'] });
    expect(log.count).toBe(6);
    expect(log.errors).toHaveLength(3);
    expect(log.truncated).toBe(true);
    expect(log.errors[0]).toEqual({ path: 'chat.jsonl', row: 1, line: 2, field: 'messages', reason: expect.stringMatching(/^is empty/) });
    const none = new ErrorLog(10);
    const unknown = await validateFile(memory('x.jsonl', '{"a":1}\n{"a":2}\n'), 'jsonl', 'auto', none);
    expect(unknown).toMatchObject({ format: '', rows: 2, invalidRows: 2 });
    expect(none.errors).toEqual([expect.objectContaining({ row: -1, reason: expect.stringMatching(/no record fits a known schema/) })]);
  });

  it('reads Parquet written by a real writer, in windows, from any row', async () => {
    const n = 25_000; // more than one read window
    const buffer = parquetWriteBuffer({
      columnData: [
        { name: 'instruction', data: Array.from({ length: n }, (_, i) => `q${i}`), type: 'STRING' },
        { name: 'output', data: Array.from({ length: n }, (_, i) => (i === 7 ? null : `a${i}`)), type: 'STRING' },
        { name: 'score', data: Array.from({ length: n }, (_, i) => BigInt(i)), type: 'INT64' },
      ],
      rowGroupSize: 10_000,
    });
    const src = memory('d.parquet', Buffer.from(buffer));
    const reader = await openRows(src, 'parquet', { offset: 24_998 });
    expect(reader.columns).toEqual(['instruction', 'output', 'score']);
    expect(reader.totalRows).toBe(n);
    const tail = [];
    for await (const r of reader.rows()) tail.push(r);
    expect(tail).toEqual([
      { row: 24_998, line: 0, value: { instruction: 'q24998', output: 'a24998', score: 24_998n } },
      { row: 24_999, line: 0, value: { instruction: 'q24999', output: 'a24999', score: 24_999n } },
    ]);
    const log = new ErrorLog(10);
    expect(await validateFile(src, 'parquet', 'auto', log)).toMatchObject({ format: 'alpaca', rows: n, invalidRows: 1 });
    expect(log.errors).toEqual([{ path: 'd.parquet', row: 7, line: 0, field: 'output', reason: 'is missing' }]);
    const page = await previewFile(src, 6, 2);
    expect(page).toMatchObject({ kind: 'table', fileFormat: 'parquet', totalRows: n, hasMore: true });
    expect(page.rows.map((r) => r.data)).toEqual([
      { instruction: 'q6', output: 'a6', score: 6 },
      { instruction: 'q7', output: null, score: 7 },
    ]);
    const bad = new ErrorLog(10);
    await validateFile(memory('broken.parquet', 'PAR1 not really'), 'parquet', 'auto', bad);
    expect(bad.errors).toEqual([expect.objectContaining({ row: -1, reason: expect.stringMatching(/not a readable Parquet file/) })]);
  });

  it('profiles rows, nulls per column and a power-of-two histogram of text lengths', async () => {
    const rows = [{ text: '' }, { text: 'a' }, { text: 'abc', extra: 1 }, { text: 'abcd', extra: null }, { text: 'x'.repeat(9) }];
    const profile = await profileFile(memory('p.jsonl', rows.map((r) => JSON.stringify(r)).join('\n') + '\nnot json\n'), 'jsonl', 0);
    expect(profile).toMatchObject({ rows: 6, unreadableRows: 1, format: 'text', textMin: 0, textMax: 9, textMean: 17 / 5, truncated: false });
    expect(profile.columns).toEqual([
      { name: 'text', nulls: 0, nonNull: 5, types: ['string'], minLength: 0, maxLength: 9, meanLength: 17 / 5 },
      { name: 'extra', nulls: 4, nonNull: 1, types: ['number'], minLength: 0, maxLength: 0, meanLength: 0 },
    ]);
    expect(profile.textLengthHistogram).toEqual([
      { min: 0, max: 0, count: 1 },
      { min: 1, max: 1, count: 1 },
      { min: 2, max: 3, count: 1 },
      { min: 4, max: 7, count: 1 },
      { min: 8, max: 15, count: 1 },
    ]);
    expect((await profileFile(memory('p.jsonl', rows.map((r) => JSON.stringify(r)).join('\n')), 'jsonl', 2)).truncated).toBe(true);
    const h = new LengthHistogram();
    [1000, 1023, 1024].forEach((x) => h.add(x));
    expect(h.buckets().slice(-2)).toEqual([{ min: 512, max: 1023, count: 2 }, { min: 1024, max: 2047, count: 1 }]);
  });

  it('tells text from binary and pages text lines', async () => {
    expect(looksLikeText(Buffer.from('héllo'))).toBe(true);
    expect(looksLikeText(Buffer.from('héllo').subarray(0, 2))).toBe(true); // a character cut at the end
    expect(looksLikeText(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0]))).toBe(false);
    const text = Array.from({ length: 10 }, (_, i) => `line ${i + 1}`).join('\n');
    expect(await previewFile(memory('README.md', text), 8, 5)).toMatchObject({ kind: 'text', lines: ['line 9', 'line 10'], hasMore: false });
    expect(await previewFile(memory('README.md', text), 0, 2)).toMatchObject({ kind: 'text', lines: ['line 1', 'line 2'], hasMore: true });
    expect(await previewFile(memory('img.png', Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2])), 0, 10)).toMatchObject({ kind: 'binary', contentType: 'image/png', size: 7, rows: [], lines: [] });
  });
});
