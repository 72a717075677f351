import { Errors } from '../errors.js';

/**
 * The one wire format of event and job payloads: JSON text. The in-process
 * adapters round-trip through it too, so a receiver never shares an object
 * with the sender and sees exactly what it would see over NATS (a Date
 * arrives as a string, `undefined` fields vanish).
 */

/**
 * NATS's default max_payload. Enforced by both adapters, so a payload that
 * works embedded does not start failing when the deployment moves to NATS.
 */
export const MAX_PAYLOAD_BYTES = 1024 * 1024;

/** JSON text of `data`; `undefined` (and other values JSON drops) become the empty payload. */
export function encodePayload(data: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(data) ?? '';
  } catch (err) {
    throw Errors.BUS_PAYLOAD_INVALID(
      'The message payload cannot be sent: it is not JSON-serialisable (a BigInt or a circular reference?). ' +
        'Send plain data: objects, arrays, strings, numbers, booleans and null.',
      [{ field: 'data', message: err instanceof Error ? err.message : String(err) }],
      err,
    );
  }
  const bytes = Buffer.byteLength(text);
  if (bytes > MAX_PAYLOAD_BYTES) {
    throw Errors.BUS_PAYLOAD_INVALID(
      `The message payload is ${bytes} bytes of JSON, more than the ${MAX_PAYLOAD_BYTES} allowed. ` +
        'Store large data as a blob or artifact and send its digest instead.',
      [{ field: 'data', message: `at most ${MAX_PAYLOAD_BYTES} bytes of JSON` }],
    );
  }
  return text;
}

/** The value `encodePayload` encoded; the empty payload decodes to `undefined`. */
export function decodePayload(text: string): unknown {
  return text === '' ? undefined : JSON.parse(text);
}
