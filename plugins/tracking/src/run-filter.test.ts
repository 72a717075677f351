import { describe, expect, it } from 'vitest';
import { diffConfigs, mergeConfig } from './run-config.js';
import { compileRunFilter, parseRunFilter, type FilterExpr } from './run-filter.js';
import { decodeCursor, encodeCursor, parseRunSort, sortComponents } from './run-sort.js';

/** The tree as a compact string: comparisons as `field op value`. */
function show(e: FilterExpr | undefined): string {
  if (!e) return '';
  switch (e.kind) {
    case 'and':
    case 'or':
      return `(${show(e.left)} ${e.kind.toUpperCase()} ${show(e.right)})`;
    case 'not':
      return `NOT ${show(e.expr)}`;
    case 'compare':
      return `${e.field.name} ${e.op} ${JSON.stringify(e.value.value)}`;
    case 'contains':
      return `${e.field.name} CONTAINS ${JSON.stringify(e.value)}`;
  }
}

describe('the run filter parser', () => {
  it('gives AND precedence over OR, and NOT over both', () => {
    expect(show(parseRunFilter('state = "finished" OR config.lr > 0.1 AND NOT summary.acc < -1.5e-3'))).toBe(
      '(state = "finished" OR (config.lr > 0.1 AND NOT summary.acc < -0.0015))',
    );
    expect(show(parseRunFilter('(state = "finished" or config.lr>=1) and tags contains "x"'))).toBe('((state = "finished" OR config.lr >= 1) AND tags CONTAINS "x")');
    expect(show(parseRunFilter(`name = 'it\\'s' AND summary.train/loss != 2 AND config.flag = TRUE`))).toBe(
      '((name = "it\'s" AND summary.train/loss != 2) AND config.flag = true)',
    );
    expect(parseRunFilter('   ')).toBeUndefined();
  });

  it('compiles to SQL whose text never holds a caller value: all are parameters', () => {
    const hostile = `x'); DROP TABLE runs; --`;
    const expr = parseRunFilter(`name = "${hostile}" OR config.a-b CONTAINS "${hostile}" OR summary.z < 1e308 OR tags CONTAINS "${hostile}"`)!;
    for (const dialect of ['sqlite', 'postgres'] as const) {
      const sql = compileRunFilter(expr, dialect);
      expect(sql.text).not.toContain('DROP');
      expect(sql.text).not.toContain('a-b');
      expect(sql.params).toContain(hostile);
      expect(sql.params).toContain(1e308);
      expect(sql.text.split('?').length - 1).toBe(sql.params.length);
    }
  });

  it('round-trips cursors, including infinite sort values, and refuses edited ones', () => {
    const sort = parseRunSort('-summary.loss');
    const comps = sortComponents(sort, 'sqlite');
    const id = '0b7e5c1a-3f0e-4c8e-9a57-3d1c2b4e5f60';
    const cursor = encodeCursor(sort, 'state = "x"', { values: [-Infinity, null], id });
    expect(decodeCursor(cursor, sort, 'state = "x"', comps)).toEqual({ values: [-Infinity, null], id });
    expect(() => decodeCursor(cursor, sort, 'state = "y"', comps)).toThrowError(/different filter or sort/);
    expect(() => decodeCursor(cursor.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')), sort, 'state = "x"', comps)).toThrowError(/altered/);
  });
});

describe('config merge and diff', () => {
  it('merges like JSON Merge Patch', () => {
    expect(mergeConfig({ a: 1, b: { c: 2, d: 3 }, e: [1] }, { b: { c: null, x: 1 }, e: [2], f: { g: 1 } })).toEqual({ a: 1, b: { d: 3, x: 1 }, e: [2], f: { g: 1 } });
  });

  it('lists differences by dotted path in code-point order', () => {
    expect(diffConfigs({ Z: 1, a: { b: [1, 2] }, 'é': 1 }, { Z: 1, a: { b: [1, 3] }, B: true }).map((d) => `${d.kind} ${d.path}`)).toEqual(['added B', 'changed a.b', 'removed é']);
  });
});
