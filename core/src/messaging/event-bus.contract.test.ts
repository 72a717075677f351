import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { eventBusBackends, recordingLogger, type LogEntry } from '../testing/messaging-backends.js';
import type { EventBus } from './event-bus.js';

interface Received {
  subject: string;
  data: unknown;
}

function recorder() {
  const got: Received[] = [];
  return {
    got,
    handler: (data: unknown, subject: string) => {
      got.push({ subject, data });
    },
  };
}

async function waitFor(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe.each(eventBusBackends())('EventBus contract: $name', (backend) => {
  let bus: EventBus;
  let logged: LogEntry[];
  let markers = 0;

  beforeEach(async () => {
    const { entries, logger } = recordingLogger();
    logged = entries;
    bus = await backend.create({ logger });
  });

  afterEach(async () => {
    await bus.close();
  });

  /**
   * Resolves once every event published before the call has been handled:
   * a marker event published afterwards has gone round (events from one
   * publisher arrive in order), so absence can be asserted without sleeping.
   */
  async function allDelivered(): Promise<void> {
    const subject = `zz-marker.m${markers++}`;
    let seen = false;
    const sub = await bus.subscribe(subject, () => {
      seen = true;
    });
    await bus.publish(subject, null);
    await waitFor(() => seen);
    await sub.unsubscribe();
  }

  it('delivers an event to a subscription on its exact subject, as JSON', async () => {
    const created = recorder();
    await bus.subscribe('projects.created', created.handler);

    await bus.publish('projects.deleted', { id: 'p0' });
    await bus.publish('projects.created', { id: 'p1', tags: ['a'], at: new Date(0), gone: undefined });
    await allDelivered();

    expect(created.got).toEqual([
      { subject: 'projects.created', data: { id: 'p1', tags: ['a'], at: '1970-01-01T00:00:00.000Z' } },
    ]);
  });

  it('gives each subscriber its own copy of the data', async () => {
    const published = { tags: ['a'] };
    const first: unknown[] = [];
    const second: unknown[] = [];
    await bus.subscribe('runs.tagged', (data) => {
      (data as { tags: string[] }).tags.push('changed by a subscriber');
      first.push(data);
    });
    await bus.subscribe('runs.tagged', (data) => {
      second.push(data);
    });

    await bus.publish('runs.tagged', published);
    await allDelivered();

    expect(published).toEqual({ tags: ['a'] });
    expect(second).toEqual([{ tags: ['a'] }]);
    expect(first).toHaveLength(1);
  });

  it('carries every kind of JSON value and rejects what JSON cannot carry', async () => {
    const all = recorder();
    await bus.subscribe('values', all.handler);
    const values = [null, 0, -1.5, '', 'text', true, [], [1, [2]], { a: { b: null } }];

    for (const value of values) await bus.publish('values', value);
    await bus.publish('values', undefined);
    await allDelivered();

    expect(all.got.map((r) => r.data)).toEqual([...values, undefined]);
    await expect(bus.publish('values', { n: 1n })).rejects.toMatchObject({ code: 'WLDB_ERR_BUS_PAYLOAD_INVALID' });
    await expect(bus.publish('values', 'x'.repeat(1024 * 1024))).rejects.toMatchObject({ code: 'WLDB_ERR_BUS_PAYLOAD_INVALID' });
  });

  it('`*` matches exactly one token', async () => {
    const finished = recorder();
    await bus.subscribe('runs.*.finished', finished.handler);

    for (const subject of ['runs.r1.finished', 'runs.finished', 'runs.r1.x.finished', 'runs.r1.started', 'runs.r2.finished']) {
      await bus.publish(subject, subject);
    }
    await allDelivered();

    expect(finished.got.map((r) => r.subject)).toEqual(['runs.r1.finished', 'runs.r2.finished']);
  });

  it('`>` matches one or more trailing tokens', async () => {
    const metrics = recorder();
    await bus.subscribe('metrics.>', metrics.handler);

    for (const subject of ['metrics.appended', 'metrics', 'metrics.a.b.c', 'other.metrics.x']) {
      await bus.publish(subject, subject);
    }
    await allDelivered();

    expect(metrics.got.map((r) => r.subject)).toEqual(['metrics.appended', 'metrics.a.b.c']);
  });

  it('delivers nothing after unsubscribe, not even events published just before it', async () => {
    const events = recorder();
    const sub = await bus.subscribe('artifacts.stored', events.handler);
    await bus.publish('artifacts.stored', 1);
    await allDelivered();

    await bus.publish('artifacts.stored', 2);
    await sub.unsubscribe();
    await bus.publish('artifacts.stored', 3);
    await allDelivered();

    expect(events.got.map((r) => r.data)).toEqual([1]);
  });

  it('drops events still waiting for a busy handler when it unsubscribes', async () => {
    const got: unknown[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const sub = await bus.subscribe('datasets.indexed', async (data) => {
      got.push(data);
      if (data === 1) await gate;
    });
    await bus.publish('datasets.indexed', 1);
    await waitFor(() => got.length === 1);
    // Event 2 has arrived (the marker after it has) but waits behind the busy handler.
    await bus.publish('datasets.indexed', 2);
    await allDelivered();

    await sub.unsubscribe();
    release();
    await allDelivered();

    expect(got).toEqual([1]);
  });

  it('delivers an event to every matching subscriber', async () => {
    const a = recorder();
    const b = recorder();
    const wildcard = recorder();
    await bus.subscribe('sweeps.started', a.handler);
    await bus.subscribe('sweeps.started', b.handler);
    await bus.subscribe('sweeps.*', wildcard.handler);

    await bus.publish('sweeps.started', { id: 's1' });
    await allDelivered();

    for (const r of [a, b, wildcard]) expect(r.got).toEqual([{ subject: 'sweeps.started', data: { id: 's1' } }]);
  });

  it('calls handlers later, never inside publish', async () => {
    let called = false;
    await bus.subscribe('reentrancy.check', () => {
      called = true;
    });

    const publishing = bus.publish('reentrancy.check', {});
    expect(called).toBe(false);
    await publishing;
    await waitFor(() => called);
  });

  it('logs a throwing handler and keeps delivering, to other subscribers and to itself', async () => {
    const thrower: unknown[] = [];
    const healthy = recorder();
    await bus.subscribe('models.promoted', (data) => {
      thrower.push(data);
      throw new Error('handler bug');
    });
    await bus.subscribe('models.promoted', async (data) => {
      thrower.push(data);
      throw new Error('async handler bug');
    });
    await bus.subscribe('models.promoted', healthy.handler);

    await bus.publish('models.promoted', 1);
    await bus.publish('models.promoted', 2);
    await allDelivered();

    expect(healthy.got.map((r) => r.data)).toEqual([1, 2]);
    expect(thrower.sort()).toEqual([1, 1, 2, 2]);
    expect(logged).toHaveLength(4);
    expect(logged.every((e) => e.level === 'warn' && e.details.subject === 'models.promoted')).toBe(true);
    expect(logged.map((e) => (e.details.err as Error).message).sort()).toEqual(['async handler bug', 'async handler bug', 'handler bug', 'handler bug']);
  });

  it.each(['', 'a..b', '.a', 'a.', 'a b', 'a.*', 'a.>', '>', 'a.b*', 'a/b', 'ünïcode', 'x'.repeat(257)])(
    'rejects publishing to the invalid subject %j',
    async (subject) => {
      await expect(bus.publish(subject, {})).rejects.toMatchObject({ code: 'WLDB_ERR_BUS_SUBJECT_INVALID' });
    },
  );

  it.each(['', 'a..b', 'a.>.b', '>.a', 'a.b*', 'a b', '**', 'a.>>'])('rejects subscribing to the invalid pattern %j', async (pattern) => {
    await expect(bus.subscribe(pattern, () => {})).rejects.toMatchObject({ code: 'WLDB_ERR_BUS_SUBJECT_INVALID' });
  });

  it('accepts wildcard patterns anywhere NATS does', async () => {
    for (const pattern of ['*', '>', '*.b', 'a.*.>', 'A-b_9.*']) {
      const sub = await bus.subscribe(pattern, () => {});
      await sub.unsubscribe();
    }
  });

  it('refuses to publish once closed', async () => {
    await bus.close();
    await expect(bus.publish('projects.created', {})).rejects.toMatchObject({ code: 'WLDB_ERR_BUS_UNAVAILABLE' });
  });
});
