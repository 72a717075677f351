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

interface RelayedEvent {
  wldb: 'event';
  subject: string;
  payload: string;
}

const isRelayedEvent = (m: unknown): m is RelayedEvent =>
  typeof m === 'object' && m !== null && (m as RelayedEvent).wldb === 'event' && typeof (m as RelayedEvent).subject === 'string' && typeof (m as RelayedEvent).payload === 'string';

/**
 * The in-process bus of one of several server processes on one data folder
 * (`wanllmdb serve --workers N` without NATS): each event is delivered to
 * this process's subscribers as MemoryEventBus does, and sent to the primary,
 * which hands it to every other worker (`EventRelay`). So a run changed in
 * one worker reaches a browser watching through another. Same subjects,
 * payload rules and at-most-once delivery as the other adapters; an event
 * from another worker arrives after its own publisher's `publish` resolved.
 */
export class ClusterEventBus extends MemoryEventBus {
  override readonly kind = 'cluster' as const;
  readonly #channel: IpcEndpoint;
  readonly #onMessage = (m: unknown) => {
    if (isRelayedEvent(m)) this.deliver(m.subject, m.payload);
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
    const message: RelayedEvent = { wldb: 'event', subject, payload };
    // A primary that is gone (it is stopping us) cannot relay: local delivery still holds.
    try {
      this.#channel.send(message);
    } catch {
      // at most once
    }
  }

  override async close(): Promise<void> {
    this.#channel.off('message', this.#onMessage);
    await super.close();
  }
}

/** The primary's half: every event a worker publishes goes to all the other workers. */
export class EventRelay {
  readonly #endpoints = new Map<IpcEndpoint, (m: unknown) => void>();

  add(endpoint: IpcEndpoint): void {
    const listener = (m: unknown) => {
      if (!isRelayedEvent(m)) return;
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
