/**
 * Time as the API shows it: RFC 3339 text in UTC (`2026-12-07T15:00:00.000Z`)
 * of an epoch-milliseconds value, the way every table stores instants; ''
 * for none (a NULL column). Databases may hand back BIGINTs as text.
 */
export function isoTime(ms: number | string | bigint | null | undefined): string {
  return ms === null || ms === undefined ? '' : new Date(Number(ms)).toISOString();
}
