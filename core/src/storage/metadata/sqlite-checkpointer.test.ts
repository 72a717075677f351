import { existsSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BACKSTOP_PAGES } from './sqlite-checkpointer.js';
import { SqliteMetadataStore } from './sqlite-metadata-store.js';

/** ADR 0014: 4 KiB pages, and WAL checkpoints on a thread instead of inside a COMMIT. */
describe('SQLite pages and background checkpoints', () => {
  let dir = '';
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wldb-checkpoint-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const pragma = (file: string, name: string) => {
    const db = new Database(file, { readonly: true });
    try {
      return db.pragma(name, { simple: true });
    } finally {
      db.close();
    }
  };

  it('creates files with 4 KiB pages; the writer checkpoints only as a backstop', async () => {
    const file = join(dir, 'new.db');
    const store = await SqliteMetadataStore.open(file);
    try {
      await store.run('CREATE TABLE t (x INTEGER)');
      expect(pragma(file, 'page_size')).toBe(4096);
      // The store's own connection: its automatic checkpoint is the backstop, not SQLite's 1,000 pages.
      const [row] = await store.query<{ wal_autocheckpoint: number }>('PRAGMA wal_autocheckpoint');
      expect(row!.wal_autocheckpoint).toBe(BACKSTOP_PAGES);
    } finally {
      await store.close();
    }
  });

  it('copies the log into the database file on its own thread while commits go on, and closes it with the store', async () => {
    const file = join(dir, 'busy.db');
    const store = await SqliteMetadataStore.open(file);
    try {
      await store.run('CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB)');
      const before = statSync(file).size;
      // ~6 MiB in 600 small commits: past SQLite's default checkpoint point (1,000 pages) and far
      // below the writer's backstop, so only the thread can have moved pages into the file.
      const body = new Uint8Array(10_000).fill(7);
      for (let i = 0; i < 600; i++) await store.run('INSERT INTO t (body) VALUES (?)', [body]);
      await expect.poll(() => statSync(file).size, { timeout: 10_000, interval: 50 }).toBeGreaterThan(before + 5_000_000);
      expect((await store.query<{ n: number }>('SELECT COUNT(*) AS n FROM t'))[0]!.n).toBe(600);
    } finally {
      await store.close();
    }
    // The last connection to close (the thread's, after the store's) checkpoints and removes the log.
    expect(existsSync(`${file}-wal`)).toBe(false);
    const db = new Database(file, { readonly: true });
    expect((db.prepare('SELECT COUNT(*) AS n FROM t').get() as { n: number }).n).toBe(600);
    db.close();
  });

  it('keeps using the page size of a file made before (64 KiB), and can run without the thread', async () => {
    const file = join(dir, 'old.db');
    const old = new Database(file);
    old.pragma('page_size = 65536');
    old.pragma('journal_mode = WAL');
    old.exec('CREATE TABLE t (x INTEGER)');
    old.close();
    const store = await SqliteMetadataStore.open(file, { checkpointer: false });
    try {
      await store.run('INSERT INTO t (x) VALUES (1)');
      const [row] = await store.query<{ wal_autocheckpoint: number }>('PRAGMA wal_autocheckpoint');
      expect(row!.wal_autocheckpoint).toBe(1000);
    } finally {
      await store.close();
    }
    expect(pragma(file, 'page_size')).toBe(65536);
  });
});
