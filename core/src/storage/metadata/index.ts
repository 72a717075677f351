export type { Dialect, MetadataStore, Migration, Row, SqlExecutor, SqlValue } from './metadata-store.js';
export { createMetadataStore } from './create-metadata-store.js';
export { SqliteMetadataStore, SQLITE_MEMORY, type SqliteMetadataStoreOptions } from './sqlite-metadata-store.js';
export { PostgresMetadataStore, type PostgresMetadataStoreOptions } from './postgres-metadata-store.js';
export { MIGRATIONS_TABLE, validateMigrations } from './migrations.js';
