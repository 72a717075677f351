import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const repo = fileURLToPath(new URL('..', import.meta.url));

/** The requirement files whose packages the tests' Python needs (the out-of-process plugin example's, for now). */
export const PYTHON_REQUIREMENTS = [join(repo, 'plugin-template/python/requirements.txt')];

/**
 * The Python virtual environment the tests use (`.venv` at the repository
 * root, git-ignored): made with the machine's python3 and filled from the
 * package index pip is configured with, once — again only when a
 * requirements file changes. Resolves to its bin folder.
 */
export async function ensurePythonEnv(): Promise<string> {
  const venv = join(repo, '.venv');
  const bin = join(venv, 'bin');
  const stamp = join(venv, '.wanllmdb-requirements');
  const wanted = PYTHON_REQUIREMENTS.map((f) => readFileSync(f, 'utf8')).join('\n');
  if (existsSync(join(bin, 'python')) && existsSync(stamp) && readFileSync(stamp, 'utf8') === wanted) return bin;
  const python = process.env.WANLLMDB_TEST_PYTHON ?? 'python3';
  try {
    if (!existsSync(join(bin, 'python'))) await run(python, ['-m', 'venv', venv]);
    // No retries against an index this machine cannot reach: the configured local index answers at once.
    await run(join(bin, 'pip'), ['install', '--quiet', ...PYTHON_REQUIREMENTS.flatMap((f) => ['-r', f])], {
      env: { ...process.env, PIP_RETRIES: '0', PIP_TIMEOUT: '5', PIP_DISABLE_PIP_VERSION_CHECK: '1' },
      maxBuffer: 16 * 1024 * 1024,
    });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`Cannot make the tests' Python environment in ${venv} with ${python}: ${(err.stderr || err.message).slice(-2000)}\nInstall python3 with venv and pip (Debian: python3-venv), or point WANLLMDB_TEST_PYTHON at one.`);
  }
  writeFileSync(stamp, wanted);
  return bin;
}
