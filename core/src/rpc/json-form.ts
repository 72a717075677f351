import protobuf from 'protobufjs';

/**
 * The JSON form of a handler's answer (codec.ts `toJsonForm`) computed by one
 * walk of the message type's fields over the handler's object, with no
 * protobuf Message in between. The reference is protobufjs's round trip
 * `type.toObject(type.fromObject(obj), JSON_FORM)` through the Struct/Value/
 * ListValue wrappers (struct-wrapper.ts), followed by dropAbsentMessages;
 * that round trip built a Value message for every member of every run's
 * config and summary, about a tenth of a server's CPU answering run lists.
 * Each rule below is the one protobufjs's generated converters apply
 * (node_modules/protobufjs/src/converter.js), so the output is identical;
 * json-form.test.ts compares the two on random objects of every response
 * type.
 *
 * The walk throws where the round trip throws, but not necessarily the same
 * error first (it visits fields in output order, not declaration order), and
 * it throws Unhandled for the few inputs it leaves to the round trip; the
 * caller answers both by running the round trip, which throws its own error
 * or gives the answer.
 */

/** An input this walk leaves to the protobufjs round trip (a Message instance, a `__proto__` map key, …). */
export class Unhandled extends Error {}

const JSON_VALUE = '.google.protobuf.Value';
const JSON_STRUCT = '.google.protobuf.Struct';
const JSON_LIST = '.google.protobuf.ListValue';
const { util } = protobuf;
/** long.js, as protobufjs loads it (util.Long declares only the constructor). */
type LongLib = { new (low: number, high: number, unsigned: boolean): protobuf.Long & { toNumber(): number }; fromValue(v: unknown, unsigned: boolean): protobuf.Long };
const longLib = () => util.Long as unknown as LongLib | undefined;

/** An enum value the generated fromObject does not assign (its `switch` falls out), or bytes it skips. */
const NOT_SET = Symbol('not set');

// util.isObject: arrays count, as in the generated code.
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

function tooDeep(depth: number): void {
  // Message (and wrapper) nesting is counted and limited as the generated fromObject does.
  if (depth > util.recursionLimit) throw new Error('maximum nesting depth exceeded');
}

// ---------------------------------------------------------------- Struct, Value, ListValue

/**
 * A Value holding `v`, at `depth` as the wrappers count it: a Struct or
 * ListValue inside sits one deeper, its members two.
 */
function jsonValue(v: unknown, depth: number): unknown {
  tooDeep(depth);
  switch (typeof v) {
    case 'number':
      return Number.isFinite(v) ? v : String(v);
    case 'string':
    case 'boolean':
      return v;
    case 'undefined':
      return null;
    case 'object':
      if (v === null) return null;
      if (Array.isArray(v)) return jsonList(v, depth + 1);
      return jsonStruct(v as Record<string, unknown>, depth + 1);
    default:
      throw new TypeError(`A ${typeof v} cannot be stored as a JSON value`);
  }
}

function jsonStruct(o: Record<string, unknown>, depth: number): Record<string, unknown> {
  if (o instanceof protobuf.Message) throw new Unhandled();
  const out: Record<string, unknown> = {};
  const keys = Object.keys(o);
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    const v = o[k];
    if (v === undefined) continue; // the wrapper skips undefined members
    const value = jsonValue(v, depth + 1);
    // The wrapper's `fields[k] = …` sets the prototype of its scratch object for this key, so the key never arrives.
    if (k !== '__proto__') out[k] = value;
  }
  tooDeep(depth);
  return out;
}

function jsonList(a: unknown[], depth: number): unknown[] {
  if (!Array.isArray(a)) throw new Unhandled(); // the wrapper calls `.map` on it, whatever it is
  const out: unknown[] = [];
  for (let i = 0; i < a.length; i++) {
    const v = a[i];
    // `.map` skips a hole, and the generated ListValue converter then refuses the missing Value.
    if (v === undefined && !(i in a)) throw new TypeError(`${JSON_LIST}.values: object expected`);
    out.push(jsonValue(v, depth + 1));
  }
  tooDeep(depth);
  return out;
}

// ---------------------------------------------------------------- scalars

type Element = (v: unknown, depth: number) => unknown;

function longValue(unsigned: boolean): Element {
  return (v) => {
    const Long = longLib();
    if (!Long) {
      if (typeof v === 'number') return v;
      throw new Unhandled();
    }
    // What Long.fromValue and LongBits#toNumber give a safe integer (-0 becomes 0, and unsigned refuses negatives).
    if (typeof v === 'number' && Number.isSafeInteger(v) && (v > 0 || (v < 0 && !unsigned))) return v;
    if (v === 0) return 0;
    const l = Long.fromValue(v, unsigned);
    return new util.LongBits(l.low >>> 0, l.high >>> 0).toNumber(unsigned);
  };
}

const doubleValue: Element = (v) => {
  const x = Number(v);
  return Number.isFinite(x) ? x : String(x);
};
const int32Value: Element = (v) => (v as number) | 0;
const uint32Value: Element = (v) => (v as number) >>> 0;
const boolValue: Element = (v) => Boolean(v);
const stringValue: Element = (v) => String(v);
const bytesValue: Element = (v) => {
  if (typeof v === 'string') {
    // Decoded and encoded again, as the round trip does: a non-canonical base64 string comes out canonical.
    const buf = util.newBuffer(util.base64.length(v)) as Uint8Array;
    util.base64.decode(v, buf, 0);
    return util.base64.encode(buf, 0, buf.length);
  }
  const b = v as Uint8Array;
  if (b.length >= 0) return util.base64.encode(b, 0, b.length);
  return NOT_SET;
};

function scalarValue(type: string): Element {
  switch (type) {
    case 'double':
    case 'float':
      return doubleValue;
    case 'int32':
    case 'sint32':
    case 'sfixed32':
      return int32Value;
    case 'uint32':
    case 'fixed32':
      return uint32Value;
    case 'int64':
    case 'sint64':
    case 'sfixed64':
      return longValue(false);
    case 'uint64':
    case 'fixed64':
      return longValue(true);
    case 'bool':
      return boolValue;
    case 'string':
      return stringValue;
    case 'bytes':
      return bytesValue;
    default:
      throw new Error(`json-form: no conversion for a field of type ${type}`);
  }
}

/**
 * The generated enum `switch`: a name or a known number selects the value, an
 * unknown number passes through, anything else leaves the field unset — or,
 * in a repeated field, falls through to the first value. The value is then
 * named as toObject names it (`values[n]`, which falls back to valuesById).
 */
function enumValue(e: protobuf.Enum, typeDefault: number, repeated: boolean): Element {
  const names = e.values as Record<string | number, string | number | undefined>;
  const nameOf = (n: number): unknown => (names[n] === undefined ? n : names[n]);
  const known = new Map<unknown, unknown>();
  for (const key of Object.keys(e.values)) {
    const n = e.values[key]!;
    known.set(key, nameOf(n));
    known.set(n, nameOf(n));
  }
  const fallback = repeated ? nameOf(typeDefault) : NOT_SET;
  return (v) => {
    const hit = known.get(v);
    if (hit !== undefined) return hit;
    if (typeof v === 'number') return nameOf(v);
    return fallback;
  };
}

// ---------------------------------------------------------------- messages

interface Plan {
  /** The JSON form of `d`, already known to be an object (or anything, for a type without fields). */
  convert(d: unknown, depth: number): Record<string, unknown>;
}
type Writer = (d: Record<string, unknown>, out: Record<string, unknown>, depth: number) => void;

const plans = new WeakMap<protobuf.Type, Plan>();

/** A message field's element: refused unless an object (util.isObject), then converted one level deeper. */
function messageElement(field: protobuf.Field, sub: protobuf.Type): Element {
  const expected = `${field.fullName}: object expected`;
  const check = (v: unknown) => {
    if (!isObject(v)) throw new TypeError(expected);
  };
  switch (sub.fullName) {
    case JSON_STRUCT:
      return (v, depth) => (check(v), jsonStruct(v as Record<string, unknown>, depth + 1));
    case JSON_LIST:
      return (v, depth) => (check(v), jsonList(v as unknown[], depth + 1));
    case JSON_VALUE:
      return (v, depth) => {
        check(v);
        if (v instanceof protobuf.Message) throw new Unhandled();
        return jsonValue(v, depth + 1);
      };
  }
  const plan = planFor(sub);
  return (v, depth) => (check(v), plan.convert(v, depth + 1));
}

/** The default toObject writes for an unset singular field (`undefined`: none, the field stays absent). */
function defaultOf(field: protobuf.Field): unknown {
  const rt = field.resolvedType;
  if (rt instanceof protobuf.Type) return undefined; // null, which dropAbsentMessages deletes
  const td = field.typeDefault as unknown;
  if (rt instanceof protobuf.Enum) return rt.valuesById[td as number];
  if (field.long) {
    if (typeof td === 'number') return td;
    const l = td as protobuf.Long;
    return new (longLib()!)(l.low, l.high, l.unsigned).toNumber();
  }
  if (field.bytes) return String.fromCharCode.apply(String, Array.from(td as Uint8Array));
  return td;
}

function writerFor(field: protobuf.Field): Writer {
  const name = field.name;
  const rt = field.resolvedType;
  const element = (repeated: boolean): Element =>
    rt instanceof protobuf.Type ? messageElement(field, rt) : rt instanceof protobuf.Enum ? enumValue(rt, field.typeDefault as number, repeated) : scalarValue(field.type);

  if (field.map) {
    const item = element(false);
    const expected = `${field.fullName}: object expected`;
    return (d, out, depth) => {
      const v = d[name];
      if (!v) {
        out[name] = {};
        return;
      }
      if (!isObject(v)) throw new TypeError(expected);
      const m: Record<string, unknown> = {};
      const keys = Object.keys(v);
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i]!;
        if (k === '__proto__') throw new Unhandled();
        const x = item(v[k], depth);
        if (x !== NOT_SET) m[k] = x;
      }
      out[name] = m;
    };
  }
  if (field.repeated) {
    const item = element(true);
    const expected = `${field.fullName}: array expected`;
    return (d, out, depth) => {
      const v = d[name];
      if (!v) {
        out[name] = [];
        return;
      }
      if (!Array.isArray(v)) throw new TypeError(expected);
      const a: unknown[] = [];
      for (let i = 0; i < v.length; i++) {
        const x = item(v[i], depth);
        if (x === NOT_SET) throw new Unhandled(); // a hole in the message's array, which toObject trips over or drops
        a.push(x);
      }
      out[name] = a;
    };
  }
  const item = element(false);
  const fallback = field.partOf ? undefined : defaultOf(field);
  return (d, out, depth) => {
    const v = d[name];
    if (v != null) {
      const x = item(v, depth);
      if (x !== NOT_SET) {
        out[name] = x;
        return;
      }
    }
    if (fallback !== undefined) out[name] = fallback;
  };
}

function planFor(type: protobuf.Type): Plan {
  const known = plans.get(type);
  if (known) return known;
  const writers: Writer[] = [];
  const fullName = type.fullName;
  const plan: Plan =
    type.fieldsArray.length === 0
      ? { convert: () => ({}) }
      : {
          convert(d, depth) {
            if (d instanceof protobuf.Message) throw new Unhandled();
            if (!isObject(d)) throw new TypeError(`${fullName}: object expected`);
            tooDeep(depth);
            const out: Record<string, unknown> = {};
            for (let i = 0; i < writers.length; i++) writers[i]!(d, out, depth);
            return out;
          },
        };
  plans.set(type, plan); // before the fields: a message type may contain itself
  // toObject's key order: repeated fields, then maps, then the other fields
  // outside a oneof, each by field number; then members of oneofs (proto3
  // `optional`s included) as they are set.
  const byId = type.fieldsArray.map((f) => f.resolve()).sort((a, b) => a.id - b.id);
  const outside = byId.filter((f) => !f.partOf);
  const order = [...outside.filter((f) => f.repeated), ...outside.filter((f) => !f.repeated && f.map), ...outside.filter((f) => !f.repeated && !f.map), ...byId.filter((f) => f.partOf)];
  for (const f of order) writers.push(writerFor(f));
  return plan;
}

const JSON_TYPES = new Set([JSON_VALUE, JSON_STRUCT, JSON_LIST]);

/**
 * The JSON form of `obj` as a `type` message, or an exception: the one the
 * round trip would throw (not necessarily the same one), or Unhandled.
 */
export function jsonForm(type: protobuf.Type, obj: unknown): Record<string, unknown> {
  if (JSON_TYPES.has(type.fullName)) throw new Unhandled();
  return planFor(type).convert(obj ?? {}, 0);
}
