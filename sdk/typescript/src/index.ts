// @wanllmdb/sdk: log runs from TypeScript/JavaScript — embedded (local folder), remote (a server) or offline (sync later).
export { init, Run, RunConfig, RunSummary, UsedArtifact, type FinishOptions, type RunState } from './run.js';
export { Artifact, type ArtifactOptions } from './artifacts/artifact.js';
export { ArtifactClient, defaultCacheDir, parseArtifactRef, trimArtifactCache, type ArtifactClientOptions, type TransferProgress } from './artifacts/artifact-client.js';
export { openArtifactClient, type StoreOptions } from './artifacts/open.js';
export type { InitOptions, ResumeMode } from './options.js';
export type { LogOptions, MetricData, MetricValue } from './metric-buffer.js';
export type { Mode } from './protocol.js';
export { syncOffline, type SyncOptions, type SyncProgress, type SyncResult } from './sync/sync.js';
export type { WldbError } from '@wanllmdb/core';
