import type { BlobStore, Clock, Logger } from '@wanllmdb/core';
import type { FileRepository } from './file-repository.js';

export interface FileBlobCollectorOptions {
  /** How often a pass runs without being asked (it also runs after every change that releases a blob). */
  intervalMs: number;
  /** An upload pinned for longer than this has died; its pin is released (default 24 h: far beyond any upload's install step). */
  staleUploadMs: number;
}

/** What one collection did. */
export interface FileBlobCollection {
  /** Blobs deleted: no run file referenced them. */
  deleted: number;
  /** Released digests referenced again (by another file with the same content): kept. */
  kept: number;
  /** Released digests an upload was storing again: left for a later pass. */
  busy: number;
}

export const DEFAULT_FILE_BLOB_COLLECTOR_OPTIONS: FileBlobCollectorOptions = { intervalMs: 5 * 60_000, staleUploadMs: 24 * 60 * 60_000 };

const PAGE = 100;

/**
 * Deletes the blobs of run files that nothing references any more: the
 * digests in run_file_releases (filled by triggers when a file is replaced
 * or its run or project is deleted), each decided under its lock by
 * FileRepository.collect, which keeps blobs another file or an upload in
 * flight still needs. Idempotent and crash-safe: a release is dropped only
 * after its blob is gone, and several collectors (replicas) may run at once.
 * A pass runs after each change (`kick`), on a timer and at start.
 */
export class FileBlobCollector {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private again = false;
  private stopped = false;

  constructor(
    private readonly files: FileRepository,
    private readonly blobs: BlobStore,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly opts: FileBlobCollectorOptions = DEFAULT_FILE_BLOB_COLLECTOR_OPTIONS,
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.kick(), this.opts.intervalMs);
    this.timer.unref();
    this.kick();
  }

  /** Asks for a pass soon; a pass under way is followed by one more, so nothing released meanwhile waits for the timer. */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.collect().catch((err: unknown) => this.logger.warn({ err }, 'could not delete the blobs of removed run files; retrying on the next pass'));
      } while (this.again && !this.stopped);
    })().finally(() => (this.running = undefined));
  }

  /** Resolves when no pass is running (tests; stop). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.timer = undefined;
    await this.idle();
  }

  /** One pass over every released digest. */
  async collect(): Promise<FileBlobCollection> {
    const now = this.clock.now();
    const staleBefore = now - this.opts.staleUploadMs;
    const stale = await this.files.releaseStalePins(staleBefore, now);
    if (stale) this.logger.info({ uploads: stale }, 'released the blobs of uploads that never finished');
    const out: FileBlobCollection = { deleted: 0, kept: 0, busy: 0 };
    let after = '';
    for (;;) {
      const digests = await this.files.releasedDigests(after, PAGE);
      for (const digest of digests) {
        const result = await this.files.collect(digest, staleBefore, () => this.blobs.delete(digest));
        if (result !== 'gone') out[result]++;
      }
      if (digests.length < PAGE) break;
      after = digests.at(-1)!;
    }
    if (out.deleted) this.logger.debug({ ...out }, 'deleted the blobs of removed run files');
    return out;
  }
}
