import protobuf from 'protobufjs';
import { Errors, type ErrorDetail } from '../errors.js';
import { installStructWrapper } from './struct-wrapper.js';

installStructWrapper();

/**
 * The object form every handler sees, whichever transport the call came
 * over: camelCase names, 64-bit ints as numbers, enums as names, scalars and
 * lists defaulted, absent sub-messages and proto3 `optional`s left absent.
 */
export const OBJECT_FORM: protobuf.IConversionOptions = { longs: Number, enums: String, defaults: true, arrays: true, objects: true, oneofs: false };
/** The JSON form of an HTTP answer: as above, bytes as base64, NaN/±Infinity as "NaN"/"Infinity"/"-Infinity". */
export const JSON_FORM: protobuf.IConversionOptions = { ...OBJECT_FORM, bytes: String, json: true };

export function decodeMessage(type: protobuf.Type, bytes: Uint8Array): Record<string, unknown> {
  return dropAbsentMessages(type, type.toObject(type.decode(bytes), OBJECT_FORM));
}

/** Well-known types whose object form is plain JSON (see struct-wrapper.ts). */
const JSON_TYPES = new Set(['.google.protobuf.Struct', '.google.protobuf.Value', '.google.protobuf.ListValue']);
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

/** Brings checked JSON into the object form handlers see (defaults filled, as over gRPC). */
export function normalize(type: protobuf.Type, obj: Record<string, unknown>): Record<string, unknown> {
  return dropAbsentMessages(type, type.toObject(type.fromObject(obj), OBJECT_FORM));
}

/** Normalises a handler's answer (drops unknown keys, fills defaults) for the JSON face. */
export function toJsonForm(type: protobuf.Type, obj: unknown): Record<string, unknown> {
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
  switch (type.fullName) {
    case '.google.protobuf.Value':
      return value;
    case '.google.protobuf.ListValue':
      if (!Array.isArray(value)) problems.push({ field: path || '(body)', message: `must be an array, not ${describe(value)}` });
      return value;
    case '.google.protobuf.Struct':
      if (!isPlainObject(value)) problems.push({ field: path || '(body)', message: `must be a JSON object, not ${describe(value)}` });
      return value;
  }
  if (!isPlainObject(value)) {
    problems.push({ field: path || '(body)', message: `must be a JSON object, not ${describe(value)}` });
    return undefined;
  }
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    const name = snakeToCamel(key);
    const field = type.fields[name];
    const where = path ? `${path}.${key}` : key;
    if (!field) {
      problems.push({ field: where, message: `unknown field; ${type.name} has ${Object.keys(type.fields).join(', ') || 'no fields'}` });
      continue;
    }
    if (v === null) continue; // JSON null means "not set"
    field.resolve();
    if (field.map) {
      if (!isPlainObject(v)) { problems.push({ field: where, message: `must be an object, not ${describe(v)}` }); continue; }
      const m: Record<string, unknown> = {};
      for (const [mk, mv] of Object.entries(v)) m[mk] = checkScalarOrMessage(field, mv, `${where}.${mk}`, problems);
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

/** Throws WLDB_ERR_VALIDATION listing every problem. */
export function assertNoProblems(problems: ErrorDetail[], what: string): void {
  if (problems.length === 0) return;
  const first = problems[0]!;
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more)` : '';
  throw Errors.VALIDATION(`${what}: ${first.field} ${first.message}${more}. Fix the request and retry.`, problems);
}
