import { Readable } from 'node:stream';
import type { BlobInfo, BlobLinkOptions, BlobSource, BlobStore, ByteRange, MetadataStore, SqlExecutor } from '@wanllmdb/core';
import { Errors } from '@wanllmdb/core';
import { IN_BATCH as SLICE, marks, slices } from './sql.js';


/** Where a packed body lies: its pack (a blob) and its bytes in it. */
export interface PackedBody {
  digest: string;
  pack: string;
  offset: number;
  size: number;
}

/**
 * The artifacts' blob namespace with packs (ADR 0025): many small bodies
 * stored as one blob (a pack: the bodies one after the other) and an index
 * (artifact_packed_bodies: digest → pack, offset, size), because a store
 * pays per object — a durable write, a request — far more than per byte.
 * Everything that reads bodies (downloads, archives, dataset readers) and
 * the collector see each packed body as a blob of its own: `get` reads its
 * range of the pack, `list` yields it (and hides the packs), `delete`
 * drops it from the index and deletes the pack with its last body.
 */
export class PackedBlobStore implements BlobStore {
  readonly kind: BlobStore['kind'];

  constructor(
    private readonly inner: BlobStore,
    private readonly db: MetadataStore,
  ) {
    this.kind = inner.kind;
  }

  put(source: BlobSource, opts?: { expectedDigest?: string }): Promise<BlobInfo> {
    return this.inner.put(source, opts);
  }

  async packed(digest: string, tx: SqlExecutor = this.db): Promise<PackedBody | undefined> {
    const [r] = await tx.query<{ pack: string; pos: number | string; size: number | string }>('SELECT pack, pos, size FROM artifact_packed_bodies WHERE digest = ?', [digest]);
    return r && { digest, pack: r.pack, offset: Number(r.pos), size: Number(r.size) };
  }

  async get(digest: string, range?: ByteRange): Promise<Readable> {
    const p = await this.packed(digest);
    if (!p) return this.inner.get(digest, range);
    if (p.size === 0) return Readable.from([]);
    const start = range?.start ?? 0;
    const end = range?.end ?? p.size - 1;
    if (start < 0 || end < start || end >= p.size) {
      throw Errors.BLOB_RANGE_INVALID(`Byte range ${start}-${range?.end ?? ''} is outside blob ${digest} of ${p.size} bytes.`, [{ field: 'range', message: `must lie within the blob's ${p.size} bytes` }]);
    }
    return this.inner.get(p.pack, { start: p.offset + start, end: p.offset + end });
  }

  async stat(digest: string): Promise<BlobInfo | null> {
    const p = await this.packed(digest);
    return p ? { digest, size: p.size } : this.inner.stat(digest);
  }

  async exists(digest: string): Promise<boolean> {
    return (await this.packed(digest)) !== undefined || this.inner.exists(digest);
  }

  /** Drops the body (packed and/or on its own); a pack goes with its last body. */
  async delete(digest: string): Promise<boolean> {
    const pack = await this.db.transaction(async (tx) => {
      const p = await this.packed(digest, tx);
      if (!p) return undefined;
      await tx.run('DELETE FROM artifact_packed_bodies WHERE digest = ?', [digest]);
      const [left] = await tx.query('SELECT 1 AS x FROM artifact_packed_bodies WHERE pack = ? LIMIT 1', [p.pack]);
      if (!left) await tx.run('UPDATE artifact_packs SET dead = 1 WHERE digest = ?', [p.pack]);
      return { pack: p.pack, empty: !left };
    });
    if (pack?.empty) await this.#dropPack(pack.pack);
    const own = await this.inner.delete(digest);
    return own || pack !== undefined;
  }

  /** Packs whose last body went but whose bytes a crash kept: deleted now (the collector calls it first). */
  async finishDeadPacks(): Promise<number> {
    const dead = await this.db.query<{ digest: string }>('SELECT digest FROM artifact_packs WHERE dead = 1');
    for (const d of dead) await this.#dropPack(d.digest);
    return dead.length;
  }

  async #dropPack(pack: string): Promise<void> {
    await this.inner.delete(pack);
    await this.db.run('DELETE FROM artifact_packs WHERE digest = ? AND dead = 1', [pack]);
  }

  /** Every body: those stored on their own (packs hidden), then the packed ones. */
  async *list(prefix = ''): AsyncIterable<BlobInfo> {
    let page: BlobInfo[] = [];
    const flush = async function* (this: PackedBlobStore) {
      const packs = new Set<string>();
      const digests = page.map((b) => b.digest);
      for (const slice of slices(digests)) {
        for (const r of await this.db.query<{ digest: string }>(`SELECT digest FROM artifact_packs WHERE digest IN (${marks(slice.length)})`, slice)) packs.add(r.digest);
      }
      for (const b of page) if (!packs.has(b.digest)) yield b;
      page = [];
    }.bind(this);
    for await (const b of this.inner.list(prefix)) {
      page.push(b);
      if (page.length >= SLICE) yield* flush();
    }
    yield* flush();
    for (let after: string | undefined; ; ) {
      const rows = await this.db.query<{ digest: string; size: number | string }>(
        `SELECT digest, size FROM artifact_packed_bodies WHERE ${after === undefined ? 'digest >= ?' : 'digest > ?'} AND substr(digest, 1, ?) = ? ORDER BY digest LIMIT ?`,
        [after ?? prefix, prefix.length, prefix, SLICE],
      );
      for (const r of rows) yield { digest: r.digest, size: Number(r.size) };
      if (rows.length < SLICE) return;
      after = rows.at(-1)!.digest;
    }
  }

  /** A packed body has no object of its own to link to: its bytes are served instead. */
  async link(digest: string, opts: BlobLinkOptions): Promise<string | undefined> {
    if (!this.inner.link || (await this.packed(digest))) return undefined;
    return this.inner.link(digest, opts);
  }

  namespace(name: string): Promise<BlobStore> {
    return this.inner.namespace(name);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
