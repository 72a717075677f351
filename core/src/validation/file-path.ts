import { Errors } from '../errors.js';

export const MAX_FILE_PATH = 1024;

/**
 * A stored file's path (run files, artifact files): relative, "/"-separated,
 * at most 1024 characters, no empty, "." or ".." segments, no backslashes,
 * drive letters, control characters or percent-encoded dots, slashes and
 * NULs — so it can never name anything outside its folder when files are
 * written back to disk (a download-all, a sync, an artifact download).
 */
export function checkFilePath(path: unknown, field = 'path'): string {
  const invalid = (why: string): never => {
    throw Errors.VALIDATION(`The file path ${JSON.stringify(String(path).slice(0, 100))} is invalid: ${why}. Use a relative path such as "media/images/sample.png".`, [
      { field, message: why },
    ]);
  };
  if (typeof path !== 'string' || !path) return invalid('it is required');
  if (path.length > MAX_FILE_PATH) return invalid(`it is longer than ${MAX_FILE_PATH} characters`);
  if (/[\u0000-\u001f\u007f]/.test(path)) return invalid('it contains control characters');
  if (path.includes('\\')) return invalid('it contains a backslash; separate directories with "/"');
  if (/%(2e|2f|5c|00)/i.test(path)) return invalid('it contains a percent-encoded ".", "/", "\\" or NUL; give the path decoded');
  if (path.startsWith('/')) return invalid('it is absolute; give it relative to its folder');
  if (/^[A-Za-z]:/.test(path)) return invalid('it starts with a drive letter');
  for (const seg of path.split('/')) {
    if (seg === '') return invalid('it has an empty segment ("//" or a trailing "/")');
    if (seg === '.' || seg === '..') return invalid(`it has a "${seg}" segment`);
  }
  return path;
}
