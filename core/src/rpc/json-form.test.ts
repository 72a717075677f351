import protobuf from 'protobufjs';
import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import { toJsonForm, toJsonFormByRoundTrip } from './codec.js';
import { Contract } from './contract.js';
import { jsonForm, Unhandled } from './json-form.js';

/** mulberry32: a seeded PRNG, so every run draws the same objects and a failure names its seed. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  return { next, int, pick: <T>(xs: readonly T[]): T => xs[int(xs.length)]!, chance: (p: number) => next() < p };
}
type Rnd = ReturnType<typeof prng>;

const KEYS = ['lr', 'epochs', 'optimizer/name', 'a', 'b_c', '1', '10', '2', 'é', '', 'constructor', 'toString', 'x y'];
const STRINGS = ['', 'run', 'ünïcødé', '0', '12', '-3', '1.5', 'NaN', 'Infinity', '-Infinity', 'true', 'AAEC', 'abc', 'null'];
const NUMBERS = [0, -0, 1, -1, 0.001, 3.5, -2.75, 1e21, -1e-7, 2 ** 31, -(2 ** 31) - 1, 2 ** 32 + 3, 2 ** 53 - 1, 2 ** 53 + 2, -(2 ** 60), Number.MAX_VALUE, Number.MIN_VALUE, NaN, Infinity, -Infinity];

/** Free-form JSON as a handler might hold it: nested objects and arrays, nulls, undefined, NaN, ±Infinity, -0. */
function json(r: Rnd, depth: number): unknown {
  const k = r.int(depth > 4 ? 6 : 9);
  if (k === 0) return r.pick(NUMBERS);
  if (k === 1) return r.next() * 1000 - 500;
  if (k === 2) return r.pick(STRINGS);
  if (k === 3) return r.chance(0.5);
  if (k === 4) return null;
  if (k === 5) return r.chance(0.3) ? undefined : r.int(100);
  if (k === 6 || k === 7) return jsonObject(r, depth + 1);
  return Array.from({ length: r.int(4) }, () => json(r, depth + 1));
}
function jsonObject(r: Rnd, depth: number): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (let i = r.int(depth > 4 ? 3 : 6); i > 0; i--) o[r.pick(KEYS)] = json(r, depth);
  return o;
}

const JSON_TYPES = ['.google.protobuf.Struct', '.google.protobuf.Value', '.google.protobuf.ListValue'];

/**
 * One value for a field element: mostly right, often wrong but coercible
 * (numeric strings, enum numbers, floats for ints), and in hostile draws
 * sometimes outright wrong (a string for a message), which both paths must refuse.
 */
function element(r: Rnd, f: protobuf.Field, depth: number, hostile: boolean): unknown {
  const rt = f.resolvedType;
  if (hostile && r.chance(0.04)) return r.pick<unknown>(['x', 5, true, Symbol('s'), 10n, () => 1]);
  if (rt instanceof protobuf.Type) {
    if (rt.fullName === '.google.protobuf.Struct') return r.chance(0.05) ? [1, 'a'] : jsonObject(r, 1);
    if (rt.fullName === '.google.protobuf.ListValue') return hostile && r.chance(0.05) ? { not: 'a list' } : Array.from({ length: r.int(4) }, () => json(r, 1));
    if (rt.fullName === '.google.protobuf.Value') return r.chance(0.5) ? jsonObject(r, 1) : Array.from({ length: r.int(4) }, () => json(r, 1));
    if (r.chance(0.03)) return []; // an array is an object to protobufjs: every field defaulted
    return message(r, rt, depth + 1, hostile);
  }
  if (rt instanceof protobuf.Enum) {
    const names = Object.keys(rt.values);
    return r.pick<unknown>([r.pick(names), rt.values[r.pick(names)], 77, -1, 'NOT_A_NAME', null, 1.5, NaN, -0, true]);
  }
  switch (f.type) {
    case 'double':
    case 'float':
      return r.pick<unknown>([r.pick(NUMBERS), r.next() * 10, r.pick(STRINGS), true, false, [], {}]);
    case 'int32':
    case 'sint32':
    case 'sfixed32':
    case 'uint32':
    case 'fixed32':
      return r.pick<unknown>([r.int(1000) - 500, r.pick(NUMBERS), r.pick(STRINGS), true, 1.7, -1.7]);
    case 'int64':
    case 'sint64':
    case 'sfixed64':
    case 'uint64':
    case 'fixed64':
      return r.pick<unknown>([
        r.int(1e6), -r.int(1e6), Date.now(), r.pick(NUMBERS), '123', '-45', '007', '12345678901234567890', '9007199254740993',
        '1.5', 'NaN', 'Infinity', { low: 5, high: 1 }, { low: -1, high: -1, unsigned: false }, ...(hostile ? ['', '1-2'] : []),
      ]);
    case 'bool':
      return r.pick<unknown>([true, false, 0, 1, '', 'false', NaN, {}]);
    case 'string':
      return r.pick<unknown>([r.pick(STRINGS), r.pick(STRINGS), 42, -0, NaN, false, {}, [1, 2]]);
    case 'bytes':
      return r.pick<unknown>(['', 'AAEC', 'aGVsbG8=', 'abc', 'aGk', new Uint8Array([0, 255, 7]), [104, 105], ...(hostile ? ['!!not base64'] : [])]);
  }
  throw new Error(`no generator for ${f.type}`);
}

function field(r: Rnd, f: protobuf.Field, depth: number, hostile: boolean): unknown {
  if (f.map) {
    if (hostile && r.chance(0.05)) return r.pick<unknown>(['x', 3, [1]]);
    if (r.chance(0.1)) return r.pick([0, '', false]); // falsy: an empty map
    const o: Record<string, unknown> = {};
    for (let i = r.int(4); i > 0; i--) o[r.pick(KEYS)] = element(r, f, depth, hostile);
    return o;
  }
  if (f.repeated) {
    if (hostile && r.chance(0.05)) return r.pick<unknown>(['x', 3, { 0: 'a' }]);
    if (r.chance(0.1)) return r.pick([0, '', false]); // falsy: an empty list
    return Array.from({ length: r.int(4) }, () => element(r, f, depth, hostile));
  }
  return element(r, f, depth, hostile);
}

function message(r: Rnd, type: protobuf.Type, depth: number, hostile: boolean): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  if (depth > 3) return o;
  for (const f of type.fieldsArray) {
    f.resolve();
    const k = r.int(20);
    if (k < 5) continue; // absent
    if (k === 5) o[f.name] = null;
    else if (k === 6) o[f.name] = undefined;
    else o[f.name] = field(r, f, depth, hostile);
  }
  // Unknown keys: the snake_case spelling of a field, and names no type has.
  const unknown = ['bogus', 'extra_field', 'data2', ...type.fieldsArray.map((f) => f.name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`))].filter((k) => !Object.hasOwn(type.fields, k));
  for (let i = r.int(3); i > 0; i--) o[r.pick(unknown)] = json(r, 1);
  return o;
}

type Outcome = { value: Record<string, unknown> } | { error: Error };
const attempt = (f: () => Record<string, unknown>): Outcome => {
  try {
    return { value: f() };
  } catch (error) {
    return { error: error as Error };
  }
};
const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b) && isDeepStrictEqual(a, b);
const show = (v: unknown) => JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? `${x}n` : typeof x === 'symbol' ? String(x) : Number.isNaN(x) ? 'NaN!' : x));

interface Tally { cases: number; answered: number; refused: number; failures: string[] }

/**
 * Runs the three ways on one object: the round trip (reference), the direct
 * walk alone (which must answer wherever the reference answers, identically,
 * and refuse wherever it refuses) and toJsonForm (identical answers, and the
 * reference's own error).
 */
function compare(type: protobuf.Type, obj: unknown, tally: Tally, label: string): void {
  tally.cases++;
  const slow = attempt(() => toJsonFormByRoundTrip(type, obj));
  const direct = attempt(() => jsonForm(type, obj));
  const fast = attempt(() => toJsonForm(type, obj));
  const fail = (why: string) => tally.failures.length < 10 && tally.failures.push(`${label} ${type.fullName}: ${why}\n  input ${show(obj)}\n  slow  ${'value' in slow ? show(slow.value) : slow.error.message}\n  direct ${'value' in direct ? show(direct.value) : direct.error.message}`);
  if ('error' in slow) {
    tally.refused++;
    if (!('error' in direct)) fail('the round trip throws, the walk answers');
    if (!('error' in fast) || fast.error.message !== slow.error.message || fast.error.constructor !== slow.error.constructor) fail('toJsonForm does not throw the round trip error');
    return;
  }
  tally.answered++;
  if ('error' in direct) fail(`the walk throws ${direct.error instanceof Unhandled ? 'Unhandled' : direct.error.message}`);
  else if (!same(direct.value, slow.value)) fail('different answers');
  if (!('value' in fast) || !same(fast.value, slow.value)) fail('toJsonForm differs');
}

const contract = new Contract();
const responseTypes = [...new Set(contract.serviceNames().flatMap((s) => contract.methods(s).map((m) => m.responseType)))];

describe('toJsonForm without the round trip', () => {
  it('gives exactly the round trip answer for random objects of every response type of the contract', () => {
    expect(responseTypes.length).toBeGreaterThan(40);
    const tally: Tally = { cases: 0, answered: 0, refused: 0, failures: [] };
    responseTypes.forEach((type, t) => {
      for (let i = 0; i < 300; i++) {
        const seed = t * 100_000 + i;
        const r = prng(seed);
        const hostile = i % 5 === 4;
        compare(type, message(r, type, 0, hostile), tally, `seed ${seed}`);
      }
    });
    expect(tally.failures).toEqual([]);
    // The objects exercise the answers, not only the refusals.
    expect(tally.answered).toBeGreaterThan(tally.cases * 0.7);
    expect(tally.refused).toBeGreaterThan(50);
  });

  const withStruct = new protobuf.Root().loadSync('google/protobuf/struct.proto');
  const scratch = protobuf.parse(`
    syntax = "proto3";
    package t;
    import "google/protobuf/struct.proto";
    enum Color { RED = 0; GREEN = 1; BLUE = 5; }
    message Empty {}
    message Node { string name = 1; Node child = 2; repeated Node kids = 3; map<string, Node> by_name = 4; google.protobuf.Struct meta = 5; }
    message All {
      double d = 1; float f = 2; int32 i32 = 3; sint32 s32 = 4; sfixed32 sf32 = 5; uint32 u32 = 6; fixed32 fx32 = 7;
      int64 i64 = 8; sint64 s64 = 9; sfixed64 sf64 = 10; uint64 u64 = 11; fixed64 fx64 = 12;
      bool b = 13; string s = 14; bytes by = 15; Color color = 16;
      optional string os = 17; optional int64 oi64 = 18; optional Color ocolor = 19; optional Node onode = 20; optional bytes oby = 50; optional double od = 51;
      oneof pick { string ps = 21; double pd = 22; Color pc = 23; Node pn = 24; google.protobuf.Struct pst = 25; }
      repeated double rd = 26; repeated int32 ri = 27; repeated uint64 ru64 = 28; repeated Color rcolor = 29; repeated bool rb = 31; repeated string rs = 32; repeated int64 ri64 = 52;
      map<string, Color> mcolor = 33; map<string, int64> mi64 = 34; map<int32, string> mis = 35; map<string, bytes> mby = 36; map<string, Node> mnode = 37;
      map<string, google.protobuf.Value> mval = 38; map<string, google.protobuf.Struct> mst = 39; map<string, google.protobuf.ListValue> mlist = 40; map<string, double> md = 53;
      google.protobuf.Struct st = 41; google.protobuf.Value val = 42; google.protobuf.ListValue list = 43; repeated google.protobuf.Value rval = 44; repeated google.protobuf.Struct rst = 45;
      Empty empty = 46; repeated Empty rempty = 47; Node node = 48; repeated Node rnode = 49;
    }
    // Declared out of field-number order, with every kind of key group, to pin toObject's key order.
    message Shuffled { string c = 3; repeated string b = 2; optional int32 a = 1; map<string, string> m = 5; double z = 4; repeated int32 y = 9; oneof o { string p = 7; string q = 6; } map<string, int32> l = 8; }
    message RepeatedBytes { repeated bytes rby = 1; }
  `, withStruct, { keepCase: false }).root;
  scratch.resolveAll();
  const scratchType = (name: string) => scratch.lookupType(`t.${name}`);

  it('gives exactly the round trip answer for every field kind protobufjs converts', () => {
    const tally: Tally = { cases: 0, answered: 0, refused: 0, failures: [] };
    for (const name of ['All', 'Node', 'Shuffled', 'Empty']) {
      for (let i = 0; i < 1000; i++) {
        const seed = 7_000_000 + i;
        compare(scratchType(name), message(prng(seed), scratchType(name), 0, i % 5 === 4), tally, `seed ${seed}`);
      }
    }
    expect(tally.failures).toEqual([]);
    expect(tally.answered).toBeGreaterThan(tally.cases * 0.3);
    expect(tally.refused).toBeGreaterThan(100);
  });

  it('keeps toObject key order and the special cases the wrappers make', () => {
    const shuffled = scratchType('Shuffled');
    const out = toJsonForm(shuffled, { z: 1, q: 'q', p: 'p', a: 2, c: 'c' });
    expect(Object.keys(out)).toEqual(['b', 'y', 'm', 'l', 'c', 'z', 'a', 'q', 'p']);
    expect(out).toEqual(toJsonFormByRoundTrip(shuffled, { z: 1, q: 'q', p: 'p', a: 2, c: 'c' }));
    const all = scratchType('All');
    const tally: Tally = { cases: 0, answered: 0, refused: 0, failures: [] };
    const cases: unknown[] = [
      undefined, null, {}, 'not an object', 5, [],
      { st: JSON.parse('{"__proto__": {"a": 1}, "b": 2}'), val: { a: [1, undefined, null, NaN, -0, { b: undefined }] } },
      { st: { a: [1, , 3] } }, // eslint-disable-line no-sparse-arrays
      { st: { a: 10n } }, { list: { 0: 'a', length: 1 } }, { val: 3 }, { rval: [1] }, { mval: { a: 'x' } }, { mval: { a: null } },
      { i64: null, ri64: [null] }, { ri64: [undefined] }, { i64: '' }, { i64: '1-2' }, { by: '!!' }, { by: 5, oby: 5 }, { rd: [undefined, null, 'x'] },
      { color: 'BLUE', rcolor: ['BLUE', 1, 9, 'NOPE', null], mcolor: { a: 'NOPE', b: 9, c: 'GREEN' }, ocolor: 'NOPE' },
      { pc: 'NOPE', pd: NaN, ps: 's', pst: { a: 1 } },
      { mis: { 10: 'a', 2: 'b', x: 'c' } },
    ];
    cases.forEach((c, i) => compare(all, c, tally, `case ${i}`));
    expect(tally.failures).toEqual([]);
    expect(toJsonForm(all, { st: JSON.parse('{"__proto__": {"a": 1}, "b": 2}') }).st).toEqual({ b: 2 });
    expect(toJsonForm(all, { val: { a: [undefined, NaN, -Infinity] } }).val).toEqual({ a: [null, 'NaN', '-Infinity'] });
  });

  it('leaves protobuf messages, `__proto__` map keys and unassignable repeated bytes to the round trip', () => {
    const all = scratchType('All');
    const node = scratchType('Node');
    const exotic: [protobuf.Type, unknown][] = [
      [node, node.fromObject({ name: 'm' })],
      [all, { node: node.fromObject({ name: 'n' }) }],
      [all, { st: { a: node.fromObject({ name: 'n' }) } }],
      [all, { mis: JSON.parse('{"__proto__": "p"}'), mcolor: JSON.parse('{"__proto__": "NOPE"}') }],
      [scratchType('RepeatedBytes'), { rby: ['AAEC', 5] }],
      [scratchType('RepeatedBytes'), { rby: [5, 'AAEC'] }],
    ];
    for (const [type, obj] of exotic) {
      expect(() => jsonForm(type, obj)).toThrow(Unhandled);
      const slow = attempt(() => toJsonFormByRoundTrip(type, obj));
      const fast = attempt(() => toJsonForm(type, obj));
      if ('value' in slow) expect('value' in fast && same(fast.value, slow.value)).toBe(true);
      else expect('error' in fast && fast.error.message).toBe(slow.error.message);
    }
  });

  it('refuses at the depth the round trip refuses (util.recursionLimit), for messages and JSON alike', () => {
    const node = scratchType('Node');
    const all = scratchType('All');
    const chain = (n: number) => {
      let v: Record<string, unknown> = { name: 'leaf' };
      for (let i = 0; i < n; i++) v = { child: v };
      return v;
    };
    const deepJson = (n: number) => {
      let v: unknown = 1;
      for (let i = 0; i < n; i++) v = i % 3 === 0 ? [v] : { a: v };
      return v;
    };
    const tally: Tally = { cases: 0, answered: 0, refused: 0, failures: [] };
    for (let n = 90; n <= 110; n++) compare(node, chain(n), tally, `chain ${n}`);
    for (let n = 40; n <= 60; n++) {
      compare(all, { st: { x: deepJson(n) } }, tally, `struct ${n}`);
      compare(all, { mval: { x: deepJson(n) as object } }, tally, `map value ${n}`);
      compare(all, { rval: [[deepJson(n)]] }, tally, `list ${n}`);
      compare(all, { node: { meta: { x: deepJson(n) } } }, tally, `nested ${n}`);
    }
    expect(tally.failures).toEqual([]);
    expect(tally.answered).toBeGreaterThan(20);
    expect(tally.refused).toBeGreaterThan(20);
  });
});
