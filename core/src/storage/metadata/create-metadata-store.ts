import { isAbsolute, resolve } from 'node:path';
import { Errors } from '../../errors.js';
import type { MetadataStore } from './metadata-store.js';
import { SQLITE_MEMORY, SqliteMetadataStore } from './sqlite-metadata-store.js';

const ACCEPTED_FORMS = [
  'sqlite:///absolute/path/to/file.db',
  'sqlite://relative/path/to/file.db (relative to the working directory)',
  'sqlite::memory:',
  'postgres://user[:password]@host[:port]/database[?schema=name]',
  'postgresql://…',
];

/**
 * Opens the MetadataStore a WANLLMDB_DB URL names:
 * `sqlite:///abs/path.db`, `sqlite://relative/path.db`, `sqlite::memory:`,
 * `postgres://…` or `postgresql://…`. PostgreSQL is connected to once here, so
 * an unreachable server fails at start-up with DB_UNAVAILABLE.
 */
export async function createMetadataStore(url: string): Promise<MetadataStore> {
  const text = typeof url === 'string' ? url.trim() : '';
  if (text === `sqlite:${SQLITE_MEMORY}`) return SqliteMetadataStore.open(SQLITE_MEMORY);
  if (text.startsWith('sqlite://')) {
    // Not parsed with URL: a file path is not a host, and `sqlite://data/x.db` is relative.
    const path = decodeURIComponent(text.slice('sqlite://'.length));
    if (path !== '' && path !== '/') return SqliteMetadataStore.open(isAbsolute(path) ? path : resolve(path));
  }
  if (/^postgres(ql)?:\/\//i.test(text)) {
    // `pg` loads only when PostgreSQL is configured.
    const { PostgresMetadataStore } = await import('./postgres-metadata-store.js');
    return PostgresMetadataStore.open(text);
  }
  throw Errors.CONFIG_INVALID(
    `Setting WANLLMDB_DB has an unsupported value ${JSON.stringify(redactPassword(text))}. Use one of: ${ACCEPTED_FORMS.join(', ')}.`,
    [{ field: 'WANLLMDB_DB', message: `expected one of: ${ACCEPTED_FORMS.join(', ')}` }],
  );
}

/** `scheme://user:secret@host` → `scheme://user:***@host`, so a rejected URL can be shown. */
function redactPassword(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*:)[^@/]*@/i, '$1***@');
}
