import { assertId, coreServices, definePlugin, Errors, setting, type MetadataStore, type Plugin, type Subscription } from '@wanllmdb/core';
import { projectEvent, projectsApiRef } from '@wanllmdb/plugin-projects';
import { tracking, type projects } from '@wanllmdb/proto';
import { DEFAULT_FILE_BLOB_COLLECTOR_OPTIONS, FileBlobCollector, type FileBlobCollectorOptions } from './file-blob-collector.js';
import { FileRepository } from './file-repository.js';
import { fileHandlers } from './file-service.js';
import { LogRepository } from './log-repository.js';
import { logHandlers } from './log-service.js';
import { metricHandlers } from './metric-service.js';
import { DEFAULT_MAX_KEYS_PER_RUN, KEY_LIMIT_SETTING, MAX_KEYS_PER_RUN_SETTING } from './metrics/key-limit.js';
import type { MetricStore } from './metrics/metric-store.js';
import { SqlMetricStore, type SqlMetricStoreOptions } from './metrics/sql-metric-store.js';
import { trackingMigrations } from './migrations.js';
import { runEvent, RunEvents } from './run-events.js';
import { RunRepository } from './run-repository.js';
import { runHandlers } from './run-service.js';
import { RunSweeper } from './run-sweeper.js';
import { trackingApiRef, type TrackingApi } from './tracking-api.js';
import { ViewRepository } from './view-repository.js';
import { viewHandlers, viewVisibleTo } from './view-service.js';

/** A stored batch not aggregated after this long was left behind by a writer that died. */
const STALE_BATCH_MS = 60_000;
const PLUGIN = 'tracking';

/**
 * What the metrics engine reports back to the run service: `onAggregated`
 * (inside the aggregation transaction) keeps the automatic summary exactly
 * as current as the history; `onAppended` (after commit) feeds live watchers.
 * `maxKeysPerRun` is the plugin's limit the engine enforces on append.
 */
export type MetricStoreHooks = Required<Pick<SqlMetricStoreOptions, 'onAggregated' | 'onAppended' | 'logger' | 'maxKeysPerRun' | 'aggregationsPerSecond'>>;

export interface TrackingPluginOptions {
  /** How often the sweeper looks for runs that stopped sending heartbeats (default 30 s). */
  sweepIntervalMs?: number;
  /** A running run silent for this long is marked crashed (default 5 min). */
  heartbeatTimeoutMs?: number;
  /**
   * Distinct metric keys a run may have, and summary keys a user may set on it
   * (the setting WANLLMDB_MAX_METRIC_KEYS_PER_RUN, default 10,000; this option wins over it).
   */
  maxMetricKeysPerRun?: number;
  /** When the run-file blob collector runs on its own, and when an upload counts as dead (see FileBlobCollector). */
  fileBlobCollector?: Partial<FileBlobCollectorOptions>;
  /** Opens the metrics engine; default: SqlMetricStore on the MetadataStore. */
  openMetricStore?: (db: MetadataStore, hooks: MetricStoreHooks) => Promise<MetricStore>;
}

/**
 * Per process. A 2-point batch costs about a dozen statements to aggregate and
 * one to append: at 1,000 runs each logging once a second, 200 a second per
 * process aggregates ~2.5 batches a turn (docs/adr/0021).
 */
const DEFAULT_AGGREGATIONS_PER_SECOND = 200;

export const DEFAULT_TRACKING_OPTIONS = { sweepIntervalMs: 30_000, heartbeatTimeoutMs: 5 * 60_000 } as const;

const openSqlMetricStore = (db: MetadataStore, hooks: MetricStoreHooks): Promise<MetricStore> => SqlMetricStore.open(db, hooks);

/**
 * Experiment tracking: runs (config history, summaries, heartbeats),
 * metric history (through the metrics engine), console logs and files.
 */
export function createTrackingPlugin(options: TrackingPluginOptions = {}): Plugin {
  const sweepIntervalMs = options.sweepIntervalMs ?? DEFAULT_TRACKING_OPTIONS.sweepIntervalMs;
  const heartbeatTimeoutMs = options.heartbeatTimeoutMs ?? DEFAULT_TRACKING_OPTIONS.heartbeatTimeoutMs;
  const openMetricStore = options.openMetricStore ?? openSqlMetricStore;

  return definePlugin({
    id: PLUGIN,
    version: '0.1.0',
    deps: {
      db: coreServices.db,
      clock: coreServices.clock,
      events: coreServices.events,
      blobs: coreServices.blobs,
      resources: coreServices.resources,
      rpc: coreServices.rpc,
      projects: projectsApiRef,
    },
    settings: {
      maxKeysPerRun: setting.int({
        env: KEY_LIMIT_SETTING,
        default: DEFAULT_MAX_KEYS_PER_RUN,
        min: 1,
        max: MAX_KEYS_PER_RUN_SETTING,
        doc: 'distinct metric keys a run may have, and summary keys a user may set on it',
        ...(options.maxMetricKeysPerRun !== undefined ? { value: options.maxMetricKeysPerRun } : {}),
      }),
      aggregationsPerSecond: setting.int({
        env: 'WANLLMDB_METRIC_AGGREGATIONS_PER_SECOND',
        default: DEFAULT_AGGREGATIONS_PER_SECOND,
        min: 1,
        max: 1_000_000,
        doc: "metric aggregations one server process starts per second at most; above it, a run's batches wait and are aggregated together",
      }),
    },
    init(ctx) {
      const { db, clock, events: bus, blobs, resources: directory, rpc, projects } = ctx.deps;
      const { maxKeysPerRun, aggregationsPerSecond } = ctx.settings;
      const logger = ctx.logger;
      ctx.migrations(trackingMigrations);

      let metricStore: MetricStore | undefined;
      let projectSub: Subscription | undefined;
      let runDeletedSub: Subscription | undefined;

      const metrics = (): MetricStore => {
        if (!metricStore) throw Errors.KERNEL_STATE('The metrics engine is not open: the tracking plugin has not started or has stopped. Retry once the server is up.');
        return metricStore;
      };

      const runs = new RunRepository(db, { maxSummaryKeys: maxKeysPerRun });
      const events = new RunEvents(bus, logger);
      const runService = runHandlers({ repo: runs, projects, events, bus, clock, metrics });
      const views = new ViewRepository(db);
      const files = new FileRepository(db);
      const collector = new FileBlobCollector(files, blobs, clock, logger.child({ component: 'file-blobs' }), {
        ...DEFAULT_FILE_BLOB_COLLECTOR_OPTIONS,
        ...options.fileBlobCollector,
      });
      const metricService = metricHandlers({ runs, metrics });
      const sweeper = new RunSweeper(runs, events, clock, logger, {
        intervalMs: sweepIntervalMs,
        timeoutMs: heartbeatTimeoutMs,
        // A batch waiting this long has no live writer aggregating it.
        recoverStaleBatches: async () => (metricStore ? metricStore.recover(STALE_BATCH_MS) : 0),
      });

      // Authorisation places a run through its project.
      directory.define(PLUGIN, 'run', async (ref, principal) => {
        const id = assertId(ref, 'run id'); // a malformed id is the caller's mistake to fix, not a hidden run
        const projectId = await runs.projectOf(id);
        const project = projectId ? await directory.resolve({ type: 'project', id: projectId }, principal) : undefined;
        return project && { ...project, type: 'run', id };
      }, { reuse: true }); // a run never moves; its removal moves the access epoch (migration 7)
      // A saved view sits in its project; someone else's personal view does not exist for the caller.
      directory.define(PLUGIN, 'view', async (ref, principal) => {
        const id = assertId(ref, 'view id');
        const view = await views.placement(id);
        if (!view || !viewVisibleTo(view, principal.id)) return undefined;
        const project = await directory.resolve({ type: 'project', id: view.projectId }, principal);
        return project && { ...project, type: 'view', id };
      });
      ctx.service(tracking.v1.RunService, runService);
      ctx.service(tracking.v1.ViewService, viewHandlers({ views, projects, clock }));
      ctx.service(tracking.v1.MetricService, metricService);
      ctx.service(tracking.v1.RunLogService, logHandlers({ logs: new LogRepository(db), runs, clock }));
      ctx.service(tracking.v1.RunFileService, fileHandlers({ files, runs, blobs, clock, released: () => collector.kick() }));

      const hooks: MetricStoreHooks = {
        logger: logger.child({ component: 'metrics' }),
        maxKeysPerRun,
        aggregationsPerSecond,
        async onAggregated(runId, changedKeyStats) {
          if (!changedKeyStats.length) return;
          const last: Record<string, number> = {};
          for (const s of changedKeyStats) last[s.key] = s.last;
          await runs.setMetricSummary(runId, last, clock.now()); // a deleted run has no row to update: nothing happens
        },
        onAppended(event) {
          // After the aggregation committed: the new summary and the new points are visible to whoever reacts.
          void (async () => {
            const run = await runs.get(event.runId);
            if (!run) return; // deleted meanwhile
            await events.run('updated', run);
            if (event.series.length) await events.metrics(run.projectId, event.runId, event.series);
          })().catch((err: unknown) => logger.warn({ err, runId: event.runId }, 'could not announce new metric points'));
        },
      };

      /** Deleting a project deletes its runs (delivery is at most once: a missed event leaves runs to delete by hand). */
      async function deleteRunsOf(project: projects.v1.Project): Promise<void> {
        await views.deleteProject(project.id);
        for (const id of await runs.runIdsOfProject(project.id)) {
          await metrics().deleteRun(id);
          if (await runs.delete(id)) await events.deleted(project.id, id);
        }
      }

      // Opened at start, when every migration (ours and the engine's own) can be applied and nothing calls in yet.
      ctx.onStart(async () => {
        const store = await openMetricStore(db, hooks);
        try {
          const recovered = await store.recover();
          if (recovered) logger.info({ batches: recovered }, 'aggregated metric batches left over from a previous run');
          projectSub = await projectEvent.subscribe(bus, { kind: 'deleted' }, ({ project }) => {
            if (project?.id) return deleteRunsOf(project).catch((err: unknown) => logger.warn({ err, project: project.id }, 'could not delete the runs of a deleted project'));
          });
        } catch (err) {
          await store.close().catch(() => undefined);
          throw err;
        }
        metricStore = store;
        sweeper.start();
        // A deleted run (alone or with its project, on any replica) released its files' blobs.
        runDeletedSub = await runEvent.subscribe(bus, { kind: 'deleted' }, () => collector.kick());
        collector.start();
      });

      ctx.onStop(async () => {
        await sweeper.stop();
        await runDeletedSub?.unsubscribe();
        await collector.stop();
        await projectSub?.unsubscribe();
        const store = metricStore;
        metricStore = undefined;
        await store?.close();
      });

      // In-process calls go through the RPC host as their caller: authorised and audited like any call.
      const { RunService, MetricService } = tracking.v1;
      const api: TrackingApi = {
        async getRun(caller, id) {
          try {
            return (await rpc.client(RunService, caller).getRun({ id })).data;
          } catch (err) {
            if (Errors.NOT_FOUND.is(err)) return undefined;
            throw err;
          }
        },
        listRuns: (caller, req) => rpc.client(RunService, caller).listRuns(req),
        appendMetricBatch: (caller, runId, batchId, arrowIpc) => rpc.client(MetricService, caller).appendMetricBatch({ runId, batchId, arrowIpc }),
        listMetricKeys: async (caller, runId) => (await rpc.client(MetricService, caller).listMetricKeys({ runId })).data,
        metricsSettled: () => metrics().idle(),
        collectFileBlobs: () => collector.collect(),
      };
      ctx.provide(trackingApiRef, api);
    },
  });
}

/** The tracking plugin with the default options. */
export const trackingPlugin = createTrackingPlugin();
