import { randomUUID } from 'node:crypto';
import { coreServices } from '@wanllmdb/core';
import { metadataBackends, startTestKernel, useStarted } from '@wanllmdb/core/testing';
import type { projects } from '@wanllmdb/proto';
import { describe, expect, it } from 'vitest';
import { projectEvent } from './project-service.js';
import { projectsPlugin } from './projects-plugin.js';

type Project = projects.v1.Project;
const SERVICE = 'wanllmdb.projects.v1.ProjectService';

async function rejection(p: Promise<unknown>): Promise<{ code: string; message: string; details: { field: string; message: string }[] }> {
  try {
    await p;
  } catch (e) {
    return e as never;
  }
  throw new Error('expected the call to be refused');
}

/** The reference plugin's handlers, through the real RPC host, on both databases. */
describe.each(metadataBackends())('ProjectService on $name', (backend) => {
  const t = useStarted('the projects kernel', () => startTestKernel(backend, { plugins: [projectsPlugin] }));
  const call = <T = { data: Project },>(method: string, request: Record<string, unknown>) => t.kernel.call<T>(`${SERVICE}/${method}`, request);

  it('creates a project with a slug from its name, and refuses a taken slug', async () => {
    const made = (await call('CreateProject', { name: '  Image Models  ', description: 'cats\nand dogs', settings: { color: 'teal' } })).data;
    expect(made).toMatchObject({ name: 'Image Models', slug: 'image-models', description: 'cats\nand dogs', visibility: 'private', settings: { color: 'teal' } });
    expect((await call('GetProject', { id: made.id })).data).toEqual(made);
    const taken = await rejection(call('CreateProject', { name: 'image models' }));
    expect(taken.code).toBe('WLDB_ERR_ALREADY_EXISTS');
    expect(taken.details).toEqual([{ field: 'slug', message: 'taken' }]);
  });

  it('reports every problem of a request at once, in the one validation style', async () => {
    const bad = await rejection(call('CreateProject', { name: '', slug: 'Not A Slug', description: 'nul\u0000', settings: { big: 'x'.repeat(70_000) } }));
    expect(bad.code).toBe('WLDB_ERR_VALIDATION');
    expect(bad.details.map((d) => d.field)).toEqual(['name', 'slug', 'description', 'settings']);
    expect(bad.message).toBe(
      'The project is invalid: name is required; slug must be lower-case letters, digits and single dashes; description contains control characters (and 1 more). Fix these fields and retry.',
    );
    // A closed set (visibility, resume, scope, stream …) is part of the contract, checked with the types before the handler (ADR 0020).
    const closed = await rejection(call('CreateProject', { name: 'ok', visibility: 'secret' }));
    expect(closed.message).toBe('The request is invalid: visibility must be one of "private", "public". Fix these fields and retry.');
    expect(closed.details).toEqual([{ field: 'visibility', message: 'must be one of "private", "public"' }]);
    expect((await rejection(call('ListProjects', { pageSize: 101 }))).details).toEqual([{ field: 'pageSize', message: 'must be from 1 to 100' }]);
  });

  it('updates only what a request names, and answers NOT_FOUND for a project that does not exist', async () => {
    const made = (await call('CreateProject', { name: 'Tuning', description: 'first' })).data;
    const updated = (await call('UpdateProject', { id: made.id, visibility: 'public' })).data;
    expect(updated).toMatchObject({ name: 'Tuning', description: 'first', visibility: 'public' });
    expect((await rejection(call('UpdateProject', { id: randomUUID(), name: 'x' }))).code).toBe('WLDB_ERR_NOT_FOUND');
    expect((await rejection(call('GetProject', { id: 'not-a-uuid' }))).code).toBe('WLDB_ERR_INVALID_ID');
  });

  it('lists projects searched and paged, each once across pages, with paging meta', async () => {
    for (const name of ['List Alpha', 'List Beta', 'List Gamma']) await call('CreateProject', { name });
    type Page = { data: Project[]; meta: { total: number; page: number; pageSize: number; totalPages: number } };
    const first = await call<Page>('ListProjects', { search: ' list ', page: 1, pageSize: 2 });
    const second = await call<Page>('ListProjects', { search: ' list ', page: 2, pageSize: 2 });
    expect(second.meta).toEqual({ total: 3, page: 2, pageSize: 2, totalPages: 2 });
    // Newest first; projects made in the same millisecond may come in either order, but each comes once.
    expect([...first.data, ...second.data].map((p) => p.name).sort()).toEqual(['List Alpha', 'List Beta', 'List Gamma']);
    expect((await call<{ data: Project[] }>('ListProjects', { search: '100%_' })).data).toEqual([]);
  });

  it('deletes a project and announces it on the bus', async () => {
    const made = (await call('CreateProject', { name: 'Short Lived' })).data;
    const seen: string[] = [];
    const sub = await projectEvent.subscribe(t.kernel.get(coreServices.events), { kind: 'deleted' }, (e) => void seen.push(e.project!.id));
    try {
      await call('DeleteProject', { id: made.id });
      await expect.poll(() => seen).toEqual([made.id]);
      expect((await rejection(call('GetProject', { id: made.id }))).code).toBe('WLDB_ERR_NOT_FOUND');
    } finally {
      await sub.unsubscribe();
    }
  });
});
