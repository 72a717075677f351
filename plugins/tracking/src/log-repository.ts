import type { MetadataStore, SqlValue } from '@wanllmdb/core';
import type { tracking } from '@wanllmdb/proto';
import { containsPattern } from '@wanllmdb/core';

type LogLine = tracking.v1.LogLine;

export interface NewLogLine {
  time: number;
  stream: 'stdout' | 'stderr';
  line: string;
}

export interface LogPageQuery {
  after: number;
  limit: number;
  search: string;
  stream: '' | 'stdout' | 'stderr';
}

/** SQL for a run's console lines; the only code that knows run_logs. */
export class LogRepository {
  constructor(private readonly db: MetadataStore) {}

  /**
   * Stores lines with the next sequence numbers of their run. The counter
   * lives on the run's row, so concurrent appends to one run take turns
   * and sequence order is commit order (a reader paging by `after` never
   * skips a line committed late). Resolves to the lines stored, or
   * undefined when there is no such run.
   *
   * With a batch id the append is idempotent: the id is claimed first, in
   * the same transaction, so a batch sent again — even concurrently, where
   * PostgreSQL's unique index makes the second claim wait for the first to
   * commit — stores nothing and answers what the first call stored.
   */
  async append(runId: string, lines: readonly NewLogLine[], batch?: { id: string; at: number }): Promise<{ accepted: number; duplicate: boolean } | undefined> {
    return this.db.transaction(async (tx) => {
      if (batch) {
        // Claimed only for a run that exists (no foreign-key error to tell apart from a missing run).
        const claimed = await tx.query(
          'INSERT INTO run_log_batches (run_id, batch_id, lines, created_at) SELECT id, CAST(? AS TEXT), CAST(? AS INTEGER), CAST(? AS BIGINT) FROM runs WHERE id = ? ' +
            'ON CONFLICT (run_id, batch_id) DO NOTHING RETURNING batch_id',
          [batch.id, lines.length, batch.at, runId],
        );
        if (claimed.length === 0) {
          const [first] = await tx.query<{ lines: number }>('SELECT lines FROM run_log_batches WHERE run_id = ? AND batch_id = ?', [runId, batch.id]);
          return first ? { accepted: Number(first.lines), duplicate: true } : undefined;
        }
      }
      const [row] = await tx.query<{ log_seq: number }>('UPDATE runs SET log_seq = log_seq + ? WHERE id = ? RETURNING log_seq', [lines.length, runId]);
      if (!row) return undefined;
      const last = Number(row.log_seq);
      const first = last - lines.length + 1;
      const rows = lines.map((l, i): SqlValue[] => [runId, first + i, l.time, l.stream, l.line]);
      if (rows.length) await tx.insertMany('run_logs', ['run_id', 'seq', 'time', 'stream', 'line'], rows);
      return { accepted: lines.length, duplicate: false };
    }, { groupCommit: true }); // statements only: log batches of many runs share commits
  }

  /** Up to `limit` lines after `after`, and whether more follow. */
  async page(runId: string, q: LogPageQuery): Promise<{ lines: LogLine[]; hasMore: boolean }> {
    const where = ['run_id = ?', 'seq > ?'];
    const params: SqlValue[] = [runId, q.after];
    if (q.stream) (where.push('stream = ?'), params.push(q.stream));
    if (q.search) (where.push("LOWER(line) LIKE ? ESCAPE '\\'"), params.push(containsPattern(q.search)));
    const rows = await this.db.query<{ seq: number; time: number; stream: tracking.v1.LogLine['stream']; line: string }>(
      `SELECT seq, time, stream, line FROM run_logs WHERE ${where.join(' AND ')} ORDER BY seq LIMIT ?`,
      [...params, q.limit + 1],
    );
    const hasMore = rows.length > q.limit;
    return {
      lines: rows.slice(0, q.limit).map((r) => ({ seq: Number(r.seq), time: Number(r.time), stream: r.stream, line: r.line })),
      hasMore,
    };
  }
}
