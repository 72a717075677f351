import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Errors } from '../errors.js';
import { definePlugin, type PluginRegistrar } from './define-plugin.js';
import { Kernel } from './kernel.js';
import { orderPlugins } from './plugin-order.js';
import { Tokens } from './tokens.js';

const config = () => ({
  db: 'sqlite::memory:',
  blobs: `file://${mkdtempSync(join(tmpdir(), 'wldb-kernel-'))}`,
  bus: 'memory',
  logLevel: 'silent' as const,
});

/** A plugin that records every phase it sees into `log`. */
function recorder(id: string, log: string[], dependsOn: string[] = [], extra?: (r: PluginRegistrar) => void) {
  return definePlugin({
    id,
    version: '1.0.0',
    dependsOn,
    register(r) {
      for (const phase of ['configure', 'register', 'migrate', 'start', 'beforeStop', 'stop'] as const) {
        r.hooks[phase].tapPromise(id, () => void log.push(`${phase}:${id}`));
      }
      extra?.(r);
    },
  });
}

describe('definePlugin', () => {
  it('rejects ids that are not kebab-case, versions that are not semver, and self-dependencies', () => {
    const register = () => {};
    expect(() => definePlugin({ id: 'Bad_Id', version: '1.0.0', register })).toThrow(/kebab-case/);
    expect(() => definePlugin({ id: 'ok', version: 'one', register })).toThrow(/semver/);
    expect(() => definePlugin({ id: 'ok', version: '1.0.0', dependsOn: ['ok'], register })).toThrow(/depends on itself/);
    try {
      definePlugin({ id: 'ok', version: '1', register });
    } catch (e) {
      expect(Errors.PLUGIN_INVALID.is(e)).toBe(true);
    }
  });
});

describe('orderPlugins', () => {
  const p = (id: string, dependsOn: string[] = []) => definePlugin({ id, version: '1.0.0', dependsOn, register() {} });

  it('puts dependencies first and keeps the given order otherwise', () => {
    const order = orderPlugins([p('c', ['b']), p('a'), p('b', ['a']), p('d')]).map((x) => x.id);
    expect(order).toEqual(['a', 'b', 'c', 'd']);
  });

  it('names a missing dependency', () => {
    expect(() => orderPlugins([p('a', ['ghost'])])).toThrowError(/"a" depends on "ghost", which is not installed/);
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
  it('runs phases in dependency order and stops in reverse', async () => {
    const log: string[] = [];
    const kernel = new Kernel({ plugins: [recorder('b', log, ['a']), recorder('a', log)], config: config() });
    await kernel.start();
    await kernel.stop();
    expect(log).toEqual([
      'configure:a', 'configure:b', 'register:a', 'register:b', 'migrate:a', 'migrate:b', 'start:a', 'start:b',
      'beforeStop:b', 'beforeStop:a', 'stop:b', 'stop:a',
    ]);
  });

  it('fails start with a coded error naming the plugin and phase, and stops what had started', async () => {
    const log: string[] = [];
    const broken = definePlugin({
      id: 'broken',
      version: '1.0.0',
      dependsOn: ['a'],
      register(r) {
        r.hooks.start.tapPromise('broken', () => {
          throw new Error('disk on fire');
        });
      },
    });
    const kernel = new Kernel({ plugins: [recorder('a', log), broken], config: config() });
    const err = await kernel.start().catch((e: unknown) => e);
    expect(Errors.PLUGIN_FAILED.is(err)).toBe(true);
    expect((err as Error).message).toBe('Plugin "broken" failed in start: disk on fire');
    expect(log).toContain('stop:a');
  });

  it('refuses taps after registration and a second start', async () => {
    let saved: PluginRegistrar | undefined;
    const kernel = new Kernel({
      plugins: [definePlugin({ id: 'late', version: '1.0.0', register(r) { saved = r; } })],
      config: config(),
    });
    await kernel.start();
    expect(() => saved!.hooks.start.tapPromise('late', () => {})).toThrowError(/after register\(\) returned/);
    expect(() => kernel.hooks.start.tapPromise('x', async () => {})).toThrowError(/after plugins have registered/);
    await expect(kernel.start()).rejects.toThrowError(/Make a new Kernel/);
    await kernel.stop();
    await kernel.stop(); // idempotent
  });

  it('gives each plugin a child container that resolves root services and what other plugins provide', async () => {
    const seen: unknown[] = [];
    const provider = definePlugin({
      id: 'provider',
      version: '1.0.0',
      register(r) {
        r.provide('provider.Api', { hello: () => 'hi' });
      },
    });
    const consumer = definePlugin({
      id: 'consumer',
      version: '1.0.0',
      dependsOn: ['provider'],
      register(r) {
        r.hooks.start.tapPromise('consumer', () => {
          seen.push(r.resolve<{ hello(): string }>('provider.Api').hello());
          seen.push(r.resolve(Tokens.MetadataStore).dialect);
          seen.push(r.container !== undefined);
        });
      },
    });
    const kernel = new Kernel({ plugins: [consumer, provider], config: config() });
    await kernel.start();
    await kernel.stop();
    expect(seen).toEqual(['hi', 'sqlite', true]);
  });

  it('applies each plugin\'s migrations before its migrate taps run', async () => {
    let count: unknown;
    const plugin = definePlugin({
      id: 'schema',
      version: '1.0.0',
      register(r) {
        r.migrations([{ version: 1, name: 'things', up: 'CREATE TABLE things (id TEXT PRIMARY KEY)' }]);
        r.hooks.migrate.tapPromise('schema', async () => {
          const db = r.resolve(Tokens.MetadataStore);
          await db.run('INSERT INTO things (id) VALUES (?)', ['x']);
          count = (await db.query<{ n: number }>('SELECT COUNT(*) AS n FROM things'))[0]?.n;
        });
      },
    });
    const kernel = new Kernel({ plugins: [plugin], config: config() });
    await kernel.start();
    await kernel.stop();
    expect(Number(count)).toBe(1);
  });
});
