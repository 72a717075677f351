// @wanllmdb/core: the kernel and its ports. Plugins import from here only.
export { Errors, WldbError, GrpcStatus, toWldbError, errorFromWire, retryAfterSeconds, type ErrorDetail, type ErrorFactory, type ErrorJson } from './errors.js';
export { newId, assertId, isId } from './ids.js';
export { pageMeta, Problems, TEXT_LIMITS } from './validation/problems.js';
export { checkFilePath, MAX_FILE_PATH } from './validation/file-path.js';
export { contentTypeOf } from './validation/content-types.js';
export { chunkData, httpRange, sendBlobs, serveBody, type BodyPart } from './rpc/byte-streams.js';
export { slugify } from './slug.js';
export { isoTime } from './time.js';
export { loadConfig, redactUrl, CONFIG_ENV_VARS, type WanllmdbConfig, type LoadConfigOptions } from './config/config.js';
export { definePlugin, type DepsOf, type DepsSpec, type PhaseWork, type Plugin, type PluginContext, type PluginDefinition, type UiContribution } from './kernel/define-plugin.js';
export { coreServices, createApiRef, isRef, type CoreServiceName, type Ref } from './kernel/refs.js';
export { describeSettings, resolveSettings, setting, type SettingSpec, type SettingsOf, type SettingsSpec } from './kernel/settings.js';
export { orderPlugins } from './kernel/plugin-order.js';
export { Kernel, type KernelOptions, type Listening } from './kernel/kernel.js';
export { externalPlugin } from './kernel/external/external-plugin.js';
export { isManifestPath, readManifest, MANIFEST_FILE, type PluginManifest } from './kernel/external/manifest.js';
export { PluginHost, CALL_TOKEN_HEADER, type PluginProcessStatus } from './kernel/external/plugin-host.js';
export { PROTOCOL as PLUGIN_PROTOCOL, parseHandshake } from './kernel/external/handshake.js';
export { inProcessRpc, pluginPrincipal, type InProcessRpc } from './rpc/in-process.js';
export { createLogger, type Logger, type LogLevel } from './kernel/logger.js';
export { systemClock, type Clock } from './kernel/clock.js';
export {
  LocalAuth, LOCAL_PRINCIPAL, ANONYMOUS_PRINCIPAL, FULL_ACCESS, isReadPermission, permissionMatches,
  type AccessScope, type AuditRecord, type Auth, type AuthRequest, type CallerInfo, type Principal, type ResolvedResource, type ResourceRef,
} from './rpc/auth.js';
export { ResourceDirectory, type ResourceResolver, type ResolverOptions } from './rpc/resources.js';
export { ACCESS_EPOCH_SQL, accessEpochTriggers, EpochCache, type TableEvent } from './rpc/access-epoch.js';
export { localCallContext, type CallContext, type HttpAnswer } from './rpc/call-context.js';
export { Contract, type MethodInfo, type HttpRoute } from './rpc/contract.js';
export { normalize } from './rpc/codec.js';
export { RpcHost } from './rpc/rpc-host.js';
export * from './storage/metadata/index.js';
export * from './storage/blob/index.js';
export * from './messaging/index.js';
