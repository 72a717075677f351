import { api } from '../api/client.js';
import type { RunLike } from './canvas-chart.js';
import { configDiff, flatten } from './series.js';

/** A run as `GET /api/v1/runs/{id}` returns it. */
export interface Run extends RunLike {
  id: string;
  projectId: string;
  name: string;
  group: string;
  jobType: string;
  tags: string[];
  notes: string;
  state: string;
  exitCode?: number;
  config: Record<string, unknown>;
  summary: Record<string, unknown>;
  git?: { commit?: string; branch?: string; remote?: string; dirty?: boolean };
  environment?: { host?: string; os?: string; runtime?: string; command?: string; pid?: number };
  url: string;
  createdBy: string;
  startedAt: string;
  finishedAt: string;
  heartbeatAt: string;
  createdAt: string;
  updatedAt: string;
}

export interface KeyStats {
  key: string;
  count: number;
  last: number;
  lastStep: number;
  min: number;
  max: number;
  firstStep: number;
}

/** Runs by id (in the given order; missing ones left out), or the project's latest runs when no ids are given. */
export async function loadRuns(projectId: string, runIds: string[]): Promise<Run[]> {
  if (!runIds.length) {
    if (!projectId) return [];
    const r = await api.get<{ data: Run[] }>(`/api/v1/projects/${encodeURIComponent(projectId)}/runs`, { limit: 200 });
    return r.data;
  }
  if (runIds.length > 30 && projectId) {
    const r = await api.get<{ data: Run[] }>(`/api/v1/projects/${encodeURIComponent(projectId)}/runs`, { limit: 1000 });
    const byId = new Map(r.data.map((x) => [x.id, x]));
    if (runIds.every((id) => byId.has(id))) return runIds.map((id) => byId.get(id)!);
  }
  const runs = await Promise.all(runIds.map((id) => api.get<{ data: Run }>(`/api/v1/runs/${encodeURIComponent(id)}`).then((r) => r.data, () => undefined)));
  return runs.filter((r): r is Run => !!r);
}

/** The metric keys of runs: each key with how many of the runs have it. */
export async function metricKeys(runIds: string[]): Promise<{ union: string[]; common: string[]; stats: Map<string, KeyStats[]> }> {
  const lists = await Promise.all(
    runIds.slice(0, 50).map((id) =>
      api.get<{ data: KeyStats[] }>(`/api/v1/runs/${encodeURIComponent(id)}/metrics/keys`).then(
        (r) => r.data,
        () => [] as KeyStats[],
      ),
    ),
  );
  const stats = new Map<string, KeyStats[]>();
  for (const list of lists) for (const s of list) stats.set(s.key, [...(stats.get(s.key) ?? []), s]);
  const union = [...stats.keys()].sort();
  const common = union.filter((k) => stats.get(k)!.length === lists.length);
  return { union, common, stats };
}

/** `config.*` and `summary.*` field paths present in any of the runs. */
export function fieldOptions(runs: RunLike[]): { config: string[]; summary: string[] } {
  const config = new Set<string>();
  const summary = new Set<string>();
  for (const r of runs) {
    for (const k of Object.keys(flatten(r.config ?? {}))) config.add(`config.${k}`);
    for (const [k, v] of Object.entries(r.summary ?? {})) if (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') summary.add(`summary.${k}`);
  }
  return { config: [...config].sort(), summary: [...summary].sort() };
}

/** Config keys whose values differ between the runs (the interesting axes), at most `max`. */
export function differingConfigKeys(runs: RunLike[], max = 8): string[] {
  return configDiff(runs.map((r) => r.config ?? {}))
    .filter((r) => r.differs)
    .slice(0, max)
    .map((r) => `config.${r.key}`);
}
