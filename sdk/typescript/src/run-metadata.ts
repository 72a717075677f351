import { execFile } from 'node:child_process';
import { hostname, release, type as osType } from 'node:os';
import type { tracking } from '@wanllmdb/proto';

/** Runs git with a short timeout; '' when git or the repository is absent, slow or failing. */
function git(args: string[], cwd: string, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    try {
      execFile('git', args, { cwd, timeout: timeoutMs, windowsHide: true, maxBuffer: 1 << 20 }, (err, stdout) => resolve(err ? undefined : stdout.trim()));
    } catch {
      resolve(undefined);
    }
  });
}

/** A remote URL fit to store: credentials removed (https://user:token@host/… → https://host/…). */
export function redactRemote(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^@/]+@/i, '$1');
}

/** Commit, branch, origin and whether the working tree has changes; all empty outside a repository. */
export async function gitInfo(cwd = process.cwd(), timeoutMs = 2_000): Promise<tracking.v1.GitInfo> {
  const commit = await git(['rev-parse', 'HEAD'], cwd, timeoutMs);
  if (!commit) return { commit: '', branch: '', remote: '', dirty: false };
  const [branch, remote, status] = await Promise.all([
    git(['rev-parse', '--abbrev-ref', 'HEAD'], cwd, timeoutMs),
    git(['remote', 'get-url', 'origin'], cwd, timeoutMs),
    git(['status', '--porcelain', '--untracked-files=no'], cwd, timeoutMs),
  ]);
  return { commit, branch: branch === 'HEAD' ? '' : branch ?? '', remote: redactRemote(remote ?? ''), dirty: !!status };
}

const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);

/** Host, OS, runtime, command line and pid of this process. */
export function runEnvironment(): tracking.v1.RunEnvironment {
  return {
    host: hostname(),
    os: `${osType()} ${release()} ${process.arch}`,
    runtime: `node ${process.versions.node}`,
    command: process.argv.map(quote).join(' '),
    pid: process.pid,
  };
}
