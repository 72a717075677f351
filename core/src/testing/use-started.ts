import { afterAll, beforeAll } from 'vitest';

/**
 * Starts a fixture in the calling suite's `beforeAll` and closes it in its
 * `afterAll`. The handle forwards every property to the started fixture, so
 * it may be used from later hooks and tests only (before that it throws,
 * naming `what`).
 */
export function useStarted<T extends { close(): Promise<void> }>(what: string, start: () => Promise<T>): T {
  let started: T | undefined;
  beforeAll(async () => {
    started = await start();
  });
  afterAll(() => started?.close());
  return new Proxy({} as T, {
    get(_target, prop) {
      if (!started) throw new Error(`${what} is not started: use it from a hook or a test`);
      const value = Reflect.get(started, prop) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(started) : value;
    },
  });
}
