import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Errors } from '../errors.js';
import { definePlugin, type PluginContext } from './define-plugin.js';
import { Kernel } from './kernel.js';
import { orderPlugins } from './plugin-order.js';
import { coreServices, createApiRef, type Ref } from './refs.js';
import { describeSettings, setting } from './settings.js';

const config = () => ({
  db: 'sqlite::memory:',
  blobs: `file://${mkdtempSync(join(tmpdir(), 'wldb-kernel-'))}`,
  bus: 'memory',
  logLevel: 'silent' as const,
});

/** Each plugin id's API ref (what `deps` names to depend on that plugin). */
const api = (id: string): Ref<{ id: string }> => createApiRef({ plugin: id });

/** A plugin that provides its API, depends on the APIs of `after`, and records every phase it sees into `log`. */
function recorder(id: string, log: string[], after: string[] = [], extra?: (ctx: PluginContext) => void) {
  return definePlugin({
    id,
    version: '1.0.0',
    deps: Object.fromEntries(after.map((a) => [a, api(a)])),
    init(ctx) {
      log.push(`init:${id}`);
      ctx.provide(api(id), { id });
      ctx.onMigrated(() => void log.push(`migrate:${id}`));
      ctx.onStart(() => void log.push(`start:${id}`));
      ctx.onBeforeStop(() => void log.push(`beforeStop:${id}`));
      ctx.onStop(() => void log.push(`stop:${id}`));
      extra?.(ctx);
    },
  });
}

async function failure(kernel: Kernel): Promise<Error & { code?: string }> {
  const err = await kernel.start().then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  await kernel.stop();
  if (!err) throw new Error('start() resolved; expected it to fail');
  return err;
}

describe('definePlugin', () => {
  it('rejects ids that are not kebab-case, versions that are not semver, deps that are not refs, and its own refs', () => {
    const init = () => {};
    expect(() => definePlugin({ id: 'Bad_Id', version: '1.0.0', init })).toThrow(/kebab-case/);
    expect(() => definePlugin({ id: 'ok', version: 'one', init })).toThrow(/semver/);
    expect(() => definePlugin({ id: 'ok', version: '1.0.0', deps: { db: 'wanllmdb.MetadataStore' as never }, init })).toThrow(/is not a ref/);
    expect(() => definePlugin({ id: 'ok', version: '1.0.0', deps: { me: api('ok') }, init })).toThrow(/its own ref "ok.api"/);
    try {
      definePlugin({ id: 'ok', version: '1', init });
    } catch (e) {
      expect(Errors.PLUGIN_INVALID.is(e)).toBe(true);
    }
  });

  it('derives what a plugin depends on from the owners of its refs (core aside)', () => {
    const p = definePlugin({ id: 'c', version: '1.0.0', deps: { db: coreServices.db, a: api('a'), b: api('b'), a2: createApiRef({ plugin: 'a', name: 'admin' }) }, init() {} });
    expect(p.dependsOn).toEqual(['a', 'b']);
  });
});

describe('orderPlugins', () => {
  const p = (id: string, after: string[] = []) => definePlugin({ id, version: '1.0.0', deps: Object.fromEntries(after.map((a) => [a, api(a)])), init() {} });

  it('puts the owners of refs first and keeps the given order otherwise', () => {
    const order = orderPlugins([p('c', ['b']), p('a'), p('b', ['a']), p('d')]).map((x) => x.id);
    expect(order).toEqual(['a', 'b', 'c', 'd']);
  });

  it('names a missing owner, and the ref that needs it, with a coded error', () => {
    try {
      orderPlugins([p('a', ['ghost'])]);
      expect.unreachable();
    } catch (e) {
      expect(Errors.PLUGIN_MISSING_DEPENDENCY.is(e)).toBe(true);
      expect((e as Error).message).toBe('Plugin "a" depends on "ghost.api" of plugin "ghost", which is not loaded. Add the "ghost" plugin or remove "a".');
    }
  });

  it('names every plugin of a cycle', () => {
    try {
      orderPlugins([p('a', ['c']), p('b', ['a']), p('c', ['b'])]);
      expect.unreachable();
    } catch (e) {
      expect(Errors.PLUGIN_CYCLE.is(e)).toBe(true);
      expect((e as Error).message).toMatch(/a → c → b → a/);
    }
  });

  it('refuses the same plugin twice', () => {
    expect(() => orderPlugins([p('a'), p('a')])).toThrowError(/registered twice/);
  });
});

describe('Kernel lifecycle', () => {
  it('inits, migrates and starts in dependency order, and stops in reverse', async () => {
    const log: string[] = [];
    const kernel = new Kernel({ plugins: [recorder('b', log, ['a']), recorder('a', log)], config: config() });
    await kernel.start();
    await kernel.stop();
    expect(log).toEqual(['init:a', 'init:b', 'migrate:a', 'migrate:b', 'start:a', 'start:b', 'beforeStop:b', 'beforeStop:a', 'stop:b', 'stop:a']);
  });

  it('fails start with a coded error naming the plugin and phase, and stops what had started', async () => {
    const log: string[] = [];
    const broken = definePlugin({
      id: 'broken',
      version: '1.0.0',
      deps: { a: api('a') },
      init(ctx) {
        ctx.onStart(() => {
          throw new Error('disk on fire');
        });
      },
    });
    const err = await failure(new Kernel({ plugins: [recorder('a', log), broken], config: config() }));
    expect(Errors.PLUGIN_FAILED.is(err)).toBe(true);
    expect(err.message).toBe('Plugin "broken" failed in start: disk on fire');
    expect(log).toContain('stop:a');
  });

  it('refuses work declared after init and a second start', async () => {
    let saved: PluginContext | undefined;
    const kernel = new Kernel({
      plugins: [definePlugin({ id: 'late', version: '1.0.0', init(ctx) { saved = ctx; } })],
      config: config(),
    });
    await kernel.start();
    expect(() => saved!.onStart(() => {})).toThrowError(/after init\(\) returned/);
    expect(() => kernel.hooks.start.tapPromise('x', async () => {})).toThrowError(/after the plugins' init/);
    await expect(kernel.start()).rejects.toThrowError(/Make a new Kernel/);
    await kernel.stop();
    await kernel.stop(); // idempotent
  });

  it('hands init the root services and the APIs other plugins provide, typed by their refs', async () => {
    const greeter = createApiRef<{ hello(): string }>({ plugin: 'provider' });
    const provider = definePlugin({ id: 'provider', version: '1.0.0', init: (ctx) => ctx.provide(greeter, { hello: () => 'hi' }) });
    const seen: unknown[] = [];
    const consumer = definePlugin({
      id: 'consumer',
      version: '1.0.0',
      deps: { greeter, db: coreServices.db, logger: coreServices.logger },
      init(ctx) {
        seen.push(ctx.deps.greeter.hello(), ctx.deps.db.dialect, ctx.deps.logger === ctx.logger);
      },
    });
    const kernel = new Kernel({ plugins: [consumer, provider], config: config() });
    await kernel.start();
    seen.push(kernel.get(greeter).hello());
    await kernel.stop();
    expect(seen).toEqual(['hi', 'sqlite', true, 'hi']);
  });

  it("fails start when a ref's owner does not provide it, or a plugin provides another's ref", async () => {
    const lazy = definePlugin({ id: 'lazy', version: '1.0.0', init() {} });
    const needy = definePlugin({ id: 'needy', version: '1.0.0', deps: { lazy: api('lazy') }, init() {} });
    const unprovided = await failure(new Kernel({ plugins: [lazy, needy], config: config() }));
    expect(Errors.PLUGIN_INVALID.is(unprovided)).toBe(true);
    expect(unprovided.message).toMatch(/Plugin "needy" depends on "lazy.api", but its owner "lazy" did not provide it/);

    const thief = definePlugin({ id: 'thief', version: '1.0.0', init: (ctx) => ctx.provide(api('other'), { id: 'x' }) });
    const stolen = await failure(new Kernel({ plugins: [thief], config: config() }));
    expect(Errors.PLUGIN_FAILED.is(stolen)).toBe(true);
    expect(stolen.message).toMatch(/Plugin "thief" failed in init: WLDB_ERR_PLUGIN_INVALID: Plugin "thief" cannot provide "other.api": it belongs to plugin "other"/);
  });

  it('fails start, before opening anything, for a missing or circular dependency', async () => {
    const a = definePlugin({ id: 'a', version: '1.0.0', deps: { b: api('b') }, init: (ctx) => ctx.provide(api('a'), { id: 'a' }) });
    const b = definePlugin({ id: 'b', version: '1.0.0', deps: { a: api('a') }, init: (ctx) => ctx.provide(api('b'), { id: 'b' }) });
    expect(() => new Kernel({ plugins: [a], config: config() })).toThrowError(expect.objectContaining({ code: 'WLDB_ERR_PLUGIN_MISSING_DEPENDENCY' }));
    expect(() => new Kernel({ plugins: [a, b], config: config() })).toThrowError(expect.objectContaining({ code: 'WLDB_ERR_PLUGIN_CYCLE', message: expect.stringMatching(/a → b → a/) }));
  });

  it("applies each plugin's migrations before its migrate work runs", async () => {
    let count: unknown;
    const plugin = definePlugin({
      id: 'schema',
      version: '1.0.0',
      deps: { db: coreServices.db },
      init(ctx) {
        ctx.migrations([{ version: 1, name: 'things', up: 'CREATE TABLE things (id TEXT PRIMARY KEY)' }]);
        ctx.onMigrated(async () => {
          await ctx.deps.db.run('INSERT INTO things (id) VALUES (?)', ['x']);
          count = (await ctx.deps.db.query<{ n: number }>('SELECT COUNT(*) AS n FROM things'))[0]?.n;
        });
      },
    });
    const kernel = new Kernel({ plugins: [plugin], config: config() });
    await kernel.start();
    await kernel.stop();
    expect(Number(count)).toBe(1);
  });
});

describe('plugin settings', () => {
  const tuned = (read: (s: Record<string, unknown>) => unknown, seen: unknown[], value?: number) =>
    definePlugin({
      id: 'tuned',
      version: '1.0.0',
      settings: {
        depth: setting.int({ env: 'WANLLMDB_TUNED_DEPTH', default: 3, min: 1, max: 10, doc: 'how deep to tune', ...(value !== undefined ? { value } : {}) }),
        secret: setting.string({ env: 'WANLLMDB_TUNED_SECRET', secret: true, doc: 'the tuning key' }),
        fast: setting.bool({ env: 'WANLLMDB_TUNED_FAST', default: false, doc: 'tune fast' }),
      },
      init(ctx) {
        seen.push(read(ctx.settings as Record<string, unknown>));
      },
    });

  it('reads declared settings from the environment, with defaults, and a value given in code wins', async () => {
    const seen: unknown[] = [];
    const all = (s: Record<string, unknown>) => ({ depth: s.depth, secret: s.secret, fast: s.fast });
    for (const [env, value] of [[{}, undefined], [{ WANLLMDB_TUNED_DEPTH: '7', WANLLMDB_TUNED_SECRET: 'k', WANLLMDB_TUNED_FAST: 'yes' }, undefined], [{ WANLLMDB_TUNED_DEPTH: '7' }, 2]] as const) {
      const kernel = new Kernel({ plugins: [tuned(all, seen, value)], config: config(), env: { ...env } });
      await kernel.start();
      await kernel.stop();
    }
    expect(seen).toEqual([
      { depth: 3, secret: undefined, fast: false },
      { depth: 7, secret: 'k', fast: true },
      { depth: 2, secret: undefined, fast: false },
    ]);
  });

  it('fails start with a coded error naming the variable for a bad value', async () => {
    const bad = await failure(new Kernel({ plugins: [tuned(() => 0, [])], config: config(), env: { WANLLMDB_TUNED_DEPTH: '11' } }));
    expect(Errors.CONFIG_INVALID.is(bad)).toBe(true);
    expect(bad.message).toBe('Setting WANLLMDB_TUNED_DEPTH has an invalid value "11": expected a whole number from 1 to 10. Fix or unset it.');
    expect((await failure(new Kernel({ plugins: [tuned(() => 0, [])], config: config(), env: { WANLLMDB_TUNED_FAST: 'maybe' } }))).message).toMatch(/WANLLMDB_TUNED_FAST .* expected true or false/);
  });

  it('fails start when a plugin reads a setting it did not declare', async () => {
    const err = await failure(new Kernel({ plugins: [tuned((s) => s.dpth, [])], config: config() }));
    expect(Errors.PLUGIN_FAILED.is(err)).toBe(true);
    expect(err.message).toMatch(/Plugin "tuned" failed in init: WLDB_ERR_PLUGIN_INVALID: Plugin "tuned" read setting "dpth", which it does not declare\..*Declared: depth, secret, fast\./);
  });

  it('lets the settings be logged and serialised whole (JSON.stringify, await) without counting as undeclared reads', async () => {
    const seen: unknown[] = [];
    const kernel = new Kernel({ plugins: [tuned((s) => JSON.parse(JSON.stringify(s)), seen)], config: config(), env: { WANLLMDB_TUNED_SECRET: 'k' } });
    await kernel.start();
    await kernel.stop();
    expect(seen).toEqual([{ depth: 3, secret: 'k', fast: false }]);
  });

  it('describes every setting for --help, secrets without their default', () => {
    const lines = describeSettings([tuned(() => 0, [])]);
    expect(lines[0]).toBe('Plugin "tuned":');
    expect(lines[1]).toMatch(/^ {2}WANLLMDB_TUNED_DEPTH +how deep to tune \(integer 1\.\.10; default 3\)$/);
    expect(lines[2]).toMatch(/WANLLMDB_TUNED_SECRET +the tuning key \(secret; default \(none\)\)/);
  });
});
