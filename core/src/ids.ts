import { randomUUID } from 'node:crypto';
import { Errors } from './errors.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

/** True when `value` is a UUID (any case). */
export const isId = (value: unknown): value is string => typeof value === 'string' && UUID.test(value);

/** A new resource id (UUID v4, as in the design's schema). */
export const newId = (): string => randomUUID();

/** Throws WLDB_ERR_INVALID_ID unless `value` is a UUID; returns it lower-cased. */
export function assertId(value: unknown, what = 'id'): string {
  if (!isId(value)) {
    const shown = typeof value === 'string' ? JSON.stringify(value.slice(0, 64)) : String(value);
    throw Errors.INVALID_ID(`${what} ${shown} is not a valid id; ids are UUIDs such as 0b7e5c1a-3f0e-4c8e-9a57-3d1c2b4e5f60.`, [{ field: what, message: 'not a UUID' }]);
  }
  return value.toLowerCase();
}
