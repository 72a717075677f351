import { Errors, newId, type CallContext, type Clock, type EventBus } from '@wanllmdb/core';
import type { ProjectsApi } from '@wanllmdb/plugin-projects';
import type { JsonObject, tracking } from '@wanllmdb/proto';
import type { MetricStore } from './metrics/metric-store.js';
import { findProject, projectIdOf } from './project-ref.js';
import { CONFIG_LIMITS, LIMITS, RunProblems, runId, runNotFound, SUMMARY_LIMITS } from './request-checks.js';
import { diffConfigs } from './run-config.js';
import { decodeSeries, metricsEvent, runEvent, type RunEventKind, type RunEvents } from './run-events.js';
import type { RunState } from './run-fields.js';
import { parseFieldSelection } from './run-field-selection.js';
import { parseRunFilter } from './run-filter.js';
import { generateRunName } from './run-names.js';
import type { RunChanges, RunRepository } from './run-repository.js';
import { decodeCursor, encodeCursor, parseRunSort, sortComponents } from './run-sort.js';

type Handlers = tracking.v1.RunServiceHandlers<CallContext>;
type Run = tracking.v1.Run;
type RunEvent = tracking.v1.RunEvent;

export interface RunServiceDeps {
  repo: RunRepository;
  projects: ProjectsApi;
  events: RunEvents;
  bus: EventBus;
  clock: Clock;
  /** The metrics engine (opened once the plugin's tables exist). */
  metrics: () => MetricStore;
}

const DEFAULT_PAGE = 50;
const MAX_PAGE = 1000;
const MAX_WATCH_RUNS = 1000;
const MAX_WATCH_KEYS = 100;

/** Single-line text fields of a sub-message, each at most its length: `git.commit` … */
function lines<K extends string>(p: RunProblems, prefix: string, value: Partial<Record<NoInfer<K>, unknown>>, max: Record<K, number>): Record<K, string> {
  const out = {} as Record<K, string>;
  for (const k of Object.keys(max) as K[]) out[k] = p.line(`${prefix}.${k}`, value[k], max[k]);
  return out;
}

function checkGit(p: RunProblems, git: Partial<tracking.v1.GitInfo> | undefined): tracking.v1.GitInfo | undefined {
  return git && { ...lines(p, 'git', git, { commit: 128, branch: 255, remote: 2048 }), dirty: Boolean(git.dirty) };
}

function checkEnvironment(p: RunProblems, env: Partial<tracking.v1.RunEnvironment> | undefined): tracking.v1.RunEnvironment | undefined {
  return (
    env && {
      ...lines(p, 'environment', env, { host: 255, os: 255, runtime: 255 }),
      command: p.text('environment.command', env.command, 8192),
      pid: p.integer('environment.pid', env.pid, 0, 0, 2 ** 31 - 1),
    }
  );
}

function checkSummaryKeys(p: RunProblems, field: string, summary: JsonObject): void {
  if (Object.hasOwn(summary, '')) p.add(`${field}.`, 'keys must not be empty');
  p.keys(field, summary);
}

/** Whether the caller may read run `id` (a run it may not see is NOT_FOUND to it; one it sees without the permission is there). */
async function mayRead(ctx: CallContext, id: string): Promise<boolean> {
  try {
    await ctx.authorize('runs:read', [{ type: 'run', id }]);
    return true;
  } catch (err) {
    if (Errors.NOT_FOUND.is(err)) return false;
    if (Errors.PERMISSION_DENIED.is(err)) return true;
    throw err;
  }
}

/** One answer for a client-chosen id that names an existing run, whether or not the caller may see it (see createRun). */
const runIdTaken = (id: string) =>
  Errors.ALREADY_EXISTS(`The run id ${id} is taken. Leave id empty for a new run, or pass resume "allow" or "must" to continue a run of yours with this id.`, [
    { field: 'id', message: 'taken' },
  ]);

/** The RunService handlers: one implementation behind gRPC, HTTP and in-process calls. */
export function runHandlers(deps: RunServiceDeps): Handlers {
  const { repo, projects, events, clock } = deps;

  const mustGet = async (id: string, field = 'id'): Promise<Run> => {
    const run = await repo.get(id);
    if (!run) throw runNotFound(id, field);
    return run;
  };

  /** Publishes a `kind` event with the run as it is now (none when it is gone by then). */
  const publishCurrent = async (id: string, kind: Exclude<RunEventKind, 'deleted'>): Promise<void> => {
    const run = await repo.get(id);
    if (run) await events.run(kind, run);
  };

  async function resumeExisting(existing: Run, projectId: string, changes: RunChanges, config: JsonObject): Promise<Run> {
    if (existing.projectId !== projectId) {
      throw Errors.ALREADY_EXISTS(`Run ${existing.id} exists in another project, so it cannot be resumed here. Resume it in its own project or use a new id.`, [
        { field: 'id', message: 'belongs to another project' },
      ]);
    }
    const run = await repo.resume(existing.id, changes, config, clock.now());
    if (!run) throw runNotFound(existing.id);
    await events.run('state', run);
    return run;
  }

  return {
    async createRun(req, ctx) {
      const p = new RunProblems('The run');
      const projectRef = p.line('projectId', req.projectId, LIMITS.projectRef, { required: true });
      const resume = req.resume || 'never'; // closed sets are the contract's (ADR 0020): '' is the default
      const name = p.line('name', req.name, LIMITS.name);
      const group = p.line('group', req.group, LIMITS.group);
      const jobType = p.line('jobType', req.jobType, LIMITS.jobType);
      const tags = p.tags('tags', req.tags);
      const notes = p.text('notes', req.notes, LIMITS.notes);
      const config = p.json('config', req.config, CONFIG_LIMITS);
      p.keys('config', config);
      const git = checkGit(p, req.git);
      const environment = checkEnvironment(p, req.environment);
      if (resume === 'must' && !req.id) p.add('id', 'is required when resume is "must"');
      p.throwIfAny();
      const id = req.id ? runId(req.id) : undefined;

      // Resuming: only fields the caller set change.
      const changes: RunChanges = {};
      if (name) changes.name = name;
      if (group) changes.group = group;
      if (jobType) changes.jobType = jobType;
      if (tags.length) changes.tags = tags;
      if (notes) changes.notes = notes;
      if (git) changes.git = git;
      if (environment) changes.environment = environment;

      /*
       * A run the caller may not see is, to the caller, not there: resume "must" answers exactly
       * what it answers for a free id. Its id stays taken, though. Run ids are one global namespace:
       * routes name a run by id alone (/api/v1/runs/{id}) and metric history, logs and files are
       * keyed by it, so two runs cannot share an id. Letting both exist ("scoped" ids) would make
       * an id name two runs for anyone who sees both organisations — and since an organisation
       * owner can add any user as a member, an attacker who creates a twin of a victim's run id
       * and adds the victim's teammates could have their calls land in the twin. So "never" and
       * "allow" answer a taken id with one 409, the same whether the caller could see the run or
       * not; it says nothing about the run (no project, name or owner) and changes nothing. Ids
       * are random UUIDs, so only a caller who already holds another organisation's id meets it.
       */
      const found = id ? await repo.get(id) : undefined;
      const existing = found && (await mayRead(ctx, found.id)) ? found : undefined;
      if (found && (resume === 'never' || (resume === 'allow' && !existing))) throw runIdTaken(found.id);
      if (!existing && resume === 'must') {
        throw Errors.NOT_FOUND(`Run ${id} does not exist, and resume "must" needs an existing run. Use resume "allow" to create it.`, [{ field: 'id', message: 'no such run' }]);
      }
      if (existing) {
        // Resuming never creates a project: a run of an unknown project is a run of another project.
        await ctx.authorize('runs:write', [{ type: 'run', id: existing.id }]);
        const project = await findProject(projects, projectRef, ctx.principal).catch((err: unknown) => {
          if (Errors.NOT_FOUND.is(err)) return undefined;
          throw err;
        });
        return { data: await resumeExisting(existing, project?.id ?? '', changes, config) };
      }
      const project = await projects.ensure(projectRef, ctx);
      await ctx.authorize('runs:write', [{ type: 'project', id: project.id }]);

      const now = clock.now();
      const runName = name || generateRunName((await repo.countInProject(project.id)) + 1);
      const newRun = { id: id ?? newId(), projectId: project.id, name: runName, group, jobType, tags, notes, config, git, environment, createdBy: ctx.principal.id, now };
      let run: Run;
      try {
        run = await repo.insert(newRun);
      } catch (err) {
        // Another caller created the same client-chosen id first.
        const raced = id && Errors.DB_CONSTRAINT_VIOLATION.is(err) ? await repo.get(id) : undefined;
        if (!raced) throw err;
        if (resume === 'never' || !(await mayRead(ctx, raced.id))) throw runIdTaken(raced.id);
        return { data: await resumeExisting(raced, project.id, changes, config) };
      }
      await events.run('created', run);
      return { data: run };
    },

    async getRun(req) {
      return { data: await mustGet(runId(req.id)) };
    },

    async updateRun(req) {
      const id = runId(req.id);
      const p = new RunProblems('The run update');
      const changes: RunChanges = {};
      if (req.name !== undefined) changes.name = p.line('name', req.name, LIMITS.name, { required: true });
      if (req.group !== undefined) changes.group = p.line('group', req.group, LIMITS.group);
      if (req.jobType !== undefined) changes.jobType = p.line('jobType', req.jobType, LIMITS.jobType);
      if (req.notes !== undefined) changes.notes = p.text('notes', req.notes, LIMITS.notes);
      const tags = p.tags('tags', req.tags);
      if (req.clearTags && tags.length) p.add('clearTags', 'cannot be combined with tags; send one or the other');
      if (tags.length) changes.tags = tags;
      else if (req.clearTags) changes.tags = [];
      p.throwIfAny();
      const run = await repo.update(id, changes, clock.now());
      if (!run) throw runNotFound(id);
      await events.run('updated', run);
      return { data: run };
    },

    async deleteRun(req) {
      const id = runId(req.id);
      const run = await mustGet(id);
      // History first: if it fails, the run is still there to delete again.
      await deps.metrics().deleteRun(id);
      if (!(await repo.delete(id))) throw runNotFound(id);
      await events.deleted(run.projectId, id);
      return {};
    },

    async finishRun(req) {
      const id = runId(req.id);
      const p = new RunProblems('The finish request');
      const exitCode = req.exitCode;
      if (exitCode !== undefined && exitCode !== null && (!Number.isInteger(exitCode) || exitCode < -(2 ** 31) || exitCode >= 2 ** 31)) p.add('exitCode', 'must be a 32-bit integer');
      const byExitCode: RunState = exitCode === undefined || exitCode === null || exitCode === 0 ? 'finished' : 'crashed';
      const state: RunState = req.state || byExitCode;
      const summary = req.summary === undefined ? undefined : p.json('summary', req.summary, SUMMARY_LIMITS);
      if (summary) checkSummaryKeys(p, 'summary', summary);
      p.throwIfAny();
      const run = await repo.finish(id, state, exitCode ?? undefined, summary, clock.now());
      if (!run) throw runNotFound(id);
      await events.run('state', run);
      return { data: run };
    },

    async heartbeat(req) {
      const id = runId(req.id);
      const beat = await repo.heartbeat(id, clock.now());
      if (!beat) throw runNotFound(id);
      if (beat.revived) await publishCurrent(id, 'state');
      return { state: beat.state };
    },

    async listRuns(req, ctx) {
      const p = new RunProblems('The run list request');
      const projectRef = p.line('projectId', req.projectId, LIMITS.projectRef, { required: true });
      const limit = p.pageSize('limit', req.limit, DEFAULT_PAGE, MAX_PAGE);
      if (typeof (req.filter ?? '') !== 'string') p.add('filter', 'must be a string');
      if (typeof (req.sort ?? '') !== 'string') p.add('sort', 'must be a string');
      const fields = parseFieldSelection(p, req.fields);
      p.throwIfAny();
      const filterText = req.filter ?? '';
      const filter = parseRunFilter(filterText);
      const sort = parseRunSort(req.sort ?? '');
      const projectId = await projectIdOf(projects, projectRef, ctx);
      const components = sortComponents(sort, repo.dialect);
      const after = req.cursor ? decodeCursor(req.cursor, sort, filterText, components) : undefined;
      const page = await repo.list({ projectId, filter, sort, after, limit, ...(fields ? { fields } : {}) });
      return { data: page.runs, meta: { total: page.total, nextCursor: page.next ? encodeCursor(sort, filterText, page.next) : '' } };
    },

    async updateConfig(req) {
      const id = runId(req.id);
      const p = new RunProblems('The config update');
      if (req.config === undefined || req.config === null) p.add('config', 'is required');
      const config = p.json('config', req.config, CONFIG_LIMITS);
      p.keys('config', config);
      p.throwIfAny();
      const result = await repo.updateConfig(id, config, Boolean(req.replace), clock.now());
      if (!result) throw runNotFound(id);
      if (result.changed) await publishCurrent(id, 'updated');
      return { data: result.version };
    },

    async getConfigHistory(req) {
      const id = runId(req.id);
      const history = await repo.configHistory(id);
      if (!history.length) throw runNotFound(id);
      return { data: history };
    },

    async diffConfigs(req) {
      const a = runId(req.runId, 'runId');
      const b = runId(req.otherRunId, 'otherRunId');
      const [mine, other] = await Promise.all([mustGet(a, 'runId'), mustGet(b, 'otherRunId')]);
      return { data: diffConfigs(mine.config ?? {}, other.config ?? {}) };
    },

    async updateSummary(req) {
      const id = runId(req.id);
      const p = new RunProblems('The summary update');
      if (req.summary === undefined || req.summary === null) p.add('summary', 'is required');
      const patch = p.json('summary', req.summary, SUMMARY_LIMITS);
      checkSummaryKeys(p, 'summary', patch);
      p.throwIfAny();
      const summary = await repo.setUserSummary(id, patch, clock.now());
      if (!summary) throw runNotFound(id);
      await publishCurrent(id, 'updated');
      return { data: summary };
    },

    async watchRuns(req, ctx, send) {
      const p = new RunProblems('The watch request');
      const projectRef = p.line('projectId', req.projectId, LIMITS.projectRef, { required: true });
      const runIds = req.runIds ?? [];
      const keys = req.keys ?? [];
      if (runIds.length > MAX_WATCH_RUNS) p.add('runIds', `has more than ${MAX_WATCH_RUNS} runs`);
      if (keys.length > MAX_WATCH_KEYS) p.add('keys', `has more than ${MAX_WATCH_KEYS} keys`);
      keys.forEach((k, i) => p.line(`keys[${i}]`, k, 256, { required: true }));
      p.throwIfAny();
      const only = new Set(runIds.map((r, i) => runId(r, `runIds[${i}]`)));
      const allKeys = keys.includes('*');
      const wanted = new Set(keys);
      const project = await findProject(projects, projectRef, ctx.principal);

      // Forward in arrival order; a slow client only backs up its own queue.
      let chain = Promise.resolve();
      const forward = (event: RunEvent) => {
        chain = chain.then(() => (ctx.signal.aborted ? undefined : send(event))).catch(() => undefined);
      };
      const subs = [
        await runEvent.subscribe(deps.bus, { projectId: project.id }, (event) => {
          if (only.size && !only.has(event.runId)) return;
          forward({ kind: event.kind, runId: event.runId, ...(event.run ? { run: event.run } : {}), series: [] });
        }),
      ];
      if (keys.length) {
        subs.push(
          await metricsEvent.subscribe(deps.bus, { projectId: project.id }, (event) => {
            if (only.size && !only.has(event.runId)) return;
            const series = decodeSeries(event.series).filter((s) => allKeys || wanted.has(s.key));
            if (series.length) forward({ kind: 'metrics', runId: event.runId, series });
          }),
        );
      }
      try {
        await new Promise<void>((resolve) => {
          if (ctx.signal.aborted) return resolve();
          ctx.signal.addEventListener('abort', () => resolve(), { once: true });
        });
      } finally {
        await Promise.all(subs.map((s) => s.unsubscribe()));
      }
    },
  };
}
