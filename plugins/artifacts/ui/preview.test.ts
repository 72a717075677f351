import { describe, expect, it } from 'vitest';
import { layoutLineage } from './lineage-layout.js';
import { decodeHead, foldByPrefix, formatBytes, looksBinary, parseDelimited, parseJsonLines, prettyJson, previewKind } from './preview.js';

describe('artifact file previews', () => {
  it('folds a version’s files into the directories under a prefix', () => {
    const files = [
      { path: 'README.md', size: 10 },
      { path: 'data/train/a.jsonl', size: 100 },
      { path: 'data/train/b.jsonl', size: 50 },
      { path: 'data/test.csv', size: 7 },
      { path: 'config.json', size: 3 },
    ];
    expect(foldByPrefix(files, '').map((r) => (r.kind === 'dir' ? `${r.name}/ ${r.files} ${r.size}` : r.name))).toEqual(['data/ 3 157', 'README.md', 'config.json']);
    expect(foldByPrefix(files, 'data/').map((r) => (r.kind === 'dir' ? `${r.prefix} ${r.files}` : r.file.path))).toEqual(['data/train/ 2', 'data/test.csv']);
    expect(foldByPrefix(files, 'nothing/')).toEqual([]);
  });

  it('chooses a preview by extension', () => {
    expect(['a.json', 'b.JSONL', 'c.ndjson', 'd.csv', 'e.tsv', 'f.png', 'g.svg', 'h.safetensors', 'LICENSE', 'x.yaml'].map(previewKind)).toEqual([
      'json',
      'jsonl',
      'jsonl',
      'csv',
      'tsv',
      'image',
      'image',
      'binary',
      'text',
      'text',
    ]);
  });

  it('reads the first rows of a CSV: quotes, doubled quotes, line breaks in quotes, CRLF', () => {
    const t = parseDelimited('name,note\r\nann,"said ""hi"""\r\nbob,"two\nlines"\r\ncy,plain\r\n', 2);
    expect(t.columns).toEqual(['name', 'note']);
    expect(t.rows).toEqual([
      ['ann', 'said "hi"'],
      ['bob', 'two\nlines'],
    ]);
    expect(parseDelimited('a,b\n1,2', 10).rows).toEqual([['1', '2']]);
    expect(parseDelimited('a\tb\n1\t2\n', 10, '\t').rows).toEqual([['1', '2']]);
  });

  it('drops the record a size cap cut in half', () => {
    expect(parseDelimited('a,b\n1,2\n3,4', 10, ',', true).rows).toEqual([['1', '2']]);
    expect(parseDelimited('a,b\n1,2\n3,4', 10, ',', false).rows).toEqual([['1', '2'], ['3', '4']]);
    const j = parseJsonLines('{"a":1}\n{"a":2,"b":', 10, true);
    expect(j.rows).toEqual([['1']]);
  });

  it('tabulates JSON Lines with the union of keys; bad lines stay visible', () => {
    const t = parseJsonLines('{"instruction":"hi","output":"yo"}\n\n{"instruction":"x","meta":{"k":1}}\nnot json\n', 10);
    expect(t.columns).toEqual(['instruction', 'output', 'meta', '(line)']);
    expect(t.rows).toEqual([
      ['hi', 'yo', '', ''],
      ['x', '', '{"k":1}', ''],
      ['', '', '', 'not json'],
    ]);
    expect(t.invalid).toBe(1);
    expect(parseJsonLines('{"a":1}\n{"a":2}\n{"a":3}\n', 2).rows).toEqual([['1'], ['2']]);
  });

  it('pretty-prints JSON, tells binary from text, keeps whole characters, formats sizes', () => {
    expect(prettyJson('{"a":[1,2]}')).toBe('{\n  "a": [\n    1,\n    2\n  ]\n}');
    expect(prettyJson('{"a":')).toBeUndefined();
    expect(looksBinary(new Uint8Array([104, 105, 0, 1]))).toBe(true);
    expect(looksBinary(new TextEncoder().encode('plain text'))).toBe(false);
    const euro = new TextEncoder().encode('€€');
    expect(decodeHead(euro.subarray(0, 4), true)).toBe('€');
    expect([formatBytes(0), formatBytes(1536), formatBytes(5 * 1024 ** 3), formatBytes(undefined)]).toEqual(['0 B', '1.5 KB', '5.0 GB', '—']);
  });
});

describe('lineage layout', () => {
  it('puts what made the focus to its left and what was made from it to its right', () => {
    // run1 → dataset → run2 → model, and run2 → metrics; the focus is the model.
    const nodes = ['run:1', 'version:d', 'run:2', 'version:m', 'version:x', 'version:lonely'].map((id) => ({ id }));
    const edges = [
      { from: 'run:1', to: 'version:d' },
      { from: 'version:d', to: 'run:2' },
      { from: 'run:2', to: 'version:m' },
      { from: 'run:2', to: 'version:x' },
    ];
    const placed = new Map(layoutLineage(nodes, edges, 'version:m').map((p) => [p.id, p]));
    expect(['run:1', 'version:d', 'run:2', 'version:m', 'version:x'].map((id) => placed.get(id)!.column)).toEqual([-3, -2, -1, 0, 0]);
    expect(placed.get('version:m')!.row).toBe(0);
    expect(placed.get('version:x')!.row).toBe(1);
    // Not connected to the focus: a column of its own after the rest.
    expect(placed.get('version:lonely')!.column).toBe(1);
  });
});
