/**
 * EventBus: fire-and-forget notifications between plugins and replicas
 * (`projects.created`, `metrics.appended` …). Subjects are dot-separated
 * tokens; subscriptions may use NATS wildcards: `*` one token, `>` the rest.
 * Payloads are JSON-serialisable values. Delivery is at most once: use the
 * JobQueue for work that must not be lost.
 */
export type EventHandler = (data: unknown, subject: string) => void | Promise<void>;

export interface Subscription {
  unsubscribe(): Promise<void>;
}

export interface EventBus {
  readonly kind: 'memory' | 'cluster' | 'nats';
  publish(subject: string, data: unknown): Promise<void>;
  subscribe(subject: string, handler: EventHandler): Promise<Subscription>;
  close(): Promise<void>;
}
