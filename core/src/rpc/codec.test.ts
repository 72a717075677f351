import { loadContractRoot } from '@wanllmdb/proto';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { checkJson, checkRequestObject, decodeMessage, encodeMessage, MAX_JSON_DEPTH, normalize, toJsonForm, withDefaults } from './codec.js';

const root = loadContractRoot();
const create = root.lookupType('wanllmdb.projects.v1.CreateProjectRequest');
const update = root.lookupType('wanllmdb.projects.v1.UpdateProjectRequest');
const withStruct = new protobuf.Root().loadSync('google/protobuf/struct.proto');
const scratch = protobuf.parse(`
  syntax = "proto3";
  package t;
  import "google/protobuf/struct.proto";
  message M { google.protobuf.Value v = 1; map<string, google.protobuf.ListValue> lists = 2; double d = 3; int32 i = 4; repeated string tags = 5; }
`, withStruct, { keepCase: false }).root;
scratch.resolveAll();
const M = scratch.lookupType('t.M');

describe('codec', () => {
  it('carries Struct, Value and ListValue as plain JSON through the wire format', () => {
    const settings = { a: 1, b: { c: [1, 'two', null, { d: true }] }, e: 'z', empty: {}, list: [] };
    expect(decodeMessage(create, encodeMessage(create, { name: 'x', settings })).settings).toEqual(settings);
    const m = { v: [1, { x: 'y' }], lists: { loss: [{ step: 1, value: 0.5 }] } };
    expect(decodeMessage(M, encodeMessage(M, m))).toMatchObject(m);
  });

  it('gives an in-process request the defaults decoding would, leaving present values exactly as given', () => {
    // The same shape a decoded request has…
    expect(withDefaults(create, { name: 'n' })).toEqual(decodeMessage(create, encodeMessage(create, { name: 'n' })));
    expect(withDefaults(update, { id: 'a' })).toEqual({ id: 'a' });
    expect(withDefaults(M, {})).toEqual({ d: 0, i: 0, tags: [], lists: {} });
    // …but a wrongly typed value is not coerced or thrown on here: the handler's own checks name it.
    expect(withDefaults(M, { i: 'x', lists: { k: 'nope' } })).toEqual({ i: 'x', lists: { k: 'nope' }, d: 0, tags: [] });
    const complete = { name: 'n', slug: 's', description: '', visibility: 'private', organizationId: 'o' };
    expect(withDefaults(create, complete)).toBe(complete);
  });

  it('fills scalar defaults but leaves absent sub-messages and proto3 optionals absent', () => {
    expect(decodeMessage(update, encodeMessage(update, { id: 'a' }))).toEqual({ id: 'a' });
    expect(decodeMessage(update, encodeMessage(update, { id: 'a', name: '' }))).toEqual({ id: 'a', name: '' });
    expect(normalize(create, { name: 'n' })).toEqual({ name: 'n', slug: '', description: '', visibility: '', organizationId: '' });
  });

  it('reports every unknown field and wrong type, accepting snake_case names', () => {
    const { problems, value } = checkJson(M, { d: 'x', i: 2 ** 40, tags: 'a', bogus: 1, v: { any: ['json'] } });
    expect(problems.map((p) => p.field).sort()).toEqual(['bogus', 'd', 'i', 'tags']);
    expect(value.v).toEqual({ any: ['json'] });
    expect(checkJson(create, { name: 'x', settings: 3 }).problems[0]!.field).toBe('settings');
    expect(checkJson(update, { id: 'x', visibility: 'public' }).problems).toEqual([]);
  });

  it('keeps NaN and ±Infinity in JSON as strings', () => {
    const checked = checkJson(M, { d: 'NaN' });
    expect(checked.problems).toEqual([]);
    expect(Number.isNaN(checked.value.d)).toBe(true);
    expect(toJsonForm(M, { d: Number.NEGATIVE_INFINITY }).d).toBe('-Infinity');
    expect(JSON.parse(JSON.stringify(toJsonForm(M, { d: Number.NaN }))).d).toBe('NaN');
  });
});

/** `{"a": {"a": … 1}}`, `n` levels, built in a loop. */
function nested(n: number): Record<string, unknown> {
  let v: unknown = 1;
  for (let i = 0; i < n; i++) v = { a: v };
  return v as Record<string, unknown>;
}

/** Struct bytes nested `n` levels, written bottom-up by hand (no encoder recursion). */
function nestedStructBytes(n: number, key = 'a'): Uint8Array {
  const w = () => protobuf.Writer.create();
  let value = w().uint32((2 << 3) | 1).double(1).finish();
  let struct = new Uint8Array();
  for (let i = 0; i < n; i++) {
    const entry = Buffer.concat([w().uint32((1 << 3) | 2).string(i === n - 1 ? key : 'a').finish(), w().uint32((2 << 3) | 2).bytes(value).finish()]);
    struct = w().uint32((1 << 3) | 2).bytes(entry).finish();
    value = w().uint32((5 << 3) | 2).bytes(struct).finish();
  }
  return struct;
}
const withSettings = (settings: Uint8Array) => Buffer.concat([protobuf.Writer.create().uint32((1 << 3) | 2).string('p').uint32((5 << 3) | 2).bytes(settings).finish()]);

describe('free-form JSON the converters never see', () => {
  it('checkJson names a value nested deeper than MAX_JSON_DEPTH, however deep, without recursing', () => {
    expect(MAX_JSON_DEPTH).toBe(32);
    expect(checkJson(create, { name: 'x', settings: nested(32) }).problems).toEqual([]);
    for (const n of [33, 1_000, 200_000]) {
      expect(checkJson(create, { name: 'x', settings: nested(n) }).problems).toEqual([{ field: 'settings', message: expect.stringContaining('nested deeper than 32 levels') }]);
    }
    expect(checkJson(M, { lists: { loss: [nested(32)] } }).problems).toEqual([{ field: 'lists.loss', message: expect.stringContaining('nested deeper') }]);
  });

  it('checkJson refuses a "__proto__" key anywhere by name', () => {
    const parsed = (text: string) => JSON.parse(text) as Record<string, unknown>;
    expect(checkJson(create, parsed('{"name":"x","__proto__":{}}')).problems).toEqual([{ field: '(body)', message: expect.stringContaining('"__proto__"') }]);
    expect(checkJson(create, parsed('{"name":"x","settings":{"a":[{"__proto__":1}]}}')).problems[0]!.field).toBe('settings');
    expect(checkJson(M, parsed('{"lists":{"__proto__":[]}}')).problems[0]!.field).toBe('lists');
  });

  it('decodeMessage scans the bytes first: too deep, a "__proto__" key, groups and garbage are a coded 400', () => {
    expect(decodeMessage(create, withSettings(nestedStructBytes(32))).settings).toEqual(nested(32));
    const refusal = (bytes: Uint8Array) => {
      try {
        decodeMessage(create, bytes);
      } catch (e) {
        return e as { code: string; details: { field: string; message: string }[] };
      }
      throw new Error('decoded');
    };
    for (const n of [33, 5_000]) expect(refusal(withSettings(nestedStructBytes(n))).details).toEqual([{ field: 'settings', message: expect.stringContaining('nested deeper') }]);
    expect(refusal(withSettings(nestedStructBytes(3, '__proto__'))).details).toEqual([{ field: 'settings', message: expect.stringContaining('"__proto__"') }]);
    const groups = Buffer.concat([Buffer.alloc(10_000, (15 << 3) | 3), Buffer.alloc(10_000, (15 << 3) | 4)]);
    expect(refusal(Buffer.concat([withSettings(new Uint8Array()), groups])).code).toBe('WLDB_ERR_VALIDATION');
    expect(refusal(Buffer.from([(9 << 3) | 7])).code).toBe('WLDB_ERR_VALIDATION');
    expect(() => decodeMessage(update, Buffer.concat([Buffer.from([0x0a, 0x01, 0x61]), groups]))).toThrow(expect.objectContaining({ code: 'WLDB_ERR_VALIDATION' }));
  });

  it('checkRequestObject walks an in-process request: deep, cyclic and "__proto__" values are refused', () => {
    expect(() => checkRequestObject(create, { name: 'x', settings: nested(32) })).not.toThrow();
    expect(() => checkRequestObject(create, { name: 'x', settings: nested(100_000) })).toThrow(expect.objectContaining({ code: 'WLDB_ERR_VALIDATION', details: [expect.objectContaining({ field: 'settings' })] }));
    const cyclic: Record<string, unknown> = {};
    cyclic.again = [cyclic];
    expect(() => checkRequestObject(create, { name: 'x', settings: cyclic })).toThrow(expect.objectContaining({ code: 'WLDB_ERR_VALIDATION' }));
    expect(() => checkRequestObject(create, { name: 'x', settings: JSON.parse('{"__proto__":1}') })).toThrow(expect.objectContaining({ details: [expect.objectContaining({ field: 'settings' })] }));
    expect(() => checkRequestObject(M, { lists: { loss: [nested(40)] } })).toThrow(expect.objectContaining({ details: [expect.objectContaining({ field: 'lists.loss' })] }));
  });

  it('the Struct wrappers carry protobufjs\'s nesting count: past its limit they throw, not overflow the stack', () => {
    // What the edge checks keep from ever happening; if one were bypassed, this is the second line.
    expect(() => normalize(create, { name: 'x', settings: nested(100_000) })).toThrow(/maximum nesting depth exceeded/);
    expect(normalize(create, { name: 'x', settings: nested(32) }).settings).toEqual(nested(32));
  });
});
