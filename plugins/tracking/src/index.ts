// @wanllmdb/plugin-tracking: experiment tracking.
export { trackingPlugin, createTrackingPlugin, DEFAULT_TRACKING_OPTIONS, type TrackingPluginOptions, type MetricStoreHooks } from './tracking-plugin.js';
export { trackingApiRef, type TrackingApi } from './tracking-api.js';
export { metricsEvent, runEvent, type MetricsEvent, type RunEventKind } from './run-events.js';
export { parseRunFilter, type FilterExpr } from './run-filter.js';
export { encodeMetricBatch, decodeMetricBatch, type MetricColumns } from './metrics/metric-batch.js';
export type { MetricStore, AppendResult, MetricQuery, PointInput, MetricsAppendedEvent } from './metrics/metric-store.js';
