import type { EventHandler } from './event-bus.js';
import { decodePayload } from './payload.js';

/**
 * The events waiting for one subscription. Both EventBus adapters deliver
 * through it, so they share the same semantics: the handler is called later,
 * never inside `publish`; one call at a time, in arrival order; a handler
 * that throws is logged and the next event is still delivered; after
 * `close()` nothing more is delivered, not even events already queued.
 */
export class SubscriptionInbox {
  readonly #waiting: { subject: string; payload: string }[] = [];
  #draining = false;
  #closed = false;

  constructor(
    private readonly handler: EventHandler,
    private readonly logger: Pick<Console, 'warn'>,
  ) {}

  push(subject: string, payload: string): void {
    if (this.#closed) return;
    this.#waiting.push({ subject, payload });
    if (!this.#draining) {
      this.#draining = true;
      // setImmediate, not a microtask: the publisher's own synchronous and
      // awaited code runs first, as it would with a network in between.
      setImmediate(() => void this.#drain());
    }
  }

  close(): void {
    this.#closed = true;
    this.#waiting.length = 0;
  }

  async #drain(): Promise<void> {
    for (let event = this.#waiting.shift(); event && !this.#closed; event = this.#waiting.shift()) {
      let data: unknown;
      try {
        data = decodePayload(event.payload);
      } catch (err) {
        // Only a foreign NATS client can send this; our adapters always send JSON.
        this.logger.warn({ err, subject: event.subject }, 'event payload is not JSON; the event is dropped');
        continue;
      }
      try {
        await this.handler(data, event.subject);
      } catch (err) {
        this.logger.warn({ err, subject: event.subject }, 'event handler failed; the event is dropped (events are delivered at most once)');
      }
    }
    this.#draining = false;
  }
}
