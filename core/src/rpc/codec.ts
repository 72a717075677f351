import protobuf from 'protobufjs';
import { Errors, WldbError, type ErrorDetail } from '../errors.js';
import { jsonForm } from './json-form.js';
import { installStructWrapper } from './struct-wrapper.js';
import { Problems } from '../validation/problems.js';

installStructWrapper();

/**
 * How deep a free-form JSON value (a google.protobuf.Struct, Value or
 * ListValue field: run config, summary, view spec, project settings) may
 * nest, counted as the tracking plugin counts it: `{"a": {"b": 1}}` is 2
 * levels. protobufjs converts these values recursively, so every transport
 * refuses a deeper value before a converter sees it: HTTP in checkJson, gRPC
 * in decodeMessage (a scan of the wire bytes), in process in RpcHost.invoke
 * (checkRequestObject). Each check is a loop with its own stack, so no depth
 * overflows the call stack on the way to the 400.
 */
export const MAX_JSON_DEPTH = 32;

/**
 * The one key no request may carry: in JavaScript, assigning `o["__proto__"]`
 * sets o's prototype instead of a property, so every `out[key] = …` between
 * here and the database would drop the key (or worse). It is valid JSON, so
 * it is refused by name rather than as "not JSON".
 */
export const RESERVED_KEY = '__proto__';
const reservedKeyProblem = (field: string): ErrorDetail => ({
  field,
  message: `has a key named "${RESERVED_KEY}", which this API does not accept (JavaScript reserves the name); rename the key`,
});
const tooDeepProblem = (field: string): ErrorDetail => ({
  field,
  message: `is nested deeper than ${MAX_JSON_DEPTH} levels; flatten it (e.g. keys such as "optimizer/lr" instead of nested objects)`,
});

/** The first problem of a free-form JSON value: too deep, or a `__proto__` key. Iterative. */
function jsonValueProblem(value: unknown, field: string): ErrorDetail | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const stack: { v: object; depth: number }[] = [{ v: value, depth: 1 }];
  for (let top = stack.pop(); top; top = stack.pop()) {
    if (top.depth > MAX_JSON_DEPTH) return tooDeepProblem(field);
    if (!Array.isArray(top.v) && Object.hasOwn(top.v, RESERVED_KEY)) return reservedKeyProblem(field);
    for (const child of Array.isArray(top.v) ? top.v : Object.values(top.v)) {
      if (child !== null && typeof child === 'object') stack.push({ v: child, depth: top.depth + 1 });
    }
  }
  return undefined;
}

/**
 * The object form every handler sees, whichever transport the call came
 * over: camelCase names, 64-bit ints as numbers, enums as names, scalars and
 * lists defaulted, absent sub-messages and proto3 `optional`s left absent.
 */
export const OBJECT_FORM: protobuf.IConversionOptions = { longs: Number, enums: String, defaults: true, arrays: true, objects: true, oneofs: false };
/** The JSON form of an HTTP answer: as above, bytes as base64, NaN/±Infinity as "NaN"/"Infinity"/"-Infinity". */
export const JSON_FORM: protobuf.IConversionOptions = { ...OBJECT_FORM, bytes: String, json: true };

/**
 * Decodes a protobuf message into the object form. Throws WLDB_ERR_VALIDATION
 * for bytes that are not a message of `type`, that nest a JSON value deeper
 * than MAX_JSON_DEPTH or that carry a `__proto__` map key — checked on the
 * bytes before protobufjs's recursive decoder and converters run.
 */
export function decodeMessage(type: protobuf.Type, bytes: Uint8Array): Record<string, unknown> {
  try {
    assertNoProblems(holdsJson(type) ? wireProblems(type, bytes) : [], `The ${type.name} message`);
    return dropAbsentMessages(type, type.toObject(type.decode(bytes), OBJECT_FORM));
  } catch (err) {
    if (err instanceof WldbError) throw err;
    throw Errors.VALIDATION(
      `The request is not a valid ${type.fullName.slice(1)} message (${(err as Error).message}). Encode it with this server's .proto files (gRPC reflection lists them).`,
      [{ field: '(message)', message: 'not a valid protobuf encoding' }],
    );
  }
}

/**
 * A request a transport could not decode, handed on in place of the request
 * so the call answers with its coded error (grpc-js answers a throwing
 * deserializer with a bare INTERNAL).
 */
export class UndecodableRequest {
  constructor(readonly error: WldbError) {}
}

/** decodeMessage, with a failure returned as an UndecodableRequest instead of thrown. */
export function decodeRequest(type: protobuf.Type, bytes: Uint8Array): Record<string, unknown> | UndecodableRequest {
  try {
    return decodeMessage(type, bytes);
  } catch (err) {
    return new UndecodableRequest(err instanceof WldbError ? err : Errors.VALIDATION('The request could not be decoded. Fix the client.'));
  }
}

/** Well-known types whose object form is plain JSON (see struct-wrapper.ts). */
const JSON_TYPES = new Set(['.google.protobuf.Struct', '.google.protobuf.Value', '.google.protobuf.ListValue']);
const isJsonType = (t: unknown): t is protobuf.Type => t instanceof protobuf.Type && JSON_TYPES.has(t.fullName);
/** JSON containers: each one entered is one level of MAX_JSON_DEPTH (a Value only wraps one). */
const JSON_CONTAINERS = new Set(['.google.protobuf.Struct', '.google.protobuf.ListValue']);

const holdsJsonCache = new WeakMap<protobuf.Type, boolean>();
/** Whether a message of `type` can carry a free-form JSON value at any depth (most requests cannot: nothing to check). */
function holdsJson(type: protobuf.Type): boolean {
  const known = holdsJsonCache.get(type);
  if (known !== undefined) return known;
  holdsJsonCache.set(type, false); // a recursive type reaches itself: assume no until shown otherwise
  let found = false;
  for (const f of type.fieldsArray) {
    f.resolve();
    const rt = f.resolvedType;
    if (rt instanceof protobuf.Type && (JSON_TYPES.has(rt.fullName) || holdsJson(rt))) found = true;
  }
  holdsJsonCache.set(type, found);
  return found;
}

const WIRE_DELIMITED = 2;
const WIRE_GROUP_START = 3;
const WIRE_GROUP_END = 4;

/**
 * Scans protobuf bytes without recursion (an explicit stack of embedded
 * messages) for JSON values nested deeper than MAX_JSON_DEPTH and for
 * `__proto__` map keys, naming the request field that holds them. Groups
 * (proto2) are refused: no message of this API has one, and skipping a
 * nest of them is how a decoder recurses without bound.
 */
function wireProblems(type: protobuf.Type, bytes: Uint8Array): ErrorDetail[] {
  interface Frame {
    /** The message type, or, for a map entry, the map field. */
    type?: protobuf.Type;
    entryOf?: protobuf.MapField;
    end: number;
    /** JSON containers entered so far. */
    json: number;
    /** The request field this frame sits in (fixed once inside a JSON value). */
    field: string;
  }
  const reader = protobuf.Reader.create(bytes);
  const stack: Frame[] = [{ type, end: bytes.length, json: 0, field: '' }];
  const enter = (parent: Frame, sub: protobuf.Type, entryOf: protobuf.MapField | undefined, field: string, length: number): ErrorDetail | undefined => {
    const end = reader.pos + length;
    if (end > parent.end) throw new RangeError(`field ${field} runs past the end of its message`);
    const json = parent.json + (!entryOf && JSON_CONTAINERS.has(sub.fullName) ? 1 : 0);
    if (json > MAX_JSON_DEPTH) return tooDeepProblem(field);
    stack.push(entryOf ? { entryOf, end, json, field } : { type: sub, end, json, field });
    return undefined;
  };
  while (stack.length) {
    const frame = stack[stack.length - 1]!;
    if (reader.pos >= frame.end) {
      stack.pop();
      continue;
    }
    const tag = reader.uint32();
    const wire = tag & 7;
    const number = tag >>> 3;
    if (wire === WIRE_GROUP_START || wire === WIRE_GROUP_END) return [{ field: frame.field || '(message)', message: 'uses a protobuf group, which no message of this API has' }];
    if (wire !== WIRE_DELIMITED) {
      reader.skipType(wire);
      continue;
    }
    const length = reader.uint32();
    if (frame.entryOf) {
      // A map entry: key = 1, value = 2.
      const map = frame.entryOf;
      if (number === 1 && map.keyType === 'string') {
        const keyEnd = reader.pos + length;
        if (keyEnd > frame.end) throw new RangeError(`a key of ${frame.field} runs past the end of its entry`);
        if (protobuf.util.utf8.read(bytes, reader.pos, keyEnd) === RESERVED_KEY) return [reservedKeyProblem(frame.field)];
        reader.skip(length);
        continue;
      }
      const valueType = map.resolvedType;
      if (number === 2 && valueType instanceof protobuf.Type) {
        const bad = enter(frame, valueType, undefined, frame.field, length);
        if (bad) return [bad];
        continue;
      }
      reader.skip(length);
      continue;
    }
    const field = frame.type!.fieldsById[number];
    field?.resolve();
    const sub = field?.resolvedType;
    if (!field || !(sub instanceof protobuf.Type || field.map)) {
      reader.skip(length); // a string, bytes, packed scalars, or a field this server does not know
      continue;
    }
    const name = frame.json > 0 || isJsonType(frame.type) ? frame.field : frame.field ? `${frame.field}.${field.name}` : field.name;
    const bad = field.map ? enter(frame, sub as protobuf.Type, field as unknown as protobuf.MapField, name, length) : enter(frame, sub as protobuf.Type, undefined, name, length);
    if (bad) return [bad];
  }
  return [];
}

/**
 * Refuses, as WLDB_ERR_VALIDATION naming the field, an in-process request
 * holding a JSON value nested deeper than MAX_JSON_DEPTH or a `__proto__`
 * key. In-process callers hand over objects, not bytes, and handlers walk
 * them recursively; this walk is a loop (and stops at protobufjs's own
 * message nesting limit, so a cyclic object cannot hold it).
 */
export function checkRequestObject(type: protobuf.Type, value: unknown): void {
  if (!holdsJson(type)) return;
  const problems: ErrorDetail[] = [];
  const stack: { type: protobuf.Type; v: unknown; field: string; depth: number }[] = [{ type, v: value, field: '', depth: 0 }];
  for (let top = stack.pop(); top && !problems.length; top = stack.pop()) {
    const { v, field: at } = top;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) continue; // the handler reports a wrong type
    if (top.depth > protobuf.util.recursionLimit) {
      problems.push({ field: at || '(request)', message: `nests messages deeper than ${protobuf.util.recursionLimit} levels` });
      break;
    }
    if (Object.hasOwn(v, RESERVED_KEY)) problems.push(reservedKeyProblem(at || '(request)'));
    for (const [name, fv] of Object.entries(v)) {
      const f = Object.hasOwn(top.type.fields, name) ? top.type.fields[name]! : undefined;
      if (!f || fv === null || typeof fv !== 'object') continue;
      f.resolve();
      const rt = f.resolvedType;
      if (!(rt instanceof protobuf.Type) || (!holdsJson(rt) && !JSON_TYPES.has(rt.fullName))) continue;
      const where = at ? `${at}.${name}` : name;
      const items = f.map ? Object.entries(fv as object).map(([k, x]) => [`${where}.${k}`, x] as const) : f.repeated && Array.isArray(fv) ? fv.map((x, i) => [`${where}[${i}]`, x] as const) : [[where, fv] as const];
      if (f.map && Object.hasOwn(fv, RESERVED_KEY)) problems.push(reservedKeyProblem(where));
      for (const [path, x] of items) {
        if (JSON_TYPES.has(rt.fullName)) {
          const bad = jsonValueProblem(x, path);
          if (bad) problems.push(bad);
        } else stack.push({ type: rt, v: x, field: path, depth: top.depth + 1 });
      }
    }
  }
  assertNoProblems(problems, 'The request');
}
const messageFieldsCache = new WeakMap<protobuf.Type, protobuf.Field[]>();
function messageFields(type: protobuf.Type): protobuf.Field[] {
  let list = messageFieldsCache.get(type);
  if (!list) {
    list = type.fieldsArray.filter((f) => (f.resolve(), f.resolvedType instanceof protobuf.Type && !JSON_TYPES.has(f.resolvedType.fullName)));
    messageFieldsCache.set(type, list);
  }
  return list;
}

/**
 * protobufjs's `defaults` sets an unset sub-message to null; the object form
 * leaves it absent instead (`settings?: JsonObject`), at every depth.
 */
function dropAbsentMessages(type: protobuf.Type, obj: Record<string, unknown>): Record<string, unknown> {
  for (const f of type.fieldsArray) {
    if (obj[f.name] === null) delete obj[f.name];
  }
  for (const f of messageFields(type)) {
    const v = obj[f.name];
    if (v == null) continue;
    const sub = f.resolvedType as protobuf.Type;
    if (f.map) for (const x of Object.values(v as Record<string, Record<string, unknown>>)) dropAbsentMessages(sub, x);
    else if (f.repeated) for (const x of v as Record<string, unknown>[]) dropAbsentMessages(sub, x);
    else dropAbsentMessages(sub, v as Record<string, unknown>);
  }
  return obj;
}

export function encodeMessage(type: protobuf.Type, obj: unknown): Uint8Array {
  return type.encode(type.fromObject((obj ?? {}) as Record<string, unknown>)).finish();
}

/** The object-form value of an absent field, as decoding gives it; undefined for a message (left absent). */
function absentValue(field: protobuf.Field): unknown {
  field.resolve();
  if (field.map) return {};
  if (field.repeated) return [];
  if (field.resolvedType instanceof protobuf.Type) return undefined;
  if (field.resolvedType instanceof protobuf.Enum) return field.resolvedType.valuesById[0] ?? 0;
  switch (field.type) {
    case 'string':
      return '';
    case 'bool':
      return false;
    case 'bytes':
      return new Uint8Array(0);
    default:
      return 0;
  }
}

/**
 * An in-process request with the defaults of its absent fields filled in (at
 * every depth of the messages it holds), so a handler sees what gRPC and HTTP
 * give it. Present values are left exactly as given (the handler validates
 * them); `optional` and oneof fields stay absent; the JSON types
 * (Struct/Value/ListValue) are not walked. Returns `obj` when nothing was absent.
 */
export function withDefaults(type: protobuf.Type, obj: Record<string, unknown>): Record<string, unknown> {
  let out: Record<string, unknown> | undefined;
  for (const field of type.fieldsArray) {
    const value = obj[field.name];
    if (value === undefined || value === null) {
      if (field.partOf) continue;
      const absent = absentValue(field);
      if (absent !== undefined) (out ??= { ...obj })[field.name] = absent;
      continue;
    }
    const sub = field.resolvedType;
    if (sub instanceof protobuf.Type && !JSON_TYPES.has(sub.fullName) && !field.map && !field.repeated && typeof value === 'object' && !ArrayBuffer.isView(value)) {
      const inner = withDefaults(sub, value as Record<string, unknown>);
      if (inner !== value) (out ??= { ...obj })[field.name] = inner;
    }
  }
  return out ?? obj;
}

/** Brings checked JSON into the object form handlers see (defaults filled, as over gRPC). */
export function normalize(type: protobuf.Type, obj: Record<string, unknown>): Record<string, unknown> {
  return dropAbsentMessages(type, type.toObject(type.fromObject(obj), OBJECT_FORM));
}

/**
 * Normalises a handler's answer (drops unknown keys, fills defaults) for the
 * JSON face, by one walk over the answer (json-form.ts). Whatever that walk
 * refuses, the round trip below decides: it throws its own error (a walk in
 * another field order may meet a different problem first) or, for the rare
 * input the walk leaves to it, gives the answer.
 */
export function toJsonForm(type: protobuf.Type, obj: unknown): Record<string, unknown> {
  try {
    return jsonForm(type, obj);
  } catch {
    return toJsonFormByRoundTrip(type, obj);
  }
}

/**
 * toJsonForm through protobufjs (object → Message → object): the definition
 * json-form.ts reproduces, kept for the inputs it leaves here and for
 * json-form.test.ts to compare against. Not exported from the package.
 */
export function toJsonFormByRoundTrip(type: protobuf.Type, obj: unknown): Record<string, unknown> {
  return dropAbsentMessages(type, type.toObject(type.fromObject((obj ?? {}) as Record<string, unknown>), JSON_FORM));
}

const INT32 = new Set(['int32', 'sint32', 'sfixed32']);
const UINT32 = new Set(['uint32', 'fixed32']);
const INT64 = new Set(['int64', 'sint64', 'sfixed64', 'uint64', 'fixed64']);
const FLOAT = new Set(['double', 'float']);
const snakeToCamel = (s: string) => s.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const describe = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : `a ${typeof v}`);

/**
 * Checks JSON against a message type strictly — unknown fields, wrong types,
 * out-of-range numbers — and returns it with field names in camelCase.
 * Every problem is reported, not just the first.
 */
export function checkJson(type: protobuf.Type, value: unknown, path = ''): { value: Record<string, unknown>; problems: ErrorDetail[] } {
  const problems: ErrorDetail[] = [];
  const out = checkMessage(type, value, path, problems);
  return { value: (out ?? {}) as Record<string, unknown>, problems };
}

function checkMessage(type: protobuf.Type, value: unknown, path: string, problems: ErrorDetail[]): unknown {
  if (JSON_TYPES.has(type.fullName)) {
    if (type.fullName === '.google.protobuf.ListValue' && !Array.isArray(value)) {
      problems.push({ field: path || '(body)', message: `must be an array, not ${describe(value)}` });
    } else if (type.fullName === '.google.protobuf.Struct' && !isPlainObject(value)) {
      problems.push({ field: path || '(body)', message: `must be a JSON object, not ${describe(value)}` });
    } else {
      // Before normalize() hands the value to protobufjs's recursive converters.
      const bad = jsonValueProblem(value, path || '(body)');
      if (bad) {
        problems.push(bad);
        return undefined;
      }
    }
    return value;
  }
  if (!isPlainObject(value)) {
    problems.push({ field: path || '(body)', message: `must be a JSON object, not ${describe(value)}` });
    return undefined;
  }
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    const name = snakeToCamel(key);
    const field = Object.hasOwn(type.fields, name) ? type.fields[name] : undefined;
    const where = path ? `${path}.${key}` : key;
    if (key === RESERVED_KEY) {
      problems.push(reservedKeyProblem(path || '(body)'));
      continue;
    }
    if (!field) {
      problems.push({ field: where, message: `unknown field; ${type.name} has ${Object.keys(type.fields).join(', ') || 'no fields'}` });
      continue;
    }
    if (v === null) continue; // JSON null means "not set"
    field.resolve();
    if (field.map) {
      if (!isPlainObject(v)) { problems.push({ field: where, message: `must be an object, not ${describe(v)}` }); continue; }
      const m: Record<string, unknown> = {};
      if (Object.hasOwn(v, RESERVED_KEY)) problems.push(reservedKeyProblem(where));
      for (const [mk, mv] of Object.entries(v)) if (mk !== RESERVED_KEY) m[mk] = checkScalarOrMessage(field, mv, `${where}.${mk}`, problems);
      out[name] = m;
    } else if (field.repeated) {
      if (!Array.isArray(v)) { problems.push({ field: where, message: `must be an array, not ${describe(v)}` }); continue; }
      out[name] = v.map((item, i) => checkScalarOrMessage(field, item, `${where}[${i}]`, problems));
    } else {
      out[name] = checkScalarOrMessage(field, v, where, problems);
    }
  }
  return out;
}

function checkScalarOrMessage(field: protobuf.Field, v: unknown, where: string, problems: ErrorDetail[]): unknown {
  const rt = field.resolvedType;
  if (rt instanceof protobuf.Type) return checkMessage(rt, v, where, problems);
  if (rt instanceof protobuf.Enum) {
    if (typeof v === 'string' && v in rt.values) return v;
    if (typeof v === 'number' && Object.values(rt.values).includes(v)) return v;
    problems.push({ field: where, message: `must be one of ${Object.keys(rt.values).join(', ')}` });
    return undefined;
  }
  const t = field.type;
  const fail = (expected: string) => { problems.push({ field: where, message: `must be ${expected}, not ${describe(v)}` }); return undefined; };
  if (t === 'string') return typeof v === 'string' ? v : fail('a string');
  if (t === 'bool') return typeof v === 'boolean' ? v : fail('true or false');
  if (t === 'bytes') return typeof v === 'string' && /^[A-Za-z0-9+/_-]*={0,2}$/.test(v) ? v : fail('a base64 string');
  if (FLOAT.has(t)) {
    if (typeof v === 'number') return v;
    if (v === 'NaN' || v === 'Infinity' || v === '-Infinity') return Number(v);
    return fail('a number');
  }
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n)) return fail('an integer');
  if (INT32.has(t) && (n < -(2 ** 31) || n > 2 ** 31 - 1)) return fail('a 32-bit integer');
  if (UINT32.has(t) && (n < 0 || n > 2 ** 32 - 1)) return fail('an unsigned 32-bit integer');
  if (INT64.has(t) && !Number.isSafeInteger(n)) return fail('an integer within ±2^53');
  if (t.startsWith('u') && n < 0) return fail('a non-negative integer');
  return n;
}

/** Coerces one text value (path segment or query parameter) to the field's JSON type. */
export function coerceText(field: protobuf.Field, text: string): unknown {
  field.resolve();
  const t = field.type;
  if (field.resolvedType instanceof protobuf.Enum || t === 'string' || t === 'bytes') return text;
  if (t === 'bool') return text === 'true' ? true : text === 'false' ? false : text;
  if (FLOAT.has(t)) return text.trim() !== '' && !Number.isNaN(Number(text)) ? Number(text) : text;
  if (INT32.has(t) || UINT32.has(t) || INT64.has(t)) return /^-?\d+$/.test(text) ? Number(text) : text;
  return text;
}

/** Throws WLDB_ERR_VALIDATION listing every problem; `what` starts the message ("The request"). */
export function assertNoProblems(problems: ErrorDetail[], what: string): void {
  if (problems.length === 0) return;
  // One message style for every validation error (core's Problems).
  const p = new Problems(what);
  for (const d of problems) p.add(d.field ?? '(request)', d.message);
  p.throwIfAny();
}
