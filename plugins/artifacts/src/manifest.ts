import { createHash } from 'node:crypto';
import { checkFilePath, Problems, toWldbError } from '@wanllmdb/core';
import type { artifacts } from './gen/index.js';
import { checkReference, encodeRef, type ManifestRef } from './references.js';

type FileEntry = artifacts.v1.FileEntry;

/** Entries one AddFiles call may carry. */
export const MAX_ENTRIES_PER_CALL = 10_000;
/** Chunks one file may have (64 MiB chunks: 6.4 TB). */
export const MAX_CHUNKS_PER_FILE = 100_000;
/** A sha256 in hex, as bodies are named. */
export const DIGEST = /^[0-9a-f]{64}$/;
const MAX_SIZE = Number.MAX_SAFE_INTEGER;

/** A checked manifest entry, as stored: `chunks` is empty or the blobs of the body in order. */
export interface ManifestFile {
  path: string;
  digest: string;
  size: number;
  mode: number;
  chunks: { digest: string; size: number }[];
  /** A reference to an object kept elsewhere (`digest` is '' and `chunks` empty: no body). */
  ref?: ManifestRef;
}

/** Checks AddFiles entries, every problem at once with its field path: paths (no traversal), digests, sizes, duplicates. */
export function checkEntries(files: readonly FileEntry[] | undefined, problems: Problems): ManifestFile[] {
  const list = files ?? [];
  if (list.length > MAX_ENTRIES_PER_CALL) {
    problems.add('files', `has ${list.length} entries; send at most ${MAX_ENTRIES_PER_CALL} per call (call AddFiles again for the rest)`);
    return [];
  }
  const seen = new Map<string, number>();
  const out: ManifestFile[] = [];
  list.forEach((f, i) => {
    const at = `files[${i}]`;
    let path = '';
    try {
      path = checkFilePath(f.path, `${at}.path`);
    } catch (err) {
      for (const d of toWldbError(err).details) problems.add(d.field ?? `${at}.path`, d.message);
      return;
    }
    const before = seen.get(path);
    if (before !== undefined) problems.add(`${at}.path`, `repeats files[${before}].path "${path.slice(0, 100)}"; a manifest names each path once`);
    seen.set(path, i);
    const digest = String(f.digest ?? '').toLowerCase();
    const ref = f.ref ? checkReference(f.ref, at, problems) : undefined;
    if (ref) {
      if (digest) problems.add(`${at}.digest`, 'must be empty for a reference (no body is stored; put a sha256 of the object in ref.sha256)');
      if (f.chunks?.length) problems.add(`${at}.chunks`, 'must be empty for a reference (no body is stored)');
    } else if (!DIGEST.test(digest)) problems.add(`${at}.digest`, 'must be the sha256 of the file, 64 hex digits');
    const size = f.size;
    if (!Number.isSafeInteger(size) || size < 0 || size > MAX_SIZE) problems.add(`${at}.size`, 'must be a byte count, 0 or more');
    const mode = f.mode ?? 0;
    if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) problems.add(`${at}.mode`, 'must be Unix permission bits from 0 to 4095 (0o7777)');
    const chunks = f.chunks ?? [];
    if (chunks.length > MAX_CHUNKS_PER_FILE) problems.add(`${at}.chunks`, `has more than ${MAX_CHUNKS_PER_FILE} chunks; use larger chunks`);
    let sum = 0;
    chunks.forEach((c, j) => {
      if (!DIGEST.test(String(c.digest ?? '').toLowerCase())) problems.add(`${at}.chunks[${j}].digest`, 'must be a sha256, 64 hex digits');
      if (!Number.isSafeInteger(c.size) || c.size < 1) problems.add(`${at}.chunks[${j}].size`, 'must be a byte count, 1 or more');
      sum += c.size;
    });
    if (chunks.length && sum !== size) problems.add(`${at}.chunks`, `add up to ${sum} bytes, but size is ${size}`);
    out.push({ path, digest, size, mode, chunks: chunks.map((c) => ({ digest: c.digest.toLowerCase(), size: c.size })), ...(ref ? { ref } : {}) });
  });
  return out;
}

/** The blobs a file's body is made of, in order, with their sizes (none for a reference). */
export const bodyParts = (f: Pick<ManifestFile, 'digest' | 'size' | 'chunks' | 'ref'>): { digest: string; size: number }[] =>
  f.ref ? [] : f.chunks.length ? f.chunks : [{ digest: f.digest, size: f.size }];

/** The blobs a file's body is made of (none for a reference). */
export const bodyDigests = (f: Pick<ManifestFile, 'digest' | 'size' | 'chunks' | 'ref'>): string[] => bodyParts(f).map((c) => c.digest);

/** `chunks` as stored in a TEXT column: '' for a one-blob body. */
export const encodeChunks = (chunks: ManifestFile['chunks']): string => (chunks.length ? JSON.stringify(chunks.map((c) => [c.digest, c.size])) : '');
export const decodeChunks = (text: string): ManifestFile['chunks'] =>
  text ? (JSON.parse(text) as [string, number][]).map(([digest, size]) => ({ digest, size: Number(size) })) : [];

const FORMAT = '{"format":"wanllmdb.artifact-manifest.v1"}\n';

/**
 * The manifest as stored (a blob) and hashed (the version's digest): a
 * header line, then one JSON array per file, sorted by path in code-unit
 * order (never a database collation), so equal contents give equal digests.
 */
export function canonicalManifest(files: readonly ManifestFile[]): { text: string; digest: string; size: number } {
  const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const hash = createHash('sha256');
  const parts: string[] = [FORMAT];
  let size = 0;
  for (const f of sorted) {
    // A reference adds its recorded fields (so a changed target makes a new version); a file with a body keeps the v1 form.
    const line: unknown[] = [f.path, f.digest, f.size, f.mode, f.chunks.map((c) => [c.digest, c.size])];
    if (f.ref) line.push(JSON.parse(encodeRef(f.ref)));
    parts.push(`${JSON.stringify(line)}\n`);
    size += f.size;
  }
  const text = parts.join('');
  hash.update(text);
  return { text, digest: `sha256:${hash.digest('hex')}`, size };
}
