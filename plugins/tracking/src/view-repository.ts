import { isoTime, type MetadataStore, type SqlValue } from '@wanllmdb/core';
import type { JsonObject, tracking } from '@wanllmdb/proto';
import { parseJsonColumn } from './json-values.js';

type View = tracking.v1.View;
/** The contract's closed set (View.scope). */
export type ViewScope = tracking.v1.View['scope'];

export interface NewView {
  id: string;
  projectId: string;
  name: string;
  scope: ViewScope;
  ownerId: string;
  spec: JsonObject;
  now: number;
}

/** Fields an update may change; absent means unchanged. */
export interface ViewChanges {
  name?: string;
  scope?: ViewScope;
  spec?: JsonObject;
}

interface ViewRow {
  [k: string]: unknown;
  id: string;
  project_id: string;
  name: string;
  scope: ViewScope;
  owner_id: string;
  spec: string;
  created_at: number;
  updated_at: number;
}

const COLUMNS = 'id, project_id, name, scope, owner_id, spec, created_at, updated_at';

function toView(r: ViewRow): View {
  return {
    id: r.id,
    projectId: r.project_id,
    name: r.name,
    scope: r.scope,
    ownerId: r.owner_id,
    spec: parseJsonColumn<JsonObject>(r.spec, {}),
    createdAt: isoTime(r.created_at),
    updatedAt: isoTime(r.updated_at),
  };
}

/** SQL for saved views; the only code that knows the `views` table. */
export class ViewRepository {
  constructor(private readonly db: MetadataStore) {}

  async insert(v: NewView): Promise<View> {
    await this.db.run(`INSERT INTO views (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, [
      v.id, v.projectId, v.name, v.scope, v.ownerId, JSON.stringify(v.spec), v.now, v.now,
    ]);
    return (await this.get(v.id))!;
  }

  async get(id: string): Promise<View | undefined> {
    const rows = await this.db.query<ViewRow>(`SELECT ${COLUMNS} FROM views WHERE id = ?`, [id]);
    return rows[0] && toView(rows[0]);
  }

  /** Where a view sits, for authorisation (no spec read). */
  async placement(id: string): Promise<{ projectId: string; scope: string; ownerId: string } | undefined> {
    const rows = await this.db.query<{ project_id: string; scope: string; owner_id: string }>('SELECT project_id, scope, owner_id FROM views WHERE id = ?', [id]);
    const r = rows[0];
    return r && { projectId: r.project_id, scope: r.scope, ownerId: r.owner_id };
  }

  /** The shared views of a project and `ownerId`'s personal ones, by name. */
  async listVisible(projectId: string, ownerId: string): Promise<View[]> {
    const rows = await this.db.query<ViewRow>(
      `SELECT ${COLUMNS} FROM views WHERE project_id = ? AND (scope = 'shared' OR owner_id = ?) ORDER BY name, created_at, id`,
      [projectId, ownerId],
    );
    return rows.map(toView);
  }

  /** Resolves to the updated view, or undefined if there is none. */
  async update(id: string, changes: ViewChanges, now: number): Promise<View | undefined> {
    const sets: string[] = ['updated_at = ?'];
    const params: SqlValue[] = [now];
    if (changes.name !== undefined) sets.push('name = ?'), params.push(changes.name);
    if (changes.scope !== undefined) sets.push('scope = ?'), params.push(changes.scope);
    if (changes.spec !== undefined) sets.push('spec = ?'), params.push(JSON.stringify(changes.spec));
    const { changes: n } = await this.db.run(`UPDATE views SET ${sets.join(', ')} WHERE id = ?`, [...params, id]);
    return n ? this.get(id) : undefined;
  }

  async delete(id: string): Promise<boolean> {
    const { changes } = await this.db.run('DELETE FROM views WHERE id = ?', [id]);
    return changes > 0;
  }

  /** Every view of a deleted project. */
  async deleteProject(projectId: string): Promise<number> {
    const { changes } = await this.db.run('DELETE FROM views WHERE project_id = ?', [projectId]);
    return changes;
  }
}
