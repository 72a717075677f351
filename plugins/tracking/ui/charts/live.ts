import type { ReactiveController, ReactiveElement } from 'lit';
import { tracking } from '@wanllmdb/proto/client';
import { parseSeries, type Series } from './series.js';
import { api, dataOf, httpRoute, runsApi } from '@wanllmdb/web/kit';

/**
 * Live run events, shared: every chart (and page) watching the same project
 * and runs shares one `runs:watch` stream (keys=*) — a browser keeps only
 * six HTTP/1.1 connections per origin, so one stream per chart would stall
 * a page of twenty charts. The stream reconnects after a failure; each
 * (re)open is announced so subscribers can re-query what they may have missed.
 */
export type LiveRunEvent = Omit<tracking.v1.RunEvent, 'series'> & {
  /** The new points, decoded (`parseSeries`). */
  series: Series[];
};

export interface LiveSubscriber {
  onEvent(e: LiveRunEvent): void;
  /** The stream is (again) subscribed on the server: anything earlier may have been missed. */
  onOpen?(): void;
}

interface Hub {
  subscribers: Set<LiveSubscriber>;
  abort: AbortController;
  opened: boolean;
}

const hubs = new Map<string, Hub>();
const RETRY_MS = 2000;

/** The run ids, deduplicated and sorted (a hub's identity and the stream's `runIds`). */
const idList = (runIds: string[]): string[] => [...new Set(runIds)].sort();

function start(key: string, projectId: string, runIds: string[], hub: Hub, metrics = true): void {
  // Without metrics: run changes only (no metric points); no run ids: every run of the project.
  const { path } = httpRoute(tracking.v1.RunService, 'watchRuns', metrics ? { projectId, runIds, keys: ['*'] } : { projectId, runIds });
  const run = async () => {
    while (!hub.abort.signal.aborted) {
      try {
        await api.stream<tracking.v1.RunEvent>(
          path,
          (raw) => {
            const e: LiveRunEvent = { ...raw, series: Array.isArray(raw.series) ? raw.series.map(parseSeries) : [] };
            for (const s of [...hub.subscribers]) s.onEvent(e);
          },
          hub.abort.signal,
          () => {
            hub.opened = true;
            for (const s of [...hub.subscribers]) s.onOpen?.();
          },
        );
      } catch (err) {
        if (hub.abort.signal.aborted) return;
        console.warn('live run events failed; retrying', err);
      }
      hub.opened = false;
      if (hub.abort.signal.aborted) return;
      await new Promise((r) => setTimeout(r, RETRY_MS));
    }
  };
  void run().finally(() => {
    if (hubs.get(key) === hub && hub.abort.signal.aborted) hubs.delete(key);
  });
}

/** Subscribes to the events of these runs of a project; returns the unsubscribe function. */
export function watchRuns(projectId: string, runIds: string[], sub: LiveSubscriber, opts: { metrics?: boolean } = {}): () => void {
  const metrics = opts.metrics ?? true;
  const ids = idList(runIds);
  const key = `${projectId}|${ids.join(',')}${metrics ? '' : '|runs-only'}`;
  let hub = hubs.get(key);
  if (!hub) {
    hub = { subscribers: new Set(), abort: new AbortController(), opened: false };
    hubs.set(key, hub);
    start(key, projectId, ids, hub, metrics);
  } else if (hub.opened) queueMicrotask(() => sub.onOpen?.());
  hub.subscribers.add(sub);
  const h = hub;
  return () => {
    h.subscribers.delete(sub);
    // Kept a moment: a chart re-rendering (or the next chart of the page) re-subscribes without a new connection.
    setTimeout(() => {
      if (h.subscribers.size === 0 && hubs.get(key) === h) {
        hubs.delete(key);
        h.abort.abort();
      }
    }, 1000);
  };
}

/** The project of a run, cached (charts are given run ids; the watch route needs the project). */
const projectOfRun = new Map<string, Promise<string>>();
export function projectOf(runId: string): Promise<string> {
  let p = projectOfRun.get(runId);
  if (!p) {
    p = runsApi.getRun({ id: runId }).then((r) => dataOf(r).projectId);
    p.catch(() => projectOfRun.delete(runId));
    projectOfRun.set(runId, p);
  }
  return p;
}

/**
 * Reloads on changes to the runs other than metric points (a rename, a state,
 * a summary as metrics arrive): `reload` at most once every `delayMs`.
 * Returns the stop function (which drops a pending reload), or undefined
 * when there is nothing to watch (no project or no runs).
 */
export function watchRunChanges(projectId: string, runIds: string[], reload: () => void, delayMs = 2000): (() => void) | undefined {
  if (!projectId || !runIds.length) return undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stop = watchRuns(projectId, runIds, {
    onEvent: (e) => {
      if (e.kind === 'metrics') return;
      timer ??= setTimeout(() => {
        timer = undefined;
        reload();
      }, delayMs);
    },
  });
  return () => {
    stop();
    clearTimeout(timer);
  };
}

/**
 * Keeps what an element shows of its `projectId` and `runIds` loaded: calls
 * `load` when either changes (`first` true, from the host's update) and again
 * on changes to those runs (`watchRunChanges`, `first` false). Nothing is
 * watched while the host is disconnected; it loads afresh when it comes back.
 * `load` is given `current()`: false once the host has moved on to other runs
 * (drop what it loaded then).
 */
export class LiveRunsController implements ReactiveController {
  private loadedFor = '';
  private stopLive: (() => void) | undefined;

  constructor(
    private readonly host: ReactiveElement & { projectId: string; runIds: string[] | undefined },
    private readonly load: (current: () => boolean, first: boolean) => Promise<void>,
  ) {
    host.addController(this);
  }

  hostConnected(): void {
    if (this.host.hasUpdated) this.host.requestUpdate();
  }

  hostDisconnected(): void {
    this.stopLive?.();
    this.stopLive = undefined;
    this.loadedFor = '';
  }

  hostUpdate(): void {
    const { projectId } = this.host;
    const runIds = this.host.runIds ?? [];
    const key = `${projectId}|${runIds.join(',')}`;
    if (key === this.loadedFor) return;
    this.loadedFor = key;
    this.run(key, true);
    this.stopLive?.();
    this.stopLive = watchRunChanges(projectId, runIds, () => this.run(this.loadedFor, false));
  }

  private run(key: string, first: boolean): void {
    void this.load(() => key === this.loadedFor, first);
  }
}

/**
 * Every run change of a project (created, updated, state, deleted; no metric
 * points), on one shared stream per project: what a runs table needs.
 * Returns the unsubscribe function.
 */
export function watchProjectRuns(projectId: string, sub: LiveSubscriber): () => void {
  return watchRuns(projectId, [], sub, { metrics: false });
}
