import { isoTime } from '@wanllmdb/core';
import type { ArtifactRepository, EdgeRow } from './artifact-repository.js';
import { versionName } from './artifact-repository.js';
import type { artifacts } from './gen/index.js';

type Node = artifacts.v1.LineageNode;
type Edge = artifacts.v1.LineageEdge;

/** Nodes one answer carries at most. */
export const MAX_LINEAGE_NODES = 500;

export type Start = { kind: 'run'; runId: string } | { kind: 'version'; versionId: string };

/** Whether the caller may see a node in this project (decided by the service from the caller's access). */
export type Visible = (projectId: string, kind: 'run' | 'version') => Promise<boolean>;

export const runNode = (id: string): string => `run:${id}`;
export const versionNode = (id: string): string => `version:${id}`;

/**
 * The lineage around a run or a version, breadth first: upstream follows
 * what made a node (a version's logging runs, a run's inputs), downstream
 * what was made from it (a version's using runs, a run's outputs). "both"
 * walks each way from the start on its own, so siblings (other outputs of
 * the run that made a version) are not pulled in. Nodes the caller may not
 * see are left out, and nothing is walked through them.
 */
export async function lineage(repo: ArtifactRepository, start: Start, startNode: Node, direction: 'upstream' | 'downstream' | 'both', hops: number, visible: Visible): Promise<artifacts.v1.LineageResponse> {
  const nodes = new Map<string, Node>();
  const edges = new Map<string, Edge>();
  const versionIds = new Set<string>();
  let truncated = false;

  const addEdge = (e: EdgeRow) => {
    const from = e.direction === 'input' ? versionNode(e.version_id) : runNode(e.run_id);
    const to = e.direction === 'input' ? runNode(e.run_id) : versionNode(e.version_id);
    edges.set(`${from}>${to}`, { from, to, kind: e.direction, at: isoTime(e.created_at) });
  };
  const addVersion = (e: EdgeRow) => {
    versionIds.add(e.version_id);
    nodes.set(versionNode(e.version_id), {
      id: versionNode(e.version_id),
      kind: 'version',
      runId: '',
      artifactId: e.artifact_id,
      artifactName: e.artifact_name,
      artifactType: e.artifact_type,
      version: versionName(Number(e.version)),
      projectId: e.project_id,
      deleted: false,
    });
  };
  const addRun = (e: EdgeRow) =>
    nodes.set(runNode(e.run_id), { id: runNode(e.run_id), kind: 'run', runId: e.run_id, artifactId: '', artifactName: '', artifactType: '', version: '', projectId: e.run_project_id, deleted: false });

  const walk = async (way: 'upstream' | 'downstream') => {
    // Each way keeps its own visited set: a node reached upstream is still walked on downstream.
    const visited = new Set<string>([start.kind === 'run' ? runNode(start.runId) : versionNode(start.versionId)]);
    let frontier: Start[] = [start];
    for (let hop = 0; hop < hops && frontier.length && !truncated; hop++) {
      const runs = frontier.flatMap((n) => (n.kind === 'run' ? [n.runId] : []));
      const versions = frontier.flatMap((n) => (n.kind === 'version' ? [n.versionId] : []));
      // upstream: run ← its inputs, version ← its logging runs; downstream: run → its outputs, version → its using runs.
      const found = [
        ...(await repo.edges('run', runs, way === 'upstream' ? 'input' : 'output')).map((e) => ({ e, fromRun: true })),
        ...(await repo.edges('version', versions, way === 'upstream' ? 'output' : 'input')).map((e) => ({ e, fromRun: false })),
      ];
      const next: Start[] = [];
      for (const { e, fromRun } of found) {
        const other = fromRun ? { kind: 'version' as const, key: versionNode(e.version_id) } : { kind: 'run' as const, key: runNode(e.run_id) };
        if (!(await visible(other.kind === 'run' ? e.run_project_id : e.project_id, other.kind))) continue;
        if (!visited.has(other.key)) {
          if (!nodes.has(other.key) && nodes.size >= MAX_LINEAGE_NODES) {
            truncated = true;
            break;
          }
          visited.add(other.key);
          if (other.kind === 'run') addRun(e);
          else addVersion(e);
          next.push(other.kind === 'run' ? { kind: 'run', runId: e.run_id } : { kind: 'version', versionId: e.version_id });
        }
        addEdge(e);
      }
      frontier = next;
    }
  };

  nodes.set(startNode.id, startNode);
  if (start.kind === 'version') versionIds.add(start.versionId);
  if (direction !== 'downstream') await walk('upstream');
  if (direction !== 'upstream') await walk('downstream');
  const alive = await repo.existingVersions([...versionIds]);
  for (const id of versionIds) if (!alive.has(id)) nodes.get(versionNode(id))!.deleted = true;
  return { nodes: [...nodes.values()], edges: [...edges.values()], truncated };
}
