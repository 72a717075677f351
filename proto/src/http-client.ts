import { methodsOf, type CallOptions, type ClientOf, type HttpBinding, type MethodRef, type RequestOf, type ServiceRef } from './service-ref.js';

/** What a generated HTTP client needs from its surroundings: fetch with credentials, and the server's errors as exceptions. */
export interface HttpTransport {
  /** Sends one call; resolves to the parsed JSON answer ({} for 204 No Content), or throws the server's error. */
  send(verb: HttpBinding['verb'], path: string, body: unknown, options?: CallOptions): Promise<unknown>;
  /** Reads a server stream (`text/event-stream`), one parsed JSON value per message. */
  events?(path: string, options?: CallOptions): AsyncIterable<unknown>;
}

const camel = (s: string) => s.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/**
 * Where a request goes over HTTP/JSON: its binding's path with the `{field}`
 * segments filled from the request, the body, and the other fields as query
 * parameters (repeated fields comma-joined), as the gateway reads them.
 */
export function bindHttp(method: MethodRef, request: object = {}): { verb: HttpBinding['verb']; path: string; body: unknown } {
  const http = method.http;
  if (!http) throw new TypeError(`${method.name} has no HTTP binding; call it over gRPC.`);
  const rest: Record<string, unknown> = { ...(request as Record<string, unknown>) };
  const path = http.path.replace(/\{([A-Za-z0-9_.]+)\}/g, (_, field: string) => {
    const key = camel(field);
    const value = rest[key];
    delete rest[key];
    if (value === undefined || value === null || value === '') throw new TypeError(`${method.name} needs "${key}" (it is part of the path ${http.path}).`);
    return encodeURIComponent(String(value));
  });
  if (http.body === '*') return { verb: http.verb, path, body: rest };
  let body: unknown;
  if (http.body) {
    body = rest[camel(http.body)];
    delete rest[camel(http.body)];
  }
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(rest)) {
    if (value === undefined || value === null || value === '' || (Array.isArray(value) && !value.length)) continue;
    query.set(key, Array.isArray(value) ? value.join(',') : typeof value === 'object' ? JSON.stringify(value) : String(value));
  }
  const qs = query.toString();
  return { verb: http.verb, path: qs ? `${path}?${qs}` : path, body };
}

/**
 * Where a method is served over HTTP, for what is not a plain JSON answer —
 * a download, a link's `href`, a stream read by hand — typed by the
 * service: `httpRoute(tracking.v1.RunFileService, 'downloadFile', { runId, path })`.
 */
export function httpRoute<H, K extends keyof H & string>(service: ServiceRef<H>, method: K, request: RequestOf<H[K]>): { verb: HttpBinding['verb']; path: string; body: unknown } {
  const ref = methodsOf(service)[method];
  if (!ref) throw new TypeError(`${service.fullName} has no method ${method}.`);
  return bindHttp(ref, request as object);
}

/** A typed HTTP/JSON client of one service (`httpClient(projects.v1.ProjectService, transport).getProject({ id })`). */
export function httpClient<H>(ref: ServiceRef<H>, transport: HttpTransport): ClientOf<H> {
  const client: Record<string, unknown> = {};
  for (const [handler, method] of Object.entries(methodsOf(ref))) {
    if (method.rawResponse || !method.http) continue;
    if (method.kind === 'unary') {
      client[handler] = (request: object, options?: CallOptions) => {
        const { verb, path, body } = bindHttp(method, request);
        return transport.send(verb, path, body, options);
      };
    } else if (method.kind === 'server-stream') {
      client[handler] = (request: object, options?: CallOptions) => {
        if (!transport.events) throw new TypeError(`This transport reads no streams; ${method.name} is one.`);
        return transport.events(bindHttp(method, request).path, options);
      };
    }
  }
  return client as ClientOf<H>;
}
