import { defineEvent, Errors, type EventBus, type Logger } from '@wanllmdb/core';
import type { tracking } from '@wanllmdb/proto';
import { decodeNumber, encodeNumber } from './json-values.js';

type Run = tracking.v1.Run;
type RunEvent = tracking.v1.RunEvent;
type MetricSeries = tracking.v1.MetricSeries;

/**
 * Run events on the EventBus, so every replica's watchers see every change:
 *
 *   tracking.runs.<projectId>.<kind>      kind: created | updated | state | deleted
 *   tracking.metrics.<projectId>.<runId>  new points after a batch is aggregated
 *
 * Payloads are RunEvent messages. Bus payloads are JSON, which has no NaN
 * or ±Infinity, so metric series travel with non-finite numbers spelled
 * "NaN"/"Infinity"/"-Infinity" and are turned back into numbers on receipt.
 */
export type RunEventKind = 'created' | 'updated' | 'state' | 'deleted';

/** A run was created, updated, changed state or was deleted. */
export const runEvent = defineEvent<RunEvent>()({ plugin: 'tracking', subject: 'tracking.runs.{projectId}.{kind}' });

/** New points of a run (series encoded by encodeSeries: read them with decodeSeries). */
export interface MetricsEvent {
  kind: 'metrics';
  runId: string;
  series: unknown[];
}
export const metricsEvent = defineEvent<MetricsEvent>()({ plugin: 'tracking', subject: 'tracking.metrics.{projectId}.{runId}' });

const NUMERIC_SERIES_FIELDS = ['x', 'value', 'min', 'max', 'count', 'time'] as const;
/** Well under the bus's 1 MiB payload limit (MAX_PAYLOAD_BYTES), leaving room for the envelope. */
const MESSAGE_BUDGET_BYTES = 512 * 1024;

export function encodeSeries(series: MetricSeries[]): unknown[] {
  return series.map((s) => {
    const out: Record<string, unknown> = { runId: s.runId, key: s.key, sampled: s.sampled };
    for (const f of NUMERIC_SERIES_FIELDS) out[f] = Array.from(s[f] ?? [], encodeNumber);
    return out;
  });
}

export function decodeSeries(data: unknown): MetricSeries[] {
  if (!Array.isArray(data)) return [];
  return data.map((raw) => {
    const s = raw as Record<string, unknown>;
    const numbers = (f: string) => (Array.isArray(s[f]) ? (s[f] as unknown[]).map((v) => decodeNumber(v) ?? NaN) : []);
    return {
      runId: String(s.runId ?? ''),
      key: String(s.key ?? ''),
      sampled: Boolean(s.sampled),
      x: numbers('x'),
      value: numbers('value'),
      min: numbers('min'),
      max: numbers('max'),
      count: numbers('count'),
      time: numbers('time'),
    };
  });
}

/** Publishes run events. A failed publish is logged, never thrown: the change it reports is already stored. */
export class RunEvents {
  constructor(
    private readonly bus: EventBus,
    private readonly logger: Logger,
  ) {}

  async run(kind: Exclude<RunEventKind, 'deleted'>, run: Run): Promise<void> {
    const params = { projectId: run.projectId, kind };
    try {
      await runEvent.publish(this.bus, params, { kind, runId: run.id, run, series: [] });
    } catch (err) {
      if (!Errors.BUS_PAYLOAD_INVALID.is(err)) return this.failed(runEvent.template, err);
      // Config and summary may be too large for one bus message: send the run without them (watchers can fetch it).
      const slim: Run = { ...run, config: {}, summary: {} };
      await runEvent.publish(this.bus, params, { kind, runId: run.id, run: slim, series: [] }).catch((e: unknown) => this.failed(runEvent.template, e));
    }
  }

  async deleted(projectId: string, runId: string): Promise<void> {
    const params = { projectId, kind: 'deleted' };
    await runEvent.publish(this.bus, params, { kind: 'deleted', runId, series: [] }).catch((e: unknown) => this.failed(runEvent.template, e));
  }

  /** New points; a batch with many keys goes out as several messages, each under the bus's payload limit. */
  async metrics(projectId: string, runId: string, series: MetricSeries[]): Promise<void> {
    const params = { projectId, runId };
    let part: unknown[] = [];
    let bytes = 0;
    const flush = async () => {
      if (part.length) await metricsEvent.publish(this.bus, params, { kind: 'metrics', runId, series: part }).catch((e: unknown) => this.failed(metricsEvent.template, e));
      part = [];
      bytes = 0;
    };
    for (const s of encodeSeries(series)) {
      const size = JSON.stringify(s).length;
      if (bytes + size > MESSAGE_BUDGET_BYTES) await flush();
      part.push(s);
      bytes += size;
    }
    await flush();
  }

  private failed(subject: string, err: unknown): void {
    this.logger.warn({ err, subject }, 'could not publish a run event; live watchers miss this change');
  }
}
