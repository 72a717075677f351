/**
 * Test helpers shared by every package's tests (imported as
 * `@wanllmdb/core/testing`; never part of the published build).
 * Each `*Backends()` list names every adapter of a port, so one contract
 * suite runs against all of them.
 */
export * from './metadata-backends.js';
export * from './blob-backends.js';
export * from './messaging-backends.js';
export * from './use-started.js';
export * from './test-kernel.js';
export * from './http-and-processes.js';
export * from './rejection.js';
