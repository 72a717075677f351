import { describe, expect, it } from 'vitest';
import { Errors } from '../errors.js';
import { pageMeta, Problems } from './problems.js';

const thrown = (p: Problems) => {
  try {
    p.throwIfAny();
  } catch (e) {
    return e as Error & { code: string; details: { field: string; message: string }[] };
  }
  throw new Error('throwIfAny() did not throw');
};

describe('Problems (edge validation, one style for every plugin)', () => {
  it('reports every problem in the details and the first three in one message, as WLDB_ERR_VALIDATION', () => {
    const p = new Problems('The thing');
    expect(p.line('name', '  Ada  ', 255, { required: true })).toBe('Ada');
    p.line('title', '', 255, { required: true });
    p.line('label', 'a\nb');
    p.text('notes', 'x'.repeat(11), 10);
    p.oneOf('colour', 'mauve', ['red', 'blue'] as const, 'red');
    const e = thrown(p);
    expect(Errors.VALIDATION.is(e)).toBe(true);
    expect(e.message).toBe('The thing is invalid: title is required; label contains control characters or line breaks; notes is longer than 10 characters (and 1 more). Fix these fields and retry.');
    expect(e.details.map((d) => d.field)).toEqual(['title', 'label', 'notes', 'colour']);
    expect(e.details[3]!.message).toBe('must be one of "red", "blue"');
    expect(() => new Problems('Nothing').throwIfAny()).not.toThrow();
  });

  it('checks numbers, pages, ids, instants and document sizes, falling back where a value is absent', () => {
    const p = new Problems('The request');
    expect(p.pageSize('limit', undefined, 50, 100)).toBe(50);
    expect(p.pageSize('limit', 0, 50, 100)).toBe(50);
    expect(p.integer('depth', undefined, 3, 1, 10)).toBe(3);
    expect(p.page(0, 0)).toEqual({ page: 1, pageSize: 20, offset: 0 });
    expect(p.page(3, 10)).toEqual({ page: 3, pageSize: 10, offset: 20 });
    expect(p.id('owner', 'A0B1C2D3-0000-4000-8000-000000000000')).toBe('a0b1c2d3-0000-4000-8000-000000000000');
    expect(p.instant('at', '2025-01-31T12:00:00Z')).toBe(Date.UTC(2025, 0, 31, 12));
    expect(p.list).toEqual([{ field: 'limit', message: 'must be an integer from 1 to 100 (leave it out for 50)' }]);
    p.page(1, 500);
    p.id('team', 'not-a-uuid');
    p.instant('until', 'yesterday');
    p.jsonSize('settings', { big: 'x'.repeat(100) }, 64);
    expect(p.list.slice(1).map((x) => `${x.field} ${x.message}`)).toEqual([
      'pageSize must be from 1 to 100',
      'team is not a valid id (a UUID)',
      'until is not an RFC 3339 instant such as 2025-01-31T12:00:00Z',
      'settings is larger than 64 bytes',
    ]);
  });

  it('gives list answers their paging meta', () => {
    expect(pageMeta(41, 2, 20)).toEqual({ total: 41, page: 2, pageSize: 20, totalPages: 3 });
  });
});
