import type { BlobStore, Clock, Logger } from '@wanllmdb/core';
import type { ArtifactRepository } from './artifact-repository.js';
import { PackedBlobStore } from './packs.js';

export interface CollectOptions {
  /** Report what would go, delete nothing. */
  dryRun: boolean;
  /** Claims pinned more recently than this are spared (uploads and commits under way). */
  graceMs: number;
  /** Drafts untouched for longer are abandoned: deleted, so their bodies can go. */
  draftTtlMs: number;
}

/** What one collection did (or, in a dry run, would do). */
export interface Collection {
  dryRun: boolean;
  /** Bodies looked at (the whole namespace). */
  blobs: number;
  /** Bodies deleted (would be). */
  deleted: number;
  /** Their bytes. */
  bytes: number;
  /** Abandoned drafts deleted (would be). */
  draftsExpired: number;
  /** Versions the retention rules deleted first, and the bytes only they used (set by retention.ts, which runs the rules before this collection). */
  retentionVersions: number;
  retentionBytes: number;
}

const PAGE = 500;

/**
 * Artifact garbage collection over the blob namespace the artifacts plugin
 * owns: a body goes when no version, draft or recent claim needs it. Every
 * deletion is decided under the digest's lock (ArtifactRepository.reclaim),
 * so a commit or an upload racing it either makes the body needed first or
 * stores it again after. Several collectors may run at once.
 */
export class ArtifactCollector {
  constructor(
    private readonly repo: ArtifactRepository,
    private readonly blobs: BlobStore,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  async collect(opts: CollectOptions): Promise<Collection> {
    const now = this.clock.now();
    const pinnedAfter = now - opts.graceMs;
    const draftsAfter = now - opts.draftTtlMs;
    const out: Collection = { dryRun: opts.dryRun, blobs: 0, deleted: 0, bytes: 0, draftsExpired: await this.repo.expireDrafts(draftsAfter, opts.dryRun), retentionVersions: 0, retentionBytes: 0 };
    // Packs whose last body went before a crash let them be deleted, and deletions a crash cut short
    // (their claims are gone already): the bytes go now.
    for (const digest of await this.repo.tombstones()) if (!opts.dryRun) await this.repo.finish(digest, () => this.blobs.delete(digest));
    if (!opts.dryRun && this.blobs instanceof PackedBlobStore) await this.blobs.finishDeadPacks();
    const chunks = await this.repo.chunkDigests(draftsAfter);
    let page: { digest: string; size: number }[] = [];
    const settle = async () => {
      const needed = await this.repo.referenced(page.map((b) => b.digest), pinnedAfter, draftsAfter);
      for (const b of page) {
        if (needed.has(b.digest) || chunks.has(b.digest)) continue;
        if (opts.dryRun || (await this.repo.reclaim(b.digest, pinnedAfter, draftsAfter, () => this.blobs.delete(b.digest)))) {
          out.deleted++;
          out.bytes += b.size;
        }
      }
      page = [];
    };
    for await (const blob of this.blobs.list()) {
      out.blobs++;
      page.push(blob);
      if (page.length >= PAGE) await settle();
    }
    await settle();
    this.logger.info({ ...out }, opts.dryRun ? 'artifact collection (dry run): what would be reclaimed' : 'artifact collection: reclaimed the bodies nothing needs');
    return out;
  }
}
