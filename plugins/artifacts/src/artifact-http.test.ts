import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { Contract } from '@wanllmdb/core';
import { jsonCall, metadataBackends } from '@wanllmdb/core/testing';
import { createAuthPlugin } from '@wanllmdb/plugin-auth';
import { loadContractRoot } from '@wanllmdb/proto';
import { beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACTS_PROTO_DIR } from './artifacts-plugin.js';
import { entryOf, sha256, useArtifactsKernel } from './fixtures/artifacts-kernel.js';

/** The seed's REST routes and the gRPC upload stream, signed in as real users: drafts are their owner's, bodies are proven per project. */
describe.each(metadataBackends())('artifacts over HTTP and gRPC, signed in, on $name', (backend) => {
  const t = useArtifactsKernel(backend, { before: [createAuthPlugin({ scryptLn: 4 })], listen: true });
  let base = '';
  const tokens: Record<string, string> = {};
  const projects: Record<string, string> = {};
  const http = (method: string, path: string, who: string, body?: unknown) => jsonCall(base, method, path, tokens[who], body);

  /** UploadBlob over a real gRPC client stream, in 1 MiB messages. */
  async function grpcUpload(who: string, artifactId: string, draftId: string, bytes: Buffer, digest = sha256(bytes)) {
    const contract = new Contract(loadContractRoot([{ dir: ARTIFACTS_PROTO_DIR }]));
    const m = contract.methods('wanllmdb.artifacts.v1.ArtifactService').find((x) => x.name === 'UploadBlob')!;
    const client = new grpc.Client(`127.0.0.1:${t.ports!.grpcPort}`, grpc.credentials.createInsecure());
    const metadata = new grpc.Metadata();
    metadata.set('authorization', `Bearer ${tokens[who]}`);
    try {
      return await new Promise<{ digest: string; size: number }>((resolve, reject) => {
        const call = client.makeClientStreamRequest(
          m.path,
          (o: unknown) => Buffer.from(m.requestType.encode(m.requestType.fromObject(o as object)).finish()),
          (b: Buffer) => m.responseType.toObject(m.responseType.decode(b), { longs: Number }) as { digest: string; size: number },
          metadata,
          (err, res) => (err ? reject(err) : resolve(res!)),
        );
        for (let at = 0; at < bytes.length || at === 0; at += 1024 * 1024) {
          call.write({ ...(at === 0 ? { artifactId, draftId, digest } : {}), data: bytes.subarray(at, at + 1024 * 1024) });
          if (bytes.length === 0) break;
        }
        call.end();
      });
    } finally {
      client.close();
    }
  }

  beforeAll(async () => {
    base = `http://127.0.0.1:${t.ports!.httpPort}`;
    for (const who of ['ada', 'bob']) {
      await jsonCall(base, 'POST', '/api/v1/auth/register', undefined, { email: `${who}@artifacts.test`, password: 'correct horse battery' });
      tokens[who] = (await jsonCall(base, 'POST', '/api/v1/auth/login', undefined, { email: `${who}@artifacts.test`, password: 'correct horse battery' })).body.data.accessToken;
      projects[who] = (await http('POST', '/api/v1/projects', who, { name: `${who}-lab` })).body.data.id;
    }
  });

  it('creates, drafts, uploads over gRPC, commits and downloads over HTTP', async () => {
    const made = await http('POST', `/api/v1/projects/${projects.ada}/artifacts`, 'ada', { name: 'mnist-raw', type: 'dataset', description: 'MNIST training dataset' });
    expect(made.status).toBe(201);
    const id = made.body.data.id as string;
    const draft = await http('POST', `/api/v1/artifacts/${id}/drafts`, 'ada', {});
    expect(draft.status).toBe(201);
    const content = randomBytes(2 * 1024 * 1024 + 3);
    const added = await http('POST', `/api/v1/artifacts/${id}/files`, 'ada', { draftId: draft.body.data.id, files: [entryOf('train/images.bin', content)] });
    expect(added.body).toMatchObject({ data: { fileCount: 1, size: content.length }, missing: [sha256(content)] });
    expect(await grpcUpload('ada', id, draft.body.data.id, content)).toEqual({ digest: sha256(content), size: content.length });
    const committed = await http('POST', `/api/v1/artifacts/${id}/commit`, 'ada', { draftId: draft.body.data.id, aliases: ['latest', 'v1.0'] });
    expect(committed.status).toBe(200);
    expect(committed.body.data).toMatchObject({ version: 'v0', size: content.length, aliases: ['latest', 'v1.0'] });
    expect(committed.body.data.digest).toMatch(/^sha256:[0-9a-f]{64}$/);

    const res = await fetch(`${base}/api/v1/artifacts/${id}/versions/v1.0/files:download?path=${encodeURIComponent('train/images.bin')}`, { headers: { authorization: `Bearer ${tokens.ada}` } });
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(content)).toBe(true);
    expect((await http('GET', `/api/v1/artifacts/${id}/versions`, 'ada')).body.meta.total).toBe(1);
    expect((await http('GET', `/api/v1/artifacts/${id}/diff?from=v0&to=latest`, 'ada')).body).toMatchObject({ added: 0, removed: 0, changed: 0 });
    expect((await http('PUT', `/api/v1/artifacts/${id}/aliases/production`, 'ada', { version: 'v0' })).body.data.aliases).toEqual(['latest', 'production', 'v1.0']);
    expect((await http('GET', `/api/v1/artifacts/${id}/aliases:history?alias=production`, 'ada')).body.data).toEqual([expect.objectContaining({ alias: 'production', version: 'v0', previousVersion: '' })]);
    const traversal = await http('GET', `/api/v1/artifacts/${id}/versions/v0/files:download?path=${encodeURIComponent('../../etc/passwd')}`, 'ada');
    expect(traversal.status).toBe(404);
  });

  it("hides another user's artifacts and drafts, and makes every project prove it has a body's bytes", async () => {
    const mine = (await http('POST', `/api/v1/projects/${projects.ada}/artifacts`, 'ada', { name: 'private', type: 'model' })).body.data.id as string;
    // Bob cannot see Ada's artifact at all: 404, as for an id that does not exist.
    expect((await http('GET', `/api/v1/artifacts/${mine}`, 'bob')).status).toBe(404);
    expect((await http('POST', `/api/v1/artifacts/${mine}/drafts`, 'bob', {})).status).toBe(404);

    // Ada holds a body; Bob names the same digest in his own project: he must still send the bytes.
    const secret = Buffer.from('weights only ada has');
    const adaDraft = (await http('POST', `/api/v1/artifacts/${mine}/drafts`, 'ada', {})).body.data.id as string;
    await http('POST', `/api/v1/artifacts/${mine}/files`, 'ada', { draftId: adaDraft, files: [entryOf('w.bin', secret)] });
    await grpcUpload('ada', mine, adaDraft, secret);
    await http('POST', `/api/v1/artifacts/${mine}/commit`, 'ada', { draftId: adaDraft });

    const his = (await http('POST', `/api/v1/projects/${projects.bob}/artifacts`, 'bob', { name: 'guess', type: 'model' })).body.data.id as string;
    const bobDraft = (await http('POST', `/api/v1/artifacts/${his}/drafts`, 'bob', {})).body.data.id as string;
    const asked = await http('POST', `/api/v1/artifacts/${his}/files`, 'bob', { draftId: bobDraft, files: [entryOf('w.bin', secret)] });
    expect(asked.body.missing).toEqual([sha256(secret)]);
    const refused = await http('POST', `/api/v1/artifacts/${his}/commit`, 'bob', { draftId: bobDraft });
    expect(refused.status).toBe(400);
    expect(refused.body.error.code).toBe('WLDB_ERR_VALIDATION');

    // Nor can Ada reach Bob's artifact or his drafts (draft ownership between writers of one artifact: artifact-service.test.ts).
    const shared = (await http('POST', `/api/v1/projects/${projects.bob}/artifacts`, 'bob', { name: 'shared', type: 'dataset' })).body.data.id as string;
    const bobsOwn = (await http('POST', `/api/v1/artifacts/${shared}/drafts`, 'bob', {})).body.data.id as string;
    expect((await http('POST', `/api/v1/artifacts/${shared}/commit`, 'ada', { draftId: bobsOwn })).status).toBe(404);
    await expect(grpcUpload('ada', shared, bobsOwn, secret)).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });
  it('uploads bodies over plain HTTP (PUT raw bytes), verified, size-capped and authorised like the gRPC stream', async () => {
    const id = (await http('POST', `/api/v1/projects/${projects.ada}/artifacts`, 'ada', { name: 'http-upload', type: 'dataset' })).body.data.id as string;
    const draftId = (await http('POST', `/api/v1/artifacts/${id}/drafts`, 'ada', {})).body.data.id as string;
    const body = randomBytes(300_000);
    const other = randomBytes(1000);
    await http('POST', `/api/v1/artifacts/${id}/files`, 'ada', { draftId, files: [entryOf('a.bin', body), entryOf('b.bin', other)] });
    const put = (who: string, digest: string, bytes: Uint8Array, contentType = 'application/octet-stream') =>
      fetch(`${base}/api/v1/artifacts/${id}/blobs/${digest}?draftId=${draftId}`, { method: 'PUT', headers: { authorization: `Bearer ${tokens[who]}`, 'content-type': contentType }, body: bytes });

    // Another body's bytes under this digest: refused, nothing kept.
    const wrong = await put('ada', sha256(other), randomBytes(1000));
    expect(wrong.status).toBe(422);
    expect((await wrong.json()).error.code).toBe('WLDB_ERR_BLOB_DIGEST_MISMATCH');
    // More bytes than the manifest declares: refused as they arrive.
    const over = await put('ada', sha256(other), randomBytes(5000));
    expect(over.status).toBe(413);
    expect((await over.json()).error.code).toBe('WLDB_ERR_BODY_TOO_LARGE');
    // JSON is not a body; a stranger may not write here.
    expect((await put('ada', sha256(other), Buffer.from('{}'), 'application/json')).status).toBe(415);
    expect((await put('bob', sha256(other), other)).status).toBe(404);
    expect((await http('POST', `/api/v1/artifacts/${id}/commit`, 'ada', { draftId })).status).toBe(400); // two bodies still missing

    for (const b of [body, other]) {
      const ok = await put('ada', sha256(b), b);
      expect(ok.status).toBe(200);
      expect(await ok.json()).toEqual({ digest: sha256(b), size: b.length });
    }
    expect((await http('POST', `/api/v1/artifacts/${id}/commit`, 'ada', { draftId })).body.data).toMatchObject({ version: 'v0', size: body.length + other.length });
    const res = await fetch(`${base}/api/v1/artifacts/${id}/versions/v0/download?path=a.bin`, { headers: { authorization: `Bearer ${tokens.ada}` } });
    expect(Buffer.from(await res.arrayBuffer()).equals(body)).toBe(true);
  });
});
