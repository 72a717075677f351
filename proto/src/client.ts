/**
 * The browser-safe part of the contract: the generated types and service
 * refs, and the HTTP/JSON client built from them (no Node.js modules, no
 * protobufjs). The web UI imports `@wanllmdb/proto/client`.
 */
export * from './gen/index.js';
export { bindHttp, httpClient, httpRoute, type HttpTransport } from './http-client.js';
export type { CallOptions, ClientOf, ClientRequest, RequestOf, UnaryClientOf, HttpBinding, MethodRef, ServiceRef, StreamSender } from './service-ref.js';
export type { JsonObject, JsonValue, Empty } from './json.js';
