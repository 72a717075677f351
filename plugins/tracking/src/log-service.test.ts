import { randomUUID } from 'node:crypto';
import { metadataBackends } from '@wanllmdb/core/testing';
import type { tracking } from '@wanllmdb/proto';
import { beforeAll, describe, expect, it } from 'vitest';
import { rejection } from './fixtures/rejection.js';
import { useTrackingKernel } from './fixtures/tracking-kernel.js';
import { clampLine, MAX_LINE_BYTES } from './log-service.js';

type GetLogsResponse = tracking.v1.GetLogsResponse;

describe('clampLine', () => {
  it('keeps short lines and cuts long ones at a character boundary with a marker', () => {
    expect(clampLine('hello')).toBe('hello');
    const long = 'é'.repeat(40_000); // 80,000 bytes
    const cut = clampLine(long);
    expect(Buffer.byteLength(cut)).toBeLessThanOrEqual(MAX_LINE_BYTES);
    expect(cut).toMatch(/^é+ … \[line truncated: \d+ more bytes\]$/);
    const dropped = Number(/(\d+) more bytes/.exec(cut)![1]);
    expect(Buffer.byteLength(cut.replace(/ … \[.*$/, '')) + dropped).toBe(80_000);
    expect(clampLine('a\u0000b')).toBe('a\uFFFDb');
  });
});

describe.each(metadataBackends())('RunLogService on $name', (backend) => {
  const t = useTrackingKernel(backend);
  let runId = '';
  beforeAll(async () => {
    runId = (await t.call<{ data: tracking.v1.Run }>('RunService/CreateRun', { projectId: 'logs' })).data.id;
  });

  it('assigns sequence numbers server-side and pages by `after`', async () => {
    const lines = Array.from({ length: 120 }, (_, i) => ({ line: `step ${i} loss=${(1 / (i + 1)).toFixed(3)}${i % 10 === 0 ? ' WARNING: Slow' : ''}`, stream: i % 10 === 0 ? 'stderr' : 'stdout', time: 0, seq: 999 }));
    expect(await t.call('RunLogService/AppendLogs', { runId, lines: lines.slice(0, 70) })).toEqual({ accepted: 70, duplicate: false });
    expect(await t.call('RunLogService/AppendLogs', { runId, lines: lines.slice(70) })).toEqual({ accepted: 50, duplicate: false });
    // Concurrent appends still get distinct, gap-free numbers.
    await Promise.all(Array.from({ length: 5 }, (_, i) => t.call('RunLogService/AppendLogs', { runId, lines: [{ line: `parallel ${i}` }, { line: `parallel ${i}b` }] })));

    const seen: number[] = [];
    let after = 0;
    for (;;) {
      const page = await t.call<GetLogsResponse>('RunLogService/GetLogs', { runId, after, limit: 50 });
      seen.push(...page.data.map((l) => l.seq));
      expect(page.meta!.nextAfter).toBe(page.data.at(-1)?.seq ?? after);
      after = page.meta!.nextAfter;
      if (!page.meta!.hasMore) break;
    }
    expect(seen).toEqual(Array.from({ length: 130 }, (_, i) => i + 1));
    const first = await t.call<GetLogsResponse>('RunLogService/GetLogs', { runId, limit: 1 });
    expect(first.data[0]).toMatchObject({ seq: 1, stream: 'stderr', line: 'step 0 loss=1.000 WARNING: Slow' });
    expect(first.data[0]!.time).toBeGreaterThan(Date.now() - 60_000);
    const end = await t.call<GetLogsResponse>('RunLogService/GetLogs', { runId, after: 130 });
    expect(end).toEqual({ data: [], meta: { nextAfter: 130, hasMore: false } });
  });

  it('filters by stream and by case-insensitive search (with % and _ taken literally)', async () => {
    const errors = await t.call<GetLogsResponse>('RunLogService/GetLogs', { runId, stream: 'stderr', limit: 5000 });
    expect(errors.data.map((l) => l.seq)).toEqual([1, 11, 21, 31, 41, 51, 61, 71, 81, 91, 101, 111]);
    const warnings = await t.call<GetLogsResponse>('RunLogService/GetLogs', { runId, search: 'warning: SLOW', after: 20 });
    expect(warnings.data.map((l) => l.seq)).toEqual([21, 31, 41, 51, 61, 71, 81, 91, 101, 111]);
    expect((await t.call<GetLogsResponse>('RunLogService/GetLogs', { runId, search: '%' })).data).toEqual([]);
    expect((await t.call<GetLogsResponse>('RunLogService/GetLogs', { runId, search: "' OR 1=1 --" })).data).toEqual([]);
  });

  it('truncates oversize lines and refuses bad input', async () => {
    const other = (await t.call<{ data: tracking.v1.Run }>('RunService/CreateRun', { projectId: 'logs' })).data.id;
    await t.call('RunLogService/AppendLogs', { runId: other, lines: [{ line: 'x'.repeat(200_000), stream: 'stdout', time: 1_700_000_000_000 }] });
    const [line] = (await t.call<GetLogsResponse>('RunLogService/GetLogs', { runId: other })).data;
    expect(Buffer.byteLength(line!.line)).toBeLessThanOrEqual(MAX_LINE_BYTES);
    expect(line!.line).toMatch(/line truncated/);
    expect(line!.time).toBe(1_700_000_000_000);

    const bad = await rejection(t.call('RunLogService/AppendLogs', { runId: other, lines: [{ line: 'a', time: -1 }, { line: 'b', time: -5 }] }));
    expect(bad.details.map((d) => d.field)).toEqual(['lines[0].time', 'lines[1].time']);
    // A closed set (visibility, resume, scope, stream …) is part of the contract, checked with the types before the handler (ADR 0020).
    const closed = await rejection(t.call('RunLogService/AppendLogs', { runId: other, lines: [{ line: 'a' }, { line: 'b', stream: 'stdwhat' }] }));
    expect(closed.details).toEqual([{ field: 'lines[1].stream', message: 'must be one of "stdout", "stderr"' }]);
    expect((await rejection(t.call('RunLogService/AppendLogs', { runId: randomUUID(), lines: [{ line: 'a' }] }))).code).toBe('WLDB_ERR_NOT_FOUND');
    expect((await rejection(t.call('RunLogService/AppendLogs', { runId: 'nope', lines: [] }))).code).toBe('WLDB_ERR_INVALID_ID');
    expect((await rejection(t.call('RunLogService/GetLogs', { runId: randomUUID() }))).code).toBe('WLDB_ERR_NOT_FOUND');
    expect((await rejection(t.call('RunLogService/GetLogs', { runId, limit: 6000 }))).details[0]!.field).toBe('limit');
    expect((await rejection(t.call('RunLogService/GetLogs', { runId, after: -1 }))).details[0]!.field).toBe('after');
    expect((await rejection(t.call('RunLogService/GetLogs', { runId, stream: 'both' }))).details[0]!.field).toBe('stream');
  });

  it('stores a batch once by its batch id, however often (or however concurrently) it is sent', async () => {
    const run = (await t.call<{ data: tracking.v1.Run }>('RunService/CreateRun', { projectId: 'logs' })).data.id;
    const batch = (n: number, batchId: string) => ({ runId: run, batchId, lines: Array.from({ length: n }, (_, i) => ({ line: `${batchId} line ${i}`, stream: 'stdout', time: 0 })) });
    const a = randomUUID();
    expect(await t.call('RunLogService/AppendLogs', batch(3, a))).toEqual({ accepted: 3, duplicate: false });
    // A retry whose first answer was lost: nothing new is stored, and the answer is the first call's.
    expect(await t.call('RunLogService/AppendLogs', batch(3, a))).toEqual({ accepted: 3, duplicate: true });
    // The same batch sent five times at once (PostgreSQL: the claims wait for each other).
    const b = randomUUID();
    const answers = await Promise.all(Array.from({ length: 5 }, () => t.call<tracking.v1.AppendLogsResponse>('RunLogService/AppendLogs', batch(4, b))));
    expect(answers.filter((r) => !r.duplicate)).toHaveLength(1);
    expect(answers.every((r) => r.accepted === 4)).toBe(true);
    // Batches without an id are stored every time (curl, older clients).
    await t.call('RunLogService/AppendLogs', batch(2, ''));
    await t.call('RunLogService/AppendLogs', batch(2, ''));
    const stored = (await t.call<GetLogsResponse>('RunLogService/GetLogs', { runId: run, limit: 5000 })).data;
    expect(stored.map((l) => l.seq)).toEqual(Array.from({ length: 11 }, (_, i) => i + 1));
    expect(stored.filter((l) => l.line.startsWith(a))).toHaveLength(3);
    expect(stored.filter((l) => l.line.startsWith(b))).toHaveLength(4);
    // A batch id belongs to its run: another run stores the same id.
    const other = (await t.call<{ data: tracking.v1.Run }>('RunService/CreateRun', { projectId: 'logs' })).data.id;
    expect(await t.call('RunLogService/AppendLogs', { ...batch(3, a), runId: other })).toEqual({ accepted: 3, duplicate: false });
    expect((await rejection(t.call('RunLogService/AppendLogs', batch(1, 'not a batch id!')))).details.map((d) => d.field)).toEqual(['batchId']);
    expect((await rejection(t.call('RunLogService/AppendLogs', { ...batch(1, randomUUID()), runId: randomUUID() }))).code).toBe('WLDB_ERR_NOT_FOUND');
  });

  it('deletes the logs with the run', async () => {
    const gone = (await t.call<{ data: tracking.v1.Run }>('RunService/CreateRun', { projectId: 'logs' })).data.id;
    const batchId = randomUUID();
    await t.call('RunLogService/AppendLogs', { runId: gone, batchId, lines: [{ line: 'bye' }] });
    await t.call('RunService/DeleteRun', { id: gone });
    expect((await rejection(t.call('RunLogService/GetLogs', { runId: gone }))).code).toBe('WLDB_ERR_NOT_FOUND');
    // Re-created with the same id: no old lines come back.
    await t.call('RunService/CreateRun', { projectId: 'logs', id: gone });
    expect((await t.call<GetLogsResponse>('RunLogService/GetLogs', { runId: gone })).data).toEqual([]);
    // …and its batch ids went with it: the same batch is new to the new run.
    expect(await t.call('RunLogService/AppendLogs', { runId: gone, batchId, lines: [{ line: 'hello again' }] })).toEqual({ accepted: 1, duplicate: false });
  });
});
