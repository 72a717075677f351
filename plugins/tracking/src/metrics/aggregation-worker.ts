import { move } from 'piscina';
import { aggregateBatch } from './aggregate-batch.js';
import { transferable, type AggregationResult, type AggregationTask } from './aggregation-task.js';

/**
 * The piscina worker of metric aggregation. It imports only the pure
 * aggregation code (no kernel, no Arrow, no database), so a worker starts in
 * milliseconds; every buffer of the result is transferred back, not cloned.
 */
export default function aggregate(task: AggregationTask): AggregationResult {
  const result = aggregateBatch(task);
  return move(
    transferable(result, [...result.batches, result.stats.buffer, result.points.buffer, result.rows.buffer, result.rowBytes, result.live.buffer, result.liveData.buffer] as ArrayBuffer[]) as never,
  ) as unknown as AggregationResult;
}
