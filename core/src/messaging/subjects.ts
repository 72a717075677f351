import { Errors } from '../errors.js';

/**
 * Naming rules shared by every messaging adapter, so that a name the
 * in-process adapter accepts is also a valid NATS subject (and vice versa).
 *
 * A subject is dot-separated tokens of [A-Za-z0-9_-]. A subscription pattern
 * may also use `*` (exactly one token) and `>` (one or more tokens, last
 * position only). A queue name is a single token, because it also names a
 * JetStream durable consumer, where dots are not allowed.
 */

const TOKEN = /^[A-Za-z0-9_-]+$/;
const MAX_SUBJECT_LENGTH = 256;
const MAX_QUEUE_NAME_LENGTH = 64;

const SUBJECT_RULE =
  'subjects are dot-separated tokens of letters, digits, "_" and "-" (e.g. "runs.finished")';

function subjectInvalid(subject: string, why: string) {
  return Errors.BUS_SUBJECT_INVALID(
    `Event subject ${JSON.stringify(subject)} is invalid: ${why}. Use a subject such as "projects.created"; ${SUBJECT_RULE}.`,
    [{ field: 'subject', message: why }],
  );
}

function tokensOf(subject: unknown): string[] {
  if (typeof subject !== 'string' || subject.length === 0) {
    throw subjectInvalid(String(subject), 'it is empty or not a string');
  }
  if (subject.length > MAX_SUBJECT_LENGTH) {
    throw subjectInvalid(subject, `it is longer than ${MAX_SUBJECT_LENGTH} characters`);
  }
  return subject.split('.');
}

/** Throws BUS_SUBJECT_INVALID unless `subject` is a concrete subject (no wildcards). */
export function assertPublishSubject(subject: string): void {
  for (const token of tokensOf(subject)) {
    if (token === '*' || token === '>') {
      throw subjectInvalid(subject, 'wildcards ("*", ">") may only be used when subscribing');
    }
    if (!TOKEN.test(token)) throw subjectInvalid(subject, `the token ${JSON.stringify(token)} is not allowed`);
  }
}

/** Throws BUS_SUBJECT_INVALID unless `pattern` is a subject that may use `*` and a final `>`. */
export function assertSubscribePattern(pattern: string): void {
  const tokens = tokensOf(pattern);
  tokens.forEach((token, i) => {
    if (token === '*') return;
    if (token === '>') {
      if (i !== tokens.length - 1) throw subjectInvalid(pattern, '">" may only be the last token');
      return;
    }
    if (!TOKEN.test(token)) throw subjectInvalid(pattern, `the token ${JSON.stringify(token)} is not allowed`);
  });
}

/** True when the concrete `subject` matches `pattern` (NATS wildcard semantics). */
export function subjectMatches(pattern: string, subject: string): boolean {
  const want = pattern.split('.');
  const have = subject.split('.');
  for (let i = 0; i < want.length; i++) {
    const token = want[i];
    if (token === '>') return have.length > i;
    if (i >= have.length) return false;
    if (token !== '*' && token !== have[i]) return false;
  }
  return want.length === have.length;
}

/** Throws JOB_QUEUE_INVALID unless `queue` is one token of [A-Za-z0-9_-], at most 64 characters. */
export function assertQueueName(queue: string): void {
  if (typeof queue === 'string' && queue.length <= MAX_QUEUE_NAME_LENGTH && TOKEN.test(queue)) return;
  throw Errors.JOB_QUEUE_INVALID(
    `Job queue name ${JSON.stringify(queue)} is invalid. Use one word of letters, digits, "_" and "-" ` +
      `(at most ${MAX_QUEUE_NAME_LENGTH} characters, no dots or spaces), e.g. "sweep-trials".`,
    [{ field: 'queue', message: 'must match [A-Za-z0-9_-]{1,64}' }],
  );
}

/**
 * Normalises a deployment's subject prefix: `""` (none), or tokens ending in
 * a dot (`wldb` and `wldb.` both give `wldb.`). Throws CONFIG_INVALID naming
 * `setting` when it is not made of valid tokens.
 */
export function normaliseSubjectPrefix(prefix: string, setting: string): string {
  if (prefix === '') return '';
  const withDot = prefix.endsWith('.') ? prefix : `${prefix}.`;
  const tokens = withDot.slice(0, -1).split('.');
  if (tokens.every((t) => TOKEN.test(t))) return withDot;
  throw Errors.CONFIG_INVALID(
    `The subject prefix ${JSON.stringify(prefix)} in ${setting} is invalid. ` +
      `Use dot-separated tokens of letters, digits, "_" and "-", e.g. "wldb." or "team-a.wldb.".`,
    [{ field: setting, message: 'prefix must be tokens of [A-Za-z0-9_-] separated by dots' }],
  );
}
