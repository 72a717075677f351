import { randomBytes } from 'node:crypto';
import { connect, type JetStreamManager } from 'nats';
import { describe, expect, it } from 'vitest';
import { testNatsUrl } from '../testing/messaging-backends.js';
import { createEventBus, createJobQueue, parseBusSetting } from './create-messaging.js';
import { jobStreamName } from './jetstream-job-queue.js';

const isolatedPrefix = () => `wldbtest${randomBytes(5).toString('hex')}.`;

async function withJetStream<T>(use: (jsm: JetStreamManager) => Promise<T>): Promise<T> {
  const config = parseBusSetting(testNatsUrl());
  if (config.kind !== 'nats') throw new Error('WLDB_TEST_NATS_URL must be a nats:// URL');
  const nc = await connect({ servers: config.hostPort });
  try {
    return await use(await nc.jetstreamManager());
  } finally {
    await nc.close();
  }
}

describe('parseBusSetting', () => {
  it('reads "memory" and nats:// URLs, defaulting the port and the prefix', () => {
    expect(parseBusSetting('memory')).toEqual({ kind: 'memory' });
    expect(parseBusSetting('nats://bus.internal')).toEqual({ kind: 'nats', hostPort: 'bus.internal:4222', prefix: 'wldb.' });
    expect(parseBusSetting('nats://10.0.0.5:4333?prefix=team-a')).toEqual({ kind: 'nats', hostPort: '10.0.0.5:4333', prefix: 'team-a.' });
    expect(parseBusSetting('nats://h:1?prefix=a.b.')).toMatchObject({ prefix: 'a.b.' });
    expect(parseBusSetting('nats://h:1?prefix=')).toMatchObject({ prefix: '' });
    expect(parseBusSetting('nats://me:s%40cret@h:1')).toMatchObject({ user: 'me', pass: 's@cret' });
  });

  it.each(['', 'mem', 'redis://h:6379', 'nats://', 'nats://h:1/path', 'nats://h:1?stream=x', 'nats://h:1?prefix=a..b', 'nats://h:1?prefix=a*'])(
    'rejects %j with CONFIG_INVALID naming WANLLMDB_BUS and the accepted forms',
    (value) => {
      let caught: unknown;
      try {
        parseBusSetting(value);
      } catch (err) {
        caught = err;
      }
      expect(caught).toMatchObject({ code: 'WLDB_ERR_CONFIG_INVALID', details: [{ field: 'WANLLMDB_BUS' }] });
      expect((caught as Error).message).toContain('WANLLMDB_BUS');
      expect((caught as Error).message).toMatch(/"memory"|dot-separated tokens/);
    },
  );
});

describe('createEventBus / createJobQueue', () => {
  it('make the in-process adapters for "memory"', async () => {
    const bus = await createEventBus('memory');
    const jobs = await createJobQueue('memory');
    expect([bus.kind, jobs.kind]).toEqual(['memory', 'memory']);
    await Promise.all([bus.close(), jobs.close()]);
  });

  it('fail fast with BUS_UNAVAILABLE naming host:port when NATS is unreachable', async () => {
    const started = Date.now();
    for (const create of [createEventBus, createJobQueue]) {
      await expect(create('nats://127.0.0.1:1')).rejects.toMatchObject({
        code: 'WLDB_ERR_BUS_UNAVAILABLE',
        message: expect.stringContaining('127.0.0.1:1'),
      });
    }
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('create the job stream once, named after the prefix, and reuse it', async () => {
    const prefix = isolatedPrefix();
    const stream = jobStreamName(prefix);
    expect(jobStreamName('wldb.')).toBe('WLDB_JOBS');
    const first = await createJobQueue(`${testNatsUrl()}?prefix=${prefix}`);
    const second = await createJobQueue(`${testNatsUrl()}?prefix=${prefix}`);
    try {
      await first.enqueue('q', 1);
      const info = await withJetStream((jsm) => jsm.streams.info(stream));
      expect(info.config).toMatchObject({ subjects: [`${prefix}jobs.>`], retention: 'workqueue', storage: 'file' });
      expect(info.state.messages).toBe(1);
    } finally {
      await Promise.all([first.close(), second.close()]);
      await withJetStream((jsm) => jsm.streams.delete(stream));
    }
  });

  it('refuse a job stream of the same name that belongs to something else', async () => {
    const prefix = isolatedPrefix();
    const stream = jobStreamName(prefix);
    await withJetStream((jsm) => jsm.streams.add({ name: stream, subjects: [`${prefix}other.>`] }));
    try {
      await expect(createJobQueue(`${testNatsUrl()}?prefix=${prefix}`)).rejects.toMatchObject({
        code: 'WLDB_ERR_CONFIG_INVALID',
        message: expect.stringContaining(stream),
      });
    } finally {
      await withJetStream((jsm) => jsm.streams.delete(stream));
    }
  });

  it('keep events and jobs of one deployment apart', async () => {
    const prefix = isolatedPrefix();
    const url = `${testNatsUrl()}?prefix=${prefix}`;
    const bus = await createEventBus(url);
    const jobs = await createJobQueue(url);
    const seen: string[] = [];
    try {
      await bus.subscribe('>', (_data, subject) => {
        seen.push(subject);
      });
      await jobs.enqueue('trainer', {});
      await bus.publish('jobs.trainer', {});
      await new Promise((resolve) => setTimeout(resolve, 200));

      // The job is not an event, and the event named like a job is not a job.
      expect(seen).toEqual(['jobs.trainer']);
      const info = await withJetStream((jsm) => jsm.streams.info(jobStreamName(prefix)));
      expect(info.state.messages).toBe(1);
    } finally {
      await Promise.all([bus.close(), jobs.close()]);
      await withJetStream((jsm) => jsm.streams.delete(jobStreamName(prefix)));
    }
  });
});
