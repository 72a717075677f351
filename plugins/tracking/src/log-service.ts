import type { CallContext, Clock } from '@wanllmdb/core';
import type { tracking } from '@wanllmdb/proto';
import type { LogRepository, NewLogLine } from './log-repository.js';
import { RunProblems, runId, runNotFound } from './request-checks.js';
import type { RunRepository } from './run-repository.js';

type Handlers = tracking.v1.RunLogServiceHandlers<CallContext>;

/** A console line is cut to this many UTF-8 bytes, marker included. */
export const MAX_LINE_BYTES = 64 * 1024;
const MAX_LINES_PER_CALL = 10_000;
/** As metric batch ids (metric-service.ts). */
const BATCH_ID = /^[A-Za-z0-9_.:-]{1,128}$/;
const DEFAULT_PAGE = 500;
const MAX_PAGE = 5000;

/**
 * `line` cut to MAX_LINE_BYTES at a character boundary, ending with a
 * marker that says how much was dropped. NUL characters, which PostgreSQL
 * text cannot hold, become U+FFFD.
 */
export function clampLine(line: string): string {
  const clean = line.includes('\u0000') ? line.replace(/\u0000/g, '\uFFFD') : line;
  if (clean.length * 3 <= MAX_LINE_BYTES) return clean;
  const bytes = Buffer.from(clean, 'utf8');
  if (bytes.length <= MAX_LINE_BYTES) return clean;
  const marker = (dropped: number) => ` … [line truncated: ${dropped} more bytes]`;
  let keep = MAX_LINE_BYTES - Buffer.byteLength(marker(bytes.length));
  while (keep > 0 && (bytes[keep]! & 0xc0) === 0x80) keep--; // not inside a multi-byte character
  return bytes.subarray(0, keep).toString('utf8') + marker(bytes.length - keep);
}

export function logHandlers(deps: { logs: LogRepository; runs: RunRepository; clock: Clock }): Handlers {
  const { logs, runs, clock } = deps;
  return {
    async appendLogs(req) {
      const id = runId(req.runId, 'runId');
      const p = new RunProblems('The log lines');
      const input = req.lines ?? [];
      if (input.length > MAX_LINES_PER_CALL) p.add('lines', `has more than ${MAX_LINES_PER_CALL} lines; send them in several calls`);
      const batchId = req.batchId ?? '';
      if (batchId && !BATCH_ID.test(batchId)) p.add('batchId', 'must be 1 to 128 letters, digits, "_", ".", ":" or "-" (or empty)');
      const now = clock.now();
      const lines: NewLogLine[] = [];
      input.forEach((l, i) => {
        if (p.list.length >= 20) return;
        const stream = l.stream || 'stdout';
        const time = l.time ?? 0;
        if (typeof time !== 'number' || !Number.isFinite(time) || time < 0) p.add(`lines[${i}].time`, 'must be epoch milliseconds (0 for now)');
        if (typeof (l.line ?? '') !== 'string') p.add(`lines[${i}].line`, 'must be a string');
        lines.push({ stream, time: time ? Math.round(time) : now, line: clampLine(String(l.line ?? '')) });
      });
      p.throwIfAny();
      if (lines.length === 0) {
        if (!(await runs.projectOf(id))) throw runNotFound(id, 'runId');
        return { accepted: 0, duplicate: false };
      }
      const stored = await logs.append(id, lines, batchId ? { id: batchId, at: now } : undefined);
      if (!stored) throw runNotFound(id, 'runId');
      return stored;
    },

    async getLogs(req) {
      const id = runId(req.runId, 'runId');
      const p = new RunProblems('The log request');
      const after = req.after ?? 0;
      if (!Number.isSafeInteger(after) || after < 0) p.add('after', 'must be a sequence number, 0 or more');
      const limit = p.pageSize('limit', req.limit, DEFAULT_PAGE, MAX_PAGE);
      const search = p.text('search', req.search, 1000);
      const stream = req.stream;
      p.throwIfAny();
      if (!(await runs.projectOf(id))) throw runNotFound(id, 'runId');
      const page = await logs.page(id, { after, limit, search, stream });
      return { data: page.lines, meta: { nextAfter: page.lines.at(-1)?.seq ?? after, hasMore: page.hasMore } };
    },
  };
}
