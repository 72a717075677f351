import { accessEpochTriggers, type Migration } from '@wanllmdb/core';

/**
 * Accounts, organisations, credentials and the audit log, in the portable
 * column conventions of MetadataStore (TEXT ids, BIGINT epoch-ms times,
 * INTEGER 0/1 booleans, JSON as TEXT). No foreign keys: deletes cascade in
 * the repository, inside one transaction, on both dialects alike.
 */
export const authMigrations: Migration[] = [
  {
    version: 1,
    name: 'create users, organisations, memberships, teams, roles and grants',
    up: `
      CREATE TABLE users (
        id TEXT PRIMARY KEY,
        username TEXT NOT NULL UNIQUE,
        email TEXT UNIQUE,
        password_hash TEXT,
        full_name TEXT NOT NULL DEFAULT '',
        kind TEXT NOT NULL DEFAULT 'user' CHECK (kind IN ('user', 'service')),
        is_active INTEGER NOT NULL DEFAULT 1,
        is_superuser INTEGER NOT NULL DEFAULT 0,
        default_org_id TEXT NOT NULL DEFAULT '',
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
      );
      CREATE INDEX idx_users_created_at ON users (created_at DESC, id);
      CREATE TABLE organizations (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        slug TEXT NOT NULL UNIQUE,
        description TEXT NOT NULL DEFAULT '',
        personal INTEGER NOT NULL DEFAULT 0,
        settings TEXT NOT NULL DEFAULT '{}',
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
      );
      CREATE TABLE org_members (
        org_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        role TEXT NOT NULL,
        joined_at BIGINT NOT NULL,
        PRIMARY KEY (org_id, user_id)
      );
      CREATE INDEX idx_org_members_user ON org_members (user_id);
      CREATE TABLE teams (
        id TEXT PRIMARY KEY,
        org_id TEXT NOT NULL,
        name TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        created_at BIGINT NOT NULL,
        UNIQUE (org_id, name)
      );
      CREATE TABLE team_members (
        team_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        role TEXT NOT NULL DEFAULT 'member' CHECK (role IN ('admin', 'member', 'viewer')),
        joined_at BIGINT NOT NULL,
        PRIMARY KEY (team_id, user_id)
      );
      CREATE INDEX idx_team_members_user ON team_members (user_id);
      CREATE TABLE roles (
        id TEXT PRIMARY KEY,
        org_id TEXT NOT NULL,
        name TEXT NOT NULL,
        permissions TEXT NOT NULL DEFAULT '[]',
        created_at BIGINT NOT NULL,
        UNIQUE (org_id, name)
      );
      CREATE TABLE project_grants (
        project_id TEXT NOT NULL,
        subject_type TEXT NOT NULL CHECK (subject_type IN ('user', 'team')),
        subject_id TEXT NOT NULL,
        role TEXT NOT NULL,
        org_id TEXT NOT NULL DEFAULT '',
        created_at BIGINT NOT NULL,
        PRIMARY KEY (project_id, subject_type, subject_id)
      );
      CREATE INDEX idx_project_grants_subject ON project_grants (subject_type, subject_id);
      CREATE INDEX idx_project_grants_org ON project_grants (org_id, role)
    `,
  },
  {
    version: 2,
    name: 'create sessions, refresh tokens, API keys and server settings',
    up: `
      CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        revoked_at BIGINT,
        address TEXT NOT NULL DEFAULT '',
        user_agent TEXT NOT NULL DEFAULT ''
      );
      CREATE INDEX idx_sessions_user ON sessions (user_id);
      CREATE TABLE refresh_tokens (
        id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL,
        token_hash TEXT NOT NULL UNIQUE,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        used_at BIGINT
      );
      CREATE INDEX idx_refresh_tokens_session ON refresh_tokens (session_id);
      CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        name TEXT NOT NULL,
        prefix TEXT NOT NULL,
        key_hash TEXT NOT NULL UNIQUE,
        scopes TEXT NOT NULL DEFAULT '["*:*"]',
        expires_at BIGINT,
        last_used_at BIGINT,
        created_at BIGINT NOT NULL,
        revoked_at BIGINT
      );
      CREATE INDEX idx_api_keys_user ON api_keys (user_id, created_at DESC);
      CREATE TABLE server_settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
      )
    `,
  },
  {
    version: 3,
    name: 'create the audit log',
    up: `
      CREATE TABLE audit_log (
        id TEXT PRIMARY KEY,
        at BIGINT NOT NULL,
        actor_id TEXT NOT NULL DEFAULT '',
        actor_name TEXT NOT NULL DEFAULT '',
        actor_kind TEXT NOT NULL DEFAULT '',
        action TEXT NOT NULL,
        permission TEXT NOT NULL DEFAULT '',
        target TEXT NOT NULL DEFAULT '',
        org_id TEXT NOT NULL DEFAULT '',
        address TEXT NOT NULL DEFAULT '',
        transport TEXT NOT NULL DEFAULT '',
        result TEXT NOT NULL,
        request_id TEXT NOT NULL DEFAULT ''
      );
      CREATE INDEX idx_audit_at ON audit_log (at DESC, id DESC);
      CREATE INDEX idx_audit_org_at ON audit_log (org_id, at DESC, id DESC);
      CREATE INDEX idx_audit_actor_at ON audit_log (actor_id, at DESC, id DESC);
      CREATE INDEX idx_audit_action_at ON audit_log (action, at DESC, id DESC)
    `,
  },
  {
    version: 4,
    // Memberships, grants, teams and custom roles decide a user's roles on a project (ADR 0015).
    name: 'role changes move the access epoch',
    up: accessEpochTriggers({
      organizations: ['UPDATE', 'DELETE'],
      org_members: ['INSERT', 'UPDATE', 'DELETE'],
      teams: ['UPDATE', 'DELETE'],
      team_members: ['INSERT', 'UPDATE', 'DELETE'],
      roles: ['INSERT', 'UPDATE', 'DELETE'],
      project_grants: ['INSERT', 'UPDATE', 'DELETE'],
    }),
  },
];
