import type { Dialect, MetadataStore, SqlExecutor, SqlValue } from '@wanllmdb/core';
import type { JsonObject, JsonValue, tracking } from '@wanllmdb/proto';
import { encodeNonFinite, parseJsonColumn } from './json-values.js';
import { DEFAULT_MAX_KEYS_PER_RUN, keyLimitExceeded } from './metrics/key-limit.js';
import { jsonEqual, mergeConfig, withoutNulls } from './run-config.js';
import { applySelection, selectionColumns, type FieldSelection } from './run-field-selection.js';
import type { RunState } from './run-fields.js';
import { compileRunFilter, type FilterExpr } from './run-filter.js';
import { keysetAfter, orderBy, sortComponents, type Cursor, type RunSort, type SortComponent } from './run-sort.js';
import { fromJsonDoc, isoTime, joinSql, raw, sql, toJsonDoc, type Sql } from '@wanllmdb/core';

type Run = tracking.v1.Run;
type ConfigVersion = tracking.v1.ConfigVersion;
type GitInfo = tracking.v1.GitInfo;
type RunEnvironment = tracking.v1.RunEnvironment;

export interface NewRun {
  id: string;
  projectId: string;
  name: string;
  group: string;
  jobType: string;
  tags: string[];
  notes: string;
  config: JsonObject;
  git?: GitInfo;
  environment?: RunEnvironment;
  createdBy: string;
  now: number;
}

/** Fields a PATCH or a resume may change; absent means unchanged. */
export interface RunChanges {
  name?: string;
  group?: string;
  jobType?: string;
  tags?: string[];
  notes?: string;
  git?: GitInfo;
  environment?: RunEnvironment;
}

export interface RunListQuery {
  projectId: string;
  filter?: FilterExpr;
  sort: RunSort;
  after?: Cursor;
  limit: number;
  /** Which keys of config and summary the runs carry (ListRunsRequest.fields); absent: whole runs. */
  fields?: FieldSelection;
}

export interface ConfigChange {
  version: ConfigVersion;
  /** False when the update left the config as it was (no new version). */
  changed: boolean;
}

export interface RunPage {
  runs: Run[];
  total: number;
  /** Where the next page starts; absent on the last page. */
  next?: Cursor;
}

/** A run's JSON document column in a select list (core's JSON-column rule). */
const readDoc = (d: Dialect, column: string) => fromJsonDoc(d, `r.${column}`);

/** A placeholder for a JSON text bound into a JSON document column. */
const writeDoc = (d: Dialect) => toJsonDoc(d);

/** Every run column but the two documents that grow (config, summary), which a run list may narrow. */
const fixedColumns = (d: Dialect) =>
  `r.id, r.project_id, r.name, r.group_name, r.job_type, ${readDoc(d, 'tags')}, r.notes, r.state, r.exit_code, r.git, r.environment, ` +
  `r.created_by, r.started_at, r.finished_at, r.heartbeat_at, r.created_at, r.updated_at`;

const runColumns = (d: Dialect) => `${fixedColumns(d)}, ${readDoc(d, 'config')}, ${readDoc(d, 'summary')}`;

interface RunRow {
  [k: string]: unknown;
  id: string;
  project_id: string;
  name: string;
  group_name: string;
  job_type: string;
  tags: unknown;
  notes: string;
  state: Run['state'];
  exit_code: number | null;
  config: unknown;
  git: string | null;
  environment: string | null;
  created_by: string;
  started_at: number;
  finished_at: number | null;
  heartbeat_at: number;
  created_at: number;
  updated_at: number;
  summary: unknown;
}


function toRun(r: RunRow): Run {
  const run: Run = {
    id: r.id,
    projectId: r.project_id,
    name: r.name,
    group: r.group_name,
    jobType: r.job_type,
    tags: parseJsonColumn<string[]>(r.tags, []),
    notes: r.notes,
    state: r.state,
    config: parseJsonColumn<JsonObject>(r.config, {}),
    summary: parseJsonColumn<JsonObject>(r.summary, {}),
    url: `/runs/${r.id}`,
    createdBy: r.created_by,
    startedAt: isoTime(r.started_at),
    finishedAt: isoTime(r.finished_at),
    heartbeatAt: isoTime(r.heartbeat_at),
    createdAt: isoTime(r.created_at),
    updatedAt: isoTime(r.updated_at),
  };
  if (r.exit_code !== null && r.exit_code !== undefined) run.exitCode = Number(r.exit_code);
  if (r.git) run.git = JSON.parse(r.git) as GitInfo;
  if (r.environment) run.environment = JSON.parse(r.environment) as RunEnvironment;
  return run;
}

/** A run of a list with a field selection: its documents hold what was selected. */
function selected(row: RunRow, fields: FieldSelection): Run {
  const run = toRun(row);
  applySelection(run, row, fields);
  return run;
}

const json = (v: JsonValue) => JSON.stringify(v);

/** `{...metrics, ...userValues}`: what the user set wins, key by key. */
export const overlaySummary = (metrics: JsonObject, userValues: JsonObject): JsonObject => ({ ...metrics, ...userValues });

/** SQL for runs, their summaries and config history; the only code that knows these tables. */
export class RunRepository {
  private readonly columns: string;
  private readonly doc: string;
  private readonly maxSummaryKeys: number;

  /** `maxSummaryKeys`: keys a user may set in a run's summary (the tracking plugin's per-run key limit). */
  constructor(
    private readonly db: MetadataStore,
    opts: { maxSummaryKeys?: number } = {},
  ) {
    this.columns = runColumns(db.dialect);
    this.doc = writeDoc(db.dialect);
    this.maxSummaryKeys = opts.maxSummaryKeys ?? DEFAULT_MAX_KEYS_PER_RUN;
  }

  get dialect(): Dialect {
    return this.db.dialect;
  }

  /** PostgreSQL locks the row read for a read-modify-write; SQLite has one writer anyway. */
  private forUpdate(tx: SqlExecutor): string {
    return tx.dialect === 'postgres' ? ' FOR UPDATE' : '';
  }

  async insert(run: NewRun): Promise<Run> {
    await this.db.transaction(async (tx) => {
      await tx.run(
        `INSERT INTO runs (id, project_id, name, group_name, job_type, tags, notes, state, config, summary, config_version, git, environment, created_by,
           started_at, heartbeat_at, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ${this.doc}, ?, 'running', ${this.doc}, ${this.doc}, 1, ?, ?, ?, ?, ?, ?, ?)`,
        [
          run.id, run.projectId, run.name, run.group, run.jobType, json(run.tags), run.notes, json(run.config), '{}',
          run.git ? json(run.git as unknown as JsonObject) : null, run.environment ? json(run.environment as unknown as JsonObject) : null,
          run.createdBy, run.now, run.now, run.now, run.now,
        ],
      );
      await tx.run('INSERT INTO run_summaries (run_id, metrics, user_values, updated_at) VALUES (?, ?, ?, ?)', [run.id, '{}', '{}', run.now]);
      await tx.run('INSERT INTO run_config_versions (run_id, version, config, changed_at) VALUES (?, 1, ?, ?)', [run.id, json(run.config), run.now]);
    });
    return (await this.get(run.id))!;
  }

  async get(id: string, tx: SqlExecutor = this.db): Promise<Run | undefined> {
    const rows = await tx.query<RunRow>(`SELECT ${this.columns} FROM runs r WHERE r.id = ?`, [id]);
    return rows[0] && toRun(rows[0]);
  }

  /** The project of a run, or undefined when there is no such run. */
  async projectOf(id: string): Promise<string | undefined> {
    const rows = await this.db.query<{ project_id: string }>('SELECT project_id FROM runs WHERE id = ?', [id]);
    return rows[0]?.project_id;
  }

  async countInProject(projectId: string): Promise<number> {
    const [row] = await this.db.query<{ n: number }>('SELECT COUNT(*) AS n FROM runs WHERE project_id = ?', [projectId]);
    return Number(row?.n ?? 0);
  }

  async runIdsOfProject(projectId: string): Promise<string[]> {
    const rows = await this.db.query<{ id: string }>('SELECT id FROM runs WHERE project_id = ? ORDER BY id', [projectId]);
    return rows.map((r) => r.id);
  }

  private changeSets(changes: RunChanges): { sets: string[]; params: SqlValue[] } {
    const sets: string[] = [];
    const params: SqlValue[] = [];
    const set = (column: string, value: SqlValue, placeholder = '?') => (sets.push(`${column} = ${placeholder}`), params.push(value));
    if (changes.name !== undefined) set('name', changes.name);
    if (changes.group !== undefined) set('group_name', changes.group);
    if (changes.jobType !== undefined) set('job_type', changes.jobType);
    if (changes.tags !== undefined) set('tags', json(changes.tags), this.doc);
    if (changes.notes !== undefined) set('notes', changes.notes);
    if (changes.git !== undefined) set('git', json(changes.git as unknown as JsonObject));
    if (changes.environment !== undefined) set('environment', json(changes.environment as unknown as JsonObject));
    return { sets, params };
  }

  /** PATCH: resolves to the updated run, or undefined if there is none. */
  async update(id: string, changes: RunChanges, now: number): Promise<Run | undefined> {
    const { sets, params } = this.changeSets(changes);
    sets.push('updated_at = ?');
    params.push(now);
    return this.db.transaction(async (tx) => {
      const { changes: n } = await tx.run(`UPDATE runs SET ${sets.join(', ')} WHERE id = ?`, [...params, id]);
      return n ? this.get(id, tx) : undefined;
    });
  }

  /**
   * A resumed run runs again: state running, no exit code or finish time,
   * a fresh heartbeat; `changes` and a config patch apply as for an update.
   */
  async resume(id: string, changes: RunChanges, configPatch: JsonObject | undefined, now: number): Promise<Run | undefined> {
    const { sets, params } = this.changeSets(changes);
    return this.db.transaction(async (tx) => {
      const { changes: n } = await tx.run(
        `UPDATE runs SET ${[...sets, "state = 'running'", 'exit_code = NULL', 'finished_at = NULL', 'timed_out = 0', 'heartbeat_at = ?', 'updated_at = ?'].join(', ')} WHERE id = ?`,
        [...params, now, now, id],
      );
      if (!n) return undefined;
      if (configPatch && Object.keys(configPatch).length) await this.updateConfigIn(tx, id, configPatch, false, now);
      return this.get(id, tx);
    });
  }

  /** Ends a run; `summaryPatch` is applied to the user's summary values in the same transaction. */
  async finish(id: string, state: RunState, exitCode: number | undefined, summaryPatch: JsonObject | undefined, now: number): Promise<Run | undefined> {
    return this.db.transaction(async (tx) => {
      const { changes: n } = await tx.run('UPDATE runs SET state = ?, exit_code = ?, finished_at = ?, timed_out = 0, updated_at = ? WHERE id = ?', [
        state, exitCode ?? null, now, now, id,
      ]);
      if (!n) return undefined;
      if (summaryPatch && Object.keys(summaryPatch).length) await this.patchSummaryIn(tx, id, summaryPatch, 'user', now);
      return this.get(id, tx);
    });
  }

  /**
   * Records a heartbeat. A run the sweeper marked crashed for missing
   * heartbeats is running again when they resume (the process was alive,
   * only unreachable); a run that ended otherwise keeps its state.
   * Resolves to the state and whether it changed, or undefined if there is no run.
   */
  async heartbeat(id: string, now: number): Promise<{ state: Run['state']; revived: boolean } | undefined> {
    return this.db.transaction(async (tx) => {
      const revived = await tx.run(
        "UPDATE runs SET state = 'running', finished_at = NULL, timed_out = 0, heartbeat_at = ?, updated_at = ? WHERE id = ? AND state = 'crashed' AND timed_out = 1",
        [now, now, id],
      );
      if (!revived.changes) {
        const { changes } = await tx.run('UPDATE runs SET heartbeat_at = ? WHERE id = ?', [now, id]);
        if (!changes) return undefined;
      }
      const [row] = await tx.query<{ state: Run['state'] }>('SELECT state FROM runs WHERE id = ?', [id]);
      return row && { state: row.state, revived: revived.changes > 0 };
    }, { groupCommit: true }); // statements only: heartbeats of many runs share commits
  }

  /** Marks running runs whose last heartbeat is before `cutoff` as crashed; resolves to their ids. */
  async sweepStale(cutoff: number, now: number): Promise<string[]> {
    const rows = await this.db.query<{ id: string }>(
      "UPDATE runs SET state = 'crashed', timed_out = 1, finished_at = heartbeat_at, updated_at = ? WHERE state = 'running' AND heartbeat_at < ? RETURNING id",
      [now, cutoff],
    );
    return rows.map((r) => r.id);
  }

  /** Deletes the run with its summary, config history, logs and file rows (cascade). */
  async delete(id: string): Promise<boolean> {
    return (await this.db.run('DELETE FROM runs WHERE id = ?', [id])).changes > 0;
  }

  // ------------------------------------------------------------ config

  private async updateConfigIn(tx: SqlExecutor, id: string, config: JsonObject, replace: boolean, now: number): Promise<ConfigChange | undefined> {
    const [row] = await tx.query<{ config: unknown; config_version: number }>(
      `SELECT ${readDoc(tx.dialect, 'config')}, r.config_version FROM runs r WHERE r.id = ?${this.forUpdate(tx)}`,
      [id],
    );
    if (!row) return undefined;
    const current = parseJsonColumn<JsonObject>(row.config, {});
    const next = replace ? withoutNulls(config) : mergeConfig(current, config);
    const version = Number(row.config_version);
    if (jsonEqual(current, next)) {
      const [at] = await tx.query<{ changed_at: number }>('SELECT changed_at FROM run_config_versions WHERE run_id = ? AND version = ?', [id, version]);
      return { changed: false, version: { version, config: current, changedAt: isoTime(at?.changed_at ?? now) } };
    }
    await tx.run(`UPDATE runs SET config = ${this.doc}, config_version = ?, updated_at = ? WHERE id = ?`, [json(next), version + 1, now, id]);
    await tx.run('INSERT INTO run_config_versions (run_id, version, config, changed_at) VALUES (?, ?, ?, ?)', [id, version + 1, json(next), now]);
    return { changed: true, version: { version: version + 1, config: next, changedAt: isoTime(now) } };
  }

  /**
   * Deep-merges (or with `replace`, replaces) the run's config. A change
   * becomes a new version; no change returns the current one.
   */
  updateConfig(id: string, config: JsonObject, replace: boolean, now: number): Promise<ConfigChange | undefined> {
    return this.db.transaction((tx) => this.updateConfigIn(tx, id, config, replace, now));
  }

  async configHistory(id: string): Promise<ConfigVersion[]> {
    const rows = await this.db.query<{ version: number; config: string; changed_at: number }>(
      'SELECT version, config, changed_at FROM run_config_versions WHERE run_id = ? ORDER BY version',
      [id],
    );
    return rows.map((r) => ({ version: Number(r.version), config: JSON.parse(r.config) as JsonObject, changedAt: isoTime(r.changed_at) }));
  }

  // ------------------------------------------------------------ summary

  private async patchSummaryIn(tx: SqlExecutor, id: string, patch: JsonObject, part: 'user' | 'metrics', now: number): Promise<JsonObject | undefined> {
    const [row] = await tx.query<{ metrics: string; user_values: string }>(`SELECT metrics, user_values FROM run_summaries WHERE run_id = ?${this.forUpdate(tx)}`, [id]);
    if (!row) return undefined;
    let metrics = JSON.parse(row.metrics) as JsonObject;
    let user = JSON.parse(row.user_values) as JsonObject;
    if (part === 'metrics') metrics = { ...metrics, ...patch };
    else {
      const had = Object.keys(user).length;
      user = { ...user };
      for (const [k, v] of Object.entries(patch)) {
        if (v === null) delete user[k];
        else user[k] = v;
      }
      // Only growth is refused: a run left over the limit (a lowered setting) can still change and remove keys.
      const has = Object.keys(user).length;
      if (has > this.maxSummaryKeys && has > had) throw keyLimitExceeded('summary', id, this.maxSummaryKeys, had, has - had);
    }
    const summary = overlaySummary(metrics, user);
    await tx.run('UPDATE run_summaries SET metrics = ?, user_values = ?, updated_at = ? WHERE run_id = ?', [json(metrics), json(user), now, id]);
    await tx.run(`UPDATE runs SET summary = ${this.doc}, updated_at = ? WHERE id = ?`, [json(summary), now, id]);
    return summary;
  }

  /** Sets (or, with null, un-sets) user summary values; resolves to the effective summary. */
  setUserSummary(id: string, patch: JsonObject, now: number): Promise<JsonObject | undefined> {
    return this.db.transaction((tx) => this.patchSummaryIn(tx, id, patch, 'user', now));
  }

  /** Records the last logged value of metric keys (non-finite numbers as their string spellings). */
  setMetricSummary(id: string, last: Record<string, number>, now: number): Promise<JsonObject | undefined> {
    return this.db.transaction((tx) => this.patchSummaryIn(tx, id, encodeNonFinite(last) as JsonObject, 'metrics', now));
  }

  // ------------------------------------------------------------ lists

  /**
   * The SQL of one page, and of the filtered total. With a filter, the page
   * query carries the total as a window count (one pass over the project's
   * runs instead of two); without one, the total is a separate index-only
   * count and the page can stop after `limit` rows when the sort has an
   * index (the default, -created_at). Exposed for the run-list benchmark.
   */
  listStatements(q: RunListQuery): { statement: Sql; count: Sql; components: SortComponent[]; windowed: boolean } {
    const d = this.db.dialect;
    const components = sortComponents(q.sort, d);
    const where = q.filter ? sql`r.project_id = ${q.projectId} AND ${compileRunFilter(q.filter, d)}` : sql`r.project_id = ${q.projectId}`;
    const keys = components.map((c, i) => sql`${c.expr} AS ${raw(`k${i}`)}`);
    const windowed = q.filter !== undefined;
    const total = raw(windowed ? ', COUNT(*) OVER () AS total_count' : '');
    const inner = sql`SELECT r.id AS id, ${joinSql(keys, ', ')}${total} FROM runs r WHERE ${where}`;
    const after: Sql = q.after ? sql` WHERE ${keysetAfter(q.sort, components, q.after, 'q')}` : raw('');
    const carried = raw(components.map((_, i) => `, q.k${i}`).join('') + (windowed ? ', q.total_count' : ''));
    const page = sql`SELECT q.id${carried} FROM (${inner}) q${after} ORDER BY ${orderBy(q.sort, components, 'q')} LIMIT ${q.limit + 1}`;
    const outer = raw(components.map((_, i) => `, p.k${i}`).join('') + (windowed ? ', p.total_count' : ''));
    // Only the page's runs are read whole, or with a field selection only the selected paths of their documents.
    const columns = q.fields ? sql`${raw(fixedColumns(d))}, ${selectionColumns(q.fields, d, (c) => readDoc(d, c))}` : raw(this.columns);
    const statement = sql`SELECT ${columns}${outer} FROM (${page}) p JOIN runs r ON r.id = p.id ORDER BY ${orderBy(q.sort, components, 'p')}`;
    return { statement, count: sql`SELECT COUNT(*) AS n FROM runs r WHERE ${where}`, components, windowed };
  }

  /**
   * One page of a project's runs: filtered, sorted, after a keyset cursor.
   * The inner query finds the page's ids, sort keys and the filtered total
   * (a window count, so one pass); the outer one fetches those runs.
   * Reads only the runs table: the summary is on the run's row.
   */
  async list(q: RunListQuery): Promise<RunPage> {
    const { statement, count, components, windowed } = this.listStatements(q);
    const counted = async () => Number((await this.db.query<{ n: number }>(count.text, count.params))[0]?.n ?? 0);
    const rows = await this.db.query<RunRow & { total_count?: number }>(statement.text, statement.params);
    const more = rows.length > q.limit;
    const pageRows = more ? rows.slice(0, q.limit) : rows;
    // A first page that holds every run is its own count (most projects' whole list); otherwise the index-only count.
    let total = windowed ? Number(rows[0]?.total_count ?? 0) : !more && !q.after ? rows.length : await counted();
    // A page after the last one has no row to carry the window count.
    if (windowed && rows.length === 0 && q.after) total = await counted();
    const last = pageRows.at(-1);
    const fields = q.fields;
    return {
      runs: fields ? pageRows.map((row) => selected(row, fields)) : pageRows.map(toRun),
      total,
      next: more && last ? { id: last.id, values: components.map((_, i) => (last[`k${i}`] ?? null) as number | string | null) } : undefined,
    };
  }
}
