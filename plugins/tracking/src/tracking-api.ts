import { createApiRef, type CallContext, type Principal } from '@wanllmdb/core';
import type { tracking } from '@wanllmdb/proto';
import type { FileBlobCollection } from './file-blob-collector.js';

type Run = tracking.v1.Run;

/** Who a call acts for: a handler's CallContext (its caller), or a principal (`rpc.service` for a plugin's own work). */
export type Caller = CallContext | Principal;

/**
 * What other plugins and the embedded SDK may ask of tracking in process,
 * without encoding a request. Depend on it with `deps: { tracking:
 * trackingApiRef }` (or `kernel.get(trackingApiRef)`). Every method that
 * reads or writes runs goes through the same handler, authorisation and
 * audit as a call over gRPC, as `caller`.
 */
export interface TrackingApi {
  /** The run, or undefined when it does not exist or is hidden from the caller (NOT_FOUND); other refusals throw. */
  getRun(caller: Caller, id: string): Promise<Run | undefined>;
  /** A page of a project's runs, as ListRuns answers (filter, sort, cursor as there). */
  listRuns(caller: Caller, request: Partial<tracking.v1.ListRunsRequest> & { projectId: string }): Promise<tracking.v1.ListRunsResponse>;
  /** Appends one Arrow IPC batch to a run's history — the embedded SDK's hot path. WLDB_ERR_NOT_FOUND if there is no run. */
  appendMetricBatch(caller: Caller, runId: string, batchId: string, arrowIpc: Uint8Array): Promise<tracking.v1.AppendMetricsResponse>;
  /** The run's metric keys with their statistics. */
  listMetricKeys(caller: Caller, runId: string): Promise<tracking.v1.MetricKeyStats[]>;
  /** Resolves once every metric batch appended so far is aggregated (its points are in charts and the summary). */
  metricsSettled(): Promise<void>;
  /**
   * Deletes, now, the blobs of run files that nothing references any more
   * (replaced files, deleted runs and projects). The plugin also does this
   * after each such change and every few minutes.
   */
  collectFileBlobs(): Promise<FileBlobCollection>;
}

/** The tracking plugin's in-process API. */
export const trackingApiRef = createApiRef<TrackingApi>({ plugin: 'tracking' });
