import type { Row, SqlExecutor, SqlValue } from './metadata-store.js';

/**
 * The one way plugins build SQL (ADR 0018): text with `?` placeholders, in
 * the portable dialect both adapters take (metadata-store.ts), assembled
 * with the `sql` tag. Values interpolated into the tag become placeholders,
 * never text, so a caller's input reaches the database only as parameters.
 * Fragments nest; run one with `db.query(s.text, s.params)`.
 */
export interface Sql {
  readonly text: string;
  readonly params: readonly SqlValue[];
}

const isSql = (v: unknown): v is Sql => typeof v === 'object' && v !== null && 'text' in v && 'params' in v && !(v instanceof Uint8Array);

export function sql(strings: TemplateStringsArray, ...values: (Sql | SqlValue)[]): Sql {
  let text = strings[0]!;
  const params: SqlValue[] = [];
  values.forEach((v, i) => {
    if (isSql(v)) {
      text += v.text;
      params.push(...v.params);
    } else {
      text += '?';
      params.push(v);
    }
    text += strings[i + 1]!;
  });
  return { text, params };
}

/** Trusted SQL text (column names, keywords chosen by code, never by a caller). */
export const raw = (text: string): Sql => ({ text, params: [] });

export function joinSql(parts: readonly Sql[], separator: string): Sql {
  return { text: parts.map((p) => p.text).join(separator), params: parts.flatMap((p) => p.params) };
}

/** `(?, ?, …)` of the values, for `IN` (give at least one; an empty list is no valid SQL). */
export const inList = (values: readonly SqlValue[]): Sql => ({ text: `(${values.map(() => '?').join(', ')})`, params: values });

/** `WHERE a AND b …`, or nothing when there is no condition. */
export const whereAll = (conditions: readonly Sql[]): Sql => (conditions.length ? sql`WHERE ${joinSql(conditions, ' AND ')}` : raw(''));

/** `(a OR b …)`, or a condition nothing meets when there is none. */
export const anyOf = (conditions: readonly Sql[]): Sql => (conditions.length ? sql`(${joinSql(conditions, ' OR ')})` : raw('1 = 0'));

/** `a = ?, b = ?` for the columns whose value is given (undefined ones are left out). */
export function assignments(columns: Readonly<Record<string, SqlValue | undefined>>): Sql {
  return joinSql(
    Object.entries(columns)
      .filter(([, v]) => v !== undefined)
      .map(([column, v]) => sql`${raw(column)} = ${v as SqlValue}`),
    ', ',
  );
}

/**
 * One page of a numbered list and the total it is a page of: `SELECT
 * <columns> <from> ORDER BY <orderBy> LIMIT … OFFSET …` and `SELECT COUNT(*)
 * <from>`, where `from` is the FROM clause with its WHERE (`sql\`FROM t ${whereAll(…)}\``).
 */
export async function selectPage<T extends Row>(
  db: SqlExecutor,
  q: { columns: string; from: Sql; orderBy: string; limit: number; offset: number },
): Promise<{ rows: T[]; total: number }> {
  const count = sql`SELECT COUNT(*) AS n ${q.from}`;
  const page = sql`SELECT ${raw(q.columns)} ${q.from} ORDER BY ${raw(q.orderBy)} LIMIT ${q.limit} OFFSET ${q.offset}`;
  const [counted] = await db.query<{ n: number }>(count.text, count.params);
  const rows = await db.query<T>(page.text, page.params);
  return { rows, total: Number(counted?.n ?? 0) };
}
