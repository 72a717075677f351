import { createHash } from 'node:crypto';
import { metadataBackends } from '@wanllmdb/core/testing';
import type { JsonObject, tracking } from '@wanllmdb/proto';
import { beforeAll, describe, expect, it } from 'vitest';
import { rejection } from './fixtures/rejection.js';
import { useTrackingKernel } from './fixtures/tracking-kernel.js';

type Run = tracking.v1.Run;
type ListRunsResponse = tracking.v1.ListRunsResponse;

const RUNS = 300;
const STATES = ['running', 'finished', 'crashed', 'killed'] as const;

/** The runs the list tests make, and what each was given (the expected answers are computed from these). */
interface Made {
  id: string;
  name: string;
  state: string;
  tags: string[];
  config: JsonObject;
  summary: JsonObject;
}

const num = (v: unknown) => (typeof v === 'number' ? v : v === 'Infinity' ? Infinity : v === '-Infinity' ? -Infinity : undefined);

describe.each(metadataBackends())('ListRuns on $name', (backend) => {
  const t = useTrackingKernel(backend);
  const made: Made[] = [];
  let projectId = '';

  const list = (req: Record<string, unknown>) => t.call<ListRunsResponse>('RunService/ListRuns', { projectId, ...req });

  /** Every run of a filter/sort, following cursors page by page. */
  async function all(req: Record<string, unknown>, limit = 37): Promise<{ ids: string[]; totals: Set<number> }> {
    const ids: string[] = [];
    const totals = new Set<number>();
    let cursor = '';
    for (let page = 0; page < 100; page++) {
      const res = await list({ ...req, limit, cursor });
      ids.push(...res.data.map((r) => r.id));
      totals.add(res.meta!.total);
      cursor = res.meta!.nextCursor;
      if (!cursor) return { ids, totals };
    }
    throw new Error('too many pages');
  }

  beforeAll(async () => {
    for (let i = 0; i < RUNS; i++) {
      const config: JsonObject = { lr: [0.1, 0.01, 0.001, 0.0001][i % 4]!, batch: 16 * (1 + (i % 3)), model: { layers: i % 7, name: `m${i % 5}` }, opt: i % 2 ? 'adam' : 'sgd' };
      if (i % 10 === 0) config.lr = 'auto'; // a string where most runs have a number
      if (i % 11 === 0) delete config.batch;
      const run = (
        await t.call<{ data: Run }>('RunService/CreateRun', {
          projectId: 'list-project',
          name: `run-${String(i).padStart(3, '0')}${i % 13 === 0 ? ' special' : ''}`,
          tags: i % 3 === 0 ? ['baseline', `t${i % 5}`] : [`t${i % 5}`],
          config,
        })
      ).data;
      projectId = run.projectId;
      const summary: JsonObject = { val_loss: Math.round(((i * 37) % 100) / 2) / 50, acc: (i % 17) / 17, 'train/loss': i };
      if (i % 9 === 0) summary.val_loss = i % 2 ? 'NaN' : 'Infinity';
      if (i % 23 === 0) delete summary.acc;
      await t.call('RunService/UpdateSummary', { id: run.id, summary });
      const state = STATES[i % 4]!;
      if (state !== 'running') await t.call('RunService/FinishRun', { id: run.id, state });
      made.push({ id: run.id, name: run.name, state, tags: run.tags, config, summary });
    }
    // A run in another project never shows up.
    await t.call('RunService/CreateRun', { projectId: 'other-list-project', name: 'elsewhere', config: { lr: 0.1 } });
  }, 120_000);

  it('pages through every run by the default sort (newest first) with cursors', async () => {
    const { ids, totals } = await all({});
    expect(ids).toHaveLength(RUNS);
    expect(new Set(ids).size).toBe(RUNS);
    expect([...totals]).toEqual([RUNS]);
    const first = await list({ limit: 5 });
    expect(first.data).toHaveLength(5);
    // Created one after another: newest first (ties on the millisecond broken by id, descending).
    const created = first.data.map((r) => r.createdAt);
    expect([...created].sort().reverse()).toEqual(created);
    // By name, the project can be addressed too.
    expect((await t.call<ListRunsResponse>('RunService/ListRuns', { projectId: 'list-project', limit: 1 })).meta!.total).toBe(RUNS);
  });

  it('counts the total whether the page holds every run, some, or is a later page', async () => {
    const whole = await list({ limit: RUNS + 1 });
    expect([whole.data.length, whole.meta!.total, whole.meta!.nextCursor]).toEqual([RUNS, RUNS, '']);
    const exact = await list({ limit: RUNS });
    expect([exact.data.length, exact.meta!.total, exact.meta!.nextCursor]).toEqual([RUNS, RUNS, '']);
    const some = await list({ limit: RUNS - 1 });
    expect([some.data.length, some.meta!.total]).toEqual([RUNS - 1, RUNS]);
    const last = await list({ limit: RUNS - 1, cursor: some.meta!.nextCursor });
    expect([last.data.length, last.meta!.total, last.meta!.nextCursor]).toEqual([1, RUNS, '']);
  });

  const cases: { filter: string; expect: (m: Made) => boolean }[] = [
    { filter: 'state = "finished"', expect: (m) => m.state === 'finished' },
    { filter: 'state != "running"', expect: (m) => m.state !== 'running' },
    { filter: 'config.lr > 0.005', expect: (m) => typeof m.config.lr === 'number' && m.config.lr > 0.005 },
    { filter: 'config.lr = "auto"', expect: (m) => m.config.lr === 'auto' },
    { filter: 'NOT config.lr > 0.005', expect: (m) => !(typeof m.config.lr === 'number' && m.config.lr > 0.005) },
    { filter: 'config.batch >= 32', expect: (m) => typeof m.config.batch === 'number' && m.config.batch >= 32 },
    { filter: 'config.batch != 32', expect: (m) => typeof m.config.batch === 'number' && m.config.batch !== 32 },
    { filter: 'config.model.layers <= 2 AND config.opt = "adam"', expect: (m) => ((m.config.model as JsonObject).layers as number) <= 2 && m.config.opt === 'adam' },
    {
      filter: 'config.lr > 0.005 AND summary.val_loss < 0.3 AND state = "finished"',
      expect: (m) => typeof m.config.lr === 'number' && m.config.lr > 0.005 && (num(m.summary.val_loss) ?? NaN) < 0.3 && m.state === 'finished',
    },
    { filter: 'summary.val_loss > 100', expect: (m) => m.summary.val_loss === 'Infinity' },
    { filter: 'summary.acc < 0.2 OR (tags CONTAINS "baseline" AND NOT state = "crashed")', expect: (m) => ((num(m.summary.acc) ?? NaN) < 0.2) || (m.tags.includes('baseline') && m.state !== 'crashed') },
    { filter: 'summary.train/loss >= 290', expect: (m) => (m.summary['train/loss'] as number) >= 290 },
    { filter: 'tags contains "t3"', expect: (m) => m.tags.includes('t3') },
    { filter: 'name CONTAINS "SPECIAL"', expect: (m) => m.name.includes('special') },
    { filter: 'name >= "run-290"', expect: (m) => m.name >= 'run-290' },
    { filter: 'config.model.name CONTAINS "M4"', expect: (m) => (m.config.model as JsonObject).name === 'm4' },
    { filter: 'summary.missing = 1 OR summary.missing != 1', expect: () => false },
    { filter: 'summary.acc = true', expect: () => false },
    { filter: `name = "x' OR '1'='1"`, expect: () => false },
    { filter: `name = "run-001\\"); DROP TABLE runs; --"`, expect: () => false },
    { filter: `config.opt = 'adam'`, expect: (m) => m.config.opt === 'adam' },
  ];

  it.each(cases)('filters: $filter', async (c) => {
    const want = made.filter(c.expect).map((m) => m.id).sort();
    const { ids, totals } = await all({ filter: c.filter }, 64);
    expect(ids.sort()).toEqual(want);
    expect([...totals]).toEqual([want.length]);
  });

  it('sorts by a summary value with NULLs (missing, NaN) last and ties broken by id, over cursors', async () => {
    for (const sort of ['summary.val_loss', '-summary.val_loss', '-summary.acc', 'config.lr', '-config.lr']) {
      const desc = sort.startsWith('-');
      const path = sort.replace(/^-/, '').split('.');
      const valueOf = (m: Made) => (path[0] === 'summary' ? m.summary : m.config)[path[1]!];
      const rank = (m: Made): [number, number | string, string] => {
        const v = valueOf(m);
        const n = num(v);
        // numbers, then strings, then missing — in the sort direction, missing always last
        if (n !== undefined) return [0, n, m.id];
        if (typeof v === 'string' && v !== 'NaN') return [1, v, m.id];
        return [2, 0, m.id];
      };
      const want = [...made]
        .sort((a, b) => {
          const ra = rank(a);
          const rb = rank(b);
          if (ra[0] !== rb[0]) {
            // numbers first (the numeric component is NULL for the rest), then strings, then missing — either direction
            return ra[0] - rb[0];
          }
          const dir = desc ? -1 : 1;
          if (ra[1] !== rb[1]) return (ra[1] < rb[1] ? -1 : 1) * dir;
          return (ra[2] < rb[2] ? -1 : 1) * dir;
        })
        .map((m) => m.id);
      const { ids } = await all({ sort }, 41);
      expect({ sort, ids }).toEqual({ sort, ids: want });
    }
  });

  it('sorts by columns', async () => {
    const byName = (await all({ sort: 'name' }, 100)).ids;
    expect(byName).toEqual([...made].sort((a, b) => (a.name < b.name ? -1 : 1)).map((m) => m.id));
    const byStateDesc = (await all({ sort: '-state' }, 100)).ids;
    expect(byStateDesc).toEqual([...made].sort((a, b) => (a.state === b.state ? (a.id < b.id ? 1 : -1) : a.state < b.state ? 1 : -1)).map((m) => m.id));
    const byFinished = (await all({ sort: 'finished_at', filter: 'state = "running"' }, 20)).ids;
    expect(byFinished.sort()).toEqual(made.filter((m) => m.state === 'running').map((m) => m.id).sort());
    expect((await list({ sort: '-exit_code', limit: 3 })).data).toHaveLength(3);
  });

  it('reports filter syntax errors with the position and what was expected', async () => {
    const bad: [string, RegExp][] = [
      ['config.lr >', /character 12 \(after "config.lr >"\): expected a value/],
      ['config.lr > 0.1 AND', /character 20 \(after "config.lr > 0.1 AND"\): expected a field/],
      ['(state = "finished"', /expected AND, OR or "\)"/],
      ['state = "finished")', /unbalanced/],
      ['state == "x"', /character 8 .*: expected a value/],
      ['state = "bogus"', /does not exist/],
      ['name = 5', /compare it with a "string"/],
      ['tags = "x"', /tags CONTAINS/],
      ['flavour = "x"', /unknown field "flavour"/],
      ['config. = 1', /config\. is not a key|needs a key/],
      ['config.a"b = 1', /expected/],
      ['summary.x = "unterminated', /closing "/],
      ['summary.acc > 0.5 ; DROP TABLE runs', /character 19/],
      ['1 = 1', /expected a field/],
      ['created_at > "yesterday"', /not a date/],
      ['summary.acc > true', /only be compared with = or !=/],
      ['(((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((state = "x")))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))', /levels/],
    ];
    for (const [filter, message] of bad) {
      const err = await rejection(list({ filter }));
      expect({ filter, code: err.code }).toEqual({ filter, code: 'WLDB_ERR_VALIDATION' });
      expect(err.message).toMatch(message);
      expect(err.details[0]!.field).toBe('filter');
    }
    expect((await rejection(list({ filter: 'x'.repeat(5000) }))).message).toMatch(/longer than 4096/);
  });

  it('refuses filter values outside the field\'s type and range before any SQL, alike on both databases', async () => {
    // PostgreSQL's INTEGER / BIGINT parameters refused these with the statement in a 500; SQLite compared them.
    const refused: [string, RegExp][] = [
      ['exit_code > 1e400', /beyond the range of a double/],
      ['exit_code > 3000000000', /exit_code holds a 32-bit integer: compare it with a whole number from -2147483648 to 2147483647, not 3000000000/],
      ['exit_code = 1.5', /exit_code holds a 32-bit integer.*not 1\.5/],
      ['exit_code != -2147483649', /from -2147483648 to 2147483647/],
      ['created_at > 1e300', /created_at holds whole epoch milliseconds: compare it with a whole number from -8640000000000000 to 8640000000000000 or an ISO 8601 "string"/],
      ['created_at < -1e20', /created_at holds whole epoch milliseconds/],
      ['finished_at >= 1700000000000.5', /finished_at holds whole epoch milliseconds/],
      ['config.lr > 1e400', /beyond the range of a double/],
      ['summary.acc < -1e999', /beyond the range of a double/],
    ];
    for (const [filter, message] of refused) {
      const err = await rejection(list({ filter }));
      expect({ filter, code: err.code }).toEqual({ filter, code: 'WLDB_ERR_VALIDATION' });
      expect(err.message).toMatch(message);
      expect(err.details).toEqual([{ field: 'filter', message: expect.stringMatching(message) }]);
    }
    // The ends of each range are values, compared as written.
    expect((await list({ filter: 'exit_code > 2147483647 OR exit_code < -2147483648' })).meta!.total).toBe(0);
    expect((await list({ filter: 'created_at > -8640000000000000 AND created_at < 8640000000000000' })).meta!.total).toBe(RUNS);
    expect((await list({ filter: `created_at < ${Date.now() + 60_000} AND config.batch <= 1.7976931348623157e308` })).meta!.total).toBe(made.filter((m) => m.config.batch !== undefined).length);
  });

  it('refuses bad sorts, limits and tampered cursors', async () => {
    for (const sort of ['tags', 'nope', '-config.a;DROP', 'summary.', "name'; DROP TABLE runs; --"]) {
      expect((await rejection(list({ sort }))).details[0]!.field).toBe('sort');
    }
    expect((await rejection(list({ limit: 1001 }))).details[0]!.field).toBe('limit');
    const page = await list({ limit: 10, sort: '-summary.acc' });
    const cursor = page.meta!.nextCursor;
    expect(cursor).not.toBe('');
    const [payload, sum] = cursor.split('.');
    const decoded = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as { k: unknown[] };
    decoded.k[0] = "0 OR 1=1; DROP TABLE runs; --";
    const forged = `${Buffer.from(JSON.stringify(decoded)).toString('base64url')}.${sum}`;
    for (const c of [forged, cursor.slice(0, -2), 'garbage', `${payload}.`, cursor + 'x']) {
      expect((await rejection(list({ limit: 10, sort: '-summary.acc', cursor: c }))).details[0]!.field).toBe('cursor');
    }
    // The checksum is no secret (it catches accidents), so a caller can re-sign an edited cursor: its values are still checked.
    const timePage = await list({ limit: 10, sort: 'created_at' });
    const [timePayload] = timePage.meta!.nextCursor.split('.');
    for (const value of [1.5, 1e300, -1e20]) {
      const edited = JSON.parse(Buffer.from(timePayload!, 'base64url').toString()) as { k: unknown[] };
      edited.k[0] = value;
      const body = Buffer.from(JSON.stringify(edited)).toString('base64url');
      const resigned = `${body}.${createHash('sha256').update(`wanllmdb.tracking.runs.cursor\n${body}`).digest('base64url').slice(0, 16)}`;
      const err = await rejection(list({ limit: 10, sort: 'created_at', cursor: resigned }));
      expect({ value, code: err.code, field: err.details[0]!.field }).toEqual({ value, code: 'WLDB_ERR_VALIDATION', field: 'cursor' });
    }
    // A cursor belongs to its filter and sort.
    expect((await rejection(list({ limit: 10, sort: 'name', cursor }))).message).toMatch(/different filter or sort/);
    expect((await list({ limit: 10, sort: '-summary.acc', cursor })).data).toHaveLength(10);
    expect((await rejection(list({ projectId: 'no-such-project' }))).code).toBe('WLDB_ERR_NOT_FOUND');
  });

  it('pages stably while runs are added (keyset, not offset)', async () => {
    const first = await list({ limit: 50, sort: 'name' });
    await t.call('RunService/CreateRun', { projectId: 'list-project', name: 'aaa-inserted-first' });
    const second = await list({ limit: 50, sort: 'name', cursor: first.meta!.nextCursor });
    expect(second.data[0]!.name > first.data.at(-1)!.name).toBe(true);
    expect(second.meta!.total).toBe(RUNS + 1);
  });
});
