import { metadataBackends, rejection } from '@wanllmdb/core/testing';
import { createTrackingPlugin } from '@wanllmdb/plugin-tracking';
import { beforeAll, describe, expect, it } from 'vitest';
import { useArtifactsKernel } from './fixtures/artifacts-kernel.js';
import type { artifacts } from './gen/index.js';

type Lineage = artifacts.v1.LineageResponse;
const bytes = (text: string) => Buffer.from(text);

/** What a graph says, in words: "mnist-raw:v0 -input-> run A". */
function described(g: Lineage, runNames: Record<string, string>): string[] {
  const name = (id: string) => {
    const n = g.nodes.find((x) => x.id === id)!;
    return n.kind === 'run' ? `run ${runNames[n.runId] ?? n.runId}` : `${n.artifactName}:${n.version}${n.deleted ? ' (deleted)' : ''}`;
  };
  return g.edges.map((e) => `${name(e.from)} -${e.kind}-> ${name(e.to)}`).sort();
}

describe.each(metadataBackends())('artifact lineage on $name', (backend) => {
  const t = useArtifactsKernel(backend, { before: [createTrackingPlugin()] });
  const runs: Record<string, string> = {};
  const names: Record<string, string> = {};
  let raw = '';
  let model = '';

  beforeAll(async () => {
    const projectId = (await t.kernel.call<{ data: { id: string } }>('wanllmdb.projects.v1.ProjectService/CreateProject', { name: 'lineage' })).data.id;
    for (const name of ['prepare', 'train', 'eval']) {
      runs[name] = (await t.kernel.call<{ data: { id: string } }>('wanllmdb.tracking.v1.RunService/CreateRun', { projectId, name })).data.id;
      names[runs[name]!] = name;
    }
    raw = (await t.call('CreateArtifact', { projectId, name: 'mnist-raw', type: 'dataset' })).data.id;
    model = (await t.call('CreateArtifact', { projectId, name: 'classifier', type: 'model' })).data.id;
    // prepare logs the dataset; train uses it and logs the model; eval uses the model.
    const logged = async (artifactId: string, runId: string, content: string) => {
      const draft = (await t.call('CreateDraft', { artifactId })).data.id;
      const file = Buffer.from(content);
      const { missing } = await t.call('AddFiles', { artifactId, draftId: draft, files: [{ path: 'f', digest: (await import('node:crypto')).createHash('sha256').update(file).digest('hex'), size: file.length }] });
      for (const d of missing) await t.upload(artifactId, draft, file, d);
      return (await t.call('Commit', { artifactId, draftId: draft, runId })).data;
    };
    await logged(raw, runs.prepare!, 'digits');
    await t.call('UseArtifact', { artifactId: raw, version: 'latest', runId: runs.train });
    await logged(model, runs.train!, 'weights');
    await t.call('UseArtifact', { artifactId: model, version: 'v0', runId: runs.eval });
  });

  it('answers upstream and downstream of a version, N hops, in one call', async () => {
    const up = await t.call<Lineage>('GetLineage', { artifactId: model, version: 'v0', direction: 'upstream', hops: 3 });
    expect(described(up, names)).toEqual(['mnist-raw:v0 -input-> run train', 'run prepare -output-> mnist-raw:v0', 'run train -output-> classifier:v0']);
    const oneHop = await t.call<Lineage>('GetLineage', { artifactId: model, version: 'v0', direction: 'upstream', hops: 1 });
    expect(described(oneHop, names)).toEqual(['run train -output-> classifier:v0']);
    const down = await t.call<Lineage>('GetLineage', { artifactId: raw, version: 'v0', direction: 'downstream' });
    expect(described(down, names)).toEqual(['classifier:v0 -input-> run eval', 'mnist-raw:v0 -input-> run train', 'run train -output-> classifier:v0']);
    // "both" walks each way from the start: no siblings pulled in.
    const both = await t.call<Lineage>('GetLineage', { artifactId: model, version: 'latest', hops: 1 });
    expect(described(both, names)).toEqual(['classifier:v0 -input-> run eval', 'run train -output-> classifier:v0']);
  });

  it("gives a run's inputs and outputs, and keeps edges when a run or version is deleted", async () => {
    const around = await t.call<Lineage>('GetRunLineage', { runId: runs.train, hops: 1 });
    expect(described(around, names)).toEqual(['mnist-raw:v0 -input-> run train', 'run train -output-> classifier:v0']);
    await t.kernel.call('wanllmdb.tracking.v1.RunService/DeleteRun', { id: runs.prepare });
    const up = await t.call<Lineage>('GetLineage', { artifactId: raw, version: 'v0', direction: 'upstream' });
    expect(described(up, names)).toEqual(['run prepare -output-> mnist-raw:v0']);
    await t.call('DeleteVersion', { artifactId: raw, version: 'v0' });
    const after = await t.call<Lineage>('GetRunLineage', { runId: runs.train, direction: 'upstream', hops: 1 });
    expect(described(after, names)).toEqual(['mnist-raw:v0 (deleted) -input-> run train']);
  });

  it('walks each way on its own: a version its own maker also used still leads downstream', async () => {
    const projectId = (await t.kernel.call<{ data: { id: string } }>('wanllmdb.projects.v1.ProjectService/CreateProject', { name: 'loops' })).data.id;
    const runId = (await t.kernel.call<{ data: { id: string } }>('wanllmdb.tracking.v1.RunService/CreateRun', { projectId, name: 'selfish' })).data.id;
    names[runId] = 'selfish';
    const ds = (await t.call('CreateArtifact', { projectId, name: 'ds', type: 'dataset' })).data.id;
    const m = (await t.call('CreateArtifact', { projectId, name: 'm', type: 'model' })).data.id;
    const commit = async (artifactId: string, content: string) => {
      const draft = (await t.call('CreateDraft', { artifactId })).data.id;
      const file = Buffer.from(content);
      const { missing } = await t.call('AddFiles', { artifactId, draftId: draft, files: [{ path: 'f', digest: (await import('node:crypto')).createHash('sha256').update(file).digest('hex'), size: file.length }] });
      for (const d of missing) await t.upload(artifactId, draft, file, d);
      await t.call('Commit', { artifactId, draftId: draft, runId });
    };
    await commit(ds, 'data');
    await t.call('UseArtifact', { artifactId: ds, version: 'v0', runId });
    await commit(m, 'model');
    const both = await t.call<Lineage>('GetLineage', { artifactId: ds, version: 'v0', hops: 2 });
    expect(described(both, names)).toEqual(['ds:v0 -input-> run selfish', 'run selfish -output-> ds:v0', 'run selfish -output-> m:v0']);
  });

  it('refuses a run that does not exist and bad options', async () => {
    expect((await rejection(t.call('UseArtifact', { artifactId: model, version: 'v0', runId: '11111111-1111-4111-8111-111111111111' }))).code).toBe('WLDB_ERR_NOT_FOUND');
    expect((await rejection(t.call('GetLineage', { artifactId: model, version: 'v0', hops: 11 }))).details).toEqual([{ field: 'hops', message: 'must be an integer from 1 to 10 (leave it out for 3)' }]);
    expect((await rejection(t.call('GetLineage', { artifactId: model, version: 'v0', direction: 'sideways' }))).code).toBe('WLDB_ERR_VALIDATION');
  });
});
