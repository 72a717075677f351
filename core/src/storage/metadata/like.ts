/**
 * A user's text as a LIKE pattern that matches it literally: `\`, `%` and `_`
 * are escaped with `\` (use `LIKE ? ESCAPE '\'`, portable to SQLite and PostgreSQL).
 */
export const likeEscape = (s: string): string => s.replace(/[\\%_]/g, (c) => `\\${c}`);

/** A case-insensitive "contains" pattern for `LOWER(col) LIKE ? ESCAPE '\'`. */
export const containsPattern = (s: string): string => `%${likeEscape(s.toLowerCase())}%`;
