import { request } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projects } from '@wanllmdb/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { definePlugin } from '../kernel/define-plugin.js';
import { Kernel } from '../kernel/kernel.js';

/**
 * A handler's ctx.signal over HTTP: aborted when the caller goes away before
 * the answer, never while a call whose body has been read is still running
 * (Node closes the request stream as soon as its body is read).
 */
const unused = Object.fromEntries(
  ['listProjects', 'getProject', 'updateProject', 'deleteProject', 'watchProjects'].map((name) => [name, async () => Promise.reject(new Error(`${name} is not part of this test`))]),
);

describe('the call signal over HTTP', () => {
  let kernel: Kernel;
  let port = 0;
  const seen: { name: string; abortedDuring: boolean; abortedAfter: Promise<boolean> }[] = [];
  const started = new Set<string>();

  beforeAll(async () => {
    const plugin = definePlugin({
      id: 'signal-probe',
      version: '1.0.0',
      init: (ctx) =>
        ctx.service(projects.v1.ProjectService, {
          ...unused,
          async createProject(req: { name: string }, ctx: { signal: AbortSignal }) {
            let gone!: (v: boolean) => void;
            const abortedAfter = new Promise<boolean>((resolve) => (gone = resolve));
            ctx.signal.addEventListener('abort', () => gone(true), { once: true });
            started.add(req.name);
            // 'slow' holds the call until its caller is gone (or 10 s); 'quick' answers after 100 ms.
            await Promise.race([new Promise((resolve) => setTimeout(resolve, req.name === 'slow' ? 10_000 : 100)), req.name === 'slow' ? abortedAfter : undefined]);
            seen.push({ name: req.name, abortedDuring: ctx.signal.aborted, abortedAfter });
            setTimeout(() => gone(false), 200);
            return { data: { id: 'p1', name: req.name, description: String(ctx.signal.aborted) } };
          },
        }),
    });
    const root = mkdtempSync(join(tmpdir(), 'wldb-signal-'));
    kernel = new Kernel({
      plugins: [plugin],
      config: { db: 'sqlite::memory:', blobs: `file://${join(root, 'blobs')}`, bus: 'memory', logLevel: 'silent', host: '127.0.0.1', grpcPort: 0, httpPort: 0 },
      listen: true,
    });
    port = (await kernel.start())!.httpPort;
  });
  afterAll(() => kernel?.stop());

  it('is not aborted while a POST call with a body runs, nor after it is answered', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/api/v1/projects`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'quick', organizationId: 'o1' }),
    });
    expect(res.status).toBe(201);
    expect((await res.json()).data.description).toBe('false');
    const call = seen.find((s) => s.name === 'quick')!;
    expect(call.abortedDuring).toBe(false);
    expect(await call.abortedAfter).toBe(false);
  });

  it('is aborted when the caller closes the connection before the answer', async () => {
    const body = JSON.stringify({ name: 'slow', organizationId: 'o1' });
    const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/api/v1/projects', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } });
    req.on('error', () => undefined);
    req.end(body);
    // Once the handler holds the call (a state, not a time), hang up.
    await expect.poll(() => started.has('slow'), { timeout: 5_000 }).toBe(true);
    req.destroy();
    await expect.poll(() => seen.find((s) => s.name === 'slow'), { timeout: 5_000 }).toBeDefined();
    const call = seen.find((s) => s.name === 'slow')!;
    expect(call.abortedDuring).toBe(true);
  });
});
