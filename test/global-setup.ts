import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { ensurePythonEnv } from './python-env.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Base URL of the loopback S3 server (s3rver) shared by the whole run. */
    s3Endpoint: string;
    /** The bin folder of the tests' Python virtual environment (grpcio …; test/python-env.ts). */
    pythonBin: string;
  }
}

/**
 * Starts the services test files share, once per run, and tells test files
 * where they are through `inject(...)`.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // The AWS SDK's "Node < 22" notice is for operators, not test output.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

  const [s3, pythonBin] = await Promise.all([startS3rver(), ensurePythonEnv()]);
  project.provide('s3Endpoint', s3.endpoint);
  project.provide('pythonBin', pythonBin);

  return async () => {
    await s3.stop();
  };
}

/**
 * Runs s3rver in its own process: it signs ListObjectsV2 continuation tokens
 * with DES, which OpenSSL 3 only offers through the legacy provider, and it
 * keeps S3 traffic off the test runner's event loop. The child exits when
 * its stdin closes, so it never outlives the run.
 */
const S3RVER_MAIN = `
  const S3rver = require(process.argv[1]);
  process.stdin.on('close', () => process.exit(0)).resume();
  // s3rver's file store can throw outside a request (e.g. a delete racing a write of the same key): the request fails, the server stays up for the rest of the run.
  process.on('uncaughtException', (err) => console.error('s3rver: uncaught', err));
  process.on('unhandledRejection', (err) => console.error('s3rver: unhandled rejection', err));
  new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: process.argv[2] })
    .run()
    .then(({ port }) => process.stdout.write(port + '\\n'), (err) => { console.error(err); process.exit(1); });
`;

async function startS3rver(): Promise<{ endpoint: string; stop(): Promise<void> }> {
  const directory = await mkdtemp(join(tmpdir(), 'wldb-s3rver-'));
  const entry = createRequire(import.meta.url).resolve('s3rver');
  const child = spawn(process.execPath, ['--openssl-legacy-provider', '-e', S3RVER_MAIN, entry, directory], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stopping = false;
  const stop = async () => {
    stopping = true;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.stdin?.end();
      await exited;
    }
    await rm(directory, { recursive: true, force: true });
  };
  try {
    const port = await firstLine(child);
    // What s3rver says later (a request its store failed) shows in the run's output.
    child.stderr?.on('data', (data: Buffer) => process.stderr.write(`[s3rver] ${data.toString()}`));
    child.once('exit', (code, signal) => {
      if (!stopping) process.stderr.write(`[s3rver] exited during the run (${code ?? signal}); S3 tests after this fail to connect\n`);
    });
    return { endpoint: `http://127.0.0.1:${port}`, stop };
  } catch (err) {
    child.kill();
    await rm(directory, { recursive: true, force: true });
    throw err;
  }
}

function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    let errors = '';
    child.stderr?.on('data', (data: Buffer) => (errors += data.toString()));
    child.stdout?.on('data', (data: Buffer) => {
      out += data.toString();
      if (out.includes('\n')) resolve(out.trim());
    });
    child.once('exit', (code) => reject(new Error(`s3rver exited (${code}) before listening: ${errors}`)));
    child.once('error', reject);
  });
}
