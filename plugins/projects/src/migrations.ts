import { accessEpochTriggers, type Migration } from '@wanllmdb/core';

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
  {
    version: 2,
    name: 'slugs unique per organisation',
    // Rebuilt, because SQLite cannot drop the old UNIQUE (slug) constraint in place.
    up: `
      CREATE TABLE projects_v2 (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        slug TEXT NOT NULL,
        organization_id TEXT NOT NULL DEFAULT '',
        description TEXT NOT NULL DEFAULT '',
        visibility TEXT NOT NULL DEFAULT 'private' CHECK (visibility IN ('public', 'private')),
        settings TEXT NOT NULL DEFAULT '{}',
        created_by TEXT NOT NULL DEFAULT '',
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        UNIQUE (organization_id, slug)
      );
      INSERT INTO projects_v2 (id, name, slug, organization_id, description, visibility, settings, created_by, created_at, updated_at)
        SELECT id, name, slug, COALESCE(organization_id, ''), description, visibility, settings, created_by, created_at, updated_at FROM projects;
      DROP TABLE projects;
      ALTER TABLE projects_v2 RENAME TO projects;
      CREATE INDEX idx_projects_created_at ON projects (created_at DESC, id);
      CREATE INDEX idx_projects_org ON projects (organization_id, created_at DESC)
    `,
  },
  {
    version: 3,
    // A project's organisation, visibility or existence decides who may see it and everything in it (ADR 0015).
    name: 'project changes move the access epoch',
    up: accessEpochTriggers({ projects: ['UPDATE', 'DELETE'] }),
  },
];
