export { PROTO_DIR, protoFiles } from './proto-files.js';
export { loadContractRoot, sourceFiles, type ContractSource } from './load-contract.js';
export type { ServiceRef, StreamSender } from './service-ref.js';
export type { JsonObject, JsonValue, Empty } from './json.js';
export * from './gen/index.js';
