import protobuf from 'protobufjs';
import { Problems } from '../validation/problems.js';

/** The field option that declares a string field's closed set (proto/wanllmdb/api/v1/options.proto). */
export const VALUES_OPTION = '(wanllmdb.api.v1.values)';

interface ClosedField {
  name: string;
  values?: ReadonlySet<string>;
  /** A message field whose type has closed fields somewhere below. */
  nested?: protobuf.Type;
  repeated: boolean;
}

const cache = new WeakMap<protobuf.Type, ClosedField[]>();

/** The closed set a field declares with `(wanllmdb.api.v1.values) = "a,b,c"`, or undefined. */
export function closedSetOf(field: protobuf.Field): string[] | undefined {
  const raw = field.options?.[VALUES_OPTION];
  return typeof raw === 'string' && raw ? raw.split(',').map((v) => v.trim()) : undefined;
}

function closedFields(type: protobuf.Type): ClosedField[] {
  let list = cache.get(type);
  if (list) return list;
  cache.set(type, []); // a recursive type reaches itself: nothing until shown otherwise
  list = [];
  for (const f of type.fieldsArray) {
    f.resolve();
    const values = closedSetOf(f);
    if (values) list.push({ name: f.name, values: new Set(values), repeated: f.repeated });
    else if (f.resolvedType instanceof protobuf.Type && !f.map && closedFields(f.resolvedType).length) list.push({ name: f.name, nested: f.resolvedType, repeated: f.repeated });
  }
  cache.set(type, list);
  return list;
}

/**
 * Refuses a request whose closed-set fields hold a value outside their set
 * (`visibility: "secret"`), naming every such field by its path
 * (`lines[3].stream`). An empty string is "not given": the handler applies
 * the default. Same check for gRPC, HTTP and in-process calls.
 */
export function checkClosedSets(type: protobuf.Type, request: unknown): void {
  if (!closedFields(type).length) return;
  const p = new Problems('The request');
  const walk = (t: protobuf.Type, value: unknown, at: string) => {
    if (!value || typeof value !== 'object') return;
    for (const f of closedFields(t)) {
      const v = (value as Record<string, unknown>)[f.name];
      const items = f.repeated && Array.isArray(v) ? v.map((x, i) => [`${at}${f.name}[${i}]`, x] as const) : [[`${at}${f.name}`, v] as const];
      for (const [path, x] of items) {
        if (f.nested) walk(f.nested, x, `${path}.`);
        else if (typeof x === 'string' && x !== '' && !f.values!.has(x)) p.add(path, `must be one of ${[...f.values!].map((s) => `"${s}"`).join(', ')}`);
      }
    }
  };
  walk(type, request, '');
  p.throwIfAny();
}
