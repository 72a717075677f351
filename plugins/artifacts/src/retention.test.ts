import type { BlobStore, Clock } from '@wanllmdb/core';
import { jsonCall, metadataBackends, rejection } from '@wanllmdb/core/testing';
import { createAuthPlugin } from '@wanllmdb/plugin-auth';
import { beforeAll, describe, expect, it } from 'vitest';
import { sha256, useArtifactsKernel } from './fixtures/artifacts-kernel.js';
import type { artifacts } from './gen/index.js';

type Deletion = artifacts.v1.VersionDeletionResponse;
type Gc = artifacts.v1.CollectGarbageResponse;

const DAY = 24 * 3600;
const bytes = (text: string) => Buffer.from(text);

/** Retention rules and bulk deletion on every database, with time under the test's control (the kernel's Clock). */
describe.each(metadataBackends())('artifact retention on $name', (backend) => {
  let now = Date.parse('2026-01-01T00:00:00Z');
  const clock: Clock = { now: () => now };
  const t = useArtifactsKernel(backend, { services: { clock }, plugin: { gcGraceSeconds: 0 } });
  let projectId = '';
  let serial = 0;

  beforeAll(async () => {
    projectId = (await t.kernel.call<{ data: { id: string } }>('wanllmdb.projects.v1.ProjectService/CreateProject', { name: 'retention' })).data.id;
  });

  const create = async (name: string, type = 'checkpoint') => (await t.call<{ data: artifacts.v1.Artifact }>('CreateArtifact', { projectId, name, type })).data.id;
  /** The next version of an artifact: one file of its own (and a shared one, when given). */
  const log = async (id: string, o: { aliases?: string[]; shared?: Buffer } = {}) =>
    (await t.logVersion(id, { 'own.txt': bytes(`version body ${++serial}`), ...(o.shared ? { 'shared.txt': o.shared } : {}) }, { aliases: o.aliases })).commit.data;
  /** `n` versions through the normal write path, a few writers at once. */
  const logMany = async (id: string, n: number, shared?: Buffer) => {
    let next = 0;
    await Promise.all(Array.from({ length: 6 }, async () => {
      while (next++ < n) await log(id, { shared });
    }));
  };
  const names = async (id: string) => {
    const out: string[] = [];
    for (let page = 1; ; page++) {
      const r = await t.call<artifacts.v1.ListVersionsResponse>('ListVersions', { artifactId: id, page, pageSize: 100 });
      out.push(...r.data.map((v) => v.version));
      if (r.data.length < 100) return out.sort((a, b) => Number(a.slice(1)) - Number(b.slice(1)));
    }
  };
  const apply = (artifactId: string, dryRun: boolean) => t.call<Deletion>('ApplyRetention', { artifactId, dryRun });
  const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `v${from + i}`);

  it('keeps the N newest: a dry run reports exactly what the real run deletes, and each commit applies the rule', async () => {
    const id = await create('keep-last');
    for (let i = 0; i < 6; i++) await log(id);
    const set = await t.call<artifacts.v1.RetentionResponse>('SetRetention', { artifactId: id, keepLast: 2 });
    expect(set).toMatchObject({ source: 'artifact', data: { keepLast: 2, keepAliased: true, maxAgeSeconds: 0, artifactId: id }, effective: { keepLast: 2 } });
    const dry = await apply(id, true);
    expect(dry).toMatchObject({ dryRun: true, deleted: 4, versions: range(0, 4), truncated: false });
    expect(dry.bytes).toBeGreaterThan(0);
    expect(await names(id)).toEqual(range(0, 6)); // nothing went
    const real = await apply(id, false);
    expect(real).toEqual({ ...dry, dryRun: false });
    expect(await names(id)).toEqual(['v4', 'v5']);
    // The next commit applies the rule by itself; numbers are never given again.
    expect((await log(id)).version).toBe('v6');
    expect(await names(id)).toEqual(['v5', 'v6']);
    expect((await t.call<{ data: artifacts.v1.Artifact }>('GetArtifact', { id })).data).toMatchObject({ versionCount: 7, latestVersion: 'v6' });
  });

  it('keeps aliased versions unless told not to; deleting one records its alias going', async () => {
    const id = await create('keep-aliased');
    await log(id, { aliases: ['production'] });
    for (let i = 0; i < 3; i++) await log(id);
    await t.call('SetRetention', { artifactId: id, keepLast: 1 });
    expect(await apply(id, false)).toMatchObject({ deleted: 2, versions: ['v1', 'v2'] });
    expect(await names(id)).toEqual(['v0', 'v3']);
    await t.call('SetRetention', { artifactId: id, keepLast: 1, keepAliased: false });
    expect(await apply(id, true)).toMatchObject({ deleted: 1, versions: ['v0'] });
    expect(await apply(id, false)).toMatchObject({ deleted: 1, versions: ['v0'] });
    expect(await names(id)).toEqual(['v3']);
    const history = (await t.call<{ data: artifacts.v1.AliasEvent[] }>('ListAliasHistory', { artifactId: id, alias: 'production' })).data;
    expect(history.map((e) => [e.previousVersion, e.version])).toEqual([['', 'v0'], ['v0', '']]);
    // "latest" is never deleted by a rule, even with keepLast 0 and every version old.
    now += 30 * DAY * 1000;
    await t.call('SetRetention', { artifactId: id, maxAgeSeconds: DAY, keepAliased: false });
    expect(await apply(id, false)).toMatchObject({ deleted: 0 });
    expect(await names(id)).toEqual(['v3']);
  });

  it('deletes versions older than the max age unless the newest N keep them', async () => {
    const id = await create('max-age');
    await log(id);
    await log(id);
    now += 8 * DAY * 1000;
    await log(id);
    await log(id);
    await t.call('SetRetention', { artifactId: id, maxAgeSeconds: 7 * DAY, keepLast: 3 });
    expect(await apply(id, true)).toMatchObject({ deleted: 1, versions: ['v0'] });
    await t.call('SetRetention', { artifactId: id, maxAgeSeconds: 7 * DAY });
    expect(await apply(id, true)).toMatchObject({ deleted: 2, versions: ['v0', 'v1'] });
    now += 2 * DAY * 1000; // v2 and v3 are 2 days old: kept
    expect(await apply(id, false)).toMatchObject({ deleted: 2, versions: ['v0', 'v1'] });
    expect(await names(id)).toEqual(['v2', 'v3']);
  });

  it("applies a project's default for a type where an artifact has no rule of its own", async () => {
    const put = await t.call<artifacts.v1.TypeRetentionResponse>('SetTypeRetention', { projectId, type: 'model-ckpt', keepLast: 1, maxAgeSeconds: 0 });
    expect(put.data).toMatchObject({ type: 'model-ckpt', projectId, keepLast: 1, keepAliased: true });
    expect((await t.call<artifacts.v1.ListTypeRetentionResponse>('ListTypeRetention', { projectId })).data.map((r) => r.type)).toEqual(['model-ckpt']);
    const byType = await create('by-type', 'model-ckpt');
    const own = await create('own-rule', 'model-ckpt');
    const other = await create('other-type', 'dataset');
    await t.call('SetRetention', { artifactId: own, keepLast: 3 });
    for (let i = 0; i < 4; i++) for (const id of [byType, own, other]) await log(id);
    expect(await names(byType)).toEqual(['v3']);
    expect(await names(own)).toEqual(['v1', 'v2', 'v3']);
    expect(await names(other)).toHaveLength(4);
    expect(await t.call<artifacts.v1.RetentionResponse>('GetRetention', { artifactId: byType })).toMatchObject({ source: 'type', effective: { type: 'model-ckpt', keepLast: 1 } });
    expect((await t.call<artifacts.v1.RetentionResponse>('GetRetention', { artifactId: byType })).data).toBeUndefined();
    expect(await t.call<artifacts.v1.RetentionResponse>('GetRetention', { artifactId: other })).toMatchObject({ source: 'none' });
    // Without its own rule, the artifact follows its type again.
    await t.call('DeleteRetention', { artifactId: own });
    await log(own);
    expect(await names(own)).toEqual(['v4']);
    await t.call('DeleteTypeRetention', { projectId, type: 'model-ckpt' });
    expect((await rejection(t.call('GetTypeRetention', { projectId, type: 'model-ckpt' }))).code).toBe('WLDB_ERR_NOT_FOUND');
    await log(own);
    expect(await names(own)).toEqual(['v4', 'v5']);
    // Bad rules are coded errors naming the field.
    const bad = await rejection(t.call('SetTypeRetention', { projectId, type: 'Not A Type', keepLast: -1, maxAgeSeconds: 1.5 }));
    expect(bad.code).toBe('WLDB_ERR_VALIDATION');
    expect(bad.details.map((d) => d.field)).toEqual(['type', 'keepLast', 'maxAgeSeconds']);
  });

  it('deletes a few thousand versions in bulk, by list and by filter, in batches, and the collection frees exactly their bodies', async () => {
    await t.call<Gc>('CollectGarbage', { dryRun: false }); // what earlier tests left
    const [N, LISTED, KEEP] = [1010, 501, 5]; // both the list and the filter span more than one batch of 500
    const id = await create('bulk');
    const shared = bytes('a body every version shares');
    await logMany(id, N, shared);
    await t.call('SetAlias', { artifactId: id, alias: 'best', version: 'v10' });
    const keeper = await log(id, { shared }); // v<N>, the latest

    // By list: more names than one batch holds, two of them not there; the aliased one goes too (a list is explicit).
    const list = [...range(0, LISTED), 'v5000', '7000'];
    const dryList = await t.call<Deletion>('DeleteVersions', { artifactId: id, versions: list, dryRun: true });
    expect(dryList).toMatchObject({ dryRun: true, deleted: LISTED, versions: range(0, LISTED), missing: ['v5000', 'v7000'], truncated: false });
    const byList = await t.call<Deletion>('DeleteVersions', { artifactId: id, versions: list });
    expect(byList).toEqual({ ...dryList, dryRun: false });
    expect((await t.call<{ data: artifacts.v1.AliasEvent[] }>('ListAliasHistory', { artifactId: id, alias: 'best' })).data.map((e) => e.version)).toEqual(['v10', '']);

    // By filter: everything older than now except the KEEP newest (the latest is among them) and the aliased one.
    await t.call('SetAlias', { artifactId: id, alias: 'best', version: 'v700' });
    now += 1000;
    const filter = { artifactId: id, olderThan: new Date(now).toISOString(), keepLast: KEEP };
    const dryFilter = await t.call<Deletion>('DeleteVersions', { ...filter, dryRun: true });
    const expected = range(LISTED, N + 1 - KEEP).filter((v) => v !== 'v700');
    expect(dryFilter).toMatchObject({ deleted: expected.length, truncated: false, versions: expected });
    const before = await stored();
    const byFilter = await t.call<Deletion>('DeleteVersions', filter);
    expect(byFilter).toEqual({ ...dryFilter, dryRun: false });
    expect(await names(id)).toEqual(['v700', ...range(N + 1 - KEEP, N + 1)]);

    // The collection frees the bodies only deleted versions used (their own file and manifest), not the shared one.
    const gcDry = await t.call<Gc>('CollectGarbage', { dryRun: true });
    expect(gcDry).toMatchObject({ deleted: 2 * LISTED + 2 * expected.length, bytes: byList.bytes + byFilter.bytes, retentionVersions: 0 });
    const gc = await t.call<Gc>('CollectGarbage', { dryRun: false });
    expect(gc).toMatchObject({ deleted: gcDry.deleted, bytes: gcDry.bytes });
    const after = await stored();
    expect(after).toContain(sha256(shared));
    expect(before.length - after.length).toBe(2 * LISTED + 2 * expected.length); // each deleted version's own file and manifest
    expect((await t.download(id, keeper.version, 'shared.txt')).equals(shared)).toBe(true);
    expect((await t.download(id, 'best', 'own.txt')).length).toBeGreaterThan(0);
  }, 120_000);

  it('applies every rule in a collection first, and reports in a dry run what they would delete', async () => {
    const id = await create('collected', 'report');
    for (let i = 0; i < 5; i++) await log(id);
    await t.call('SetRetention', { artifactId: id, keepLast: 5 });
    await t.call('SetRetention', { artifactId: id, keepLast: 2 }); // set, not yet applied: no commit since
    const dry = await t.call<Gc>('CollectGarbage', { dryRun: true });
    expect(dry.retentionVersions).toBeGreaterThanOrEqual(3);
    expect(await names(id)).toHaveLength(5);
    const real = await t.call<Gc>('CollectGarbage', { dryRun: false });
    expect(real).toMatchObject({ retentionVersions: dry.retentionVersions, retentionBytes: dry.retentionBytes });
    expect(await names(id)).toEqual(['v3', 'v4']);
  });

  it('refuses bad bulk requests with coded errors', async () => {
    const id = await create('bulk-bad');
    await log(id);
    const cases: [Record<string, unknown>, string[]][] = [
      [{}, ['versions']],
      [{ versions: ['v0'], keepLast: 3 }, ['versions']],
      [{ versions: ['latest', 'v0'] }, ['versions[0]']],
      [{ olderThan: 'yesterday' }, ['olderThan']],
      [{ versions: Array.from({ length: 10_001 }, (_, i) => `v${i}`) }, ['versions']],
    ];
    for (const [req, fields] of cases) {
      const e = await rejection(t.call('DeleteVersions', { artifactId: id, ...req }));
      expect(e.code).toBe('WLDB_ERR_VALIDATION');
      expect(e.details.map((d) => d.field)).toEqual(fields);
    }
    expect(await names(id)).toEqual(['v0']);
  });

  /** Every body in the artifacts namespace. */
  async function stored(): Promise<string[]> {
    const { coreServices } = await import('@wanllmdb/core');
    const ns: BlobStore = await t.kernel.get(coreServices.blobs).namespace('artifacts');
    const out: string[] = [];
    for await (const b of ns.list()) out.push(b.digest);
    return out;
  }
});

/** Who may set and read rules, over HTTP on the documented routes. */
describe.each(metadataBackends())('artifact retention over HTTP, signed in, on $name', (backend) => {
  const t = useArtifactsKernel(backend, { before: [createAuthPlugin({ scryptLn: 4 })], listen: true });
  let base = '';
  const tokens: Record<string, string> = {};
  const users: Record<string, string> = {};
  let projectId = '';
  const http = (method: string, path: string, who: string, body?: unknown) => jsonCall(base, method, path, tokens[who], body);

  beforeAll(async () => {
    base = `http://127.0.0.1:${t.ports!.httpPort}`;
    for (const who of ['owner', 'member', 'viewer']) {
      users[who] = (await jsonCall(base, 'POST', '/api/v1/auth/register', undefined, { email: `${who}@retention.test`, password: 'correct horse battery' })).body.data.id;
      tokens[who] = (await jsonCall(base, 'POST', '/api/v1/auth/login', undefined, { email: `${who}@retention.test`, password: 'correct horse battery' })).body.data.accessToken;
    }
    const org = (await http('POST', '/api/v1/orgs', 'owner', { name: 'Ret team', slug: 'ret-team' })).body.data.id as string;
    for (const role of ['member', 'viewer']) expect((await http('POST', `/api/v1/orgs/${org}/members`, 'owner', { userId: users[role], role })).status).toBe(201);
    projectId = (await http('POST', '/api/v1/projects', 'owner', { name: 'ret', organizationId: org })).body.data.id;
  });

  it('lets a member set, read and apply rules and delete in bulk; a viewer only reads', async () => {
    const id = (await http('POST', `/api/v1/projects/${projectId}/artifacts`, 'member', { name: 'ckpt', type: 'checkpoint' })).body.data.id as string;
    const auth = { headers: { authorization: `Bearer ${tokens.member}` } };
    for (let i = 0; i < 3; i++) await t.logVersion(id, { 'w.bin': bytes(`weights ${i}`) }, auth);

    expect((await http('PUT', `/api/v1/artifacts/${id}/retention`, 'viewer', { keepLast: 1 })).status).toBe(403);
    expect((await http('PUT', `/api/v1/projects/${projectId}/artifact-retention/checkpoint`, 'viewer', { keepLast: 1 })).status).toBe(403);
    expect((await http('POST', `/api/v1/artifacts/${id}/versions:batchDelete`, 'viewer', { keepLast: 1 })).status).toBe(403);
    expect((await http('POST', `/api/v1/artifacts/${id}/retention:apply`, 'viewer', { dryRun: true })).status).toBe(403);

    const set = await http('PUT', `/api/v1/projects/${projectId}/artifact-retention/checkpoint`, 'member', { keepLast: 2, maxAgeSeconds: 7 * DAY });
    expect(set.status).toBe(200);
    expect(set.body.data).toMatchObject({ type: 'checkpoint', keepLast: 2, maxAgeSeconds: 7 * DAY, keepAliased: true, updatedBy: users.member });
    expect((await http('GET', `/api/v1/projects/${projectId}/artifact-retention`, 'viewer')).body.data).toHaveLength(1);
    expect((await http('GET', `/api/v1/projects/${projectId}/artifact-retention/checkpoint`, 'viewer')).body.data.keepLast).toBe(2);
    expect((await http('GET', `/api/v1/artifacts/${id}/retention`, 'viewer')).body).toMatchObject({ source: 'type' });

    expect((await http('PUT', `/api/v1/artifacts/${id}/retention`, 'member', { keepLast: 1 })).body).toMatchObject({ source: 'artifact', data: { keepLast: 1 } });
    const dry = await http('POST', `/api/v1/artifacts/${id}/retention:apply`, 'member', { dryRun: true });
    expect(dry.body).toMatchObject({ dryRun: true, deleted: 2, versions: ['v0', 'v1'] });
    const bulk = await http('POST', `/api/v1/artifacts/${id}/versions:batchDelete`, 'member', { versions: ['v0'] });
    expect(bulk.body).toMatchObject({ deleted: 1, versions: ['v0'] });
    expect((await http('POST', `/api/v1/artifacts/${id}/retention:apply`, 'member', {})).body).toMatchObject({ deleted: 1, versions: ['v1'] });
    expect((await http('DELETE', `/api/v1/artifacts/${id}/retention`, 'viewer')).status).toBe(403);
    expect((await http('DELETE', `/api/v1/artifacts/${id}/retention`, 'member')).status).toBe(204);
    expect((await http('DELETE', `/api/v1/projects/${projectId}/artifact-retention/checkpoint`, 'member')).status).toBe(204);
  });
});
