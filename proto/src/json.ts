/** JSON values as google.protobuf.Struct / Value carry them. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };
/** google.protobuf.Empty */
export type Empty = Record<string, never>;
