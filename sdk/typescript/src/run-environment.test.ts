import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LineSplitter, type CapturedLine } from './console-capture.js';
import { parseUrl, resolveOptions } from './options.js';
import { isTransient } from './retry.js';
import { gitInfo, redactRemote, runEnvironment } from './run-metadata.js';
import { parseNvidiaSmi, SystemSampler } from './system-metrics.js';
import { RemoteCallError } from './transport/remote-error.js';

describe('console capture', () => {
  const split = (chunks: string[]) => {
    const lines: CapturedLine[] = [];
    const s = new LineSplitter('stdout', (l) => lines.push(l), () => 7);
    for (const c of chunks) s.push(c);
    s.end();
    return lines.map((l) => l.line);
  };

  it('splits writes into lines, across writes, and keeps the tail without a newline', () => {
    expect(split(['a\nb', 'c\n\nd'])).toEqual(['a', 'bc', '', 'd']);
  });

  it('keeps what follows the last carriage return (progress bars redraw a line) and drops CRLF endings', () => {
    expect(split(['10%\r50%\r100%\n', 'windows\r\n'])).toEqual(['100%', 'windows']);
  });

  it('cuts very long lines and says so', () => {
    const [line] = split(['x'.repeat(20_000) + '\n']);
    expect(line!.length).toBeLessThan(16_500);
    expect(line).toMatch(/\[cut: 20000 characters\]$/);
  });
});

describe('system metrics', () => {
  it('parses nvidia-smi CSV, skipping [N/A] fields', () => {
    const out = parseNvidiaSmi('0, 87, 10240, 40960, 71, 250.5\n1, 3, 100, 40960, 40, [N/A]\n');
    expect(out).toEqual([
      ['system/gpu.0.utilization_percent', 87],
      ['system/gpu.0.memory_used_mb', 10240],
      ['system/gpu.0.memory_percent', 25],
      ['system/gpu.0.temperature_c', 71],
      ['system/gpu.0.power_w', 250.5],
      ['system/gpu.1.utilization_percent', 3],
      ['system/gpu.1.memory_used_mb', 100],
      ['system/gpu.1.memory_percent', (100 * 100) / 40960],
      ['system/gpu.1.temperature_c', 40],
    ]);
  });

  it('samples CPU, memory, disk and network; a missing nvidia-smi is skipped silently', async () => {
    const sampler = new SystemSampler('/nonexistent/nvidia-smi');
    await new Promise((r) => setTimeout(r, 50));
    const keys = (await sampler.sample()).map(([k]) => k);
    expect(keys).toEqual(expect.arrayContaining(['system/cpu.percent', 'system/memory.percent', 'system/proc.memory.rss_mb']));
    if (process.platform === 'linux') expect(keys).toEqual(expect.arrayContaining(['system/disk.read_mb_s', 'system/network.recv_mb_s']));
    expect(keys.some((k) => k.startsWith('system/gpu'))).toBe(false);
    for (const [, v] of await sampler.sample()) expect(Number.isFinite(v)).toBe(true);
  });

  it('reads GPUs through nvidia-smi when there is one', async () => {
    const fake = join(mkdtempSync(join(tmpdir(), 'wldb-smi-')), 'nvidia-smi');
    writeFileSync(fake, '#!/bin/sh\necho "0, 50, 1024, 2048, 60, 100"\n', { mode: 0o755 });
    const keys = (await new SystemSampler(fake).sample()).map(([k]) => k);
    expect(keys).toContain('system/gpu.0.utilization_percent');
  });
});

describe('run metadata', () => {
  it('records git commit, branch and dirtiness; empty outside a repository', async () => {
    const git = await gitInfo(process.cwd());
    expect(git.commit).toMatch(/^[0-9a-f]{40}$/);
    expect(await gitInfo(tmpdir())).toEqual({ commit: '', branch: '', remote: '', dirty: false });
  });

  it('removes credentials from remotes', () => {
    expect(redactRemote('https://user:ghp_secret@github.com/org/repo.git')).toBe('https://github.com/org/repo.git');
    expect(redactRemote('git@github.com:org/repo.git')).toBe('git@github.com:org/repo.git');
  });

  it('describes the process', () => {
    expect(runEnvironment()).toMatchObject({ runtime: `node ${process.versions.node}`, pid: process.pid });
  });
});

describe('options', () => {
  it('reads the mode, server and key from the environment; a URL means remote', async () => {
    const env = { WANLLMDB_URL: 'grpc://example:6000', WANLLMDB_API_KEY: 'k' };
    expect(await resolveOptions({}, env)).toMatchObject({ mode: 'remote', address: 'example:6000', apiKey: 'k' });
    expect(await resolveOptions({}, {})).toMatchObject({ mode: 'embedded' });
    expect(await resolveOptions({}, { WANLLMDB_MODE: 'offline', WANLLMDB_DATA: '/data' })).toMatchObject({ mode: 'offline', spoolDir: expect.stringMatching(/^\/data\/offline\/[0-9a-f-]{36}$/) });
    expect(await parseUrl('127.0.0.1')).toBe('127.0.0.1:50051');
    expect(await parseUrl('grpc://h:1/')).toBe('h:1');
  });
});

describe('retry policy', () => {
  it('retries what may pass (no answer, store busy, disk full) and not what will not', () => {
    expect(isTransient(new RemoteCallError('refused', '', 14, []))).toBe(true);
    expect(isTransient(new RemoteCallError('shutting down', 'WLDB_ERR_SHUTTING_DOWN', 14, []))).toBe(true);
    expect(isTransient(new RemoteCallError('bad', 'WLDB_ERR_VALIDATION', 3, []))).toBe(false);
    expect(isTransient(new RemoteCallError('no such method', '', 12, []))).toBe(false);
    expect(isTransient({ code: 'WLDB_ERR_DB_UNAVAILABLE', grpcStatus: 14 })).toBe(true);
    expect(isTransient({ code: 'ENOSPC' })).toBe(true);
    expect(isTransient(new Error('x'))).toBe(false);
  });
});
