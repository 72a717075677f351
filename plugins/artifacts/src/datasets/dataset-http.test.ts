import { jsonCall, metadataBackends } from '@wanllmdb/core/testing';
import { createAuthPlugin } from '@wanllmdb/plugin-auth';
import { beforeAll, describe, expect, it } from 'vitest';
import { useArtifactsKernel } from '../fixtures/artifacts-kernel.js';

const jsonl = (rows: unknown[]) => Buffer.from(rows.map((r) => JSON.stringify(r)).join('\n') + '\n');

/** The seed's dataset routes over HTTP, signed in as an organisation's owner, member and viewer, and an outsider. */
describe.each(metadataBackends())('datasets over HTTP, signed in, on $name', (backend) => {
  const t = useArtifactsKernel(backend, { before: [createAuthPlugin({ scryptLn: 4 })], listen: true });
  let base = '';
  const tokens: Record<string, string> = {};
  const users: Record<string, string> = {};
  let projectId = '';
  const http = (method: string, path: string, who: string, body?: unknown) => jsonCall(base, method, path, tokens[who], body);

  beforeAll(async () => {
    base = `http://127.0.0.1:${t.ports!.httpPort}`;
    for (const who of ['owner', 'member', 'viewer', 'outsider']) {
      users[who] = (await jsonCall(base, 'POST', '/api/v1/auth/register', undefined, { email: `${who}@datasets.test`, password: 'correct horse battery' })).body.data.id;
      tokens[who] = (await jsonCall(base, 'POST', '/api/v1/auth/login', undefined, { email: `${who}@datasets.test`, password: 'correct horse battery' })).body.data.accessToken;
    }
    const org = (await http('POST', '/api/v1/orgs', 'owner', { name: 'Data team', slug: 'data-team' })).body.data.id as string;
    for (const role of ['member', 'viewer']) expect((await http('POST', `/api/v1/orgs/${org}/members`, 'owner', { userId: users[role], role })).status).toBe(201);
    projectId = (await http('POST', '/api/v1/projects', 'owner', { name: 'sft', organizationId: org })).body.data.id;
  });

  it('serves create, list, get, versions, lineage, validate, preview and profile on the seed paths', async () => {
    const made = await http('POST', `/api/v1/projects/${projectId}/datasets`, 'member', { name: 'alpaca-mini', description: 'two rows' });
    expect(made.status).toBe(201);
    expect(made.body.data).toMatchObject({ name: 'alpaca-mini', type: 'dataset' });
    const id = made.body.data.id as string;
    await t.logVersion(id, { 'train.jsonl': jsonl([{ instruction: 'a', input: '', output: 'b' }, { instruction: 'c' }]) }, { headers: { authorization: `Bearer ${tokens.member}` } });

    // Other tests of this file add datasets to the same project: look for this one, not for a count.
    expect((await http('GET', `/api/v1/projects/${projectId}/datasets`, 'viewer')).body.data.map((d: { id: string }) => d.id)).toContain(id);
    expect((await http('GET', `/api/v1/datasets/${id}`, 'viewer')).body).toMatchObject({ data: { id, latestVersion: 'v0' }, latest: { version: 'v0' } });
    expect((await http('GET', `/api/v1/datasets/${id}/versions`, 'viewer')).body.data.map((v: { version: string }) => v.version)).toEqual(['v0']);
    expect((await http('GET', `/api/v1/datasets/${id}/lineage?version=v0`, 'viewer')).body.nodes).toHaveLength(1);

    const report = await http('POST', `/api/v1/datasets/${id}/validate`, 'viewer', { version: 'latest', format: 'alpaca' });
    expect(report.status).toBe(200);
    expect(report.body).toMatchObject({ valid: false, rows: 2, invalidRows: 1, errors: [{ path: 'train.jsonl', row: 1, line: 2, field: 'output', reason: 'is missing' }] });
    const preview = await http('GET', `/api/v1/datasets/${id}/preview?path=train.jsonl&offset=1&limit=1`, 'viewer');
    expect(preview.body).toMatchObject({ kind: 'table', rows: [{ row: 1, data: { instruction: 'c' } }], hasMore: false });
    const profile = await http('GET', `/api/v1/datasets/${id}/profile?version=v0`, 'viewer');
    expect(profile.body).toMatchObject({ rows: 2, files: [{ path: 'train.jsonl', columns: [{ name: 'instruction', nulls: 0 }, { name: 'input', nulls: 1 }, { name: 'output', nulls: 1 }] }] });

    // A bad request is a coded 4xx saying what to fix.
    const bad = await http('GET', `/api/v1/datasets/${id}/preview?limit=0`, 'viewer');
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: 'WLDB_ERR_VALIDATION', details: [{ field: 'limit' }] });
    // Another organisation's private dataset does not exist for an outsider; a viewer cannot create one.
    expect((await http('GET', `/api/v1/datasets/${id}`, 'outsider')).status).toBe(404);
    expect((await http('POST', `/api/v1/datasets/${id}/validate`, 'outsider', {})).status).toBe(404);
    expect((await http('POST', `/api/v1/projects/${projectId}/datasets`, 'viewer', { name: 'nope' })).status).toBe(403);
  });

  it('lets writers annotate rows, not viewers; an annotation is deleted by its author or a writer', async () => {
    const id = (await http('POST', `/api/v1/projects/${projectId}/datasets`, 'owner', { name: 'labelled' })).body.data.id as string;
    await t.logVersion(id, { 'd.jsonl': jsonl([{ text: 'a' }, { text: 'b' }]) }, { headers: { authorization: `Bearer ${tokens.owner}` } });

    const denied = await http('POST', `/api/v1/datasets/${id}/annotations`, 'viewer', { path: 'd.jsonl', row: 0, label: 'toxic' });
    expect(denied.status).toBe(403);
    expect(denied.body.error.code).toBe('WLDB_ERR_PERMISSION_DENIED');

    const byMember = await http('POST', `/api/v1/datasets/${id}/annotations`, 'member', { version: 'v0', path: 'd.jsonl', row: 1, label: 'duplicate', note: 'same as row 0' });
    expect(byMember.status).toBe(201);
    expect(byMember.body.data).toMatchObject({ version: 'v0', path: 'd.jsonl', row: 1, label: 'duplicate', author: users.member });
    const byOwner = (await http('POST', `/api/v1/datasets/${id}/annotations`, 'owner', { path: 'd.jsonl', row: 0, label: 'good' })).body.data;

    const listed = await http('GET', `/api/v1/datasets/${id}/annotations?version=v0&path=d.jsonl&pageSize=10`, 'viewer');
    expect(listed.body.data.map((a: { row: number; label: string }) => [a.row, a.label])).toEqual([[0, 'good'], [1, 'duplicate']]);
    expect(listed.body.meta).toMatchObject({ total: 2, page: 1, pageSize: 10 });

    // A viewer may delete no one's annotation; a member deletes the owner's (artifacts:write); the member deletes their own.
    const viewerDelete = await http('DELETE', `/api/v1/datasets/${id}/annotations/${byOwner.id}`, 'viewer');
    expect(viewerDelete.status).toBe(403);
    expect((await http('DELETE', `/api/v1/datasets/${id}/annotations/${byOwner.id}`, 'member')).status).toBe(204);
    expect((await http('DELETE', `/api/v1/datasets/${id}/annotations/${byMember.body.data.id}`, 'member')).status).toBe(204);
    expect((await http('DELETE', `/api/v1/datasets/${id}/annotations/${byMember.body.data.id}`, 'member')).status).toBe(404);
    expect((await http('GET', `/api/v1/datasets/${id}/annotations`, 'viewer')).body.meta.total).toBe(0);
  });
});
