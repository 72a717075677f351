export { PROTO_DIR, protoFiles } from './proto-files.js';
export { loadContractRoot, sourceFiles, type ContractSource } from './load-contract.js';
export { methodsOf, type CallOptions, type ClientOf, type ClientRequest, type RequestOf, type UnaryClientOf, type HttpBinding, type MethodRef, type ServiceRef, type StreamSender } from './service-ref.js';
export { bindHttp, httpClient, httpRoute, type HttpTransport } from './http-client.js';
export type { JsonObject, JsonValue, Empty } from './json.js';
export * from './gen/index.js';
