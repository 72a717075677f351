import { createHash } from 'node:crypto';
import { normalize, toWldbError, type Kernel, type MountedMethod } from '@wanllmdb/core';
import { metadataBackends, startTestKernel, type TestKernel } from '@wanllmdb/core/testing';
import { authAdminRef, BUILTIN_PERMISSIONS, setGrants } from '@wanllmdb/plugin-auth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultPlugins } from './default-plugins.js';

/**
 * The generated authorisation matrix: every mounted RPC method × every role
 * (anonymous, viewer, member, admin of organisation A, and a user of another
 * organisation B) × a resource of A ("own") and one of B ("other"), through
 * the real RPC host, TokenAuth and handlers. The expected outcome is derived
 * from what the method declares (permission, resources) and the built-in
 * roles, not written by hand, so a new method is covered the day it lands.
 */

type Outcome = 'allowed' | 'unauthenticated' | 'denied' | 'hidden';
type Role = 'anonymous' | 'viewer' | 'member' | 'admin' | 'outsider';
type Target = 'own' | 'other';
const ROLES: Role[] = ['anonymous', 'viewer', 'member', 'admin', 'outsider'];
const TARGETS: Target[] = ['own', 'other'];

/** Methods whose handler authorises the resource it learns (see the contract test); the oracle treats them like this. */
const HANDLER_RESOURCES: Record<string, { type: string; field: string }> = {
  'wanllmdb.tracking.v1.RunService/CreateRun': { type: 'project', field: 'projectId' },
  'wanllmdb.tracking.v1.MetricService/StreamMetrics': { type: 'run', field: 'runId' },
  'wanllmdb.tracking.v1.RunFileService/UploadFile': { type: 'run', field: 'runId' },
  'wanllmdb.artifacts.v1.ArtifactService/UploadBlob': { type: 'artifact', field: 'artifactId' },
};

/**
 * Methods whose handler asks one more permission of a caller who did not create the resource
 * (every resource here is created by its organisation's owner): deleting someone else's shared view.
 */
const NON_CREATOR_NEEDS: Record<string, string> = {
  'wanllmdb.tracking.v1.ViewService/DeleteView': 'projects:admin',
  'wanllmdb.artifacts.v1.DatasetService/DeleteAnnotation': 'artifacts:delete',
};

/** Request fields besides the declared resources that a method needs to reach its handler's own check: field → the id of `ids`. */
const EXTRA_FIELDS: Record<string, Record<string, string>> = {
  'wanllmdb.artifacts.v1.DatasetService/DeleteAnnotation': { id: 'annotated', annotationId: 'annotation' },
};

/** Methods that remove the resource they name: each call gets a fresh one. */
const DESTRUCTIVE = /\/(Delete(Run|Project|Team|View|Artifact|Annotation)|Logout)$/;

const backend = metadataBackends()[0]!; // SQLite; the auth plugin's own suites run on every backend

describe('authorisation matrix: every method × role × resource', () => {
  let kernel: Kernel;
  let started: TestKernel | undefined;
  const tokens = new Map<Role, string>();
  const ids = { own: {} as Record<string, string>, other: {} as Record<string, string> };
  let ownerToken = '';

  /** An in-process call with the request filled in as the wire would (defaults for absent fields). */
  const call = async (method: string, req: Record<string, unknown>, token?: string) =>
    kernel.call<any>(method, normalize(kernel.rpcHost.method(method)!.requestType, req), token ? { authorization: `Bearer ${token}` } : {});
  const login = async (email: string) => (await call('wanllmdb.auth.v1.AuthService/Login', { email, password: 'matrix-password' })).data.accessToken as string;

  beforeAll(async () => {
    process.env.WANLLMDB_SCRYPT_LN = '4';
    started = await startTestKernel(backend, { plugins: defaultPlugins });
    kernel = started.kernel;
    const admin = kernel.get(authAdminRef);
    const users: Record<string, { id: string }> = {};
    for (const name of ['owner', 'viewer', 'member', 'admin', 'outsider']) {
      users[name] = await admin.createUser({ email: `${name}@matrix.test`, password: 'matrix-password' });
    }
    ownerToken = await login('owner@matrix.test');
    const outsiderToken = await login('outsider@matrix.test');
    for (const r of ['viewer', 'member', 'admin', 'outsider'] as const) tokens.set(r, r === 'outsider' ? outsiderToken : await login(`${r}@matrix.test`));

    // Organisation A (the owner's) with an admin, a member and a viewer; organisation B belongs to the outsider.
    const make = async (token: string, side: Target) => {
      const org = (await call('wanllmdb.auth.v1.OrgService/CreateOrg', { name: `org ${side}`, slug: `org-${side}` }, token)).data;
      const project = (await call('wanllmdb.projects.v1.ProjectService/CreateProject', { name: `private ${side}`, organizationId: org.id }, token)).data;
      const run = (await call('wanllmdb.tracking.v1.RunService/CreateRun', { projectId: project.id }, token)).data;
      const team = (await call('wanllmdb.auth.v1.OrgService/CreateTeam', { orgId: org.id, name: `team ${side}` }, token)).data;
      const view = (await call('wanllmdb.tracking.v1.ViewService/CreateView', { projectId: project.id, name: `view ${side}`, scope: 'shared' }, token)).data;
      const artifact = (await call('wanllmdb.artifacts.v1.ArtifactService/CreateArtifact', { projectId: project.id, name: `data-${side}`, type: 'dataset' }, token)).data;
      await logDatasetFile(artifact.id, token);
      Object.assign(ids[side], { org: org.id, project: project.id, run: run.id, team: team.id, view: view.id, artifact: artifact.id });
    };
    await make(ownerToken, 'own');
    await make(outsiderToken, 'other');
    for (const r of ['viewer', 'member', 'admin'] as const) {
      await call('wanllmdb.auth.v1.OrgService/AddMember', { orgId: ids.own.org, userId: users[r]!.id, role: r }, ownerToken);
    }
  }, 120_000);

  afterAll(() => started?.close());

  /** One committed version holding d.jsonl, so rows of the dataset can be annotated. */
  async function logDatasetFile(artifactId: string, token: string) {
    const body = Buffer.from('{"text":"a"}\n');
    const digest = createHash('sha256').update(body).digest('hex');
    const draft = (await call('wanllmdb.artifacts.v1.ArtifactService/CreateDraft', { artifactId }, token)).data;
    await call('wanllmdb.artifacts.v1.ArtifactService/AddFiles', { artifactId, draftId: draft.id, files: [{ path: 'd.jsonl', digest, size: body.length }] }, token);
    await kernel.call('wanllmdb.artifacts.v1.ArtifactService/UploadBlob', (async function* () { yield { artifactId, draftId: draft.id, digest, data: body }; })(), { authorization: `Bearer ${token}` });
    await call('wanllmdb.artifacts.v1.ArtifactService/Commit', { artifactId, draftId: draft.id }, token);
  }

  /** A fresh resource for a destructive call, made by the organisation's owner. */
  async function freshIds(target: Target): Promise<Record<string, string>> {
    const token = target === 'own' ? ownerToken : tokens.get('outsider')!;
    const base = ids[target];
    const project = (await call('wanllmdb.projects.v1.ProjectService/CreateProject', { name: `doomed ${Math.random()}`, organizationId: base.org }, token)).data;
    const run = (await call('wanllmdb.tracking.v1.RunService/CreateRun', { projectId: base.project }, token)).data;
    const team = (await call('wanllmdb.auth.v1.OrgService/CreateTeam', { orgId: base.org, name: `doomed ${Math.random()}` }, token)).data;
    const view = (await call('wanllmdb.tracking.v1.ViewService/CreateView', { projectId: base.project, name: 'doomed', scope: 'shared' }, token)).data;
    const artifact = (await call('wanllmdb.artifacts.v1.ArtifactService/CreateArtifact', { projectId: base.project, name: `doomed-${Math.random().toString(36).slice(2)}`, type: 'dataset' }, token)).data;
    const annotation = (await call('wanllmdb.artifacts.v1.DatasetService/CreateAnnotation', { id: base.artifact, path: 'd.jsonl', row: 0, label: 'doomed' }, token)).data;
    return { ...base, project: project.id, run: run.id, team: team.id, view: view.id, artifact: artifact.id, annotated: base.artifact!, annotation: annotation.id };
  }

  /** What the declared permission, the named resources and the built-in roles say should happen. */
  function expected(m: MountedMethod, role: Role, target: Target): Outcome {
    if (m.permission === 'public') return 'allowed';
    if (role === 'anonymous') return 'unauthenticated';
    if (m.permission === 'self:read' || m.permission === 'self:write') return 'allowed';
    if (m.permission === 'site:admin') return 'denied';
    const named = m.resources.length || HANDLER_RESOURCES[m.fullName];
    if (!named) return 'allowed'; // lists and creates narrow to what the caller may see, in the handler
    const inOwnOrg = role === 'outsider' ? target === 'other' : target === 'own';
    if (!inOwnOrg) return 'hidden'; // private resources of another organisation do not exist for the caller
    const set = BUILTIN_PERMISSIONS[role === 'outsider' ? 'owner' : role];
    if (!setGrants(set, m.permission)) return 'denied';
    const more = NON_CREATOR_NEEDS[m.fullName];
    const creator = role === 'outsider'; // the outsider made organisation B's resources; A's are the owner's
    return !more || creator || setGrants(set, more) ? 'allowed' : 'denied';
  }

  function classify(err: unknown): Outcome {
    if (err === undefined) return 'allowed';
    const e = toWldbError(err);
    if (e.code === 'WLDB_ERR_UNAUTHENTICATED') return 'unauthenticated';
    if (e.code === 'WLDB_ERR_PERMISSION_DENIED') return 'denied';
    if (e.code === 'WLDB_ERR_NOT_FOUND' && /does not exist or you have no access/.test(e.message)) return 'hidden';
    return 'allowed'; // past authorisation: the handler answered (possibly with its own validation error)
  }

  async function attempt(m: MountedMethod, role: Role, target: Target): Promise<Outcome> {
    const use = DESTRUCTIVE.test(m.fullName) ? await freshIds(target) : ids[target];
    const req: Record<string, unknown> = {};
    const specs = m.resources.length ? m.resources : HANDLER_RESOURCES[m.fullName] ? [{ ...HANDLER_RESOURCES[m.fullName]!, repeated: false }] : [];
    for (const s of specs) req[s.field] = s.repeated ? [use[s.type]] : use[s.type];
    for (const [field, kind] of Object.entries(EXTRA_FIELDS[m.fullName] ?? {})) req[field] = use[kind];
    const message = normalize(m.requestType, req);
    const token = role === 'anonymous' ? undefined : role === 'outsider' || role === 'admin' || role === 'member' || role === 'viewer' ? tokens.get(role) : undefined;
    const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), 150); // watch streams end when the caller goes away
    try {
      const request = m.requestStream ? (async function* () { yield message; })() : message;
      await kernel.rpcHost.invoke(m, request, { transport: 'local', headers, signal: abort.signal }, async () => undefined);
      return 'allowed';
    } catch (err) {
      return classify(err);
    } finally {
      clearTimeout(timer);
      if (m.fullName.endsWith('/Logout') && token) tokens.set(role as Exclude<Role, 'anonymous'>, await login(`${role}@matrix.test`));
    }
  }

  it('a public project of another organisation is readable by any signed-in user, but not writable', async () => {
    const outsider = tokens.get('outsider')!;
    const pub = (await call('wanllmdb.projects.v1.ProjectService/CreateProject', { name: 'open data', organizationId: ids.other.org, visibility: 'public' }, outsider)).data;
    const viewer = tokens.get('viewer')!;
    expect((await call('wanllmdb.projects.v1.ProjectService/GetProject', { id: pub.id }, viewer)).data.id).toBe(pub.id);
    const listed = await call('wanllmdb.projects.v1.ProjectService/ListProjects', { pageSize: 100 }, viewer);
    const names = listed.data.map((p: { name: string }) => p.name);
    expect(names).toContain('open data');
    expect(names).not.toContain('private other');
    await expect(call('wanllmdb.projects.v1.ProjectService/UpdateProject', { id: pub.id, description: 'x' }, viewer)).rejects.toMatchObject({ code: 'WLDB_ERR_PERMISSION_DENIED' });
    await expect(call('wanllmdb.tracking.v1.RunService/CreateRun', { projectId: pub.id }, viewer)).rejects.toMatchObject({ code: 'WLDB_ERR_PERMISSION_DENIED' });
  });

  it('matches the declared permissions for every method, role and resource', async () => {
    // Deleting an organisation goes last: the outsider's own organisation B is the "other" resource of every cell.
    const methods = kernel.rpcHost.mounted().sort((a, b) => Number(a.name === 'DeleteOrg') - Number(b.name === 'DeleteOrg'));
    expect(methods.length).toBeGreaterThan(60);
    // The artifacts plugin's second contract file (datasets.proto) is mounted and so in the matrix.
    expect(methods.filter((m) => m.fullName.startsWith('wanllmdb.artifacts.v1.DatasetService/')).map((m) => m.name).sort()).toEqual(
      ['CreateAnnotation', 'CreateDataset', 'DeleteAnnotation', 'GetDataset', 'GetDatasetLineage', 'ListAnnotations', 'ListDatasetVersions', 'ListDatasets', 'PreviewDataset', 'ProfileDataset', 'ValidateDataset'],
    );
    const mismatches: string[] = [];
    let cells = 0;
    for (const m of methods) {
      for (const role of ROLES) {
        for (const target of TARGETS) {
          const want = expected(m, role, target);
          const got = await attempt(m, role, target);
          cells++;
          if (got !== want) mismatches.push(`${m.fullName} as ${role} on ${target}: expected ${want}, got ${got}`);
        }
      }
    }
    expect(mismatches).toEqual([]);
    expect(cells).toBe(methods.length * ROLES.length * TARGETS.length);
  }, 240_000);
});
