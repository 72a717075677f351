import { Errors } from '../errors.js';
import type { EventBus, EventHandler, Subscription } from './event-bus.js';
import { encodePayload } from './payload.js';
import { assertPublishSubject, assertSubscribePattern, subjectMatches } from './subjects.js';
import { SubscriptionInbox } from './subscription-inbox.js';

export interface MemoryEventBusOptions {
  /** Where failing handlers are reported (default: console). */
  logger?: Pick<Console, 'warn'>;
}

/**
 * EventBus inside one process (the embedded default). Same subjects,
 * wildcards, JSON payloads and delivery rules as the NATS adapter.
 */
export class MemoryEventBus implements EventBus {
  readonly kind: EventBus['kind'] = 'memory';
  readonly #subscriptions = new Map<SubscriptionInbox, string>();
  readonly #logger: Pick<Console, 'warn'>;
  #closed = false;

  constructor(opts: MemoryEventBusOptions = {}) {
    this.#logger = opts.logger ?? console;
  }

  async publish(subject: string, data: unknown): Promise<void> {
    assertPublishSubject(subject);
    this.#assertOpen();
    this.deliver(subject, encodePayload(data));
  }

  /** Hands an encoded event to this process's matching subscriptions (a relayed one, too). */
  protected deliver(subject: string, payload: string): void {
    for (const [inbox, pattern] of this.#subscriptions) {
      if (subjectMatches(pattern, subject)) inbox.push(subject, payload);
    }
  }

  async subscribe(pattern: string, handler: EventHandler): Promise<Subscription> {
    assertSubscribePattern(pattern);
    this.#assertOpen();
    const inbox = new SubscriptionInbox(handler, this.#logger);
    this.#subscriptions.set(inbox, pattern);
    return {
      unsubscribe: async () => {
        inbox.close();
        this.#subscriptions.delete(inbox);
      },
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const inbox of this.#subscriptions.keys()) inbox.close();
    this.#subscriptions.clear();
  }

  protected assertOpen(): void {
    this.#assertOpen();
  }

  #assertOpen(): void {
    if (this.#closed) {
      throw Errors.BUS_UNAVAILABLE('The event bus is closed. Create a new one (the kernel does this at start-up) before publishing or subscribing.');
    }
  }
}
