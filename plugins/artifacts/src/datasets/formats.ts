/**
 * The file formats and record schemas LLM training data comes in:
 * JSONL (and JSON arrays), CSV and Parquet files holding records of
 * alpaca (`instruction`, `input`, `output`), sharegpt (`conversations` of
 * `from`/`value`), OpenAI chat (`messages` of `role`/`content`) or plain
 * `text`.
 */

export const FILE_FORMATS = ['jsonl', 'json', 'csv', 'parquet'] as const;
export type FileFormat = (typeof FILE_FORMATS)[number];

export const RECORD_FORMATS = ['alpaca', 'sharegpt', 'messages', 'text'] as const;
export type RecordFormat = (typeof RECORD_FORMATS)[number];

/** A problem of one record: the field at fault ('' for the whole record) and why. */
export interface Problem {
  field: string;
  reason: string;
}

/** Problems listed per row at most (all are counted). */
export const MAX_PROBLEMS_PER_ROW = 5;

/** The data format of a file, from its name; undefined for anything else (images, READMEs …). */
export function fileFormatOf(path: string): FileFormat | undefined {
  const name = path.toLowerCase();
  if (name.endsWith('.jsonl') || name.endsWith('.ndjson')) return 'jsonl';
  if (name.endsWith('.json')) return 'json';
  if (name.endsWith('.csv')) return 'csv';
  if (name.endsWith('.parquet')) return 'parquet';
  return undefined;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array) && !(v instanceof Date);

/** A cell that holds a list (CSV cells, Parquet JSON columns hold it as JSON text). */
function listOf(v: unknown): unknown {
  if (typeof v === 'string' && /^\s*\[/.test(v)) {
    try {
      return JSON.parse(v) as unknown;
    } catch {
      return v;
    }
  }
  return v;
}

/** The record schema a record is written in, from the fields it has; undefined when it fits none. */
export function detectFormat(record: unknown): RecordFormat | undefined {
  if (!isObject(record)) return undefined;
  if ('conversations' in record) return 'sharegpt';
  if ('messages' in record) return 'messages';
  if ('instruction' in record || ('output' in record && 'input' in record)) return 'alpaca';
  if ('text' in record) return 'text';
  return undefined;
}

const typeName = (v: unknown): string => (v === null || v === undefined ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : `a ${typeof v}`);

function requireString(out: Problem[], record: Record<string, unknown>, field: string, at: string, opts: { optional?: boolean; nonEmpty?: boolean } = {}): void {
  const v = record[field];
  if (v === undefined || v === null) {
    if (!opts.optional) out.push({ field: at, reason: 'is missing' });
    return;
  }
  if (typeof v !== 'string') out.push({ field: at, reason: `must be a string, not ${typeName(v)}` });
  else if (opts.nonEmpty && !v.trim()) out.push({ field: at, reason: 'is empty' });
}

const SHAREGPT_FROM = new Set(['human', 'user', 'gpt', 'assistant', 'system', 'function_call', 'observation', 'tool', 'function']);
const MESSAGE_ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool', 'function']);

/** What is wrong with `record` as a `format` record (empty: nothing). */
export function checkRecord(format: RecordFormat, record: unknown): Problem[] {
  const out: Problem[] = [];
  if (!isObject(record)) return [{ field: '', reason: `must be a JSON object, not ${typeName(record)}` }];
  switch (format) {
    case 'alpaca':
      requireString(out, record, 'instruction', 'instruction', { nonEmpty: true });
      requireString(out, record, 'input', 'input', { optional: true });
      requireString(out, record, 'output', 'output', { nonEmpty: true });
      break;
    case 'text':
      requireString(out, record, 'text', 'text', { nonEmpty: true });
      break;
    case 'sharegpt': {
      const turns = listOf(record.conversations);
      if (turns === undefined || turns === null) out.push({ field: 'conversations', reason: 'is missing' });
      else if (!Array.isArray(turns)) out.push({ field: 'conversations', reason: `must be an array of {from, value}, not ${typeName(turns)}` });
      else if (!turns.length) out.push({ field: 'conversations', reason: 'is empty: a conversation needs at least one turn' });
      else {
        turns.forEach((turn, i) => {
          const at = `conversations[${i}]`;
          if (!isObject(turn)) return void out.push({ field: at, reason: `must be an object {from, value}, not ${typeName(turn)}` });
          requireString(out, turn, 'from', `${at}.from`, { nonEmpty: true });
          if (typeof turn.from === 'string' && turn.from.trim() && !SHAREGPT_FROM.has(turn.from)) {
            out.push({ field: `${at}.from`, reason: `"${turn.from.slice(0, 40)}" is not a sharegpt speaker (human, gpt, system, function_call, observation, tool)` });
          }
          requireString(out, turn, 'value', `${at}.value`);
        });
      }
      break;
    }
    case 'messages': {
      const messages = listOf(record.messages);
      if (messages === undefined || messages === null) out.push({ field: 'messages', reason: 'is missing' });
      else if (!Array.isArray(messages)) out.push({ field: 'messages', reason: `must be an array of {role, content}, not ${typeName(messages)}` });
      else if (!messages.length) out.push({ field: 'messages', reason: 'is empty: a conversation needs at least one message' });
      else {
        messages.forEach((m, i) => {
          const at = `messages[${i}]`;
          if (!isObject(m)) return void out.push({ field: at, reason: `must be an object {role, content}, not ${typeName(m)}` });
          if (m.role === undefined || m.role === null) out.push({ field: `${at}.role`, reason: 'is missing' });
          else if (typeof m.role !== 'string' || !MESSAGE_ROLES.has(m.role)) out.push({ field: `${at}.role`, reason: `must be one of system, developer, user, assistant, tool, not ${JSON.stringify(m.role).slice(0, 40)}` });
          const content = m.content;
          const calls = Array.isArray(m.tool_calls) && m.tool_calls.length > 0;
          if (content === undefined || content === null) {
            if (!calls) out.push({ field: `${at}.content`, reason: 'is missing (only an assistant message with tool_calls may leave it out)' });
          } else if (Array.isArray(content)) {
            content.forEach((part, j) => {
              if (!isObject(part) || typeof part.type !== 'string') out.push({ field: `${at}.content[${j}]`, reason: 'must be a content part such as {"type": "text", "text": "…"}' });
            });
          } else if (typeof content !== 'string') out.push({ field: `${at}.content`, reason: `must be a string or an array of content parts, not ${typeName(content)}` });
        });
      }
      break;
    }
  }
  return out;
}

/** Every string in a value, summed by length. */
function stringLength(v: unknown, depth = 0): number {
  if (typeof v === 'string') return v.length;
  if (depth > 16) return 0;
  if (Array.isArray(v)) return v.reduce<number>((n, x) => n + stringLength(x, depth + 1), 0);
  if (isObject(v)) return Object.values(v).reduce<number>((n, x) => n + stringLength(x, depth + 1), 0);
  return 0;
}

/** Length of a record's text (UTF-16 code units): the schema's text fields, else every string in it. */
export function textLength(format: RecordFormat | undefined, record: unknown): number {
  if (!isObject(record)) return stringLength(record);
  const str = (v: unknown) => (typeof v === 'string' ? v.length : 0);
  switch (format) {
    case 'alpaca':
      return str(record.instruction) + str(record.input) + str(record.output);
    case 'text':
      return str(record.text);
    case 'sharegpt': {
      const turns = listOf(record.conversations);
      return Array.isArray(turns) ? turns.reduce<number>((n, t) => n + (isObject(t) ? str(t.value) : 0), 0) : 0;
    }
    case 'messages': {
      const messages = listOf(record.messages);
      if (!Array.isArray(messages)) return 0;
      return messages.reduce<number>((n, m) => {
        if (!isObject(m)) return n;
        if (Array.isArray(m.content)) return n + m.content.reduce<number>((k, p) => k + (isObject(p) ? str(p.text) : 0), 0);
        return n + str(m.content);
      }, 0);
    }
    default:
      return stringLength(record);
  }
}

/** A value as JSON can carry it (google.protobuf.Struct): Parquet's bigints, dates and bytes made plain. */
export function toJsonValue(v: unknown, depth = 0): unknown {
  if (v === undefined || v === null) return null;
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  if (typeof v === 'number') return Number.isFinite(v) ? v : String(v);
  if (typeof v === 'string' || typeof v === 'boolean') return v;
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? null : v.toISOString();
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
  if (depth > 32) return null;
  if (Array.isArray(v) || ArrayBuffer.isView(v)) return Array.from(v as ArrayLike<unknown>, (x) => toJsonValue(x, depth + 1));
  if (typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = toJsonValue(x, depth + 1);
    return out;
  }
  return String(v);
}
