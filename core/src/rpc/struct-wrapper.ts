import protobuf from 'protobufjs';

/**
 * google.protobuf.Struct, Value and ListValue travel as plain JSON in both
 * directions, as in the proto3 JSON mapping: handlers see `{ lr: 0.001 }`,
 * not `{ fields: { lr: { numberValue: 0.001 } } }`. protobufjs consults
 * `wrappers` when a type is first used, so this runs before any
 * encode/decode. The three wrappers lean on each other: Struct's fields and
 * ListValue's values are Values, and a Value holds a Struct or a ListValue.
 * Inside a wrapper, `this.fromObject` / `this.toObject` are protobufjs's own
 * generated converters.
 */
type Converter = {
  fromObject(o: unknown, depth?: number): protobuf.Message;
  toObject(m: protobuf.Message, o?: protobuf.IConversionOptions, depth?: number): Record<string, unknown>;
  lookupType(path: string): protobuf.Type;
};

/**
 * Generated converters insist that map values and list items of message type
 * are objects before they call the wrapper, so Struct and ListValue turn
 * their plain JSON members into Value messages themselves.
 *
 * `depth` is protobufjs's nesting counter (the generated converters pass it
 * down and throw past `util.recursionLimit`). The wrappers hand it on, so a
 * deep value meets that limit instead of the call stack's. Requests never get
 * this far too deep — the transports refuse JSON nested deeper than
 * MAX_JSON_DEPTH first (codec.ts) — so this is the second line, not the first.
 */
const toValue = (self: Converter, v: unknown, depth: number) =>
  (self.lookupType('.google.protobuf.Value') as unknown as Converter).fromObject(v as Record<string, unknown>, depth + 1);

const has = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);
const isMessage = (o: unknown): o is protobuf.Message => o instanceof protobuf.Message;
const plain = (o?: protobuf.IConversionOptions): protobuf.IConversionOptions => ({ ...o, defaults: false, oneofs: false });

const valueWrapper = {
  fromObject(this: Converter, v: unknown, depth = 0) {
    if (isMessage(v)) return v;
    if (v === null || v === undefined) return this.fromObject({ nullValue: 0 }, depth);
    if (typeof v === 'number') return this.fromObject({ numberValue: v }, depth);
    if (typeof v === 'string') return this.fromObject({ stringValue: v }, depth);
    if (typeof v === 'boolean') return this.fromObject({ boolValue: v }, depth);
    if (Array.isArray(v)) return this.fromObject({ listValue: v }, depth);
    if (typeof v === 'object') return this.fromObject({ structValue: v }, depth);
    throw new TypeError(`A ${typeof v} cannot be stored as a JSON value`);
  },
  toObject(this: Converter, m: protobuf.Message, o?: protobuf.IConversionOptions, depth = 0) {
    const p = this.toObject(m, plain(o), depth);
    if (has(p, 'numberValue')) return p.numberValue;
    if (has(p, 'stringValue')) return p.stringValue;
    if (has(p, 'boolValue')) return p.boolValue;
    if (has(p, 'structValue')) return p.structValue ?? {};
    if (has(p, 'listValue')) return p.listValue ?? [];
    return null;
  },
};

const structWrapper = {
  fromObject(this: Converter, o: unknown, depth = 0) {
    if (isMessage(o)) return o;
    const fields: Record<string, protobuf.Message> = {};
    for (const [k, v] of Object.entries((o ?? {}) as Record<string, unknown>)) if (v !== undefined) fields[k] = toValue(this, v, depth);
    return this.fromObject({ fields }, depth);
  },
  toObject(this: Converter, m: protobuf.Message, o?: protobuf.IConversionOptions, depth = 0) {
    return this.toObject(m, plain(o), depth).fields ?? {};
  },
};

const listWrapper = {
  fromObject(this: Converter, o: unknown, depth = 0) {
    return isMessage(o) ? o : this.fromObject({ values: ((o ?? []) as unknown[]).map((v) => toValue(this, v, depth)) }, depth);
  },
  toObject(this: Converter, m: protobuf.Message, o?: protobuf.IConversionOptions, depth = 0) {
    return this.toObject(m, { ...plain(o), arrays: true }, depth).values ?? [];
  },
};

let installed = false;
export function installStructWrapper(): void {
  if (installed) return;
  installed = true;
  protobuf.wrappers['.google.protobuf.Value'] = valueWrapper as unknown as protobuf.IWrapper;
  protobuf.wrappers['.google.protobuf.Struct'] = structWrapper as unknown as protobuf.IWrapper;
  protobuf.wrappers['.google.protobuf.ListValue'] = listWrapper as unknown as protobuf.IWrapper;
}
