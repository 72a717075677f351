import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { jobQueueBackends, recordingLogger, type JobQueueBackend, type LogEntry, type TestJobQueue } from '../testing/messaging-backends.js';
import type { Job, Worker } from './job-queue.js';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CRASHING_WORKER = fileURLToPath(new URL('./fixtures/crashing-worker.ts', import.meta.url));

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(10);
  }
}

interface CrashedConsumer {
  /** What the consumer received before it died. */
  taken: { id: string; attempt: number };
  cleanUp(): Promise<void>;
}

/**
 * Makes a consumer take the next job of `queue` and die without answering.
 * With NATS that is a real process, SIGKILLed; in one process the nearest
 * thing is a handler that never settles.
 */
async function crashAConsumer(backend: JobQueueBackend, jobs: TestJobQueue, queue: string, ackWaitMs: number): Promise<CrashedConsumer> {
  if (backend.name === 'memory') {
    let taken: Job | undefined;
    const hung = await jobs.process(queue, (job) => {
      taken = job;
      return new Promise<never>(() => {});
    }, { ackWaitMs });
    await waitFor(() => taken !== undefined);
    return { taken: { id: taken!.id, attempt: taken!.attempt }, cleanUp: () => hung.stop() };
  }

  const child = spawn(process.execPath, ['--import', 'tsx', CRASHING_WORKER, jobs.busUrl, queue, String(ackWaitMs)], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    const lines = createInterface({ input: child.stdout! });
    const firstLine = new Promise<string>((resolve, reject) => {
      lines.once('line', resolve);
      child.once('exit', (code) => reject(new Error(`the crashing worker exited (code ${code}) before taking a job`)));
    });
    const taken = JSON.parse(await firstLine) as { id: string; attempt: number };
    return { taken, cleanUp: async () => {} };
  } finally {
    child.kill('SIGKILL');
    await exited;
  }
}

describe.each(jobQueueBackends())('JobQueue contract: $name', (backend) => {
  let jobs: TestJobQueue;
  let logged: LogEntry[];
  const workers: Worker[] = [];

  beforeEach(async () => {
    const { entries, logger } = recordingLogger();
    logged = entries;
    jobs = await backend.create({ logger });
  });

  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.stop()));
    await jobs.close();
  });

  async function work<T>(queue: string, handler: (job: Job<T>) => Promise<void>, opts: Parameters<TestJobQueue['process']>[2]) {
    const worker = await jobs.process<T>(queue, handler, opts);
    workers.push(worker);
    return worker;
  }

  it('processes every job enqueued before a worker existed exactly once, in order', async () => {
    const ids: string[] = [];
    for (let n = 0; n < 10; n++) ids.push(await jobs.enqueue('reports', { n }));
    const seen: Job<{ n: number }>[] = [];

    await work<{ n: number }>('reports', async (job) => {
      seen.push(job);
    }, { ackWaitMs: 1_000 });
    await waitFor(() => seen.length >= 10);
    // Longer than the ack wait: a job that was not acked would come back by now.
    await sleep(1_500);

    expect(seen.map((j) => j.id)).toEqual(ids);
    expect(seen.map((j) => j.data)).toEqual(ids.map((_, n) => ({ n })));
    expect(seen.every((j) => j.attempt === 1 && j.queue === 'reports')).toBe(true);
  });

  it('processes jobs enqueued while a worker waits, and only its own queue', async () => {
    const seen: unknown[] = [];
    await work('alpha', async (job) => {
      seen.push(job.data);
    }, {});
    // Idle for longer than one pull request lasts, so the worker has to ask again.
    await sleep(1_200);

    await jobs.enqueue('beta', 'not for alpha');
    await jobs.enqueue('alpha', 'for alpha');
    await waitFor(() => seen.length >= 1);
    await sleep(200);

    expect(seen).toEqual(['for alpha']);
  });

  it('retries a throwing handler, with increasing attempt numbers, until it succeeds', async () => {
    const id = await jobs.enqueue('flaky', { x: 1 });
    const attempts: number[] = [];
    let succeeded = false;

    await work('flaky', async (job) => {
      expect(job.id).toBe(id);
      attempts.push(job.attempt);
      if (job.attempt < 3) throw new Error(`attempt ${job.attempt} fails`);
      succeeded = true;
    }, { maxAttempts: 5, ackWaitMs: 2_000 });
    await waitFor(() => succeeded);
    await sleep(500);

    expect(attempts).toEqual([1, 2, 3]);
    expect(logged.map((e) => [e.level, e.details.jobId, e.details.attempt])).toEqual([
      ['warn', id, 1],
      ['warn', id, 2],
    ]);
  });

  it('drops a job after maxAttempts failed attempts', async () => {
    const id = await jobs.enqueue('doomed', {});
    const attempts: number[] = [];

    await work('doomed', async (job) => {
      attempts.push(job.attempt);
      throw new Error('always fails');
    }, { maxAttempts: 2, ackWaitMs: 1_000 });
    await waitFor(() => attempts.length >= 2);
    // Well past the retry backoff and the ack wait.
    await sleep(1_500);

    expect(attempts).toEqual([1, 2]);
    expect(logged.map((e) => [e.level, e.details.jobId, e.details.attempt])).toEqual([
      ['warn', id, 1],
      ['error', id, 2],
    ]);
  });

  it('runs at most `concurrency` handlers at once, and uses all of them', async () => {
    const ids = new Set<string>();
    for (let n = 0; n < 20; n++) ids.add(await jobs.enqueue('bounded', { n }));
    let running = 0;
    let peak = 0;
    const done = new Set<string>();

    await work<{ n: number }>('bounded', async (job) => {
      running += 1;
      peak = Math.max(peak, running);
      // Uneven durations, so slots free up one at a time rather than in lockstep.
      await sleep(10 + (job.data.n % 4) * 25);
      running -= 1;
      done.add(job.id);
    }, { concurrency: 3, ackWaitMs: 5_000 });
    await waitFor(() => done.size === 20, 20_000);

    expect(done).toEqual(ids);
    expect(peak).toBe(3);
  });

  it('shares a queue between workers, each job going to one of them', async () => {
    const ids: string[] = [];
    for (let n = 0; n < 10; n++) ids.push(await jobs.enqueue('shared', { n }));
    const byWorker: [string[], string[]] = [[], []];

    for (const mine of byWorker) {
      await work('shared', async (job) => {
        mine.push(job.id);
        await sleep(40);
      }, { concurrency: 1, ackWaitMs: 2_000 });
    }
    await waitFor(() => byWorker[0].length + byWorker[1].length >= 10);
    await sleep(300);

    expect([...byWorker[0], ...byWorker[1]].sort()).toEqual([...ids].sort());
    expect(byWorker[0].length).toBeGreaterThan(0);
    expect(byWorker[1].length).toBeGreaterThan(0);
  });

  it('redelivers the job of a consumer that crashed before acking, as the next attempt', async () => {
    const ackWaitMs = 1_000;
    const id = await jobs.enqueue('fragile', { model: 'm1' });

    const crashed = await crashAConsumer(backend, jobs, 'fragile', ackWaitMs);
    expect(crashed.taken).toEqual({ id, attempt: 1 });

    const seen: Job[] = [];
    await work('fragile', async (job) => {
      seen.push(job);
    }, { ackWaitMs });
    await waitFor(() => seen.length >= 1);
    await crashed.cleanUp();

    expect(seen).toEqual([{ id, queue: 'fragile', data: { model: 'm1' }, attempt: 2 }]);
  });

  it('stop() waits for running handlers, acks them, and takes no more jobs', async () => {
    let started = false;
    let finished = false;
    const first = await work('graceful', async () => {
      started = true;
      await sleep(300);
      finished = true;
    }, { ackWaitMs: 1_000 });
    await jobs.enqueue('graceful', 1);
    await waitFor(() => started);

    await first.stop();
    expect(finished).toBe(true);

    const later = await jobs.enqueue('graceful', 2);
    const seen: Job[] = [];
    await work('graceful', async (job) => {
      seen.push(job);
    }, { ackWaitMs: 1_000 });
    await waitFor(() => seen.length >= 1);
    // Past the ack wait: had the first job not been acked it would be back.
    await sleep(1_500);

    expect(seen.map((j) => j.id)).toEqual([later]);
  });

  it.each(['', 'a.b', 'a b', '*', 'jobs>', 'x'.repeat(65)])('rejects the invalid queue name %j', async (queue) => {
    await expect(jobs.enqueue(queue, {})).rejects.toMatchObject({ code: 'WLDB_ERR_JOB_QUEUE_INVALID' });
    await expect(jobs.process(queue, async () => {})).rejects.toMatchObject({ code: 'WLDB_ERR_JOB_QUEUE_INVALID' });
  });

  it('rejects job data that JSON cannot carry or that is too large', async () => {
    await expect(jobs.enqueue('valid', { n: 1n })).rejects.toMatchObject({ code: 'WLDB_ERR_BUS_PAYLOAD_INVALID' });
    await expect(jobs.enqueue('valid', 'x'.repeat(1024 * 1024))).rejects.toMatchObject({ code: 'WLDB_ERR_BUS_PAYLOAD_INVALID' });
  });

  it.each([{ concurrency: 0 }, { concurrency: 1.5 }, { ackWaitMs: 10 }, { maxAttempts: 0 }])('rejects the worker options %j', async (opts) => {
    await expect(jobs.process('valid', async () => {}, opts)).rejects.toMatchObject({ code: 'WLDB_ERR_JOB_QUEUE_INVALID' });
  });
});
