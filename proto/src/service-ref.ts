/**
 * A typed reference to a service of the contract. The generated code gives
 * one per proto service; `Handlers` is the shape its implementation must
 * have, so `registrar.service(ProjectService, handlers)` is type-checked.
 */
export interface ServiceRef<Handlers> {
  readonly fullName: string;
  /** Phantom field: carries the handler type, never set at run time. */
  readonly __handlers?: Handlers;
}

/** Sends one message of a server stream; resolves when the transport has taken it. */
export type StreamSender<T> = (message: T) => Promise<void>;
