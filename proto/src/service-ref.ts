/**
 * A typed reference to a service of the contract. The generated code gives
 * one per proto service; `Handlers` is the shape its implementation must
 * have, so `ctx.service(ProjectService, handlers)` is type-checked, and the
 * generated clients (`httpClient`, `grpcClient`, `rpc.client`) are typed
 * from it too.
 */
export interface ServiceRef<Handlers> {
  readonly fullName: string;
  /** Each method by its handler name, as the .proto declares it (generated refs have it). */
  readonly methods?: Readonly<Record<string, MethodRef>>;
  /** Phantom field: carries the handler type, never set at run time. */
  readonly __handlers?: Handlers;
}

/** One method of a service, for clients. */
export interface MethodRef {
  /** The proto name: `GetProject`. */
  readonly name: string;
  readonly kind: 'unary' | 'server-stream' | 'client-stream' | 'bidi-stream';
  /** The method's first `(google.api.http)` binding, if it has one. */
  readonly http?: HttpBinding;
  /** Answers raw bytes over HTTP (`google.api.HttpBody`: a download or an export), not JSON. */
  readonly rawResponse?: boolean;
}

export interface HttpBinding {
  readonly verb: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** `/api/v1/projects/{id}`: `{field}` segments name request fields (snake_case, as in the .proto). */
  readonly path: string;
  /** `*` (the request is the body), one field's name, or '' (no body: the rest goes in the query). */
  readonly body: string;
}

/** Sends one message of a server stream; resolves when the transport has taken it. */
export type StreamSender<T> = (message: T) => Promise<void>;

/** What a client sends: any field may be left out (the server fills defaults). */
export type ClientRequest<Q> = { [K in keyof Q]?: Q[K] };

export interface CallOptions {
  signal?: AbortSignal;
}

/** A raw-bytes answer (`google.api.HttpBody`): downloads and exports, fetched by their path (`httpRoute`), not by a client. */
type RawBody = { contentType: string; data: Uint8Array };

/** Whether a handler is a client stream (uploads: the SDK's own business) or answers raw bytes: neither is in a generated client. */
type NotInClient<A> = A extends [AsyncIterable<unknown>, unknown] ? true : A extends [unknown, unknown, StreamSender<RawBody>] ? true : false;

/**
 * The client of a service, from its handlers' type: a unary method is
 * `(request?, options?) => Promise<Response>`, a server stream
 * `(request?, options?) => AsyncIterable<Message>`.
 */
export type ClientOf<H> = {
  [K in keyof H as H[K] extends (...args: infer A) => unknown ? (NotInClient<A> extends true ? never : K) : never]: H[K] extends (...args: infer A) => Promise<infer R>
    ? A extends [infer Q, unknown, StreamSender<infer M>]
      ? (request?: ClientRequest<Q>, options?: CallOptions) => AsyncIterable<M>
      : A extends [infer Q, unknown]
        ? (request?: ClientRequest<Q>, options?: CallOptions) => Promise<R>
        : never
    : never;
};

/** The request type of a handler (its first parameter), as a client sends it. */
export type RequestOf<Handler> = Handler extends (...args: infer A) => unknown ? ClientRequest<A[0]> : never;

/** The unary methods of a service's client (what in-process calls offer). */
export type UnaryClientOf<H> = {
  [K in keyof ClientOf<H> as ClientOf<H>[K] extends (...args: never[]) => Promise<unknown> ? K : never]: ClientOf<H>[K];
};

/** The handler names of a ref's methods, or a clear error for a hand-made ref without them. */
export function methodsOf(ref: ServiceRef<unknown>): Readonly<Record<string, MethodRef>> {
  if (!ref.methods) throw new Error(`Service ref ${ref.fullName} carries no methods: use the generated ref from @wanllmdb/proto (or your plugin's src/gen).`);
  return ref.methods;
}
