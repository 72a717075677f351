import type { tracking } from '@wanllmdb/proto/client';
import { configDiff, flatten } from './series.js';
import { dataOf, metricsApi, runsApi } from '@wanllmdb/web/kit';

type Run = tracking.v1.Run;
type KeyStats = tracking.v1.MetricKeyStats;

/** Ids per ListRuns filter (`id = "…" OR …`), under the API's 4,096-character filter limit. */
const IDS_PER_QUERY = 60;

/** Runs by id (in the given order; missing ones left out), or the project's latest runs when no ids are given. */
export async function loadRuns(projectId: string, runIds: string[]): Promise<Run[]> {
  if (!runIds.length) {
    if (!projectId) return [];
    const r = await runsApi.listRuns({ projectId, limit: 200 });
    return r.data;
  }
  const byId = new Map<string, Run>();
  if (runIds.length > 1 && projectId) {
    // A few list queries instead of one request per run (browsers open ~6 connections per host).
    const chunks: string[][] = [];
    for (let i = 0; i < runIds.length; i += IDS_PER_QUERY) chunks.push(runIds.slice(i, i + IDS_PER_QUERY));
    const pages = await Promise.all(
      chunks.map((ids) =>
        runsApi.listRuns({ projectId, limit: 1000, filter: ids.map((id) => `id = "${id.replace(/"/g, '')}"`).join(' OR ') }).then(
          (r) => r.data,
          () => [] as Run[],
        ),
      ),
    );
    for (const page of pages) for (const r of page) byId.set(r.id, r);
  }
  // Runs of other projects (or when the list query was refused): one by one.
  const rest = runIds.filter((id) => !byId.has(id));
  const fetched = await Promise.all(rest.map((id) => runsApi.getRun({ id }).then(dataOf, () => undefined)));
  for (const r of fetched) if (r) byId.set(r.id, r);
  return runIds.map((id) => byId.get(id)).filter((r): r is Run => !!r);
}

/** Runs whose key lists are read to find the metrics to chart (a sample: one request each). */
const KEY_SAMPLE = 12;

/**
 * The metric keys of runs (of the first KEY_SAMPLE of them): each key with
 * the runs that have it; `common` are the keys every sampled run logged.
 */
export async function metricKeys(runIds: string[]): Promise<{ union: string[]; common: string[]; stats: Map<string, KeyStats[]> }> {
  const lists = await Promise.all(
    runIds.slice(0, KEY_SAMPLE).map((id) =>
      metricsApi.listMetricKeys({ runId: id }).then(
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
export function fieldOptions(runs: Run[]): { config: string[]; summary: string[] } {
  const config = new Set<string>();
  const summary = new Set<string>();
  for (const r of runs) {
    for (const k of Object.keys(flatten(r.config ?? {}))) config.add(`config.${k}`);
    for (const [k, v] of Object.entries(r.summary ?? {})) if (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') summary.add(`summary.${k}`);
  }
  return { config: [...config].sort(), summary: [...summary].sort() };
}

/** Config keys whose values differ between the runs (the interesting axes), at most `max`. */
export function differingConfigKeys(runs: Run[], max = 8): string[] {
  return configDiff(runs.map((r) => r.config ?? {}))
    .filter((r) => r.differs)
    .slice(0, max)
    .map((r) => `config.${r.key}`);
}
