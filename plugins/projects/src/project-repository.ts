import type { JsonObject, projects } from '@wanllmdb/proto';
import { anyOf, assignments, containsPattern, inList, isoTime, raw, selectPage, sql, whereAll, type AccessScope, type MetadataStore, type Sql, type SqlExecutor } from '@wanllmdb/core';

type Project = projects.v1.Project;

interface ProjectRow {
  [k: string]: unknown;
  id: string;
  name: string;
  slug: string;
  organization_id: string;
  description: string;
  /** Written only through the contract's closed set. */
  visibility: projects.v1.Project['visibility'];
  settings: string;
  created_by: string;
  created_at: number;
  updated_at: number;
}

export interface NewProject {
  id: string;
  name: string;
  slug: string;
  organizationId: string;
  description: string;
  visibility: 'public' | 'private';
  settings: JsonObject;
  createdBy: string;
  now: number;
}

export interface ProjectChanges {
  name?: string;
  description?: string;
  visibility?: 'public' | 'private';
  settings?: JsonObject;
}

const COLUMNS = 'id, name, slug, organization_id, description, visibility, settings, created_by, created_at, updated_at';

function toProject(r: ProjectRow): Project {
  return {
    id: r.id,
    name: r.name,
    slug: r.slug,
    organizationId: r.organization_id,
    description: r.description,
    visibility: r.visibility,
    settings: JSON.parse(r.settings) as JsonObject,
    createdBy: r.created_by,
    createdAt: isoTime(r.created_at),
    updatedAt: isoTime(r.updated_at),
  };
}

/** `%` and `_` match themselves in a user's search text. */

/** SQL for projects; the only code that knows the table. */
export class ProjectRepository {
  constructor(private readonly db: MetadataStore) {}

  async insert(p: NewProject): Promise<Project> {
    await this.db.run(
      `INSERT INTO projects (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [p.id, p.name, p.slug, p.organizationId, p.description, p.visibility, JSON.stringify(p.settings), p.createdBy, p.now, p.now],
    );
    return (await this.get(p.id))!;
  }

  async get(id: string, tx: SqlExecutor = this.db): Promise<Project | undefined> {
    const rows = await tx.query<ProjectRow>(`SELECT ${COLUMNS} FROM projects WHERE id = ?`, [id]);
    return rows[0] && toProject(rows[0]);
  }

  /** Slugs are unique per organisation ('' = no organisation, embedded mode). */
  async getBySlug(slug: string, orgId: string): Promise<Project | undefined> {
    const rows = await this.db.query<ProjectRow>(`SELECT ${COLUMNS} FROM projects WHERE organization_id = ? AND slug = ?`, [orgId, slug]);
    return rows[0] && toProject(rows[0]);
  }

  async slugExists(slug: string, orgId: string): Promise<boolean> {
    return (await this.db.query('SELECT 1 AS one FROM projects WHERE organization_id = ? AND slug = ?', [orgId, slug])).length > 0;
  }

  /** The page of projects the scope lets the caller see. */
  async list(opts: { offset: number; limit: number; search: string; scope: AccessScope }): Promise<{ items: Project[]; total: number }> {
    const conditions: Sql[] = [];
    if (opts.search) conditions.push(sql`LOWER(name) LIKE ${containsPattern(opts.search)} ESCAPE '\\'`);
    if (!opts.scope.all) {
      const { orgIds, projectIds, publicProjects } = opts.scope;
      conditions.push(
        anyOf([
          ...(orgIds.length ? [sql`organization_id IN ${inList(orgIds)}`] : []),
          ...(projectIds.length ? [sql`id IN ${inList(projectIds)}`] : []),
          ...(publicProjects ? [raw(`visibility = 'public'`)] : []),
        ]),
      );
    }
    const from = sql`FROM projects ${whereAll(conditions)}`;
    const { rows, total } = await selectPage<ProjectRow>(this.db, { columns: COLUMNS, from, orderBy: 'created_at DESC, id', limit: opts.limit, offset: opts.offset });
    return { items: rows.map(toProject), total };
  }

  /** Applies the changes; resolves to the updated project, or undefined if there is none. */
  async update(id: string, changes: ProjectChanges, now: number): Promise<Project | undefined> {
    const set = assignments({
      name: changes.name,
      description: changes.description,
      visibility: changes.visibility,
      settings: changes.settings === undefined ? undefined : JSON.stringify(changes.settings),
      updated_at: now,
    });
    const update = sql`UPDATE projects SET ${set} WHERE id = ${id}`;
    return this.db.transaction(async (tx) => {
      const { changes: n } = await tx.run(update.text, update.params);
      return n ? this.get(id, tx) : undefined;
    });
  }

  async delete(id: string): Promise<boolean> {
    return (await this.db.run('DELETE FROM projects WHERE id = ?', [id])).changes > 0;
  }
}
