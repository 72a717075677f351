/**
 * What the artifacts pages compute in the browser, without the DOM: sizes
 * for people, a version's files folded into directories, how a file is
 * previewed, and the first rows of a CSV or JSON Lines file read from its
 * first bytes.
 */

/** `1536` → `1.5 KB`. */
export function formatBytes(n: number | string | undefined): string {
  const v0 = Number(n ?? NaN);
  if (!Number.isFinite(v0)) return '—';
  const units = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];
  let i = 0;
  let v = v0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) (v /= 1024), i++;
  return `${i ? v.toFixed(Math.abs(v) < 10 ? 1 : 0) : v} ${units[i]}`;
}

/** A digest shortened for a table (`sha256:1a2b3c4d5e6f`). */
export function shortDigest(d: string | undefined): string {
  if (!d) return '';
  const [algo, hex] = d.includes(':') ? d.split(':', 2) : ['', d];
  return `${algo ? `${algo}:` : ''}${(hex ?? '').slice(0, 12)}`;
}

export interface FileLike {
  path: string;
  size: number | string;
}

/** One row of a folded listing: a file directly under the prefix, or a directory with what it holds (of the loaded files). */
export type FolderRow<F extends FileLike> = { kind: 'dir'; name: string; prefix: string; files: number; size: number } | { kind: 'file'; name: string; file: F };

/**
 * The files under `prefix` (a "/"-ended directory, or '' for the root) as
 * its direct entries: files, and directories folded into one row each
 * (directories first, each group in path order).
 */
export function foldByPrefix<F extends FileLike>(files: readonly F[], prefix: string): FolderRow<F>[] {
  const dirs = new Map<string, { files: number; size: number }>();
  const out: FolderRow<F>[] = [];
  for (const f of files) {
    if (!f.path.startsWith(prefix)) continue;
    const rest = f.path.slice(prefix.length);
    const cut = rest.indexOf('/');
    if (cut < 0) {
      out.push({ kind: 'file', name: rest, file: f });
      continue;
    }
    const name = rest.slice(0, cut);
    const d = dirs.get(name) ?? { files: 0, size: 0 };
    d.files++;
    d.size += Number(f.size);
    dirs.set(name, d);
  }
  const dirRows: FolderRow<F>[] = [...dirs.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([name, d]) => ({ kind: 'dir', name, prefix: `${prefix}${name}/`, ...d }));
  return [...dirRows, ...out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))];
}

/** How a file is shown: by its name's extension. */
export type PreviewKind = 'json' | 'jsonl' | 'csv' | 'tsv' | 'image' | 'text' | 'binary';

const IMAGE = new Set(['png', 'jpg', 'jpeg', 'gif', 'webp', 'bmp', 'avif', 'ico', 'svg']);
const TEXT = new Set(['txt', 'md', 'markdown', 'rst', 'log', 'py', 'ts', 'js', 'mjs', 'json5', 'yaml', 'yml', 'toml', 'ini', 'cfg', 'conf', 'sh', 'xml', 'html', 'css', 'sql', 'r', 'ipynb', 'proto', 'c', 'h', 'cpp', 'go', 'rs', 'java', 'tex', 'env', 'gitignore']);
const BINARY = new Set(['bin', 'pt', 'pth', 'ckpt', 'safetensors', 'onnx', 'pb', 'h5', 'hdf5', 'npy', 'npz', 'pkl', 'pickle', 'parquet', 'arrow', 'feather', 'zip', 'gz', 'tgz', 'tar', 'bz2', 'xz', 'zst', '7z', 'gguf', 'tflite', 'mp3', 'wav', 'flac', 'mp4', 'mov', 'avi', 'pdf']);

export function previewKind(path: string): PreviewKind {
  const name = path.split('/').pop() ?? path;
  const ext = name.includes('.') ? name.split('.').pop()!.toLowerCase() : '';
  if (ext === 'json') return 'json';
  if (ext === 'jsonl' || ext === 'ndjson') return 'jsonl';
  if (ext === 'csv') return 'csv';
  if (ext === 'tsv') return 'tsv';
  if (IMAGE.has(ext)) return 'image';
  if (BINARY.has(ext)) return 'binary';
  if (TEXT.has(ext) || !ext) return 'text';
  // An unknown extension: shown as text if its first bytes are text (see looksBinary).
  return 'text';
}

/** True when the bytes hold a NUL (text files do not). */
export function looksBinary(bytes: Uint8Array): boolean {
  return bytes.subarray(0, 8192).includes(0);
}

/** The bytes as UTF-8, without a character cut in half at the end. */
export function decodeHead(bytes: Uint8Array, truncated: boolean): string {
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  return truncated && text.endsWith('\uFFFD') ? text.slice(0, -1) : text;
}

export interface Table {
  columns: string[];
  rows: string[][];
}

/**
 * The first `maxRows` records of delimited text (RFC 4180: quoted fields,
 * "" inside quotes, line breaks inside quotes). The first record is the
 * header. When `truncated`, the last (possibly cut) record is dropped.
 */
export function parseDelimited(text: string, maxRows: number, delimiter = ',', truncated = false): Table {
  const records: string[][] = [];
  let field = '';
  let record: string[] = [];
  let quoted = false;
  let i = 0;
  const endRecord = () => {
    record.push(field);
    field = '';
    if (!(record.length === 1 && record[0] === '')) records.push(record);
    record = [];
  };
  while (i < text.length && records.length <= maxRows) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') (field += '"'), i++;
        else quoted = false;
      } else field += c;
    } else if (c === '"' && field === '') quoted = true;
    else if (c === delimiter) record.push(field), (field = '');
    else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      endRecord();
    } else field += c;
    i++;
  }
  const complete = i >= text.length && !truncated;
  if (records.length <= maxRows && (field !== '' || record.length) && complete) endRecord();
  const [columns = [], ...rows] = records;
  return { columns, rows: rows.slice(0, maxRows) };
}

/**
 * The first `maxRows` lines of JSON Lines as a table: the columns are the
 * keys of the objects in order of first appearance; a value that is not a
 * string is shown as JSON. A line that does not parse is a row of its own,
 * under "(line)". When `truncated`, the last (possibly cut) line is dropped.
 */
export function parseJsonLines(text: string, maxRows: number, truncated = false): Table & { invalid: number } {
  let lines = text.split(/\r?\n/);
  if (truncated) lines = lines.slice(0, -1);
  const objects: Record<string, unknown>[] = [];
  let invalid = 0;
  for (const line of lines) {
    if (objects.length >= maxRows) break;
    if (!line.trim()) continue;
    try {
      const v = JSON.parse(line) as unknown;
      objects.push(v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : { '(value)': v });
    } catch {
      invalid++;
      objects.push({ '(line)': line });
    }
  }
  const columns: string[] = [];
  const seen = new Set<string>();
  for (const o of objects) for (const k of Object.keys(o)) if (!seen.has(k)) seen.add(k), columns.push(k);
  const cell = (v: unknown) => (v === undefined ? '' : typeof v === 'string' ? v : JSON.stringify(v));
  return { columns, rows: objects.map((o) => columns.map((c) => cell(o[c]))), invalid };
}

/** JSON pretty-printed with two spaces; undefined when the text is not (all) JSON. */
export function prettyJson(text: string): string | undefined {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return undefined;
  }
}
