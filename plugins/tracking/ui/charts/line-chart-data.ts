import type { ReactiveController, ReactiveElement } from 'lit';
import { projectOf, watchRuns, type LiveRunEvent } from './live.js';
import { lastFinite, mergeLive, seriesId, type Series } from './series.js';
import { errorMessage, metricsApi } from '@wanllmdb/web/kit';

const MAX_RUNS_PER_QUERY = 100;
const MAX_KEYS_PER_QUERY = 100;
/** How long a zoom, a pan, a resize or a (re)opened live stream waits before it re-queries. */
export const REFETCH_DEBOUNCE_MS = 200;

/** What the data reads of its chart: which series, on which x axis and range, and whether live. */
export type LineChartHost = ReactiveElement & {
  readonly runIds: string[];
  readonly keys: string[];
  readonly xKey: string;
  readonly live: boolean;
  readonly projectId: string;
  /** The zoomed x range, undefined for all. */
  readonly range: [number, number] | undefined;
};

/** What the data needs of the chart's drawing. */
export interface LineChartView {
  /** The plot's width in pixels (0 before it is laid out). */
  width(): number;
  /** The series changed: draw them. */
  changed(): void;
}

/**
 * A line chart's series (runs × keys), queried downsampled from
 * `MetricService.QueryMetrics` at about one bucket per pixel of the current
 * x range, and with `live` kept up to date over the shared runs:watch
 * stream. The host re-renders on `loading` and `error`; once the server has
 * subscribed the stream the host carries `data-live="open"`.
 */
export class LineChartData implements ReactiveController {
  /** The series, by `seriesId`. */
  series = new Map<string, Series>();
  loading = false;
  error = '';
  /** The last query's round trip (request → JSON) and the decoding of its series. */
  timing = { requestMs: 0, parseMs: 0 };
  /** The plot width the series were queried for. */
  fetchedWidth = 0;
  private fetchSeq = 0;
  private fetchAbort: AbortController | undefined;
  private refetchTimer: ReturnType<typeof setTimeout> | undefined;
  private stopLive: (() => void) | undefined;
  private liveKey = '';

  constructor(
    private readonly host: LineChartHost,
    private readonly view: LineChartView,
  ) {
    host.addController(this);
  }

  hostConnected(): void {
    if (this.host.hasUpdated) {
      this.scheduleFetch(0);
      this.syncLive();
    }
  }

  hostDisconnected(): void {
    this.stopLive?.();
    this.stopLive = undefined;
    this.liveKey = '';
    delete this.host.dataset.live;
    this.fetchAbort?.abort();
    clearTimeout(this.refetchTimer);
  }

  /** The last value of a series (raw, unsmoothed), or undefined when it has none. */
  lastValue(runId: string, key: string): number | undefined {
    const s = this.series.get(seriesId(runId, key));
    return s ? lastFinite(s.value) : undefined;
  }

  /** About one bucket per pixel. */
  maxPoints(): number {
    return Math.min(10_000, Math.max(200, Math.round(this.view.width() || 600)));
  }

  /** The runs, keys or x axis changed: drops the series and queries the new ones. */
  reset(): void {
    this.series.clear();
    this.scheduleFetch(0);
  }

  scheduleFetch(ms: number): void {
    clearTimeout(this.refetchTimer);
    this.refetchTimer = setTimeout(() => void this.fetchData(), ms);
  }

  private async fetchData(): Promise<void> {
    const host = this.host;
    const runIds = [...new Set(host.runIds ?? [])];
    const keys = [...new Set(host.keys ?? [])];
    this.fetchAbort?.abort();
    if (!runIds.length || !keys.length) {
      this.series.clear();
      this.view.changed();
      return;
    }
    const seq = ++this.fetchSeq;
    const abort = (this.fetchAbort = new AbortController());
    this.loading = true;
    host.requestUpdate();
    const maxPoints = this.maxPoints();
    const range = host.range;
    const t0 = performance.now();
    try {
      const requests: ReturnType<typeof metricsApi.queryMetrics>[] = [];
      for (let r = 0; r < runIds.length; r += MAX_RUNS_PER_QUERY)
        for (let k = 0; k < keys.length; k += MAX_KEYS_PER_QUERY)
          requests.push(
            metricsApi.queryMetrics(
              {
                runIds: runIds.slice(r, r + MAX_RUNS_PER_QUERY),
                keys: keys.slice(k, k + MAX_KEYS_PER_QUERY),
                xKey: host.xKey || 'step',
                maxPoints,
                ...(range ? { xMin: range[0], xMax: range[1] } : {}),
              },
              { signal: abort.signal },
            ),
          );
      const results = await Promise.all(requests);
      if (seq !== this.fetchSeq) return;
      const t1 = performance.now();
      const next = new Map<string, Series>();
      for (const res of results)
        for (const raw of res.data ?? []) {
          const s = parseSeriesFast(raw);
          next.set(seriesId(s.runId, s.key), s);
        }
      this.series = next;
      this.timing = { requestMs: t1 - t0, parseMs: performance.now() - t1 };
      this.fetchedWidth = this.view.width();
      this.error = '';
      host.requestUpdate();
      this.view.changed();
    } catch (e) {
      if (abort.signal.aborted) return;
      this.error = errorMessage(e);
      host.requestUpdate();
    } finally {
      if (seq === this.fetchSeq) {
        this.loading = false;
        host.requestUpdate();
      }
    }
  }

  /** Watches the runs while the host is live and connected (one shared stream per project and runs). */
  syncLive(): void {
    const host = this.host;
    const want = host.live && host.isConnected && host.runIds?.length && host.keys?.length;
    const key = want ? `${host.projectId}|${[...host.runIds].sort().join(',')}` : '';
    if (key === this.liveKey) return;
    this.stopLive?.();
    this.stopLive = undefined;
    this.liveKey = key;
    delete host.dataset.live;
    if (!want) return;
    const runIds = [...host.runIds];
    void (async () => {
      const projectId = host.projectId || (await projectOf(runIds[0]!).catch(() => ''));
      if (!projectId || this.liveKey !== key) return;
      this.stopLive = watchRuns(projectId, runIds, {
        onEvent: (e) => this.onLive(e),
        onOpen: () => {
          if (this.liveKey === key) host.dataset.live = 'open';
          this.scheduleFetch(REFETCH_DEBOUNCE_MS);
        },
      });
    })();
  }

  private onLive(e: LiveRunEvent): void {
    const host = this.host;
    if (e.kind !== 'metrics' || !host.runIds.includes(e.runId)) return;
    const keys = new Set(host.keys);
    let changed = false;
    for (const s of e.series) {
      if (!keys.has(s.key)) continue;
      if ((host.xKey || 'step') !== 'step') {
        // Live points carry steps only: other x axes re-query (throttled).
        if (!this.refetchTimer || this.loading) this.scheduleFetch(1000);
        return;
      }
      const id = seriesId(e.runId, s.key);
      let into = this.series.get(id);
      if (!into) this.series.set(id, (into = { runId: e.runId, key: s.key, sampled: false, x: [], value: [], min: [], max: [], count: [] }));
      mergeLive(into, s);
      changed = true;
      // Appended points have outgrown the buckets' density: re-bucket on the server.
      if (into.x.length > this.maxPoints() * 3) this.scheduleFetch(1000);
    }
    if (changed) this.view.changed();
  }
}

/** parseSeries without the per-element closures: the hot path of 100 runs × 1,000 buckets. */
function parseSeriesFast(raw: unknown): Series {
  const s = raw as Record<string, unknown>;
  const col = (a: unknown): number[] => {
    if (!Array.isArray(a)) return [];
    const out = new Array<number>(a.length);
    for (let i = 0; i < a.length; i++) {
      const v = a[i];
      out[i] = typeof v === 'number' ? v : v === 'Infinity' ? Infinity : v === '-Infinity' ? -Infinity : typeof v === 'string' ? Number(v) : NaN;
    }
    return out;
  };
  const value = col(s.value);
  const min = col(s.min);
  const max = col(s.max);
  const count = col(s.count);
  return {
    runId: String(s.runId ?? ''),
    key: String(s.key ?? ''),
    sampled: Boolean(s.sampled),
    x: col(s.x),
    value,
    min: min.length === value.length ? min : value.slice(),
    max: max.length === value.length ? max : value.slice(),
    count: count.length === value.length ? count : value.map(() => 1),
  };
}
