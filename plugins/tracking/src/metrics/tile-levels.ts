/**
 * The shape of a key's history: level 0 holds the raw points in chunks of
 * RAW_CHUNK_POINTS; level k ≥ 1 holds tile buckets of 16·4^(k-1) CONSECUTIVE
 * points in chunks of TILE_CHUNK_BUCKETS. Buckets are counted, not timed, so
 * every level is dense: item i of level k covers points [i·B_k, (i+1)·B_k),
 * every chunk but the last is full, and where anything lives follows from the
 * key's point count alone — no per-level bookkeeping is stored.
 *
 * Level k exists only once level k-1 spans more than one chunk, so a key with
 * a handful of points is one small raw chunk, and the top level always fits
 * in a single chunk (≤ 1024 buckets): reading it is how a zoomed query
 * estimates how many points fall in its range.
 *
 * No imports: the aggregation worker loads this file.
 */
export const RAW_CHUNK_POINTS = 8192;
export const TILE_CHUNK_BUCKETS = 1024;
/** Points per level-1 bucket. */
export const LEVEL1_BUCKET_POINTS = 16;
/** Buckets of level k-1 per bucket of level k (k ≥ 2). */
export const TILE_FANOUT = 4;
/** Far above any real history (level 30 would need ~10^19 points); guards loops against corrupt counts. */
export const MAX_LEVELS = 30;

/** Points per item of `level` (1 for raw points). */
export function pointsPerItem(level: number): number {
  return level === 0 ? 1 : LEVEL1_BUCKET_POINTS * TILE_FANOUT ** (level - 1);
}

/** Items of `level` that fold into one item of `level + 1`. */
export function groupSize(level: number): number {
  return level === 0 ? LEVEL1_BUCKET_POINTS : TILE_FANOUT;
}

export function chunkCapacity(level: number): number {
  return level === 0 ? RAW_CHUNK_POINTS : TILE_CHUNK_BUCKETS;
}

/** Items (points or buckets, the last possibly partial) at `level` for a key of `count` points. */
export function itemsAt(level: number, count: number): number {
  return Math.ceil(count / pointsPerItem(level));
}

/** Whether `level` exists for a key of `count` points. */
export function levelExists(level: number, count: number): boolean {
  if (level === 0) return count > 0;
  return itemsAt(level - 1, count) > chunkCapacity(level - 1);
}

/** The number of tile levels (0 while the raw points fit one chunk). */
export function tileLevels(count: number): number {
  let levels = 0;
  while (levels < MAX_LEVELS && levelExists(levels + 1, count)) levels++;
  return levels;
}

/** Index of the last chunk of `level`, or -1 when the level is empty. */
export function lastChunkIndex(level: number, count: number): number {
  const items = itemsAt(level, count);
  return items === 0 ? -1 : Math.floor((items - 1) / chunkCapacity(level));
}
