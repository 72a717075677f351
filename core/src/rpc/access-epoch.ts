import type { Dialect, Migration } from '../storage/metadata/metadata-store.js';

/**
 * The access epoch (ADR 0015): one counter in the database that every change
 * to who-may-see-what moves, in the same transaction as the change — database
 * triggers on the tables that place resources (projects, runs, views) and
 * grant roles (members, grants, teams, custom roles), so no code path can
 * forget it. Authentication reads the counter in the statement that reads the
 * caller's credential, and a process may reuse an authorisation fact (where a
 * resource sits, a user's roles on a project) only while the counter has not
 * moved since the fact was read. A change committed before a call starts is
 * therefore seen by that call on every process, exactly as without the reuse.
 */
export const ACCESS_EPOCH_NAMESPACE = 'core.access-epoch';

/**
 * The counter (and PostgreSQL's trigger function), made if missing: core's
 * migration makes it first in a kernel; trigger migrations repeat it so that a
 * plugin's tables can also be migrated on their own (tests, tools).
 */
const ENSURE: Record<Dialect, string> = {
  sqlite:
    'CREATE TABLE IF NOT EXISTS access_epoch (id INTEGER PRIMARY KEY CHECK (id = 1), epoch INTEGER NOT NULL);\n' +
    'INSERT OR IGNORE INTO access_epoch (id, epoch) VALUES (1, 0)',
  postgres:
    'CREATE TABLE IF NOT EXISTS access_epoch (id INTEGER PRIMARY KEY CHECK (id = 1), epoch BIGINT NOT NULL);\n' +
    'INSERT INTO access_epoch (id, epoch) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;\n' +
    // Made only when missing: two processes replacing one function at once can fail ("tuple concurrently updated").
    'DO $do$ BEGIN IF to_regproc(\'access_epoch_bump\') IS NULL THEN ' +
    'CREATE FUNCTION access_epoch_bump() RETURNS trigger LANGUAGE plpgsql AS $fn$ BEGIN UPDATE access_epoch SET epoch = epoch + 1 WHERE id = 1; RETURN NULL; END $fn$; ' +
    'END IF; END $do$',
};

export const accessEpochMigrations: Migration[] = [{ version: 1, name: 'access epoch counter', up: ENSURE }];

/** A SQL expression for the current epoch, to read beside a credential. */
export const ACCESS_EPOCH_SQL = '(SELECT epoch FROM access_epoch WHERE id = 1)';

export type TableEvent = 'INSERT' | 'UPDATE' | 'DELETE';

/**
 * The migration text that makes writes to each table move the epoch (a
 * plugin adds them to its own tables, in its own migrations; the core
 * namespace runs first). PostgreSQL: one statement-level trigger per table;
 * SQLite: one row-level trigger per table and event (a one-row UPDATE is all
 * it costs).
 */
export function accessEpochTriggers(tables: Readonly<Record<string, readonly TableEvent[]>>): Record<Dialect, string> {
  const entries = Object.entries(tables);
  return {
    sqlite: [ENSURE.sqlite, ...entries.flatMap(([table, events]) =>
        events.map((e) => `CREATE TRIGGER ${table}_access_epoch_${e.toLowerCase()} AFTER ${e} ON ${table} BEGIN UPDATE access_epoch SET epoch = epoch + 1 WHERE id = 1; END`),
      )].join(';\n'),
    postgres: [
      ENSURE.postgres,
      ...entries.map(([table, events]) => `CREATE TRIGGER ${table}_access_epoch AFTER ${events.join(' OR ')} ON ${table} FOR EACH STATEMENT EXECUTE FUNCTION access_epoch_bump()`),
    ].join(';\n'),
  };
}

/** Entries kept per cache before it starts over (a bound on memory, not a tuning knob). */
const MAX_ENTRIES = 50_000;

/**
 * Facts read under one access epoch, reused while calls still see that
 * epoch. A call that sees a newer epoch empties the cache first; a call that
 * saw an older one (it started before a concurrent change) neither reads nor
 * fills it. Only present values are kept: "not found" is always asked again.
 */
export class EpochCache<V> {
  private epoch = -1;
  private readonly entries = new Map<string, V>();

  async get(epoch: number | undefined, key: string, load: () => Promise<V | undefined>): Promise<V | undefined> {
    if (epoch === undefined || epoch < this.epoch) return load();
    if (epoch > this.epoch) {
      this.entries.clear();
      this.epoch = epoch;
    }
    const hit = this.entries.get(key);
    if (hit !== undefined) return hit;
    const value = await load();
    // The epoch may have moved on while this was read: keep it only under the epoch it was read for.
    if (value !== undefined && this.epoch === epoch) {
      if (this.entries.size >= MAX_ENTRIES) this.entries.clear();
      this.entries.set(key, value);
    }
    return value;
  }
}
