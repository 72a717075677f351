import type { ReactiveController, ReactiveElement } from 'lit';
import type { tracking } from '@wanllmdb/proto/client';
import { errorMessage, runLogsApi } from '@wanllmdb/web/kit';

type LogLine = tracking.v1.LogLine;

const LOG_PAGE = 5000;
const MAX_LOG_LINES = 500_000;

/** The log view the feed fills: whose lines, and whether to keep loading new ones. */
export type RunLogsHost = ReactiveElement & { readonly runId: string; readonly running: boolean; readonly follow: boolean };

/**
 * A run's console lines, paged in from the first (the newest `MAX_LOG_LINES`
 * kept) and, while the host follows a running run, polled for new ones
 * every second. The host re-renders on every change; `appended` is called
 * after new lines came in.
 */
export class RunLogsFeed implements ReactiveController {
  lines: LogLine[] = [];
  error = '';
  loading = false;
  private afterSeq = 0;
  private loadedFor = '';
  private timer: ReturnType<typeof setTimeout> | undefined;
  private busy = false;

  constructor(
    private readonly host: RunLogsHost,
    private readonly appended: () => void,
  ) {
    host.addController(this);
  }

  hostConnected(): void {
    if (this.host.hasUpdated) this.host.requestUpdate();
  }

  hostDisconnected(): void {
    clearTimeout(this.timer);
    this.loadedFor = '';
  }

  hostUpdate(): void {
    const { runId } = this.host;
    if (runId && runId !== this.loadedFor) {
      this.loadedFor = runId;
      this.lines = [];
      this.afterSeq = 0;
      void this.poll();
    }
  }

  /** Polls now, unless a poll is under way (the host follows a running run again). */
  resume(): void {
    if (!this.busy) void this.poll();
  }

  /** Loads every line after the last one; repeats every second while following a running run. */
  private async poll(): Promise<void> {
    clearTimeout(this.timer);
    if (this.busy) return;
    this.busy = true;
    const host = this.host;
    const runId = host.runId;
    this.loading = true;
    host.requestUpdate();
    try {
      let added: LogLine[] = [];
      for (;;) {
        const r = await runLogsApi.getLogs({ runId, after: this.afterSeq, limit: LOG_PAGE });
        if (runId !== host.runId) return;
        added = added.concat(r.data);
        this.afterSeq = Number(r.meta?.nextAfter ?? this.afterSeq);
        if (!r.meta?.hasMore || !r.data.length) break;
        if (added.length > 50_000) {
          this.appendLines(added);
          added = [];
        }
      }
      this.appendLines(added);
      this.error = '';
    } catch (e) {
      this.error = errorMessage(e);
    } finally {
      this.busy = false;
      this.loading = false;
      host.requestUpdate();
      if (host.isConnected && host.running && host.follow && runId === host.runId) this.timer = setTimeout(() => void this.poll(), 1000);
    }
  }

  private appendLines(added: LogLine[]): void {
    if (!added.length) return;
    let lines = this.lines.concat(added);
    if (lines.length > MAX_LOG_LINES) lines = lines.slice(lines.length - MAX_LOG_LINES);
    this.lines = lines;
    this.host.requestUpdate();
    this.appended();
  }
}
