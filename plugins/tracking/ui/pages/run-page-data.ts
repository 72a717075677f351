import type { ReactiveController, ReactiveElement } from 'lit';
import { tracking, type ClientRequest } from '@wanllmdb/proto/client';
import { watchRuns } from '../charts/live.js';
import { api, dataOf, errorMessage, httpRoute, metricsApi, runFilesApi, runsApi } from '@wanllmdb/web/kit';

type Run = tracking.v1.Run;

/** Where a run file downloads from (the link's href, and what `downloadFile` fetches). */
export const fileHref = (runId: string, path: string): string => httpRoute(tracking.v1.RunFileService, 'downloadFile', { runId, path }).path;

/** Downloads a run file with the session's credentials (a plain link cannot send them). */
async function downloadFile(runId: string, path: string): Promise<void> {
  const blob = URL.createObjectURL(await api.download(fileHref(runId, path)));
  const a = Object.assign(document.createElement('a'), { href: blob, download: path.split('/').pop() || 'file' });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(blob), 10_000);
}

/**
 * What the run page shows of a run, kept loaded and live: the run, its
 * metric keys (a chart each), its files (once asked for), a clock for a
 * running run's duration, and the saving of its name, notes and tags. The
 * host re-renders on every change; `saved` is called after a change was
 * saved (the page closes its editor).
 */
export class RunPageData implements ReactiveController {
  run: Run | undefined;
  keys: tracking.v1.MetricKeyStats[] | undefined;
  files: tracking.v1.RunFile[] | undefined;
  error = '';
  saving = false;
  now = Date.now();
  private runId = '';
  private stopLive: (() => void) | undefined;
  private reloadTimer: ReturnType<typeof setTimeout> | undefined;
  private keysTimer: ReturnType<typeof setTimeout> | undefined;
  private clock: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly host: ReactiveElement,
    private readonly saved: () => void,
  ) {
    host.addController(this);
  }

  hostConnected(): void {
    this.clock = setInterval(() => {
      if (this.run?.state !== 'running') return;
      this.now = Date.now();
      this.host.requestUpdate();
    }, 1000);
    if (this.host.hasUpdated && this.runId) this.startLive();
  }

  hostDisconnected(): void {
    clearInterval(this.clock);
    clearTimeout(this.reloadTimer);
    clearTimeout(this.keysTimer);
    // Forgotten, not just cleared: `??=` would otherwise never schedule them again after the page comes back.
    this.reloadTimer = this.keysTimer = undefined;
    this.stopLive?.();
    this.stopLive = undefined;
  }

  /** Shows this run (loads it when it is not the one shown). */
  open(runId: string): void {
    if (!runId || runId === this.runId) return;
    this.runId = runId;
    this.run = undefined;
    this.keys = undefined;
    this.files = undefined;
    this.error = '';
    void this.load();
  }

  /** Loads the run's files unless they are loaded (or loading). */
  wantFiles(): void {
    if (this.files === undefined && this.run) void this.loadFiles();
  }

  private fail(e: unknown): void {
    this.error = errorMessage(e);
    this.host.requestUpdate();
  }

  private async load(): Promise<void> {
    const id = this.runId;
    try {
      const run = dataOf(await runsApi.getRun({ id }));
      if (id !== this.runId) return;
      this.run = run;
      this.host.requestUpdate();
      this.startLive();
      void this.loadKeys();
    } catch (e) {
      this.fail(e);
    }
  }

  private async loadKeys(): Promise<void> {
    const id = this.runId;
    const r = await metricsApi.listMetricKeys({ runId: id }).catch(() => undefined);
    if (r && id === this.runId) {
      this.keys = r.data;
      this.host.requestUpdate();
    }
  }

  private async loadFiles(): Promise<void> {
    const id = this.runId;
    this.files = [];
    try {
      const r = await runFilesApi.listFiles({ runId: id });
      if (id === this.runId) {
        this.files = r.data;
        this.host.requestUpdate();
      }
    } catch (e) {
      this.fail(e);
    }
  }

  private startLive(): void {
    this.stopLive?.();
    this.stopLive = undefined;
    const run = this.run;
    if (!run) return;
    this.stopLive = watchRuns(run.projectId, [run.id], {
      onEvent: (e) => {
        if (e.runId !== run.id) return;
        if (e.kind === 'deleted') {
          this.error = 'This run was deleted.';
          this.host.requestUpdate();
          return;
        }
        if (e.kind === 'metrics') {
          // A key not seen before: list it (its chart appears).
          const known = new Set((this.keys ?? []).map((k) => k.key));
          if (e.series.some((s) => !known.has(s.key))) this.keysTimer ??= setTimeout(() => ((this.keysTimer = undefined), void this.loadKeys()), 300);
          return;
        }
        if (e.run && this.run) {
          const slim = !Object.keys(e.run.config ?? {}).length && Object.keys(this.run.config ?? {}).length;
          this.run = { ...this.run, ...e.run, ...(slim ? { config: this.run.config, summary: this.run.summary } : {}) };
          this.host.requestUpdate();
          if (slim) this.reloadTimer ??= setTimeout(() => ((this.reloadTimer = undefined), void this.load()), 1000);
        }
      },
    });
  }

  async patch(changes: Omit<ClientRequest<tracking.v1.UpdateRunRequest>, 'id'>): Promise<void> {
    if (!this.run) return;
    this.saving = true;
    this.host.requestUpdate();
    try {
      const r = await runsApi.updateRun({ id: this.run.id, ...changes });
      this.run = { ...this.run, ...dataOf(r) };
      this.saved();
      this.error = '';
    } catch (e) {
      this.error = errorMessage(e);
    } finally {
      this.saving = false;
      this.host.requestUpdate();
    }
  }

  setTags(tags: string[]): void {
    const unique = [...new Set(tags.map((t) => t.trim()).filter(Boolean))];
    void this.patch(unique.length ? { tags: unique } : { clearTags: true });
  }

  /** Downloads one of the run's files (a failure shows as the page's error). */
  download(runId: string, path: string): void {
    downloadFile(runId, path).catch((e: unknown) => this.fail(e));
  }
}
