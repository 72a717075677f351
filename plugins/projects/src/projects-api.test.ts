import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kernel, LOCAL_PRINCIPAL, localCallContext } from '@wanllmdb/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectsPlugin } from './projects-plugin.js';
import { projectsApiRef } from './projects-api.js';

describe('ProjectsApi (in process)', () => {
  let kernel: Kernel;
  beforeAll(async () => {
    kernel = new Kernel({
      plugins: [projectsPlugin],
      config: { db: 'sqlite::memory:', blobs: `file://${mkdtempSync(join(tmpdir(), 'wldb-p-'))}`, bus: 'memory', logLevel: 'silent' },
    });
    await kernel.start();
  });
  afterAll(() => kernel.stop());

  it('ensures a project by name (creating it once) and finds it by id and slug', async () => {
    const api = kernel.get(projectsApiRef);
    const ctx = localCallContext('test', kernel.logger);
    const a = await api.ensure('My MNIST', ctx);
    const b = await api.ensure('My MNIST', ctx);
    expect(b.id).toBe(a.id);
    expect(a.slug).toBe('my-mnist');
    expect((await api.ensure(a.id, ctx)).id).toBe(a.id);
    expect((await api.find('my-mnist', LOCAL_PRINCIPAL))?.id).toBe(a.id);
    await expect(api.ensure('00000000-0000-4000-8000-000000000000', ctx)).rejects.toThrow(/does not exist/);
    const both = await Promise.all([api.ensure('raced', ctx), api.ensure('raced', ctx)]);
    expect(both[0].id).toBe(both[1].id);
  });

  it('takes an in-process call that leaves fields out, as gRPC and HTTP do (defaults filled)', async () => {
    const made = await kernel.call<{ data: { name: string; description: string; visibility: string } }>('wanllmdb.projects.v1.ProjectService/CreateProject', { name: 'Sparse' });
    expect(made.data).toMatchObject({ name: 'Sparse', description: '', visibility: 'private' });
  });
});
