export type { Dialect, MetadataStore, Migration, Row, SqlExecutor, SqlValue, TransactionOptions } from './metadata-store.js';
export { createMetadataStore } from './create-metadata-store.js';
export { anyOf, assignments, inList, joinSql, raw, selectPage, sql, whereAll, type Sql } from './sql.js';
export { fromJsonDoc, JSON_DOC_TYPE, toJsonDoc } from './json-docs.js';
export { SqliteMetadataStore, SQLITE_MEMORY, type SqliteMetadataStoreOptions } from './sqlite-metadata-store.js';
// A type here: createMetadataStore loads the pg adapter only when configured.
export type { PostgresMetadataStore, PostgresMetadataStoreOptions } from './postgres-metadata-store.js';
export { MIGRATIONS_TABLE, advisoryLockKey, validateMigrations } from './migrations.js';
export { likeEscape, containsPattern } from './like.js';
