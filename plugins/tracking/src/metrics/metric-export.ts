import { encodeMetricBatch } from './metric-batch.js';
import { ChunkKind, decodeChunk } from './metric-chunk.js';
import type { MetricRepository } from './metric-repository.js';

/**
 * Streams a run's full history, key by key in key order, each key's points
 * in step order, from the raw chunks a few at a time — never the whole
 * history in memory.
 *
 * CSV: a `step,key,value,time` header, then one line per point (keys quoted
 * when they hold a comma, quote or line break; NaN/Infinity/-Infinity as
 * those words). Arrow: ONE IPC stream with the metric batch schema, one
 * record batch per raw chunk (up to 8,192 points), each carrying its key as a
 * one-entry dictionary that replaces the previous one (allowed in the stream
 * format; readers such as apache-arrow and pyarrow apply it per batch).
 */
const CHUNKS_PER_PAGE = 8;
/** Arrow IPC end-of-stream marker: continuation token, then a zero length. */
const IPC_EOS_BYTES = 8;

const csvField = (key: string) => (/[",\r\n]/.test(key) ? `"${key.replace(/"/g, '""')}"` : key);

/** The length of the schema message at the start of an IPC stream (continuation, length, metadata; no body). */
function schemaMessageBytes(ipc: Uint8Array): number {
  const view = new DataView(ipc.buffer, ipc.byteOffset, ipc.byteLength);
  if (view.getUint32(0, true) !== 0xffffffff) throw new Error('Arrow IPC stream without a continuation marker');
  return 8 + view.getInt32(4, true);
}

export async function exportHistory(
  repo: MetricRepository,
  runId: string,
  keys: readonly string[],
  format: 'csv' | 'arrow',
  send: (chunk: Uint8Array) => Promise<void>,
): Promise<void> {
  const encoder = new TextEncoder();
  let started = false;
  if (format === 'csv') await send(encoder.encode('step,key,value,time\n'));
  for (const key of keys) {
    for (let from = 0; ; ) {
      const page = await repo.rawChunks(runId, key, from, CHUNKS_PER_PAGE);
      for (const { data } of page) {
        const chunk = decodeChunk(data);
        if (chunk.kind !== ChunkKind.Raw || chunk.raw.n === 0) continue;
        const { n, step, value, time } = chunk.raw;
        if (format === 'csv') {
          const k = csvField(key);
          let text = '';
          for (let i = 0; i < n; i++) text += `${step[i]},${k},${value[i]},${time[i]}\n`;
          await send(encoder.encode(text));
          continue;
        }
        const ipc = encodeMetricBatch({ length: n, step, value, time, keyIndex: new Int32Array(n), keys: [key] });
        // The first piece keeps its schema message; every piece drops its end-of-stream marker.
        await send(ipc.subarray(started ? schemaMessageBytes(ipc) : 0, ipc.byteLength - IPC_EOS_BYTES));
        started = true;
      }
      if (page.length < CHUNKS_PER_PAGE) break;
      from = page.at(-1)!.chunk + 1;
    }
  }
  if (format === 'arrow') {
    const empty = encodeMetricBatch({ length: 0, step: new Float64Array(0), value: new Float64Array(0), time: new Float64Array(0), keyIndex: new Int32Array(0), keys: [] });
    await send(started ? empty.subarray(empty.byteLength - IPC_EOS_BYTES) : empty);
  }
}
