import { describe, expect, it } from 'vitest';
import { anyOf, assignments, inList, joinSql, raw, selectPage, sql, whereAll } from './sql.js';
import { fromJsonDoc, JSON_DOC_TYPE, toJsonDoc } from './json-docs.js';

describe('the sql tag (the one way plugins build SQL)', () => {
  it('turns every interpolated value into a placeholder, bytes included, and nests fragments in order', () => {
    const bytes = new Uint8Array([1, 2]);
    const inner = sql`name = ${"x'); DROP TABLE t; --"}`;
    const q = sql`SELECT ${raw('id')} FROM t WHERE ${inner} AND data = ${bytes} LIMIT ${10}`;
    expect(q.text).toBe('SELECT id FROM t WHERE name = ? AND data = ? LIMIT ?');
    expect(q.params).toEqual(["x'); DROP TABLE t; --", bytes, 10]);
  });

  it('builds IN lists, WHERE and OR groups, and SET lists of the given columns', () => {
    expect(sql`id IN ${inList(['a', 'b'])}`).toEqual({ text: 'id IN (?, ?)', params: ['a', 'b'] });
    expect(whereAll([])).toEqual({ text: '', params: [] });
    expect(whereAll([sql`a = ${1}`, sql`b = ${2}`])).toEqual({ text: 'WHERE a = ? AND b = ?', params: [1, 2] });
    expect(anyOf([])).toEqual({ text: '1 = 0', params: [] });
    expect(anyOf([sql`a = ${1}`, raw("v = 'public'")])).toEqual({ text: "(a = ? OR v = 'public')", params: [1] });
    expect(assignments({ name: 'n', description: undefined, updated_at: 5, flag: null })).toEqual({ text: 'name = ?, updated_at = ?, flag = ?', params: ['n', 5, null] });
    expect(joinSql([sql`${1}`, sql`${2}`], ', ')).toEqual({ text: '?, ?', params: [1, 2] });
  });
});

describe('the JSON-column rule', () => {
  it('stores documents that queries look into as binary JSON, read back as the same column name', () => {
    expect(JSON_DOC_TYPE).toEqual({ sqlite: 'BLOB', postgres: 'JSONB' });
    expect(toJsonDoc('sqlite')).toBe('jsonb(?)');
    expect(toJsonDoc('postgres', 'v.column2')).toBe('CAST(v.column2 AS JSONB)');
    expect(fromJsonDoc('sqlite', 'r.config')).toBe('json(r.config) AS config');
    expect(fromJsonDoc('postgres', 'r.config')).toBe('r.config AS config');
    expect(fromJsonDoc('postgres', 'config')).toBe('config');
  });
});

describe('selectPage', () => {
  it('reads one page in order and the total it is a page of', async () => {
    const { SqliteMetadataStore } = await import('./sqlite-metadata-store.js');
    const db = await SqliteMetadataStore.open(':memory:');
    try {
      await db.run('CREATE TABLE t (id TEXT PRIMARY KEY, n INTEGER NOT NULL)');
      for (let i = 0; i < 5; i++) await db.run('INSERT INTO t (id, n) VALUES (?, ?)', [`id${i}`, i]);
      const page = await selectPage<{ id: string }>(db, { columns: 'id', from: sql`FROM t ${whereAll([sql`n >= ${1}`])}`, orderBy: 'n DESC', limit: 2, offset: 2 });
      expect(page).toEqual({ rows: [{ id: 'id2' }, { id: 'id1' }], total: 4 });
    } finally {
      await db.close();
    }
  });
});
