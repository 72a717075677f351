import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startServer, type ServerProcess } from './server-process.js';

const root = mkdtempSync(join(tmpdir(), 'wldb-art-cli-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** `wanllmdb artifact …` against a real server over gRPC, as a user at a shell would. */
describe('wanllmdb artifact (CLI) against `wanllmdb serve`', () => {
  let server: ServerProcess;
  let store: string[] = [];
  const env = { WANLLMDB_CACHE_DIR: join(root, 'cache') };
  const cli = async (...args: string[]) => {
    const r = await runCli(['artifact', ...args, ...store], env);
    if (r.code !== 0) throw new Error(`wanllmdb artifact ${args.join(' ')} exited ${r.code}:\n${r.output}`);
    return r.output;
  };

  beforeAll(async () => {
    // No grace: a collection may take any body nothing needs at once (the default spares a day's uploads).
    server = await startServer(['--data', join(root, 'data')], { WANLLMDB_ARTIFACT_GC_GRACE_SECONDS: '0' });
    const { apiKey, headers } = await server.credentials();
    const res = await fetch(`${server.base}/api/v1/projects`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'cli-lab' }) });
    expect(res.status).toBe(201);
    store = ['--url', `grpc://127.0.0.1:${server.grpcPort}`, '--api-key', apiKey, '--project', 'cli-lab'];
  }, 60_000);
  afterAll(() => server?.stop());

  it('puts, lists, diffs, gets, aliases, removes and collects', async () => {
    const dir = join(root, 'ds');
    mkdirSync(join(dir, 'train'), { recursive: true });
    writeFileSync(join(dir, 'train', 'a.txt'), 'alpha\n');
    writeFileSync(join(dir, 'b.txt'), 'bravo\n');
    expect(await cli('put', dir, '--name', 'ds', '--alias', 'v1.0')).toMatch(/ds:v0 stored · 2 files .* 0\.0 MB sent .*latest, v1\.0/);
    expect(await cli('put', dir, '--name', 'ds')).toMatch(/ds:v0 unchanged/);
    writeFileSync(join(dir, 'b.txt'), 'bravo, changed\n');
    expect(await cli('put', dir, '--name', 'ds')).toMatch(/ds:v1 stored/);
    expect(await cli('ls')).toMatch(/ds\tdataset\t2 versions\tlatest v1/);
    const versions = await cli('ls', 'ds');
    expect(versions.indexOf('v1\t')).toBeLessThan(versions.indexOf('v0\t'));
    expect(await cli('diff', 'ds', 'v0', 'latest')).toMatch(/~ b\.txt\t6 → 15 bytes\n0 added, 0 removed, 1 changed, \+9 bytes/);
    const out = join(root, 'got');
    await cli('get', 'ds:v1.0', '--out', out);
    expect(readFileSync(join(out, 'b.txt'), 'utf8')).toBe('bravo\n');
    expect(readFileSync(join(out, 'train', 'a.txt'), 'utf8')).toBe('alpha\n');
    expect(await cli('alias', 'ds', 'production', 'v1')).toMatch(/ds:production → v1/);
    expect(await cli('rm', 'ds:v0')).toMatch(/deleted ds:v0/);
    expect(await cli('gc', '--dry-run')).toMatch(/would reclaim 2 of \d+ bodies/); // v0's b.txt and its manifest
    expect(await cli('gc')).toMatch(/reclaimed 2 of/);
    expect(await cli('gc', '--dry-run')).toMatch(/would reclaim 0 of/);
    const cleaned = await runCli(['artifact', 'cache', 'clean'], env);
    expect(cleaned.output).toMatch(/removed 2 cached files; 0 left/);
    const missing = await runCli(['artifact', 'get', 'nope:latest', ...store], env);
    expect(missing.code).toBe(2);
    expect(missing.output).toMatch(/no artifact "nope".*WLDB_ERR_NOT_FOUND/);
  }, 120_000);
});
