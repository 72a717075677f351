import type { NatsConnection, Subscription as NatsSubscription } from 'nats';
import { Errors } from '../errors.js';
import type { EventBus, EventHandler, Subscription } from './event-bus.js';
import { encodePayload } from './payload.js';
import { assertPublishSubject, assertSubscribePattern } from './subjects.js';
import { SubscriptionInbox } from './subscription-inbox.js';

export interface NatsEventBusOptions {
  /** Deployment namespace, e.g. `wldb.` (see ADR 0005). Default: none. */
  prefix?: string;
  /** Close the connection in `close()` (true when the bus made it). */
  ownsConnection?: boolean;
  logger?: Pick<Console, 'warn'>;
}

/**
 * EventBus over core NATS (at-most-once, like the in-process bus).
 * Event `s` travels as `<prefix>events.<s>`: the `events.` namespace keeps a
 * `>` subscription from seeing job messages (`<prefix>jobs.…`) or NATS's own
 * `$JS`/`_INBOX` traffic, so wildcards match exactly what they match in memory.
 */
export class NatsEventBus implements EventBus {
  readonly kind = 'nats' as const;
  readonly #namespace: string;
  readonly #ownsConnection: boolean;
  readonly #logger: Pick<Console, 'warn'>;
  readonly #subscriptions = new Map<SubscriptionInbox, NatsSubscription>();
  #closed = false;

  constructor(
    private readonly nc: NatsConnection,
    opts: NatsEventBusOptions = {},
  ) {
    this.#namespace = `${opts.prefix ?? ''}events.`;
    this.#ownsConnection = opts.ownsConnection ?? false;
    this.#logger = opts.logger ?? console;
  }

  async publish(subject: string, data: unknown): Promise<void> {
    assertPublishSubject(subject);
    this.#assertOpen();
    const payload = encodePayload(data);
    try {
      this.nc.publish(this.#namespace + subject, payload);
    } catch (err) {
      throw this.#unavailable(err);
    }
  }

  async subscribe(pattern: string, handler: EventHandler): Promise<Subscription> {
    assertSubscribePattern(pattern);
    this.#assertOpen();
    const inbox = new SubscriptionInbox(handler, this.#logger);
    const namespaceLength = this.#namespace.length;
    let sub: NatsSubscription;
    try {
      sub = this.nc.subscribe(this.#namespace + pattern, {
        callback: (err, msg) => {
          if (err) this.#logger.warn({ err, subject: pattern }, 'NATS subscription failed');
          else inbox.push(msg.subject.slice(namespaceLength), msg.string());
        },
      });
      // The server has the subscription once flush() returns, so an event
      // published after subscribe() resolves is delivered to it.
      await this.nc.flush();
    } catch (err) {
      inbox.close();
      throw this.#unavailable(err);
    }
    this.#subscriptions.set(inbox, sub);
    return {
      unsubscribe: async () => {
        inbox.close();
        this.#subscriptions.delete(inbox);
        if (!this.nc.isClosed()) sub.unsubscribe();
      },
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const [inbox, sub] of this.#subscriptions) {
      inbox.close();
      if (!this.nc.isClosed()) sub.unsubscribe();
    }
    this.#subscriptions.clear();
    // drain() flushes events published just before close.
    if (this.#ownsConnection && !this.nc.isClosed()) await this.nc.drain();
  }

  #assertOpen(): void {
    if (this.#closed || this.nc.isClosed()) {
      throw Errors.BUS_UNAVAILABLE('The event bus is closed. Create a new one (the kernel does this at start-up) before publishing or subscribing.');
    }
  }

  #unavailable(err: unknown) {
    return Errors.BUS_UNAVAILABLE(
      `NATS (${this.nc.getServer()}) refused the operation: ${err instanceof Error ? err.message : String(err)}. Check that the server is running and reachable.`,
      [],
      err,
    );
  }
}
