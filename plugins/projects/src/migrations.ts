import type { Migration } from '@wanllmdb/core';

/** The projects table of the design's schema, in the portable column conventions of MetadataStore. */
export const projectMigrations: Migration[] = [
  {
    version: 1,
    name: 'create projects',
    up: `
      CREATE TABLE projects (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        slug TEXT NOT NULL UNIQUE,
        organization_id TEXT,
        description TEXT NOT NULL DEFAULT '',
        visibility TEXT NOT NULL DEFAULT 'private' CHECK (visibility IN ('public', 'private')),
        settings TEXT NOT NULL DEFAULT '{}',
        created_by TEXT NOT NULL DEFAULT '',
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
      );
      CREATE INDEX idx_projects_created_at ON projects (created_at DESC, id)
    `,
  },
];
