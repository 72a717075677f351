import { randomUUID } from 'node:crypto';
import { Errors, type CallContext, type ResolvedResource } from '@wanllmdb/core';
import type { JsonValue, tracking } from '@wanllmdb/proto';
import { decodeNumber, encodeNumber, isPlainObject } from './json-values.js';
import type { MetricStore, PointInput } from './metrics/metric-store.js';
import { RunProblems, runId, runNotFound } from './request-checks.js';
import type { RunRepository } from './run-repository.js';

type Handlers = tracking.v1.MetricServiceHandlers<CallContext>;
type MetricWarning = tracking.v1.MetricWarning;

/**
 * The MetricService handlers: thin adapters between the API's shapes and
 * the metrics engine (MetricStore), which owns history, batching and
 * downsampling. Points may be appended to a run in any state — a resumed
 * or just-finished run still receives its last buffered batches — but
 * never to a run that does not exist (WLDB_ERR_NOT_FOUND).
 */
const MAX_KEY = 256;
const MAX_KEYS_PER_QUERY = 100;
const MAX_RUNS_PER_QUERY = 100;
const DEFAULT_POINTS = 1000;
const MAX_POINTS = 10_000;
const MAX_PROBLEMS = 20;
const MAX_WARNINGS = 100;
const BATCH_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

const EXPORT_TYPES = { csv: 'text/csv', arrow: 'application/vnd.apache.arrow.stream' } as const;

/** "loss, acc" → ["loss", "acc"]; problems for empty or overlong names. */
function splitNames(p: RunProblems, field: string, names: string | undefined): string[] {
  const list = (names ?? '').split(',').map((n) => n.trim()).filter(Boolean);
  if (list.length > MAX_KEYS_PER_QUERY) p.add(field, `names more than ${MAX_KEYS_PER_QUERY} keys`);
  list.forEach((k) => k.length > MAX_KEY && p.add(field, `key ${JSON.stringify(k.slice(0, 40))}… is longer than ${MAX_KEY} characters`));
  return [...new Set(list)];
}

/** A number of a JSON point: a number, or "NaN" / "Infinity" / "-Infinity". */
function pointNumber(p: RunProblems, field: string, v: unknown, required: boolean): number | undefined {
  if (v === undefined || v === null) {
    if (required) p.add(field, 'is required');
    return undefined;
  }
  const n = decodeNumber(v);
  if (n === undefined) p.add(field, 'must be a number, "NaN", "Infinity" or "-Infinity"');
  return n;
}

function checkTime(p: RunProblems, field: string, time: number | undefined): number | undefined {
  if (time === undefined || time === 0) return undefined;
  if (!Number.isFinite(time) || time < 0) p.add(field, 'must be epoch milliseconds (0 or absent for now)');
  return time;
}

export function metricHandlers(deps: { runs: RunRepository; metrics: () => MetricStore }): Handlers {
  const { runs } = deps;

  /**
   * NOT_FOUND unless the run exists. Authorisation that placed the run in
   * its project (`resolved`) has just read it, so it is not read again; the
   * local principal's authorisation places nothing, so the run is looked up.
   */
  const mustExist = async (id: string, resolved: readonly ResolvedResource[], field = 'runId') => {
    if (resolved.some((r) => r.type === 'run' && r.id === id && r.projectId)) return;
    if (!(await runs.projectOf(id))) throw runNotFound(id, field);
  };

  const response = (r: { accepted: number; duplicate: boolean; warnings: MetricWarning[]; batchId: string }) => ({
    accepted: r.accepted,
    duplicate: r.duplicate,
    warnings: r.warnings,
    batchId: r.batchId,
  });

  function checkBatch(p: RunProblems, req: { batchId?: string; arrowIpc?: Uint8Array }): string {
    const batchId = req.batchId || randomUUID();
    if (!BATCH_ID.test(batchId)) p.add('batchId', 'must be 1 to 128 letters, digits, "_", ".", ":" or "-"');
    if (!req.arrowIpc?.length) p.add('arrowIpc', 'is required: the batch as Arrow IPC stream bytes');
    return batchId;
  }

  return {
    async logMetrics(req, ctx) {
      const id = runId(req.runId, 'runId');
      const p = new RunProblems('The metrics');
      const points: PointInput[] = [];
      (req.metrics ?? []).forEach((m, i) => {
        if (p.list.length >= MAX_PROBLEMS) return;
        const key = p.line(`metrics[${i}].name`, m.name, MAX_KEY, { required: true });
        const step = pointNumber(p, `metrics[${i}].step`, m.step ?? 0, true);
        const value = pointNumber(p, `metrics[${i}].value`, m.value, true);
        const time = checkTime(p, `metrics[${i}].time`, m.time);
        if (step !== undefined && value !== undefined) points.push({ key, step, value, ...(time ? { time } : {}) });
      });
      p.throwIfAny();
      await mustExist(id, ctx.resources);
      return response(await deps.metrics().appendPoints(id, points));
    },

    async batchMetrics(req, ctx) {
      const id = runId(req.runId, 'runId');
      const p = new RunProblems('The metric batch');
      const points: PointInput[] = [];
      for (const [key, items] of Object.entries(req.metrics ?? {})) {
        if (!key || key.length > MAX_KEY) p.add(`metrics.${key.slice(0, 40)}`, `keys must be 1 to ${MAX_KEY} characters`);
        if (!Array.isArray(items)) {
          p.add(`metrics.${key}`, 'must be a list of {"step", "value"} points');
          continue;
        }
        (items as JsonValue[]).forEach((item, i) => {
          if (p.list.length >= MAX_PROBLEMS) return;
          const at = `metrics.${key}[${i}]`;
          if (!isPlainObject(item)) return p.add(at, 'must be an object {"step": …, "value": …}');
          const unknown = Object.keys(item).filter((k) => k !== 'step' && k !== 'value' && k !== 'time');
          if (unknown.length) p.add(at, `has unknown fields ${unknown.join(', ')}; a point has step, value and time`);
          const step = pointNumber(p, `${at}.step`, item.step, true);
          const value = pointNumber(p, `${at}.value`, item.value, true);
          const rawTime = item.time === undefined || item.time === null ? undefined : item.time;
          if (rawTime !== undefined && typeof rawTime !== 'number') p.add(`${at}.time`, 'must be epoch milliseconds');
          const time = typeof rawTime === 'number' ? checkTime(p, `${at}.time`, rawTime) : undefined;
          if (step !== undefined && value !== undefined) points.push({ key, step, value, ...(time ? { time } : {}) });
        });
      }
      p.throwIfAny();
      await mustExist(id, ctx.resources);
      return response(await deps.metrics().appendPoints(id, points));
    },

    async appendMetricBatch(req, ctx) {
      const id = runId(req.runId, 'runId');
      const p = new RunProblems('The metric batch');
      const batchId = checkBatch(p, req);
      p.throwIfAny();
      await mustExist(id, ctx.resources);
      return response(await deps.metrics().append(id, batchId, req.arrowIpc));
    },

    async streamMetrics(requests, ctx) {
      const known = new Set<string>();
      const out = { batchIds: [] as string[], accepted: 0, duplicates: 0, warnings: [] as MetricWarning[] };
      let n = 0;
      // Each batch is appended (durably) as it arrives; a failure stops the stream, and the batches before it stay stored.
      for await (const batch of requests) {
        n++;
        const id = runId(batch.runId, `batch ${n} runId`);
        // A client stream names its runs only in its messages: each new run is authorised before anything else.
        const placed = known.has(id) ? undefined : await ctx.authorize('runs:write', [{ type: 'run', id }]);
        const p = new RunProblems(`Batch ${n} of the stream`);
        const batchId = checkBatch(p, batch);
        p.throwIfAny();
        if (placed) {
          await mustExist(id, placed);
          known.add(id);
        }
        const r = await deps.metrics().append(id, batchId, batch.arrowIpc);
        out.batchIds.push(r.batchId);
        out.accepted += r.accepted;
        if (r.duplicate) out.duplicates++;
        for (const w of r.warnings) if (out.warnings.length < MAX_WARNINGS) out.warnings.push(w);
      }
      return out;
    },

    async getMetrics(req, ctx) {
      const id = runId(req.runId, 'runId');
      const p = new RunProblems('The metrics request');
      const keys = splitNames(p, 'names', req.names);
      const maxPoints = p.pageSize('maxPoints', req.maxPoints, DEFAULT_POINTS, MAX_POINTS);
      if (req.minStep !== undefined && req.maxStep !== undefined && req.minStep > req.maxStep) p.add('minStep', 'must not be greater than maxStep');
      p.throwIfAny();
      await mustExist(id, ctx.resources);
      const series = await deps.metrics().query({
        runIds: [id],
        keys,
        xKey: 'step',
        maxPoints,
        ...(req.minStep !== undefined ? { xMin: req.minStep } : {}),
        ...(req.maxStep !== undefined ? { xMax: req.maxStep } : {}),
      });
      const data: Record<string, JsonValue[]> = {};
      for (const s of series) {
        data[s.key] = s.x.map((x, i): JsonValue => {
          const point: Record<string, JsonValue> = { step: encodeNumber(x), value: encodeNumber(s.value[i]!) };
          const time = s.time[i];
          if (time !== undefined) point.timestamp = new Date(time).toISOString();
          if (s.sampled) {
            point.min = encodeNumber(s.min[i]!);
            point.max = encodeNumber(s.max[i]!);
            point.count = s.count[i]!;
          }
          return point;
        });
      }
      return { data, sampled: series.some((s) => s.sampled) };
    },

    async queryMetrics(req, ctx) {
      const p = new RunProblems('The metrics query');
      const ids = req.runIds ?? [];
      if (!ids.length) p.add('runIds', 'needs at least one run');
      if (ids.length > MAX_RUNS_PER_QUERY) p.add('runIds', `has more than ${MAX_RUNS_PER_QUERY} runs`);
      const keys = req.keys ?? [];
      if (keys.length > MAX_KEYS_PER_QUERY) p.add('keys', `has more than ${MAX_KEYS_PER_QUERY} keys`);
      keys.forEach((k, i) => p.line(`keys[${i}]`, k, MAX_KEY, { required: true }));
      const xKey = p.line('xKey', req.xKey, MAX_KEY) || 'step';
      const maxPoints = p.pageSize('maxPoints', req.maxPoints, DEFAULT_POINTS, MAX_POINTS);
      if (req.xMin !== undefined && req.xMax !== undefined && req.xMin > req.xMax) p.add('xMin', 'must not be greater than xMax');
      p.throwIfAny();
      const runIds = [...new Set(ids.map((r, i) => runId(r, `runIds[${i}]`)))];
      for (const [i, rid] of runIds.entries()) await mustExist(rid, ctx.resources, `runIds[${i}]`);
      const data = await deps.metrics().query({
        runIds,
        keys,
        xKey,
        maxPoints,
        ...(req.xMin !== undefined ? { xMin: req.xMin } : {}),
        ...(req.xMax !== undefined ? { xMax: req.xMax } : {}),
      });
      return { data };
    },

    async listMetricKeys(req, ctx) {
      const id = runId(req.runId, 'runId');
      await mustExist(id, ctx.resources);
      return { data: await deps.metrics().keys(id) };
    },

    async exportMetrics(req, ctx, send) {
      const id = runId(req.runId, 'runId');
      const p = new RunProblems('The export request');
      const format = req.format || 'csv';
      const keys = splitNames(p, 'names', req.names);
      p.throwIfAny();
      await mustExist(id, ctx.resources);
      const contentType = EXPORT_TYPES[format];
      let sent = false;
      await deps.metrics().export(id, keys, format, async (chunk) => {
        // Stops the engine's export when the caller has gone.
        if (ctx.signal.aborted) throw Errors.SHUTTING_DOWN('The export was cancelled because the caller went away.');
        await send({ contentType, data: chunk });
        sent = true;
      }).catch((err: unknown) => {
        if (!ctx.signal.aborted) throw err;
      });
      if (!sent && !ctx.signal.aborted) await send({ contentType, data: new Uint8Array(0) });
    },
  };
}
