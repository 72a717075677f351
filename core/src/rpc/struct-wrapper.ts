import protobuf from 'protobufjs';

/**
 * google.protobuf.Struct travels as plain JSON in both directions, as in the
 * proto3 JSON mapping: handlers see `{ lr: 0.001 }`, not `{ fields: { lr:
 * { numberValue: 0.001 } } }`. protobufjs consults `wrappers` when a type is
 * first used, so this must be installed before any encode/decode.
 */
type ValueMsg = {
  nullValue?: number; numberValue?: number; stringValue?: string; boolValue?: boolean;
  // Nested Structs pass through this same wrapper, so inside a Value they are already plain JSON.
  structValue?: Record<string, unknown>; listValue?: { values?: ValueMsg[] };
};

const has = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);

function toValueObject(v: unknown): ValueMsg {
  if (v === null || v === undefined) return { nullValue: 0 };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(toValueObject) } };
  if (typeof v === 'object') return { structValue: v as Record<string, unknown> };
  throw new TypeError(`A ${typeof v} cannot be stored in a JSON object`);
}
function toFieldsObject(o: Record<string, unknown>): Record<string, ValueMsg> {
  const fields: Record<string, ValueMsg> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) fields[k] = toValueObject(v);
  return fields;
}
function fromValue(v: ValueMsg | undefined): unknown {
  if (!v) return null;
  if (has(v, 'numberValue')) return v.numberValue;
  if (has(v, 'stringValue')) return v.stringValue;
  if (has(v, 'boolValue')) return v.boolValue;
  if (has(v, 'structValue')) return v.structValue ?? {};
  if (has(v, 'listValue')) return (v.listValue?.values ?? []).map(fromValue);
  return null;
}
function fromFields(fields: Record<string, ValueMsg> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields ?? {})) out[k] = fromValue(v);
  return out;
}

let installed = false;
export function installStructWrapper(): void {
  if (installed) return;
  installed = true;
  protobuf.wrappers['.google.protobuf.Struct'] = {
    fromObject(this: protobuf.Type, object: { [k: string]: unknown }) {
      // Already in message form (e.g. decoded and re-encoded): leave it to the generated converter.
      if (object instanceof protobuf.Message) return object as protobuf.Message;
      return this.fromObject({ fields: toFieldsObject(object) });
    },
    toObject(this: protobuf.Type, message: protobuf.Message, options?: protobuf.IConversionOptions) {
      const plain = this.toObject(message, { ...options, defaults: false, json: false }) as { fields?: Record<string, ValueMsg> };
      return fromFields(plain.fields);
    },
  } as protobuf.IWrapper;
}
