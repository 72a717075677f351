import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Errors } from '../../errors.js';
import { metadataBackends, TEST_PG_URL } from '../../testing/metadata-backends.js';
import { createMetadataStore } from './create-metadata-store.js';
import type { MetadataStore, Migration } from './metadata-store.js';
import { toPostgresPlaceholders } from './postgres-metadata-store.js';
import { SqliteMetadataStore } from './sqlite-metadata-store.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A promise and the function that resolves it, to hold a transaction open at a known point. */
function signal(): { promise: Promise<void>; fire: () => void } {
  let fire!: () => void;
  const promise = new Promise<void>((resolve) => (fire = resolve));
  return { promise, fire };
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    return (err as { code?: string }).code ?? `not a WldbError: ${String(err)}`;
  }
  return 'resolved';
}

describe.each(metadataBackends())('MetadataStore contract ($name)', (backend) => {
  let store: MetadataStore;

  beforeAll(async () => {
    store = await backend.create();
  });
  afterAll(async () => {
    await store?.close();
  });

  it('reports its dialect', () => {
    expect(store.dialect).toBe(backend.name);
  });

  describe('statements and values', () => {
    it('round-trips every SqlValue by the portable conventions', async () => {
      await store.run(
        'CREATE TABLE rt_values (id INTEGER PRIMARY KEY, label TEXT, big BIGINT, huge BIGINT, ratio DOUBLE PRECISION, flag INTEGER, off INTEGER, missing TEXT)',
      );
      const label = 'héllo wörld — 世界 🌍 "quoted" \'single\'';
      const big = 2 ** 50 + 3;
      const { changes } = await store.run('INSERT INTO rt_values (id, label, big, huge, ratio, flag, off, missing) VALUES (?, ?, ?, ?, ?, ?, ?, ?)', [
        1,
        label,
        big,
        12_345_678_901_234n,
        -3.25,
        true,
        false,
        null,
      ]);
      expect(changes).toBe(1);

      const rows = await store.query('SELECT id, label, big, huge, ratio, flag, off, missing FROM rt_values WHERE label = ? AND big = ?', [label, big]);
      expect(rows).toEqual([{ id: 1, label, big, huge: 12_345_678_901_234, ratio: -3.25, flag: 1, off: 0, missing: null }]);
      expect(typeof rows[0]!.huge).toBe('number');
    });

    it('returns COUNT and other BIGINT results as numbers', async () => {
      const [row] = await store.query<{ n: unknown }>('SELECT COUNT(*) AS n FROM rt_values');
      expect(row).toEqual({ n: 1 });
    });

    it('counts the rows a statement changed', async () => {
      await store.run('CREATE TABLE rt_changes (v INTEGER)');
      await store.insertMany('rt_changes', ['v'], [[1], [2], [3]]);
      expect(await store.run('UPDATE rt_changes SET v = v + 10 WHERE v >= ?', [2])).toEqual({ changes: 2 });
      expect(await store.run('DELETE FROM rt_changes WHERE v = ?', [999])).toEqual({ changes: 0 });
    });

    it('stores bytes in a column each dialect declares its own way', async () => {
      await store.migrate('contract-bytes', [
        {
          version: 1,
          name: 'bytes table',
          up: { sqlite: 'CREATE TABLE rt_bytes (id INTEGER PRIMARY KEY, data BLOB)', postgres: 'CREATE TABLE rt_bytes (id INTEGER PRIMARY KEY, data BYTEA)' },
        },
      ]);
      const bytes = new Uint8Array([0, 1, 2, 127, 128, 255]);
      await store.run('INSERT INTO rt_bytes (id, data) VALUES (?, ?)', [1, bytes]);
      const [row] = await store.query<{ data: Uint8Array }>('SELECT data FROM rt_bytes WHERE id = ?', [1]);
      expect(row!.data).toBeInstanceOf(Uint8Array);
      expect([...row!.data]).toEqual([...bytes]);
    });

    it('leaves a ? inside a string literal alone', async () => {
      await store.run('CREATE TABLE rt_literals (a TEXT, b TEXT)');
      await store.run("INSERT INTO rt_literals (a, b) VALUES ('what?', ?)", ['param']);
      await store.run("INSERT INTO rt_literals (a, b) VALUES ('it''s ? here', ?)", ['second']);
      const rows = await store.query("SELECT a, b FROM rt_literals WHERE a <> '?' AND b = ? ORDER BY b", ['param']);
      expect(rows).toEqual([{ a: 'what?', b: 'param' }]);
      expect(await store.query("SELECT a FROM rt_literals WHERE b = ?", ['second'])).toEqual([{ a: "it's ? here" }]);
    });
  });

  describe('transactions', () => {
    it('commits when the callback resolves and returns its value', async () => {
      await store.run('CREATE TABLE tx_commit (v TEXT)');
      const result = await store.transaction(async (tx) => {
        await tx.run('INSERT INTO tx_commit (v) VALUES (?)', ['a']);
        await tx.run('INSERT INTO tx_commit (v) VALUES (?)', ['b']);
        return (await tx.query('SELECT COUNT(*) AS n FROM tx_commit'))[0];
      });
      expect(result).toEqual({ n: 2 });
      expect(await store.query('SELECT v FROM tx_commit ORDER BY v')).toEqual([{ v: 'a' }, { v: 'b' }]);
    });

    it('rolls back everything when the callback throws, and rethrows its error', async () => {
      await store.run('CREATE TABLE tx_rollback (v TEXT)');
      const failure = new Error('changed my mind');
      await expect(
        store.transaction(async (tx) => {
          await tx.run('INSERT INTO tx_rollback (v) VALUES (?)', ['gone']);
          await tx.insertMany('tx_rollback', ['v'], [['gone too'], ['and this']]);
          throw failure;
        }),
      ).rejects.toBe(failure);
      expect(await store.query('SELECT v FROM tx_rollback')).toEqual([]);
    });

    it('keeps other callers out of an open transaction', async () => {
      await store.run('CREATE TABLE tx_isolation (v TEXT)');
      const opened = signal();
      const release = signal();
      const failure = new Error('roll back the inside row');
      const inside = store.transaction(async (tx) => {
        await tx.run('INSERT INTO tx_isolation (v) VALUES (?)', ['inside']);
        opened.fire();
        await release.promise;
        throw failure;
      });
      await opened.promise;
      // Started outside the callback: they must neither join nor see the transaction.
      const outsideWrite = store.run('INSERT INTO tx_isolation (v) VALUES (?)', ['outside']);
      const outsideRead = store.query<{ v: string }>('SELECT v FROM tx_isolation');
      await sleep(50);
      release.fire();
      await expect(inside).rejects.toBe(failure);
      await outsideWrite;
      expect((await outsideRead).map((r) => r.v)).not.toContain('inside');
      expect(await store.query('SELECT v FROM tx_isolation')).toEqual([{ v: 'outside' }]);
    });

    it('routes store calls made inside the callback into the transaction; a nested transaction is a savepoint', { timeout: 5_000 }, async () => {
      await store.run('CREATE TABLE tx_nested (v TEXT)');
      await expect(
        store.transaction(async (tx) => {
          await tx.run('INSERT INTO tx_nested (v) VALUES (?)', ['outer']);
          await store.run('INSERT INTO tx_nested (v) VALUES (?)', ['through the store']);
          await expect(
            store.transaction(async (inner) => {
              await inner.run('INSERT INTO tx_nested (v) VALUES (?)', ['inner, rolled back']);
              throw new Error('inner fails');
            }),
          ).rejects.toThrow('inner fails');
          await store.transaction((inner) => inner.run('INSERT INTO tx_nested (v) VALUES (?)', ['inner, kept']));
          expect(await store.query('SELECT COUNT(*) AS n FROM tx_nested')).toEqual([{ n: 3 }]);
          throw new Error('outer fails');
        }),
      ).rejects.toThrow('outer fails');
      expect(await store.query('SELECT v FROM tx_nested')).toEqual([]);

      await store.transaction(async () => {
        await store.run('INSERT INTO tx_nested (v) VALUES (?)', ['outer']);
        await store.transaction((inner) => inner.run('INSERT INTO tx_nested (v) VALUES (?)', ['inner']));
      });
      expect(await store.query('SELECT v FROM tx_nested ORDER BY v')).toEqual([{ v: 'inner' }, { v: 'outer' }]);
    });

    it('recovers from a failed statement inside a nested transaction', async () => {
      await store.run('CREATE TABLE tx_recover (v TEXT)');
      await store.transaction(async (tx) => {
        await tx.run('INSERT INTO tx_recover (v) VALUES (?)', ['before']);
        const err = await store.transaction((inner) => inner.run('INSERT INTO tx_recover (no_such_column) VALUES (1)')).catch((e: unknown) => e);
        expect(Errors.DB_QUERY_FAILED.is(err)).toBe(true);
        await tx.run('INSERT INTO tx_recover (v) VALUES (?)', ['after']);
      });
      expect(await store.query('SELECT v FROM tx_recover ORDER BY v')).toEqual([{ v: 'after' }, { v: 'before' }]);
    });

    it('refuses a transaction executor used after the transaction ended', async () => {
      const leaked = await store.transaction(async (tx) => tx);
      expect(await codeOf(leaked.query('SELECT 1 AS one'))).toBe(Errors.DB_QUERY_FAILED.code);
    });
  });

  describe('transactions that may share a commit (groupCommit)', () => {
    const grouped = { groupCommit: true } as const;

    it('runs each alone and all or nothing: a failing one among many is rolled back by itself', async () => {
      await store.run('CREATE TABLE gc_members (member INTEGER NOT NULL, part INTEGER NOT NULL)');
      const failure = new Error('member 7 changed its mind');
      const outcomes = await Promise.allSettled(
        Array.from({ length: 40 }, (_, member) =>
          store.transaction(async (tx) => {
            await tx.run('INSERT INTO gc_members (member, part) VALUES (?, 1)', [member]);
            if (member === 7) throw failure;
            await tx.run('INSERT INTO gc_members (member, part) VALUES (?, 2)', [member]);
            return member;
          }, grouped),
        ),
      );
      expect(outcomes[7]).toEqual({ status: 'rejected', reason: failure });
      expect(outcomes.filter((o) => o.status === 'fulfilled').map((o) => (o as PromiseFulfilledResult<number>).value)).toEqual(
        Array.from({ length: 40 }, (_, m) => m).filter((m) => m !== 7),
      );
      const rows = await store.query<{ member: number; n: number }>('SELECT member, COUNT(*) AS n FROM gc_members GROUP BY member ORDER BY member');
      expect(rows).toEqual(Array.from({ length: 40 }, (_, member) => member).filter((m) => m !== 7).map((member) => ({ member, n: 2 })));
    });

    it('mixes with ordinary work; on SQLite each sees the writes of the ones started before it (they run in order)', async () => {
      await store.run('CREATE TABLE gc_order (v INTEGER NOT NULL)');
      const seen = await Promise.all([
        ...Array.from({ length: 10 }, (_, i) =>
          store.transaction(async (tx) => {
            const [row] = await tx.query<{ n: number }>('SELECT COUNT(*) AS n FROM gc_order');
            await tx.run('INSERT INTO gc_order (v) VALUES (?)', [i]);
            return Number(row!.n);
          }, grouped),
        ),
        store.run('INSERT INTO gc_order (v) VALUES (100)').then(() => -1),
        store.transaction((tx) => tx.run('INSERT INTO gc_order (v) VALUES (101)'), grouped).then(() => -2),
      ]);
      if (store.dialect === 'sqlite') expect(seen.slice(0, 10)).toEqual(Array.from({ length: 10 }, (_, i) => i));
      expect(await store.query('SELECT COUNT(*) AS n FROM gc_order')).toEqual([{ n: 12 }]);
    });

    it('nests like any transaction: a nested one is a savepoint', async () => {
      await store.run('CREATE TABLE gc_nested (v TEXT)');
      await store.transaction(async (tx) => {
        await tx.run('INSERT INTO gc_nested (v) VALUES (?)', ['outer']);
        await expect(store.transaction((inner) => inner.run('INSERT INTO gc_nested (nope) VALUES (1)'), grouped)).rejects.toThrow();
        await store.transaction((inner) => inner.run('INSERT INTO gc_nested (v) VALUES (?)', ['inner']), grouped);
      }, grouped);
      expect(await store.query('SELECT v FROM gc_nested ORDER BY v')).toEqual([{ v: 'inner' }, { v: 'outer' }]);
    });
  });

  describe('insertMany', () => {
    const columns = ['run_id', 'key', 'step', 'value', 'big', 'flag', 'note'];
    const rowOf = (i: number) => [`run-${i % 7}`, `key-${i % 3}`, i, i / 4, 2 ** 40 + i, i % 2 === 0, i % 5 === 0 ? null : `n${i}`];

    beforeAll(async () => {
      await store.run(
        'CREATE TABLE im_points (run_id TEXT NOT NULL, key TEXT NOT NULL, step BIGINT NOT NULL, value DOUBLE PRECISION, big BIGINT, flag INTEGER, note TEXT, PRIMARY KEY (run_id, key, step))',
      );
    });

    it('inserts 10,000 rows in several statements (more parameters than one statement allows)', async () => {
      const rows = Array.from({ length: 10_000 }, (_, i) => rowOf(i));
      expect(await store.insertMany('im_points', columns, rows)).toBe(10_000);
      expect(await store.query('SELECT COUNT(*) AS n, CAST(SUM(step) AS BIGINT) AS s, MAX(big) AS b FROM im_points')).toEqual([
        { n: 10_000, s: (9_999 * 10_000) / 2, b: 2 ** 40 + 9_999 },
      ]);
      expect(await store.query('SELECT * FROM im_points WHERE step = ? OR step = ? ORDER BY step', [5, 9_999])).toEqual([
        { run_id: 'run-5', key: 'key-2', step: 5, value: 1.25, big: 2 ** 40 + 5, flag: 0, note: null },
        { run_id: 'run-3', key: 'key-0', step: 9_999, value: 9_999 / 4, big: 2 ** 40 + 9_999, flag: 0, note: 'n9999' },
      ]);
    });

    it('inserts all rows or none', async () => {
      const rows = Array.from({ length: 10_000 }, (_, i) => rowOf(20_000 + i));
      rows.push(rowOf(0)); // already there: the primary key refuses it in the last chunk
      expect(await codeOf(store.insertMany('im_points', columns, rows))).toBe(Errors.DB_CONSTRAINT_VIOLATION.code);
      expect(await store.query('SELECT COUNT(*) AS n FROM im_points WHERE step >= ?', [20_000])).toEqual([{ n: 0 }]);
    });

    it('joins the surrounding transaction', async () => {
      await expect(
        store.transaction(async (tx) => {
          await tx.insertMany('im_points', columns, [rowOf(30_000), rowOf(30_001)]);
          throw new Error('undo');
        }),
      ).rejects.toThrow('undo');
      expect(await store.query('SELECT COUNT(*) AS n FROM im_points WHERE step >= ?', [30_000])).toEqual([{ n: 0 }]);
    });

    it('reports a missing table, and works once the table exists', async () => {
      const rows = Array.from({ length: 10_000 }, (_, i) => rowOf(i));
      expect(await codeOf(store.insertMany('im_late', columns, rows))).toBe(Errors.DB_QUERY_FAILED.code);
      await store.run('CREATE TABLE im_late (run_id TEXT, key TEXT, step BIGINT, value DOUBLE PRECISION, big BIGINT, flag INTEGER, note TEXT)');
      expect(await store.insertMany('im_late', columns, rows)).toBe(10_000);
      expect(await store.insertMany('im_late', columns, rows)).toBe(10_000);
      expect(await store.query('SELECT COUNT(*) AS n FROM im_late')).toEqual([{ n: 20_000 }]);
    });

    it('refuses names that are not plain identifiers and rows of the wrong width', async () => {
      expect(await codeOf(store.insertMany('im_points; DROP TABLE im_points', columns, [rowOf(1)]))).toBe(Errors.DB_QUERY_FAILED.code);
      expect(await codeOf(store.insertMany('im_points', ['run_id', 'key) --'], [['a', 'b']]))).toBe(Errors.DB_QUERY_FAILED.code);
      expect(await codeOf(store.insertMany('im_points', columns, [['too', 'short']]))).toBe(Errors.DB_QUERY_FAILED.code);
      expect(await store.insertMany('im_points', columns, [])).toBe(0);
    });
  });

  describe('migrations', () => {
    const base: Migration[] = [
      { version: 1, name: 'create log', up: 'CREATE TABLE mig_log (v INTEGER NOT NULL)' },
      { version: 2, name: 'first row', up: 'INSERT INTO mig_log (v) VALUES (2)' },
      { version: 3, name: 'two statements', up: 'INSERT INTO mig_log (v) VALUES (3);\nINSERT INTO mig_log (v) VALUES (33);' },
    ];

    it('applies pending migrations once, in order, and a re-run is a no-op', async () => {
      expect(await store.appliedMigrations('contract-mig')).toEqual([]);
      expect(await store.migrate('contract-mig', base)).toEqual([1, 2, 3]);
      expect(await store.appliedMigrations('contract-mig')).toEqual([1, 2, 3]);
      expect(await store.migrate('contract-mig', base)).toEqual([]);
      expect(await store.query('SELECT v FROM mig_log ORDER BY v')).toEqual([{ v: 2 }, { v: 3 }, { v: 33 }]);

      const next = [...base, { version: 4, name: 'later', up: 'INSERT INTO mig_log (v) VALUES (4)' }];
      expect(await store.migrate('contract-mig', next)).toEqual([4]);
      expect(await store.query('SELECT plugin, version, name FROM wldb_migrations WHERE plugin = ? ORDER BY version', ['contract-mig'])).toEqual(
        next.map((m) => ({ plugin: 'contract-mig', version: m.version, name: m.name })),
      );
    });

    it('keeps each plugin’s versions apart', async () => {
      expect(await store.migrate('contract-other', [{ version: 1, name: 'own table', up: 'CREATE TABLE mig_other (x INTEGER)' }])).toEqual([1]);
      expect(await store.appliedMigrations('contract-other')).toEqual([1]);
      expect(await store.appliedMigrations('contract-mig')).toEqual([1, 2, 3, 4]);
    });

    it('rolls a failing migration back completely and names plugin, version and name', async () => {
      const good: Migration = { version: 1, name: 'table a', up: 'CREATE TABLE mig_fail_a (x INTEGER)' };
      const bad: Migration = {
        version: 2,
        name: 'table b then a typo',
        up: 'CREATE TABLE mig_fail_b (x INTEGER);\nINSERT INTO mig_fail_a (x) VALUES (1);\nINSERT INTO no_such_table VALUES (1);',
      };
      const err = await store.migrate('contract-fail', [good, bad]).catch((e: unknown) => e);
      expect(Errors.MIGRATION_FAILED.is(err)).toBe(true);
      expect((err as Error).message).toMatch(/Migration 2 "table b then a typo" of plugin "contract-fail"/);
      expect((err as Error).message).toContain('no_such_table');
      expect(await store.appliedMigrations('contract-fail')).toEqual([1]);
      expect(await codeOf(store.query('SELECT x FROM mig_fail_b'))).toBe(Errors.DB_QUERY_FAILED.code);
      expect(await store.query('SELECT COUNT(*) AS n FROM mig_fail_a')).toEqual([{ n: 0 }]);

      const fixed = { ...bad, up: 'CREATE TABLE mig_fail_b (x INTEGER)' };
      expect(await store.migrate('contract-fail', [good, fixed])).toEqual([2]);
    });

    it.each<[string, unknown[]]>([
      ['version 0', [{ version: 0, name: 'zero', up: 'SELECT 1' }]],
      ['a fractional version', [{ version: 1.5, name: 'half', up: 'SELECT 1' }]],
      ['a duplicate version', [{ version: 1, name: 'a', up: 'SELECT 1' }, { version: 1, name: 'b', up: 'SELECT 1' }]],
      ['descending versions', [{ version: 2, name: 'b', up: 'SELECT 1' }, { version: 1, name: 'a', up: 'SELECT 1' }]],
      ['no name', [{ version: 1, name: '', up: 'SELECT 1' }]],
      ['empty SQL', [{ version: 1, name: 'empty', up: '  ' }]],
      ['a missing dialect', [{ version: 1, name: 'half', up: { sqlite: 'SELECT 1' } }]],
    ])('rejects a list with %s and applies nothing', async (_what, list) => {
      expect(await codeOf(store.migrate('contract-invalid', list as Migration[]))).toBe(Errors.MIGRATION_INVALID.code);
      expect(await store.appliedMigrations('contract-invalid')).toEqual([]);
    });

    it('rejects a new migration older than one already applied', async () => {
      const m = (version: number): Migration => ({ version, name: `m${version}`, up: 'SELECT 1' });
      expect(await store.migrate('contract-gap', [m(1), m(3)])).toEqual([1, 3]);
      expect(await codeOf(store.migrate('contract-gap', [m(1), m(2), m(3)]))).toBe(Errors.MIGRATION_INVALID.code);
      expect(await store.appliedMigrations('contract-gap')).toEqual([1, 3]);
    });
  });

  describe('errors', () => {
    it('reports bad SQL as DB_QUERY_FAILED and keeps working', async () => {
      const err = await store.query('SELECT * FROM no_such_table_here').catch((e: unknown) => e);
      expect(Errors.DB_QUERY_FAILED.is(err)).toBe(true);
      expect((err as Error).message).toContain('no_such_table_here');
      expect(await codeOf(store.run('INSERT INTO'))).toBe(Errors.DB_QUERY_FAILED.code);
      expect(await store.query('SELECT 1 AS one')).toEqual([{ one: 1 }]);
    });

    it('rolls back a transaction whose statement fails and keeps working', async () => {
      await store.run('CREATE TABLE err_tx (v INTEGER)');
      const err = await store
        .transaction(async (tx) => {
          await tx.run('INSERT INTO err_tx (v) VALUES (1)');
          await tx.run('INSERT INTO err_tx (nope) VALUES (2)');
        })
        .catch((e: unknown) => e);
      expect(Errors.DB_QUERY_FAILED.is(err)).toBe(true);
      expect(await store.query('SELECT COUNT(*) AS n FROM err_tx')).toEqual([{ n: 0 }]);
      await store.transaction((tx) => tx.run('INSERT INTO err_tx (v) VALUES (3)'));
      expect(await store.query('SELECT v FROM err_tx')).toEqual([{ v: 3 }]);
    });

    it('reports a constraint violation as DB_CONSTRAINT_VIOLATION', async () => {
      await store.run('CREATE TABLE err_unique (id TEXT PRIMARY KEY)');
      await store.run('INSERT INTO err_unique (id) VALUES (?)', ['x']);
      expect(await codeOf(store.run('INSERT INTO err_unique (id) VALUES (?)', ['x']))).toBe(Errors.DB_CONSTRAINT_VIOLATION.code);
    });
  });

  describe('two stores on one database', () => {
    const stores: MetadataStore[] = [];
    let drop: (() => Promise<void>) | undefined;

    beforeAll(async () => {
      const db = await backend.fresh();
      drop = db.drop;
      stores.push(await createMetadataStore(db.url), await createMetadataStore(db.url));
    });
    afterAll(async () => {
      await Promise.all(stores.map((s) => s.close()));
      await drop?.();
    });

    it('share their data', async () => {
      const [a, b] = stores as [MetadataStore, MetadataStore];
      await a.run('CREATE TABLE shared_rows (v TEXT)');
      await a.run('INSERT INTO shared_rows (v) VALUES (?)', ['from a']);
      expect(await b.query('SELECT v FROM shared_rows')).toEqual([{ v: 'from a' }]);
    });

    it('show a transaction that may share its commit to the other store as soon as it resolves', async () => {
      const [a, b] = stores as [MetadataStore, MetadataStore];
      await a.run('CREATE TABLE shared_grouped (v INTEGER NOT NULL)');
      // Each writer checks the other store the moment its transaction resolves: committed means visible everywhere.
      const missing = await Promise.all(
        Array.from({ length: 30 }, async (_, i) => {
          await a.transaction((tx) => tx.run('INSERT INTO shared_grouped (v) VALUES (?)', [i]), { groupCommit: true });
          return (await b.query('SELECT v FROM shared_grouped WHERE v = ?', [i])).length === 1 ? [] : [i];
        }),
      );
      expect(missing.flat()).toEqual([]);
    });

    it('keep working when both write at once, with and without shared commits', { timeout: 30_000 }, async () => {
      const [a, b] = stores as [MetadataStore, MetadataStore];
      await a.run('CREATE TABLE shared_contended (writer TEXT NOT NULL, v INTEGER NOT NULL)');
      const write = (s: MetadataStore, writer: string, i: number) =>
        s.transaction((tx) => tx.run('INSERT INTO shared_contended (writer, v) VALUES (?, ?)', [writer, i]), i % 3 === 0 ? undefined : { groupCommit: true });
      await Promise.all(Array.from({ length: 200 }, (_, i) => [write(a, 'a', i), write(b, 'b', i)]).flat());
      expect(await b.query('SELECT writer, COUNT(*) AS n FROM shared_contended GROUP BY writer ORDER BY writer')).toEqual([
        { writer: 'a', n: 200 },
        { writer: 'b', n: 200 },
      ]);
    });

    it('apply each migration exactly once when migrating at the same time', async () => {
      const [a, b] = stores as [MetadataStore, MetadataStore];
      for (const plugin of ['race-1', 'race-2', 'race-3']) {
        const table = `race_${plugin.slice(-1)}`;
        // A second CREATE TABLE without IF NOT EXISTS, or a second INSERT, would show a double application.
        const list: Migration[] = [
          { version: 1, name: 'create', up: `CREATE TABLE ${table} (v INTEGER NOT NULL)` },
          { version: 2, name: 'insert 2', up: `INSERT INTO ${table} (v) VALUES (2)` },
          { version: 3, name: 'insert 3', up: `INSERT INTO ${table} (v) VALUES (3)` },
          { version: 4, name: 'insert 4', up: `INSERT INTO ${table} (v) VALUES (4)` },
        ];
        const [byA, byB] = await Promise.all([a.migrate(plugin, list), b.migrate(plugin, list)]);
        expect([...byA!, ...byB!].sort()).toEqual([1, 2, 3, 4]);
        expect(await b.appliedMigrations(plugin)).toEqual([1, 2, 3, 4]);
        expect(await a.query(`SELECT v FROM ${table} ORDER BY v`)).toEqual([{ v: 2 }, { v: 3 }, { v: 4 }]);
      }
    });
  });

  it('commits a transaction that shares commits when closed right after it started', async () => {
    const db = await backend.fresh();
    try {
      const own = await createMetadataStore(db.url);
      await own.run('CREATE TABLE close_grouped (v INTEGER)');
      const pending = own.transaction((tx) => tx.run('INSERT INTO close_grouped (v) VALUES (1)'), { groupCommit: true });
      await own.close();
      await expect(pending).resolves.toEqual({ changes: 1 });
      const reopened = await createMetadataStore(db.url);
      expect(await reopened.query('SELECT v FROM close_grouped')).toEqual([{ v: 1 }]);
      await reopened.close();
    } finally {
      await db.drop?.();
    }
  });

  it('rejects calls after close with DB_UNAVAILABLE', async () => {
    const own = await backend.create();
    await own.run('CREATE TABLE after_close (v INTEGER)');
    const pending = own.run('INSERT INTO after_close (v) VALUES (1)');
    await own.close();
    await expect(pending).resolves.toEqual({ changes: 1 });
    expect(await codeOf(own.query('SELECT 1 AS one'))).toBe(Errors.DB_UNAVAILABLE.code);
    expect(await codeOf(own.transaction(async () => 1))).toBe(Errors.DB_UNAVAILABLE.code);
  });
});

describe('createMetadataStore', () => {
  it.each(['', 'mysql://root:hunter2@db:3306/wldb', 'sqlite:', 'sqlite://', 'file:///tmp/x.db', 'memory'])(
    'rejects %j with CONFIG_INVALID naming WANLLMDB_DB and the accepted forms',
    async (url) => {
      const err = await createMetadataStore(url).catch((e: unknown) => e);
      expect(Errors.CONFIG_INVALID.is(err)).toBe(true);
      expect((err as Error).message).toContain('WANLLMDB_DB');
      expect((err as Error).message).toContain('sqlite:///');
      expect((err as Error).message).toContain('postgres://');
      expect((err as Error).message).not.toContain('hunter2');
    },
  );

  it('rejects a schema that is not a plain identifier', async () => {
    expect(await codeOf(createMetadataStore('postgres://postgres@127.0.0.1:5432/test?schema=Bad-Name'))).toBe(Errors.CONFIG_INVALID.code);
  });

  it('fails fast with DB_UNAVAILABLE naming host:port, without the password, when PostgreSQL is unreachable', async () => {
    const err = await createMetadataStore('postgresql://postgres:hunter2@127.0.0.1:1/test').catch((e: unknown) => e);
    expect(Errors.DB_UNAVAILABLE.is(err)).toBe(true);
    expect((err as Error).message).toContain('127.0.0.1:1');
    expect((err as Error).message).toMatch(/running/);
    expect((err as Error).message).not.toContain('hunter2');
  });

  it('opens sqlite::memory:, an absolute and a relative sqlite path (creating the directory)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'wldb-url-'));
    try {
      const memory = await createMetadataStore('sqlite::memory:');
      expect(await memory.query('SELECT 1 AS one')).toEqual([{ one: 1 }]);
      await memory.close();

      const absolute = join(dir, 'nested', 'abs.db');
      const abs = await createMetadataStore(`sqlite://${absolute}`);
      await abs.run('CREATE TABLE t (v INTEGER)');
      await abs.close();
      expect(existsSync(absolute)).toBe(true);

      const rel = await createMetadataStore(`sqlite://${relative(process.cwd(), join(dir, 'rel', 'r.db'))}`);
      await rel.run('CREATE TABLE t (v INTEGER)');
      await rel.close();
      expect(existsSync(join(dir, 'rel', 'r.db'))).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('opens postgres:// with a schema, creating it', async () => {
    const url = new URL(TEST_PG_URL);
    const schema = `wldb_url_${process.pid}`;
    url.searchParams.set('schema', schema);
    const store = await createMetadataStore(url.toString());
    try {
      expect(store.dialect).toBe('postgres');
      expect(await store.query('SELECT current_schema() AS s')).toEqual([{ s: schema }]);
    } finally {
      await store.run(`DROP SCHEMA ${schema} CASCADE`);
      await store.close();
    }
  });
});

describe('PostgreSQL placeholder rewriting', () => {
  it.each([
    ['SELECT ? , ?', 'SELECT $1 , $2'],
    ["SELECT '?', ?", "SELECT '?', $1"],
    ["SELECT 'it''s ?', ?", "SELECT 'it''s ?', $1"],
    ["SELECT E'\\'?', ?", "SELECT E'\\'?', $1"],
    ['SELECT "odd?name", ?', 'SELECT "odd?name", $1'],
    ['SELECT $$ ? $$, $tag$ ? $tag$, ?', 'SELECT $$ ? $$, $tag$ ? $tag$, $1'],
    ['SELECT ? -- why?\n, ?', 'SELECT $1 -- why?\n, $2'],
    ['SELECT /* ? */ ?', 'SELECT /* ? */ $1'],
    ['SELECT x FROM t', 'SELECT x FROM t'],
  ])('rewrites example %#', (sql, expected) => {
    expect(toPostgresPlaceholders(sql)).toBe(expected);
  });
});

describe('SQLite durability', () => {
  const fixture = fileURLToPath(new URL('./fixtures/crash-writer.ts', import.meta.url));

  it.each(['one at a time', 'sharing commits'])('keeps every committed transaction, whole, when the writing process is killed (%s)', { timeout: 20_000 }, async (mode) => {
    const dir = await mkdtemp(join(tmpdir(), 'wldb-crash-'));
    const file = join(dir, 'crash.db');
    try {
      const child = spawn(process.execPath, ['--import', 'tsx', fixture, file, mode === 'sharing commits' ? 'grouped' : 'single'], { stdio: ['ignore', 'pipe', 'inherit'] });
      let lastCommitted = 0;
      let buffered = '';
      // 'close' comes after stdout is drained, so every line the child wrote has been read by then.
      const closed = new Promise<NodeJS.Signals | null>((resolve) => child.on('close', (_code, sig) => resolve(sig)));
      await new Promise<void>((resolve, reject) => {
        child.on('error', reject);
        child.on('exit', (code) => reject(new Error(`crash-writer exited early with code ${code}`)));
        child.stdout.on('data', (chunk: Buffer) => {
          buffered += chunk.toString();
          for (const line of buffered.split('\n').slice(0, -1)) {
            const m = /^committed (\d+)$/.exec(line);
            if (m) lastCommitted = Math.max(lastCommitted, Number(m[1]));
          }
          buffered = buffered.slice(buffered.lastIndexOf('\n') + 1);
          if (lastCommitted >= 200) {
            child.kill('SIGKILL');
            resolve();
          }
        });
      });
      expect(await closed).toBe('SIGKILL');

      const reopened = await SqliteMetadataStore.open(file);
      try {
        const batches = await reopened.query<{ batch: number; n: number }>('SELECT batch, COUNT(*) AS n FROM crash_rows GROUP BY batch ORDER BY batch');
        expect(batches.length).toBeGreaterThanOrEqual(lastCommitted);
        expect(batches.map((b) => b.batch)).toEqual(Array.from({ length: batches.length }, (_, i) => i + 1));
        expect(batches.every((b) => b.n === 10)).toBe(true);
      } finally {
        await reopened.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('SQLite group commit', () => {
  it('fails every member whose work was lost when SQLite rolls the whole group back, and goes on with a new group', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'wldb-group-'));
    const store = await SqliteMetadataStore.open(join(dir, 'group.db'));
    try {
      await store.run('CREATE TABLE lost_rows (v TEXT)');
      const grouped = { groupCommit: true } as const;
      // The second member ends the SQLite transaction itself, as SQLite does on a full disk or an I/O error.
      const outcomes = await Promise.allSettled([
        store.transaction((tx) => tx.run('INSERT INTO lost_rows (v) VALUES (?)', ['first']), grouped),
        store.transaction((tx) => tx.run('ROLLBACK'), grouped),
        store.transaction((tx) => tx.run('INSERT INTO lost_rows (v) VALUES (?)', ['third']), grouped),
      ]);
      expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected', 'fulfilled']);
      expect(Errors.DB_UNAVAILABLE.is((outcomes[0] as PromiseRejectedResult).reason)).toBe(true);
      expect(await store.query('SELECT v FROM lost_rows')).toEqual([{ v: 'third' }]);
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('SQLite read connection', () => {
  let dir: string;
  let store: SqliteMetadataStore;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wldb-readers-'));
    store = await SqliteMetadataStore.open(join(dir, 'readers.db'), {});
    await store.run('CREATE TABLE counters (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)');
    await store.run('INSERT INTO counters (id, n) VALUES (1, 0)');
  });
  afterAll(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('sees every write committed before the read started, again and again', async () => {
    for (let i = 1; i <= 50; i++) {
      await store.run('UPDATE counters SET n = ? WHERE id = 1', [i]);
      // Several reads at once land on different readers; none may answer from an older snapshot.
      const seen = await Promise.all([1, 2, 3, 4].map(() => store.query<{ n: number }>('SELECT n FROM counters WHERE id = 1')));
      expect(seen.map((rows) => rows[0]!.n)).toEqual([i, i, i, i]);
    }
  });

  it('answers a SELECT while a write transaction is held open, from the last committed state', async () => {
    const held = signal();
    const inside = signal();
    const tx = store.transaction(async (t) => {
      await t.run('UPDATE counters SET n = -1 WHERE id = 1');
      inside.fire();
      await held.promise;
    });
    await inside.promise;
    // On the single connection this read would queue behind the open transaction until it ends.
    const rows = await store.query<{ n: number }>('SELECT n FROM counters WHERE id = 1');
    expect(rows[0]!.n).toBe(50);
    held.fire();
    await tx;
    expect((await store.query<{ n: number }>('SELECT n FROM counters WHERE id = 1'))[0]!.n).toBe(-1);
  });

  it('reads inside a transaction see its own uncommitted writes (they stay on the writer)', async () => {
    await store.transaction(async () => {
      await store.run('UPDATE counters SET n = 7 WHERE id = 1');
      expect((await store.query<{ n: number }>('SELECT n FROM counters WHERE id = 1'))[0]!.n).toBe(7);
    });
  });

  it('keeps prepared statements working across a schema change', async () => {
    const sql = 'SELECT * FROM counters WHERE id = 1';
    expect(Object.keys((await store.query(sql))[0]!)).toEqual(['id', 'n']);
    await store.run('ALTER TABLE counters ADD COLUMN label TEXT');
    expect(Object.keys((await store.query(sql))[0]!)).toEqual(['id', 'n', 'label']);
  });

  it('close waits for reads in flight, then refuses new ones', async () => {
    const other = await SqliteMetadataStore.open(join(dir, 'closing.db'), {});
    await other.run('CREATE TABLE t (x INTEGER)');
    await other.insertMany('t', ['x'], Array.from({ length: 2000 }, (_, i) => [i]));
    const reads = Array.from({ length: 20 }, () => other.query<{ n: number }>('SELECT COUNT(*) AS n FROM t'));
    await other.close();
    for (const r of await Promise.all(reads)) expect(r[0]!.n).toBe(2000);
    expect(await codeOf(other.query('SELECT 1'))).toBe('WLDB_ERR_DB_UNAVAILABLE');
  });
});
