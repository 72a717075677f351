import type { JsonObject, JsonValue, tracking } from '@wanllmdb/proto';
import { isPlainObject } from './json-values.js';

type ConfigDiffEntry = tracking.v1.ConfigDiffEntry;

/**
 * Deep-merges `patch` into `base` the way JSON Merge Patch (RFC 7396) does:
 * objects merge key by key, anything else (numbers, strings, arrays)
 * replaces, and a key set to null is removed. Neither input is changed.
 */
export function mergeConfig(base: JsonObject, patch: JsonObject): JsonObject {
  const out: JsonObject = { ...base };
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else if (isPlainObject(v)) out[k] = mergeConfig(isPlainObject(out[k]) ? out[k] : {}, v);
    else out[k] = v;
  }
  return out;
}

/** `patch` with null members removed at every depth (what a replace stores). */
export function withoutNulls(patch: JsonObject): JsonObject {
  return mergeConfig({}, patch);
}

export function jsonEqual(a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  if (a === b) return true;
  if (a === null || b === null || a === undefined || b === undefined || typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]));
  const ka = Object.keys(a);
  const kb = Object.keys(b as JsonObject);
  return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && jsonEqual((a as JsonObject)[k], (b as JsonObject)[k]));
}

/**
 * Leaves of a config by dotted path: `{model: {layers: 4}}` → `model.layers`.
 * Arrays, scalars and empty objects are leaves.
 */
export function flattenConfig(config: JsonObject, prefix = '', out = new Map<string, JsonValue>()): Map<string, JsonValue> {
  for (const [k, v] of Object.entries(config)) {
    const path = prefix ? `${prefix}.${k}` : k;
    if (isPlainObject(v) && Object.keys(v).length > 0) flattenConfig(v, path, out);
    else out.set(path, v);
  }
  return out;
}

/** Code-point order, independent of locale, so two servers list a diff alike. */
const byCodePoint = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * What differs between two configs, by dotted path, sorted by path:
 * "removed" (only in `mine`), "added" (only in `other`), "changed".
 */
export function diffConfigs(mine: JsonObject, other: JsonObject): ConfigDiffEntry[] {
  const a = flattenConfig(mine);
  const b = flattenConfig(other);
  const paths = [...new Set([...a.keys(), ...b.keys()])].sort(byCodePoint);
  const out: ConfigDiffEntry[] = [];
  for (const path of paths) {
    const inA = a.has(path);
    const inB = b.has(path);
    if (inA && !inB) out.push({ path, kind: 'removed', value: a.get(path)! });
    else if (!inA && inB) out.push({ path, kind: 'added', otherValue: b.get(path)! });
    else if (!jsonEqual(a.get(path), b.get(path))) out.push({ path, kind: 'changed', value: a.get(path)!, otherValue: b.get(path)! });
  }
  return out;
}
