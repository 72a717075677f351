import type { Dialect, SqlValue } from './metadata-store.js';
import { misuse } from './sql-errors.js';

/**
 * Builds the multi-row `INSERT … VALUES (…),(…)` statements behind
 * `insertMany`: one round trip per chunk instead of one per row, each chunk as
 * large as the dialect's bound-parameter limit allows.
 */
export interface MultiRowInsert {
  /** Rows in a full chunk. */
  readonly rowsPerStatement: number;
  /** The statement for a chunk of `rows` rows (at most rowsPerStatement). */
  sql(rows: number): string;
  /** The parameters of rows [from, to), flattened row by row, each passed through `bind`. */
  params(rows: readonly (readonly SqlValue[])[], from: number, to: number): SqlValue[];
}

// Table and column names are spliced into the SQL text, so only plain
// identifiers (optionally schema-qualified for the table) are accepted. They are
// left unquoted so they fold to the same case as the names in the migrations.
const COLUMN = /^[A-Za-z_][A-Za-z0-9_]*$/;
const TABLE = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/;

export function planMultiRowInsert(
  dialect: Dialect,
  table: string,
  columns: readonly string[],
  maxParameters: number,
  bind: (value: SqlValue) => SqlValue,
): MultiRowInsert {
  if (!TABLE.test(table)) throw misuse(`insertMany: table name ${JSON.stringify(table)} is not a plain SQL identifier; use letters, digits and underscores.`);
  if (columns.length === 0) throw misuse(`insertMany into ${table}: name at least one column.`);
  for (const column of columns) {
    if (!COLUMN.test(column)) {
      throw misuse(`insertMany into ${table}: column name ${JSON.stringify(column)} is not a plain SQL identifier; use letters, digits and underscores.`);
    }
  }
  const width = columns.length;
  const rowsPerStatement = Math.max(1, Math.floor(maxParameters / width));
  const head = `INSERT INTO ${table} (${columns.join(', ')}) VALUES `;

  const tuple =
    dialect === 'sqlite'
      ? (() => {
          const same = `(${new Array<string>(width).fill('?').join(',')})`;
          return () => same;
        })()
      : (row: number) => {
          const first = row * width;
          let text = '(';
          for (let c = 1; c <= width; c++) text += (c > 1 ? ',$' : '$') + (first + c);
          return text + ')';
        };

  return {
    rowsPerStatement,
    sql(rows) {
      const tuples = new Array<string>(rows);
      for (let r = 0; r < rows; r++) tuples[r] = tuple(r);
      return head + tuples.join(',');
    },
    params(rows, from, to) {
      const out = new Array<SqlValue>((to - from) * width);
      let i = 0;
      for (let r = from; r < to; r++) {
        const row = rows[r]!;
        if (row.length !== width) {
          throw misuse(`insertMany into ${table}: row ${r} has ${row.length} values but ${width} columns were named (${columns.join(', ')}).`);
        }
        for (let c = 0; c < width; c++) out[i++] = bind(row[c]!);
      }
      return out;
    },
  };
}
