import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { createMetadataStore } from '../storage/metadata/create-metadata-store.js';
import type { MetadataStore, Row, SqlValue } from '../storage/metadata/metadata-store.js';

/** The PostgreSQL database tests use; each store gets its own schema in it. */
export const TEST_PG_URL = process.env.WLDB_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** An empty database for one test: its WANLLMDB_DB URL, and how to delete it. */
export interface FreshDatabase {
  url: string;
  drop(): Promise<void>;
}

export interface MetadataBackend {
  name: 'sqlite' | 'postgres';
  /** A store on a fresh, empty database; closing it deletes the database. */
  create(): Promise<MetadataStore>;
  /** A fresh, empty database to open several stores on (they must be closed before `drop`). */
  fresh(): Promise<FreshDatabase>;
}

/** Every MetadataStore adapter, for contract suites: `describe.each(metadataBackends())`. */
export function metadataBackends(): MetadataBackend[] {
  const backends: MetadataBackend[] = [
    { name: 'sqlite', fresh: freshSqliteDatabase, create: () => createOwned(freshSqliteDatabase) },
    { name: 'postgres', fresh: freshPostgresSchema, create: () => createOwned(freshPostgresSchema) },
  ];
  return backends;
}

async function freshSqliteDatabase(): Promise<FreshDatabase> {
  const dir = await mkdtemp(join(tmpdir(), 'wldb-meta-'));
  return { url: `sqlite://${join(dir, 'metadata.db')}`, drop: () => rm(dir, { recursive: true, force: true }) };
}

async function freshPostgresSchema(): Promise<FreshDatabase> {
  const schema = `wldb_t_${randomBytes(6).toString('hex')}`;
  const url = new URL(TEST_PG_URL);
  url.searchParams.set('schema', schema);
  return {
    url: url.toString(),
    async drop() {
      const client = new pg.Client({ connectionString: TEST_PG_URL });
      await client.connect();
      try {
        await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await client.end();
      }
    },
  };
}

async function createOwned(fresh: () => Promise<FreshDatabase>): Promise<MetadataStore> {
  const db = await fresh();
  const store = await createMetadataStore(db.url).catch(async (err: unknown) => {
    await db.drop().catch(() => {});
    throw err;
  });
  return dropOnClose(store, db.drop);
}

/** The same store, whose close() also deletes its database. */
function dropOnClose(store: MetadataStore, drop: () => Promise<void>): MetadataStore {
  return {
    dialect: store.dialect,
    query: <T extends Row = Row>(sql: string, params?: readonly SqlValue[]) => store.query<T>(sql, params),
    run: (sql, params) => store.run(sql, params),
    insertMany: (table, columns, rows) => store.insertMany(table, columns, rows),
    transaction: (fn, options) => store.transaction(fn, options),
    migrate: (plugin, migrations) => store.migrate(plugin, migrations),
    appliedMigrations: (plugin) => store.appliedMigrations(plugin),
    async close() {
      try {
        await store.close();
      } finally {
        await drop();
      }
    },
  };
}
