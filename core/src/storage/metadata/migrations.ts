import { Errors, WldbError } from '../../errors.js';
import type { Dialect, Migration, SqlExecutor } from './metadata-store.js';
import { driverReason } from './sql-errors.js';

/**
 * Per-plugin schema migrations, shared by both adapters. Applied versions are
 * rows of `wldb_migrations`. Each migration runs in its own transaction with
 * its row, under a lock that serialises migrators of the same plugin across
 * processes (PostgreSQL: a transaction-scoped advisory lock; SQLite: the
 * database write lock taken by BEGIN IMMEDIATE). Under the lock the applied
 * versions are read again, so two servers starting together apply each
 * migration exactly once.
 */
export const MIGRATIONS_TABLE = 'wldb_migrations';

const MIGRATIONS_TABLE_DDL = `CREATE TABLE IF NOT EXISTS ${MIGRATIONS_TABLE} (
  plugin TEXT NOT NULL,
  version INTEGER NOT NULL,
  name TEXT NOT NULL,
  applied_at BIGINT NOT NULL,
  PRIMARY KEY (plugin, version)
)`;

/** A transaction that can also run several `;`-separated statements without parameters. */
export interface MigrationTransaction extends SqlExecutor {
  exec(sql: string): Promise<void>;
}

/** What an adapter provides so migrations can run on it. */
export interface MigrationTarget {
  readonly dialect: Dialect;
  /**
   * Runs `fn` in one transaction holding the migration lock named `lockName`,
   * committing when it resolves and rolling back when it throws.
   */
  withMigrationLock<T>(lockName: string, fn: (tx: MigrationTransaction) => Promise<T>): Promise<T>;
  /** Runs a read outside any lock. */
  readonly executor: SqlExecutor;
}

/** Lock name under which the migrations table itself is created. */
const TABLE_LOCK = '\u0000wldb_migrations';

/**
 * A stable signed 32-bit key for a PostgreSQL advisory lock (FNV-1a of the
 * UTF-8 name), the same in every process; plugins use it for their own locks.
 */
export function advisoryLockKey(lockName: string): number {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(lockName)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193);
  }
  return hash | 0;
}

/** Throws MIGRATION_INVALID unless versions are positive integers, unique and ascending, and every migration has a name and SQL. */
export function validateMigrations(plugin: string, migrations: readonly Migration[]): void {
  const invalid = (what: string) =>
    Errors.MIGRATION_INVALID(`The migrations of plugin "${plugin}" are invalid: ${what}. Fix the list the plugin passes to migrate().`);
  if (typeof plugin !== 'string' || plugin.trim() === '') {
    throw Errors.MIGRATION_INVALID('migrate() needs the plugin id as a non-empty string; pass the id the plugin was defined with.');
  }
  let previous = 0;
  for (const [index, m] of migrations.entries()) {
    const label = `entry ${index}${typeof m?.version === 'number' ? ` (version ${m.version})` : ''}`;
    if (!Number.isSafeInteger(m?.version) || m.version < 1) throw invalid(`${label} has version ${String(m?.version)}, expected a positive integer`);
    if (m.version <= previous) {
      throw invalid(`${label} comes after version ${previous}; versions must be unique and ascending`);
    }
    if (typeof m.name !== 'string' || m.name.trim() === '') throw invalid(`${label} has no name`);
    const up = m.up;
    const texts = typeof up === 'string' ? [up] : typeof up === 'object' && up !== null ? [up.sqlite, up.postgres] : [];
    if (texts.length === 0 || texts.some((t) => typeof t !== 'string' || t.trim() === '')) {
      throw invalid(`${label} "${m.name}" needs \`up\` as SQL text, or as { sqlite, postgres } texts`);
    }
    previous = m.version;
  }
}

function sqlFor(migration: Migration, dialect: Dialect): string {
  return typeof migration.up === 'string' ? migration.up : migration.up[dialect];
}

async function readApplied(executor: SqlExecutor, plugin: string): Promise<number[]> {
  const rows = await executor.query<{ version: number }>(
    `SELECT version FROM ${MIGRATIONS_TABLE} WHERE plugin = ? ORDER BY version`,
    [plugin],
  );
  return rows.map((r) => Number(r.version));
}

/** Runs migrations on one store; remembers that the migrations table exists. */
export class Migrator {
  private tableReady: Promise<void> | undefined;

  constructor(private readonly target: MigrationTarget) {}

  async applied(plugin: string): Promise<number[]> {
    await this.ensureTable();
    return readApplied(this.target.executor, plugin);
  }

  async migrate(plugin: string, migrations: readonly Migration[]): Promise<number[]> {
    validateMigrations(plugin, migrations);
    await this.ensureTable();
    // Fast path for the usual start-up: everything applied, no lock taken.
    const known = new Set(await readApplied(this.target.executor, plugin));
    const pending = migrations.filter((m) => !known.has(m.version));
    const appliedNow: number[] = [];
    for (const migration of pending) {
      if (await this.applyOne(plugin, migration)) appliedNow.push(migration.version);
    }
    return appliedNow;
  }

  private ensureTable(): Promise<void> {
    this.tableReady ??= this.target
      .withMigrationLock(TABLE_LOCK, (tx) => tx.exec(MIGRATIONS_TABLE_DDL))
      .catch((err: unknown) => {
        this.tableReady = undefined;
        throw err;
      });
    return this.tableReady;
  }

  /** Applies one migration under the lock; false when another migrator applied it first. */
  private async applyOne(plugin: string, migration: Migration): Promise<boolean> {
    const { version, name } = migration;
    try {
      return await this.target.withMigrationLock(plugin, async (tx) => {
        const applied = await readApplied(tx, plugin);
        if (applied.includes(version)) return false;
        const newer = applied.find((v) => v > version);
        if (newer !== undefined) {
          throw Errors.MIGRATION_INVALID(
            `Migration ${version} "${name}" of plugin "${plugin}" is older than version ${newer}, which is already applied. ` +
              'Give new migrations a version above every applied one.',
          );
        }
        await tx.exec(sqlFor(migration, this.target.dialect));
        await tx.run(`INSERT INTO ${MIGRATIONS_TABLE} (plugin, version, name, applied_at) VALUES (?, ?, ?, ?)`, [
          plugin,
          version,
          name,
          Date.now(),
        ]);
        return true;
      });
    } catch (err) {
      if (Errors.MIGRATION_INVALID.is(err)) throw err;
      throw Errors.MIGRATION_FAILED(
        `Migration ${version} "${name}" of plugin "${plugin}" failed and was rolled back: ${driverReason(err)}. ` +
          'Fix the migration SQL (or the data it expects) and start again; earlier migrations stay applied.',
        [{ field: 'migration', message: `${plugin}@${version} ${name}` }],
        err instanceof WldbError && err.cause !== undefined ? err.cause : err,
      );
    }
  }
}
