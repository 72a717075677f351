import { inList, isoTime, likeEscape, newId, raw, sql, whereAll, type AuditRecord, type MetadataStore, type Sql } from '@wanllmdb/core';
import type { auth } from '@wanllmdb/proto';

export interface AuditFilter {
  actorId?: string;
  action?: string;
  target?: string;
  orgId?: string;
  result?: string;
  since?: number;
  until?: number;
  /** undefined = every organisation (site admins); otherwise only these (empty = nothing). */
  orgIds?: readonly string[];
}

export interface AuditCursor {
  at: number;
  id: string;
}

interface AuditRow {
  [k: string]: unknown;
  id: string;
  at: number;
  actor_id: string;
  actor_name: string;
  actor_kind: string;
  action: string;
  permission: string;
  target: string;
  org_id: string;
  address: string;
  transport: string;
  result: string;
  request_id: string;
}

const COLUMNS = 'id, at, actor_id, actor_name, actor_kind, action, permission, target, org_id, address, transport, result, request_id';

const toEvent = (r: AuditRow): auth.v1.AuditEvent => ({
  id: r.id,
  at: isoTime(r.at),
  actorId: r.actor_id,
  actorName: r.actor_name,
  actorKind: r.actor_kind,
  action: r.action,
  permission: r.permission,
  target: r.target,
  organizationId: r.org_id,
  address: r.address,
  transport: r.transport,
  result: r.result,
  requestId: r.request_id,
});

export const encodeCursor = (c: AuditCursor): string => Buffer.from(`${c.at}:${c.id}`).toString('base64url');

export function decodeCursor(s: string): AuditCursor | undefined {
  if (s.length > 200 || !/^[A-Za-z0-9_-]+$/.test(s)) return undefined;
  const m = /^(\d{1,16}):([0-9a-f-]{36})$/.exec(Buffer.from(s, 'base64url').toString());
  return m ? { at: Number(m[1]), id: m[2]! } : undefined;
}

const clip = (s: string, n: number) => (s.length > n ? s.slice(0, n) : s);

/** The audit table: one row per settled call that is not a read; no request bodies. */
export class AuditLog {
  constructor(private readonly db: MetadataStore) {}

  async write(r: AuditRecord): Promise<void> {
    await this.db.run(`INSERT INTO audit_log (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, [
      newId(),
      r.at,
      r.principal.id,
      clip(r.principal.name, 255),
      r.principal.kind,
      clip(r.method, 255),
      clip(r.permission, 255),
      clip(r.targets.join(','), 2000),
      r.orgId,
      clip(r.address, 100),
      r.transport,
      clip(r.result, 100),
      clip(r.requestId, 100),
    ]);
  }

  /** Newest first, keyset-paged on (at, id). */
  async list(f: AuditFilter, cursor: AuditCursor | undefined, limit: number): Promise<auth.v1.AuditEvent[]> {
    if (f.orgIds && f.orgIds.length === 0) return [];
    const where: Sql[] = [];
    const eq = (col: string, v: string | undefined) => {
      if (v) where.push(sql`${raw(col)} = ${v}`);
    };
    eq('actor_id', f.actorId);
    eq('action', f.action);
    eq('org_id', f.orgId);
    eq('result', f.result);
    if (f.target) {
      // A call may name several targets ("run:a,project:b"): match any one of them exactly.
      const t = likeEscape(f.target);
      where.push(sql`(target = ${f.target} OR target LIKE ${`${t},%`} ESCAPE '\\' OR target LIKE ${`%,${t}`} ESCAPE '\\' OR target LIKE ${`%,${t},%`} ESCAPE '\\')`);
    }
    if (f.since !== undefined) where.push(sql`at >= ${f.since}`);
    if (f.until !== undefined) where.push(sql`at < ${f.until}`);
    if (f.orgIds) where.push(sql`org_id IN ${inList(f.orgIds)}`);
    if (cursor) where.push(sql`(at < ${cursor.at} OR (at = ${cursor.at} AND id < ${cursor.id}))`);
    const query = sql`SELECT ${raw(COLUMNS)} FROM audit_log ${whereAll(where)} ORDER BY at DESC, id DESC LIMIT ${limit}`;
    const rows = await this.db.query<AuditRow>(query.text, query.params);
    return rows.map(toEvent);
  }
}
