import { containsPattern, Errors, type Dialect } from '@wanllmdb/core';
import {
  columnExpr,
  jsonContains,
  jsonIsBool,
  jsonNumber,
  jsonText,
  resolveField,
  RUN_STATES,
  tagsContain,
  type RunField,
} from './run-fields.js';
import { joinSql, raw, sql, type Sql } from '@wanllmdb/core';

/**
 * The run filter language, parsed by hand (recursive descent) into a tree
 * and compiled to parameterised SQL for either dialect.
 *
 *   filter     := or
 *   or         := and ( OR and )*
 *   and        := unary ( AND unary )*
 *   unary      := NOT unary | primary
 *   primary    := "(" or ")" | comparison
 *   comparison := field op value | field CONTAINS string
 *   op         := = | != | < | <= | > | >=
 *   value      := number | string | TRUE | FALSE
 *   field      := name ( "." key )*       e.g. state, config.model.layers, summary.train/loss
 *
 * Keywords are case-insensitive; strings are "double" or 'single' quoted
 * with backslash escapes. Comparisons are two-valued: one whose field is
 * missing or of another type than the value (a string compared with a
 * number) is false — it never errors and never yields NULL, so NOT and
 * != behave as written.
 */
export type CompareOp = '=' | '!=' | '<' | '<=' | '>' | '>=';
export type Literal = { type: 'number'; value: number } | { type: 'string'; value: string } | { type: 'bool'; value: boolean };

export type FilterExpr =
  | { kind: 'and' | 'or'; left: FilterExpr; right: FilterExpr }
  | { kind: 'not'; expr: FilterExpr }
  | { kind: 'compare'; field: RunField; op: CompareOp; value: Literal; at: number }
  | { kind: 'contains'; field: RunField; value: string; at: number };

export const MAX_FILTER_LENGTH = 4096;
const MAX_DEPTH = 64;
const MAX_COMPARISONS = 100;

type Token =
  | { t: 'lparen' | 'rparen' | 'end'; at: number; text: string }
  | { t: 'op'; at: number; text: string; op: CompareOp }
  | { t: 'number'; at: number; text: string; value: number }
  | { t: 'string'; at: number; text: string; value: string }
  | { t: 'word'; at: number; text: string };

const KEYWORDS = new Set(['AND', 'OR', 'NOT', 'CONTAINS', 'TRUE', 'FALSE']);
const NUMBER = /^-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/;
const WORD = /^[A-Za-z_][A-Za-z0-9_./-]*/;
const OPS: CompareOp[] = ['<=', '>=', '!=', '=', '<', '>'];

function syntaxError(text: string, at: number, expected: string, found: string): never {
  const column = at + 1;
  const before = text.slice(Math.max(0, at - 30), at).trim();
  const where = before ? ` (after ${JSON.stringify(at > 30 ? `…${before}` : before)})` : '';
  throw Errors.VALIDATION(
    `The filter is invalid at character ${column}${where}: expected ${expected}, found ${found}. ` +
      'Write comparisons such as config.lr > 0.01 AND state = "finished" (operators = != < <= > >=, CONTAINS, AND, OR, NOT, parentheses).',
    [{ field: 'filter', message: `character ${column}: expected ${expected}, found ${found}` }],
  );
}

const describeToken = (tok: Token) => (tok.t === 'end' ? 'the end of the filter' : JSON.stringify(tok.text.length > 40 ? `${tok.text.slice(0, 40)}…` : tok.text));

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (/\s/.test(ch)) {
      i++;
      continue;
    }
    const rest = text.slice(i);
    if (ch === '(' || ch === ')') {
      tokens.push({ t: ch === '(' ? 'lparen' : 'rparen', at: i, text: ch });
      i++;
      continue;
    }
    const op = OPS.find((o) => rest.startsWith(o));
    if (op) {
      tokens.push({ t: 'op', at: i, text: op, op });
      i += op.length;
      continue;
    }
    if (ch === '"' || ch === "'") {
      let value = '';
      let j = i + 1;
      for (;;) {
        if (j >= text.length) syntaxError(text, i, `a closing ${ch}`, 'the end of the filter');
        const c = text[j]!;
        if (c === '\\') {
          const next = text[j + 1];
          if (next === undefined) syntaxError(text, j, 'an escaped character after \\', 'the end of the filter');
          value += next === 'n' ? '\n' : next === 't' ? '\t' : next;
          j += 2;
        } else if (c === ch) {
          j++;
          break;
        } else {
          value += c;
          j++;
        }
      }
      tokens.push({ t: 'string', at: i, text: text.slice(i, j), value });
      i = j;
      continue;
    }
    const num = NUMBER.exec(rest);
    if (num) {
      const after = rest[num[0].length];
      if (after !== undefined && /[A-Za-z_]/.test(after)) syntaxError(text, i, 'a number', JSON.stringify(rest.split(/[\s()]/)[0]));
      tokens.push({ t: 'number', at: i, text: num[0], value: Number(num[0]) });
      i += num[0].length;
      continue;
    }
    const word = WORD.exec(rest);
    if (word) {
      tokens.push({ t: 'word', at: i, text: word[0] });
      i += word[0].length;
      continue;
    }
    syntaxError(text, i, 'a field, value, operator or parenthesis', JSON.stringify(ch));
  }
  tokens.push({ t: 'end', at: text.length, text: '' });
  return tokens;
}

class Parser {
  private pos = 0;
  private depth = 0;
  private comparisons = 0;

  constructor(
    private readonly text: string,
    private readonly tokens: Token[],
  ) {}

  parse(): FilterExpr {
    const expr = this.or();
    const tok = this.peek();
    if (tok.t !== 'end') {
      syntaxError(this.text, tok.at, tok.t === 'rparen' ? 'AND, OR or the end of the filter (unbalanced ")")' : 'AND, OR or the end of the filter', describeToken(tok));
    }
    return expr;
  }

  private peek(): Token {
    return this.tokens[this.pos]!;
  }

  private next(): Token {
    return this.tokens[this.pos++]!;
  }

  private isKeyword(tok: Token, kw: string): boolean {
    return tok.t === 'word' && tok.text.toUpperCase() === kw;
  }

  private or(): FilterExpr {
    let left = this.and();
    while (this.isKeyword(this.peek(), 'OR')) {
      this.next();
      left = { kind: 'or', left, right: this.and() };
    }
    return left;
  }

  private and(): FilterExpr {
    let left = this.unary();
    while (this.isKeyword(this.peek(), 'AND')) {
      this.next();
      left = { kind: 'and', left, right: this.unary() };
    }
    return left;
  }

  private unary(): FilterExpr {
    if (++this.depth > MAX_DEPTH) syntaxError(this.text, this.peek().at, `at most ${MAX_DEPTH} levels of NOT and parentheses`, 'deeper nesting');
    try {
      if (this.isKeyword(this.peek(), 'NOT')) {
        this.next();
        return { kind: 'not', expr: this.unary() };
      }
      return this.primary();
    } finally {
      this.depth--;
    }
  }

  private primary(): FilterExpr {
    const tok = this.peek();
    if (tok.t === 'lparen') {
      this.next();
      const inner = this.or();
      const close = this.next();
      if (close.t !== 'rparen') syntaxError(this.text, close.at, 'AND, OR or ")"', describeToken(close));
      return inner;
    }
    return this.comparison();
  }

  private comparison(): FilterExpr {
    const tok = this.next();
    if (tok.t !== 'word' || KEYWORDS.has(tok.text.toUpperCase())) {
      syntaxError(this.text, tok.at, 'a field such as state, tags, config.lr or summary.loss', describeToken(tok));
    }
    if (++this.comparisons > MAX_COMPARISONS) syntaxError(this.text, tok.at, `at most ${MAX_COMPARISONS} comparisons`, 'more');
    const field = resolveField(tok.text);
    if (typeof field === 'string') {
      throw Errors.VALIDATION(`The filter is invalid at character ${tok.at + 1}: ${field}.`, [{ field: 'filter', message: `character ${tok.at + 1}: ${field}` }]);
    }
    const opTok = this.next();
    if (this.isKeyword(opTok, 'CONTAINS')) {
      const v = this.next();
      if (v.t !== 'string') syntaxError(this.text, v.at, 'a "string" after CONTAINS', describeToken(v));
      if (field.kind === 'column' && field.type !== 'text' && field.type !== 'tags' && field.type !== 'state') {
        this.fieldError(tok, `${field.name} is not text; CONTAINS works on tags, text fields, config.* and summary.*`);
      }
      return { kind: 'contains', field, value: v.value, at: tok.at };
    }
    if (opTok.t !== 'op') syntaxError(this.text, opTok.at, 'an operator (= != < <= > >= or CONTAINS)', describeToken(opTok));
    const value = this.literal();
    this.checkTypes(tok, field, opTok.op, value);
    return { kind: 'compare', field, op: opTok.op, value, at: tok.at };
  }

  private literal(): Literal {
    const tok = this.next();
    if (tok.t === 'number') return { type: 'number', value: tok.value };
    if (tok.t === 'string') return { type: 'string', value: tok.value };
    if (this.isKeyword(tok, 'TRUE')) return { type: 'bool', value: true };
    if (this.isKeyword(tok, 'FALSE')) return { type: 'bool', value: false };
    return syntaxError(this.text, tok.at, 'a value (a number, a "string", true or false)', describeToken(tok));
  }

  /** A column's values are whole numbers in its range (see NumericRange): refused here, not by the database. */
  private checkRange(tok: Token, field: RunField, n: number, orElse: string): void {
    const range = field.kind === 'column' ? field.range : undefined;
    if (!range || (Number.isInteger(n) && n >= range.min && n <= range.max)) return;
    this.fieldError(tok, `${field.name} holds ${range.what}: compare it with a whole number from ${range.min} to ${range.max}${orElse}, not ${n}`);
  }

  private fieldError(tok: Token, why: string): never {
    throw Errors.VALIDATION(`The filter is invalid at character ${tok.at + 1}: ${why}.`, [{ field: 'filter', message: `character ${tok.at + 1}: ${why}` }]);
  }

  private checkTypes(tok: Token, field: RunField, op: CompareOp, value: Literal): void {
    if (value.type === 'bool' && op !== '=' && op !== '!=') this.fieldError(tok, 'true and false can only be compared with = or !=');
    // A literal such as 1e400 overflows to Infinity: it is not the number written, so it is refused, not compared.
    if (value.type === 'number' && !Number.isFinite(value.value)) {
      this.fieldError(tok, `the number compared with ${field.name} is beyond the range of a double (±${Number.MAX_VALUE})`);
    }
    if (field.kind === 'json') return;
    switch (field.type) {
      case 'tags':
        return this.fieldError(tok, 'tags is a list; write tags CONTAINS "name"');
      case 'text':
        if (value.type !== 'string') this.fieldError(tok, `${field.name} is text; compare it with a "string"`);
        return;
      case 'state':
        if (value.type !== 'string') this.fieldError(tok, `state is text; compare it with one of ${RUN_STATES.map((s) => `"${s}"`).join(', ')}`);
        if ((op === '=' || op === '!=') && !(RUN_STATES as readonly string[]).includes(value.value as string)) {
          this.fieldError(tok, `state ${JSON.stringify(value.value)} does not exist; states are ${RUN_STATES.join(', ')}`);
        }
        return;
      case 'number':
        if (value.type !== 'number') this.fieldError(tok, `${field.name} is a number`);
        this.checkRange(tok, field, value.value as number, '');
        return;
      case 'time':
        if (value.type === 'bool') this.fieldError(tok, `${field.name} is a time: compare it with epoch milliseconds or an ISO 8601 "string"`);
        if (value.type === 'string' && Number.isNaN(Date.parse(value.value))) {
          this.fieldError(tok, `${JSON.stringify(value.value)} is not a date; use ISO 8601 such as "2025-01-31T12:00:00Z" or epoch milliseconds`);
        }
        if (value.type === 'number') this.checkRange(tok, field, value.value, ' or an ISO 8601 "string"');
        return;
    }
  }
}

/** Parses a filter expression; empty or blank text means "no filter". Throws WLDB_ERR_VALIDATION. */
export function parseRunFilter(text: string): FilterExpr | undefined {
  if (text.length > MAX_FILTER_LENGTH) {
    throw Errors.VALIDATION(`The filter is longer than ${MAX_FILTER_LENGTH} characters. Shorten it.`, [{ field: 'filter', message: `longer than ${MAX_FILTER_LENGTH} characters` }]);
  }
  if (!text.trim()) return undefined;
  return new Parser(text, tokenize(text)).parse();
}

const FALSE = (d: Dialect) => raw(d === 'sqlite' ? '0' : 'FALSE');

/** `COALESCE(cond, FALSE)`: comparisons with NULL are false, not unknown. */
const twoValued = (cond: Sql, d: Dialect) => sql`COALESCE(${cond}, ${FALSE(d)})`;

function compileCompare(e: Extract<FilterExpr, { kind: 'compare' }>, d: Dialect): Sql {
  const { field, value } = e;
  const op = raw(` ${e.op === '!=' ? '<>' : e.op} `);
  if (field.kind === 'json') {
    if (value.type === 'bool') {
      const is = jsonIsBool(field, d, value.value);
      const isOther = jsonIsBool(field, d, !value.value);
      return e.op === '=' ? twoValued(is, d) : twoValued(isOther, d);
    }
    const left = value.type === 'number' ? jsonNumber(field, d) : jsonText(field, d);
    return twoValued(sql`${left}${op}${value.value}`, d);
  }
  const left = columnExpr(field, d);
  let bound: number | string = value.value as number | string;
  if (field.type === 'time' && value.type === 'string') bound = Date.parse(value.value);
  return twoValued(sql`${left}${op}${bound}`, d);
}

function compileContains(e: Extract<FilterExpr, { kind: 'contains' }>, d: Dialect): Sql {
  const { field, value } = e;
  if (field.kind === 'json') return twoValued(jsonContains(field, d, value), d);
  if (field.type === 'tags') return tagsContain(d, value);
  return twoValued(sql`LOWER(${raw(field.column)}) LIKE ${containsPattern(value)} ESCAPE '\\'`, d);
}

/** Relative cost of evaluating a condition per row: plain columns, then JSON paths. */
function cost(e: FilterExpr): number {
  switch (e.kind) {
    case 'and':
    case 'or':
      return cost(e.left) + cost(e.right);
    case 'not':
      return cost(e.expr);
    default:
      return e.field.kind === 'column' ? (e.field.type === 'tags' ? 4 : 1) : e.kind === 'contains' ? 8 : 4;
  }
}

function andChain(e: FilterExpr, out: FilterExpr[] = []): FilterExpr[] {
  if (e.kind === 'and') {
    andChain(e.left, out);
    andChain(e.right, out);
  } else out.push(e);
  return out;
}

/**
 * The filter as a SQL condition over `runs r`. The operands of an AND run
 * cheapest first (SQLite evaluates them in the order written and stops at
 * the first false); conditions have no side effects and never fail, so the
 * order cannot change the answer.
 */
export function compileRunFilter(expr: FilterExpr, d: Dialect): Sql {
  switch (expr.kind) {
    case 'and': {
      const parts = andChain(expr).map((e, i) => ({ e, i, c: cost(e) }));
      parts.sort((a, b) => a.c - b.c || a.i - b.i);
      return sql`(${joinSql(parts.map((p) => compileRunFilter(p.e, d)), ' AND ')})`;
    }
    case 'or':
      return sql`(${compileRunFilter(expr.left, d)} OR ${compileRunFilter(expr.right, d)})`;
    case 'not':
      return sql`(NOT ${compileRunFilter(expr.expr, d)})`;
    case 'compare':
      return compileCompare(expr, d);
    case 'contains':
      return compileContains(expr, d);
  }
}

