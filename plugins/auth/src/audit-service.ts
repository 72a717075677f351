import type { CallContext } from '@wanllmdb/core';
import type { auth } from '@wanllmdb/proto';
import { decodeCursor, encodeCursor, type AuditFilter } from './audit-log.js';
import type { AuthDeps } from './deps.js';
import { AuthProblems } from './validate.js';

type Handlers = auth.v1.AuditServiceHandlers<CallContext>;
type Filters = Omit<auth.v1.ListAuditRequest, 'cursor' | 'limit'>;

const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 1000;
const EXPORT_PAGE = 500;

const CSV_COLUMNS: [string, keyof auth.v1.AuditEvent][] = [
  ['id', 'id'], ['at', 'at'], ['actor_id', 'actorId'], ['actor_name', 'actorName'], ['actor_kind', 'actorKind'], ['action', 'action'],
  ['permission', 'permission'], ['target', 'target'], ['organization_id', 'organizationId'], ['address', 'address'],
  ['transport', 'transport'], ['result', 'result'], ['request_id', 'requestId'],
];

/** One CSV field: quoted when needed, and defused against spreadsheet formulas. */
export function csvField(v: string): string {
  const safe = /^[=+\-@\t\r]/.test(v) ? `'${v}` : v;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function auditHandlers(d: AuthDeps): Handlers {
  const { auditLog, tokenAuth } = d;

  /** The request's filters, narrowed to the organisations whose audit log the caller may read. */
  const filterOf = async (p: AuthProblems, req: Filters, ctx: CallContext): Promise<AuditFilter> => {
    const f: AuditFilter = {};
    const actorId = p.id('actorId', req.actorId, { required: false });
    const orgId = p.id('organizationId', req.organizationId, { required: false });
    const action = p.line('action', req.action);
    const target = p.line('target', req.target);
    const result = p.line('result', req.result, 100);
    const since = p.instant('since', req.since);
    const until = p.instant('until', req.until);
    if (actorId) f.actorId = actorId;
    if (orgId) f.orgId = orgId;
    if (action) f.action = action;
    if (target) f.target = target;
    if (result) f.result = result;
    if (since !== undefined) f.since = since;
    if (until !== undefined) f.until = until;
    p.throwIfAny();
    const scope = await tokenAuth.access(ctx.principal, 'audit:read');
    if (!scope.all) f.orgIds = orgId ? scope.orgIds.filter((o) => o === orgId) : scope.orgIds;
    return f;
  };

  return {
    async listAudit(req, ctx) {
      const p = new AuthProblems('The audit query');
      const limit = req.limit ? Number(req.limit) : DEFAULT_LIMIT;
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) p.add('limit', `must be from 1 to ${MAX_LIMIT}`);
      const cursor = req.cursor ? decodeCursor(String(req.cursor)) : undefined;
      if (req.cursor && !cursor) p.add('cursor', 'is not a cursor this server gave out (pass meta.nextCursor unchanged)');
      const f = await filterOf(p, req, ctx);
      const rows = await auditLog.list(f, cursor, limit + 1);
      const page = rows.slice(0, limit);
      const last = page[page.length - 1];
      const nextCursor = rows.length > limit && last ? encodeCursor({ at: Date.parse(last.at), id: last.id }) : '';
      return { data: page, meta: { nextCursor } };
    },

    async exportAudit(req, ctx, send) {
      const p = new AuthProblems('The audit export');
      const format = req.format || 'jsonl';
      const f = await filterOf(p, req, ctx);
      const contentType = format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson';
      const enc = new TextEncoder();
      if (format === 'csv') await send({ contentType, data: enc.encode(`${CSV_COLUMNS.map(([h]) => h).join(',')}\n`) });
      let cursor: { at: number; id: string } | undefined;
      let sent = format === 'csv';
      for (;;) {
        if (ctx.signal.aborted) return;
        const rows = await auditLog.list(f, cursor, EXPORT_PAGE);
        if (!rows.length) break;
        const text =
          format === 'csv'
            ? rows.map((r) => CSV_COLUMNS.map(([, k]) => csvField(String(r[k]))).join(',')).join('\n') + '\n'
            : rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
        await send({ contentType, data: enc.encode(text) });
        sent = true;
        const last = rows[rows.length - 1]!;
        cursor = { at: Date.parse(last.at), id: last.id };
        if (rows.length < EXPORT_PAGE) break;
      }
      if (!sent && !ctx.signal.aborted) await send({ contentType, data: new Uint8Array(0) });
    },
  };
}
