import { assertId, definePlugin, Errors, localCallContext, Tokens, type CallContext, type MetadataStore, type Plugin, type Subscription } from '@wanllmdb/core';
import { PROJECT_EVENTS, ProjectsApiToken } from '@wanllmdb/plugin-projects';
import { tracking, type projects } from '@wanllmdb/proto';
import { DEFAULT_FILE_BLOB_COLLECTOR_OPTIONS, FileBlobCollector, type FileBlobCollectorOptions } from './file-blob-collector.js';
import { FileRepository } from './file-repository.js';
import { fileHandlers } from './file-service.js';
import { LogRepository } from './log-repository.js';
import { logHandlers } from './log-service.js';
import { metricHandlers } from './metric-service.js';
import { maxKeysPerRunFrom } from './metrics/key-limit.js';
import type { MetricStore } from './metrics/metric-store.js';
import { SqlMetricStore, type SqlMetricStoreOptions } from './metrics/sql-metric-store.js';
import { trackingMigrations } from './migrations.js';
import { runEventSubject, RunEvents } from './run-events.js';
import { RunRepository } from './run-repository.js';
import { runHandlers } from './run-service.js';
import { RunSweeper } from './run-sweeper.js';
import { TrackingApiToken, type TrackingApi } from './tracking-api.js';
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
export type MetricStoreHooks = Required<Pick<SqlMetricStoreOptions, 'onAggregated' | 'onAppended' | 'logger' | 'maxKeysPerRun'>>;

export interface TrackingPluginOptions {
  /** How often the sweeper looks for runs that stopped sending heartbeats (default 30 s). */
  sweepIntervalMs?: number;
  /** A running run silent for this long is marked crashed (default 5 min). */
  heartbeatTimeoutMs?: number;
  /**
   * Distinct metric keys a run may have, and summary keys a user may set on it
   * (default WANLLMDB_MAX_METRIC_KEYS_PER_RUN, else 10,000).
   */
  maxMetricKeysPerRun?: number;
  /** When the run-file blob collector runs on its own, and when an upload counts as dead (see FileBlobCollector). */
  fileBlobCollector?: Partial<FileBlobCollectorOptions>;
  /** Opens the metrics engine; default: SqlMetricStore on the MetadataStore. */
  openMetricStore?: (db: MetadataStore, hooks: MetricStoreHooks) => Promise<MetricStore>;
}

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
    dependsOn: ['projects'],
    register(r) {
      r.migrations(trackingMigrations);
      // Read when the kernel registers the plugin (not at import), so a bad value fails start-up naming the setting.
      const maxKeysPerRun = maxKeysPerRunFrom(process.env, options.maxMetricKeysPerRun);

      let parts: ReturnType<typeof build> | undefined;
      let metricStore: MetricStore | undefined;
      let projectSub: Subscription | undefined;
      let runDeletedSub: Subscription | undefined;

      const metrics = (): MetricStore => {
        if (!metricStore) throw Errors.KERNEL_STATE('The metrics engine is not open: the tracking plugin has not started or has stopped. Retry once the server is up.');
        return metricStore;
      };

      function build() {
        const db = r.resolve(Tokens.MetadataStore);
        const clock = r.resolve(Tokens.Clock);
        const bus = r.resolve(Tokens.EventBus);
        const runs = new RunRepository(db, { maxSummaryKeys: maxKeysPerRun });
        const events = new RunEvents(bus, r.logger);
        const runService = runHandlers({ repo: runs, projects: r.resolve(ProjectsApiToken), events, bus, clock, metrics });
        const views = new ViewRepository(db);
        const files = new FileRepository(db);
        const blobs = r.resolve(Tokens.BlobStore);
        const collector = new FileBlobCollector(files, blobs, clock, r.logger.child({ component: 'file-blobs' }), {
          ...DEFAULT_FILE_BLOB_COLLECTOR_OPTIONS,
          ...options.fileBlobCollector,
        });
        return {
          db,
          clock,
          bus,
          runs,
          events,
          runService,
          views,
          viewService: viewHandlers({ views, projects: r.resolve(ProjectsApiToken), clock }),
          metricService: metricHandlers({ runs, metrics }),
          logService: logHandlers({ logs: new LogRepository(db), runs, clock }),
          collector,
          fileService: fileHandlers({ files, runs, blobs, clock, released: () => collector.kick() }),
          sweeper: new RunSweeper(runs, events, clock, r.logger, {
            intervalMs: sweepIntervalMs,
            timeoutMs: heartbeatTimeoutMs,
            // A batch waiting this long has no live writer aggregating it.
            recoverStaleBatches: async () => (metricStore ? metricStore.recover(STALE_BATCH_MS) : 0),
          }),
        };
      }
      const ready = () => (parts ??= build());

      // Authorisation places a run through its project.
      const directory = r.resolve(Tokens.Resources);
      directory.define(PLUGIN, 'run', async (ref, principal) => {
        const id = assertId(ref, 'run id'); // a malformed id is the caller's mistake to fix, not a hidden run
        const projectId = await ready().runs.projectOf(id);
        const project = projectId ? await directory.resolve({ type: 'project', id: projectId }, principal) : undefined;
        return project && { ...project, type: 'run', id };
      }, { reuse: true }); // a run never moves; its removal moves the access epoch (migration 7)
      // A saved view sits in its project; someone else's personal view does not exist for the caller.
      directory.define(PLUGIN, 'view', async (ref, principal) => {
        const id = assertId(ref, 'view id');
        const view = await ready().views.placement(id);
        if (!view || !viewVisibleTo(view, principal.id)) return undefined;
        const project = await directory.resolve({ type: 'project', id: view.projectId }, principal);
        return project && { ...project, type: 'view', id };
      });
      r.service(tracking.v1.RunService, () => ready().runService);
      r.service(tracking.v1.ViewService, () => ready().viewService);
      r.service(tracking.v1.MetricService, () => ready().metricService);
      r.service(tracking.v1.RunLogService, () => ready().logService);
      r.service(tracking.v1.RunFileService, () => ready().fileService);

      const hooks = (): MetricStoreHooks => ({
        logger: r.logger.child({ component: 'metrics' }),
        maxKeysPerRun,
        async onAggregated(runId, changedKeyStats) {
          const { runs, clock } = ready();
          if (!changedKeyStats.length) return;
          const last: Record<string, number> = {};
          for (const s of changedKeyStats) last[s.key] = s.last;
          await runs.setMetricSummary(runId, last, clock.now()); // a deleted run has no row to update: nothing happens
        },
        onAppended(event) {
          // After the aggregation committed: the new summary and the new points are visible to whoever reacts.
          const { runs, events } = ready();
          void (async () => {
            const run = await runs.get(event.runId);
            if (!run) return; // deleted meanwhile
            await events.run('updated', run);
            if (event.series.length) await events.metrics(run.projectId, event.runId, event.series);
          })().catch((err: unknown) => r.logger.warn({ err, runId: event.runId }, 'could not announce new metric points'));
        },
      });

      /** Deleting a project deletes its runs (delivery is at most once: a missed event leaves runs to delete by hand). */
      async function deleteRunsOf(project: projects.v1.Project): Promise<void> {
        const { runs, events, views } = ready();
        await views.deleteProject(project.id);
        for (const id of await runs.runIdsOfProject(project.id)) {
          await metrics().deleteRun(id);
          if (await runs.delete(id)) await events.deleted(project.id, id);
        }
      }

      // Opened at start, when every migration (ours and the engine's own) can be applied and nothing calls in yet.
      r.hooks.start.tapPromise(PLUGIN, async () => {
        const { db, bus, sweeper, collector } = ready();
        const store = await openMetricStore(db, hooks());
        try {
          const recovered = await store.recover();
          if (recovered) r.logger.info({ batches: recovered }, 'aggregated metric batches left over from a previous run');
          projectSub = await bus.subscribe(`${PROJECT_EVENTS}.deleted`, (data) => {
            const project = (data as { project?: projects.v1.Project }).project;
            if (project?.id) return deleteRunsOf(project).catch((err: unknown) => r.logger.warn({ err, project: project.id }, 'could not delete the runs of a deleted project'));
          });
        } catch (err) {
          await store.close().catch(() => undefined);
          throw err;
        }
        metricStore = store;
        sweeper.start();
        // A deleted run (alone or with its project, on any replica) released its files' blobs.
        runDeletedSub = await bus.subscribe(runEventSubject('*', 'deleted'), () => collector.kick());
        collector.start();
      });

      r.hooks.stop.tapPromise(PLUGIN, async () => {
        await parts?.sweeper.stop();
        await runDeletedSub?.unsubscribe();
        await parts?.collector.stop();
        await projectSub?.unsubscribe();
        const store = metricStore;
        metricStore = undefined;
        await store?.close();
      });

      /** In-process API calls run the same handlers, as the local principal, without an RPC around them. */
      const inProcess = (method: string): CallContext => localCallContext(`wanllmdb.tracking.v1.${method}`, r.logger);
      const api: TrackingApi = {
        getRun: (id) => ready().runs.get(id),
        listRuns: (req) => ready().runService.listRuns({ filter: '', sort: '', cursor: '', fields: [], ...req }, inProcess('RunService/ListRuns')),
        appendMetricBatch: (runId, batchId, arrowIpc) =>
          ready().metricService.appendMetricBatch({ runId, batchId, arrowIpc }, inProcess('MetricService/AppendMetricBatch')),
        metricStore: metrics,
        collectFileBlobs: () => ready().collector.collect(),
      };
      r.provide(TrackingApiToken, api);
    },
  });
}

/** The tracking plugin with the default options. */
export const trackingPlugin = createTrackingPlugin();
