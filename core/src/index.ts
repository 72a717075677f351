// @wanllmdb/core: the kernel and its ports. Plugins import from here only.
export { Errors, WldbError, GrpcStatus, toWldbError, type ErrorDetail, type ErrorFactory, type ErrorJson } from './errors.js';
export { newId, assertId } from './ids.js';
export { loadConfig, redactUrl, CONFIG_ENV_VARS, type WanllmdbConfig, type LoadConfigOptions } from './config/config.js';
export { definePlugin, type Plugin, type PluginDefinition, type PluginRegistrar, type PluginHooks, type PluginHook } from './kernel/define-plugin.js';
export { orderPlugins } from './kernel/plugin-order.js';
export { Kernel, type KernelOptions, type Listening } from './kernel/kernel.js';
export { Tokens } from './kernel/tokens.js';
export { createLogger, type Logger, type LogLevel } from './kernel/logger.js';
export { systemClock, type Clock } from './kernel/clock.js';
export { LocalAuth, LOCAL_PRINCIPAL, type Auth, type AuthRequest, type Principal } from './rpc/auth.js';
export type { CallContext } from './rpc/call-context.js';
export { Contract, type MethodInfo, type HttpRoute } from './rpc/contract.js';
export { RpcHost } from './rpc/rpc-host.js';
export * from './storage/metadata/index.js';
export * from './storage/blob/index.js';
export * from './messaging/index.js';
