import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { EventRelay } from './cluster-event-bus.js';

const fixture = fileURLToPath(new URL('./fixtures/cluster-bus-child.ts', import.meta.url));

interface Child {
  proc: ChildProcess;
  messages: any[];
  next(pred: (m: any) => boolean): Promise<any>;
}

function start(): Promise<Child> {
  const proc = fork(fixture, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const messages: any[] = [];
  const waiters: { pred: (m: any) => boolean; resolve: (m: any) => void }[] = [];
  proc.on('message', (m) => {
    messages.push(m);
    for (const w of [...waiters]) if (w.pred(m)) (waiters.splice(waiters.indexOf(w), 1), w.resolve(m));
  });
  const child: Child = {
    proc,
    messages,
    next: (pred) => {
      const seen = messages.find(pred);
      return seen ? Promise.resolve(seen) : new Promise((resolve) => waiters.push({ pred, resolve }));
    },
  };
  return child.next((m) => m.ready).then(() => child);
}

describe('ClusterEventBus across processes (through the primary’s EventRelay)', () => {
  const children: Child[] = [];
  afterEach(() => {
    for (const c of children.splice(0)) c.proc.kill();
  });

  it('delivers an event published in one worker to the matching subscriptions of every other worker, once', async () => {
    const relay = new EventRelay();
    const [a, b, c] = await Promise.all([start(), start(), start()]);
    children.push(a!, b!, c!);
    for (const w of [a!, b!, c!]) relay.add(w.proc);

    for (const [w, subject] of [[b!, 'runs.*.updated'], [c!, 'runs.>'], [a!, 'runs.r1.updated']] as const) {
      w.proc.send({ cmd: 'subscribe', subject });
      await w.next((m) => m.subscribed === subject);
    }
    a!.proc.send({ cmd: 'publish', subject: 'runs.r1.updated', data: { id: 'r1', step: 3 } });
    for (const w of [a!, b!, c!]) expect((await w.next((m) => m.got)).got).toEqual({ subject: 'runs.r1.updated', data: { id: 'r1', step: 3 } });

    // A marker after it: once it has arrived everywhere, nothing else is coming (events of one publisher stay in order).
    a!.proc.send({ cmd: 'publish', subject: 'runs.marker.updated', data: null });
    for (const w of [b!, c!]) await w.next((m) => m.got?.subject === 'runs.marker.updated');
    for (const w of [a!, b!, c!]) expect(w.messages.filter((m) => m.got?.subject === 'runs.r1.updated')).toHaveLength(1);
  });

  it('stops relaying to a worker once it is removed, and to one whose bus is closed', async () => {
    const relay = new EventRelay();
    const [a, b] = await Promise.all([start(), start()]);
    children.push(a!, b!);
    relay.add(a!.proc);
    relay.add(b!.proc);
    b!.proc.send({ cmd: 'subscribe', subject: 'x.>' });
    await b!.next((m) => m.subscribed);
    relay.remove(b!.proc);
    a!.proc.send({ cmd: 'publish', subject: 'x.1', data: 1 });
    await a!.next((m) => m.published === 'x.1');
    // Re-added: the next event arrives, and the one published while removed never does.
    relay.add(b!.proc);
    a!.proc.send({ cmd: 'publish', subject: 'x.2', data: 2 });
    expect((await b!.next((m) => m.got)).got).toEqual({ subject: 'x.2', data: 2 });
    expect(b!.messages.filter((m) => m.got)).toHaveLength(1);
  });
});
