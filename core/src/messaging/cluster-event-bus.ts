import { MemoryEventBus, type MemoryEventBusOptions } from './memory-event-bus.js';
import { encodePayload } from './payload.js';
import { assertPublishSubject } from './subjects.js';

/**
 * The IPC channel between a server process and the primary that forked it:
 * `process` in a node:cluster worker (or any child forked with an IPC
 * channel), a `cluster.Worker` or `ChildProcess` on the primary's side.
 */
export interface IpcEndpoint {
  send(message: unknown): unknown;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  off(event: 'message', listener: (message: unknown) => void): unknown;
}

/** The events one worker published in one turn of its event loop, in order: [subject, payload] pairs. */
interface RelayedEvents {
  wldb: 'events';
  events: [subject: string, payload: string][];
}

const isRelayedEvents = (m: unknown): m is RelayedEvents =>
  typeof m === 'object' && m !== null && (m as RelayedEvents).wldb === 'events' && Array.isArray((m as RelayedEvents).events);

/**
 * The in-process bus of one of several server processes on one data folder
 * (`wanllmdb serve --workers N` without NATS): each event is delivered to
 * this process's subscribers as MemoryEventBus does, and sent to the primary,
 * which hands it to every other worker (`EventRelay`). So a run changed in
 * one worker reaches a browser watching through another. Same subjects,
 * payload rules and at-most-once delivery as the other adapters; an event
 * from another worker arrives after its own publisher's `publish` resolved.
 * The events published in one turn of the event loop travel as one message
 * (a message each cost the publisher a pipe write per metric batch), sent
 * in the next turn: after `publish` resolved, before anything else this
 * process sends the primary later.
 */
export class ClusterEventBus extends MemoryEventBus {
  override readonly kind = 'cluster' as const;
  readonly #channel: IpcEndpoint;
  #outbox: [string, string][] = [];
  readonly #onMessage = (m: unknown) => {
    if (!isRelayedEvents(m)) return;
    for (const e of m.events) if (Array.isArray(e) && typeof e[0] === 'string' && typeof e[1] === 'string') this.deliver(e[0], e[1]);
  };

  constructor(channel: IpcEndpoint, opts: MemoryEventBusOptions = {}) {
    super(opts);
    this.#channel = channel;
    channel.on('message', this.#onMessage);
  }

  override async publish(subject: string, data: unknown): Promise<void> {
    assertPublishSubject(subject);
    this.assertOpen();
    const payload = encodePayload(data);
    this.deliver(subject, payload);
    if (this.#outbox.push([subject, payload]) === 1) setImmediate(() => this.#flush());
  }

  #flush(): void {
    if (this.#outbox.length === 0) return;
    const message: RelayedEvents = { wldb: 'events', events: this.#outbox };
    this.#outbox = [];
    // A primary that is gone (it is stopping us) cannot relay: local delivery still holds.
    try {
      this.#channel.send(message);
    } catch {
      // at most once
    }
  }

  override async close(): Promise<void> {
    this.#flush();
    this.#channel.off('message', this.#onMessage);
    await super.close();
  }
}

/** The primary's half: every event a worker publishes goes to all the other workers. */
export class EventRelay {
  readonly #endpoints = new Map<IpcEndpoint, (m: unknown) => void>();

  add(endpoint: IpcEndpoint): void {
    const listener = (m: unknown) => {
      if (!isRelayedEvents(m)) return;
      for (const other of this.#endpoints.keys()) {
        if (other === endpoint) continue;
        try {
          other.send(m);
        } catch {
          // a worker that is exiting misses it: delivery is at most once
        }
      }
    };
    this.#endpoints.set(endpoint, listener);
    endpoint.on('message', listener);
  }

  remove(endpoint: IpcEndpoint): void {
    const listener = this.#endpoints.get(endpoint);
    if (listener) endpoint.off('message', listener);
    this.#endpoints.delete(endpoint);
  }
}
