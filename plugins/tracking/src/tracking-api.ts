import type { InjectionToken } from 'tsyringe';
import type { tracking } from '@wanllmdb/proto';
import type { FileBlobCollection } from './file-blob-collector.js';
import type { AppendResult, MetricStore } from './metrics/metric-store.js';

type Run = tracking.v1.Run;

/**
 * What other plugins and the embedded SDK may ask of tracking in process,
 * without going through RPC. Resolve with `r.resolve(TrackingApiToken)`
 * (or `kernel.resolve(TrackingApiToken)`). Everything else goes through
 * the services (`kernel.call('wanllmdb.tracking.v1.RunService/…')`), so
 * validation, events and authorisation stay in one place.
 */
export interface TrackingApi {
  getRun(id: string): Promise<Run | undefined>;
  /** A page of a project's runs, as ListRuns answers (filter, sort, cursor as there). */
  listRuns(request: Partial<tracking.v1.ListRunsRequest> & { projectId: string }): Promise<tracking.v1.ListRunsResponse>;
  /**
   * Appends one Arrow IPC batch to a run's history — the embedded SDK's hot
   * path, with no RPC encode/decode. WLDB_ERR_NOT_FOUND if there is no run.
   */
  appendMetricBatch(runId: string, batchId: string, arrowIpc: Uint8Array): Promise<AppendResult>;
  /** The metrics engine (open from the start phase until stop). */
  metricStore(): MetricStore;
  /**
   * Deletes, now, the blobs of run files that nothing references any more
   * (replaced files, deleted runs and projects). The plugin also does this
   * after each such change and every few minutes.
   */
  collectFileBlobs(): Promise<FileBlobCollection>;
}

export const TrackingApiToken = 'tracking.TrackingApi' as InjectionToken<TrackingApi>;
