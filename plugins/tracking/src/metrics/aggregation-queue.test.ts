import { describe, expect, it } from 'vitest';
import { AggregationQueue, type QueuedBatch } from './aggregation-queue.js';

const logger = { error: (details: Record<string, unknown>, message: string) => console.error(message, details) };
const item = (runId: string, seq: number): QueuedBatch => ({ runId, batchId: `${runId}-${seq}`, seq, bytes: 0 });

/** A queue whose work records when each run's turn started and with which seqs, and finishes at once. */
function recording(turnsPerSecond: number) {
  const turns: { runId: string; seqs: number[]; at: number }[] = [];
  const started = performance.now();
  const queue = new AggregationQueue(
    async (runId, items) => {
      turns.push({ runId, seqs: items.map((i) => i.seq), at: performance.now() - started });
      return items.map((i) => i.seq);
    },
    { budgetBytes: 1 << 20, concurrency: 100, turnsPerSecond, logger },
  );
  return { queue, turns };
}

describe('AggregationQueue', () => {
  it('starts every turn at once without a rate', async () => {
    const { queue, turns } = recording(Infinity);
    await Promise.all(Array.from({ length: 50 }, (_, r) => queue.push(item(`r${r}`, 1))));
    expect(turns).toHaveLength(50);
    expect(Math.max(...turns.map((t) => t.at))).toBeLessThan(500);
  });

  it('starts at most a second of turns at once, then the rate; a waiting run takes all its batches in one turn', async () => {
    const { queue, turns } = recording(20);
    const done: Promise<number>[] = [];
    for (let r = 0; r < 30; r++) done.push(queue.push(item(`r${r}`, 1)));
    // r29 waits for a token; its next batches join its turn.
    done.push(queue.push(item('r29', 2)), queue.push(item('r29', 3)));
    const claimed = await Promise.all(done);
    expect(claimed.reduce((a, b) => a + b, 0)).toBe(32);
    expect(turns).toHaveLength(30);
    expect(turns.filter((t) => t.at < 40)).toHaveLength(20);
    // Ten more tokens at 20 a second: the last turn starts about half a second in.
    expect(turns.at(-1)!.at).toBeGreaterThanOrEqual(450);
    expect(turns.find((t) => t.runId === 'r29')!.seqs).toEqual([1, 2, 3]);
    await queue.idle();
  });

  it('stops with turns waiting for a token: they are dropped (their batches stay pending), nothing runs later', async () => {
    const { queue, turns } = recording(1);
    const first = queue.push(item('a', 1));
    const second = queue.push(item('b', 1));
    expect(await first).toBe(1);
    await queue.stop();
    expect(await second).toBe(0);
    await new Promise((r) => setTimeout(r, 1_100));
    expect(turns.map((t) => t.runId)).toEqual(['a']);
  });
});
