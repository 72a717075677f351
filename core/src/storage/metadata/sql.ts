import type { SqlValue } from '@wanllmdb/core';

/**
 * A piece of SQL with its bound values, in `?` placeholder order. Values
 * interpolated into the `sql` tag become placeholders, never text, so user
 * input reaches the database only as parameters. Fragments nest.
 */
export interface Sql {
  readonly text: string;
  readonly params: readonly SqlValue[];
}

const isSql = (v: unknown): v is Sql => typeof v === 'object' && v !== null && 'text' in v && 'params' in v;

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
