import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Errors, WldbError } from '../../errors.js';
import { isAlive } from '../../testing/http-and-processes.js';
import { Kernel } from '../kernel.js';
import { externalPlugin } from './external-plugin.js';
import { readManifest } from './manifest.js';
import { parseHandshake } from './handshake.js';

const PROTO = `syntax = "proto3";
package wanllmdb.fake.v1;
import "wanllmdb/auth/v1/options.proto";
message PingRequest {}
message PingResponse {}
service FakeService {
  rpc Ping(PingRequest) returns (PingResponse) { option (wanllmdb.auth.v1.permission) = "site:admin"; }
}
`;

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A plugin folder: the manifest (merged over a valid one), a proto, and `program.js`. */
function pluginDir(manifest: Record<string, unknown>, program = ''): string {
  const dir = mkdtempSync(join(tmpdir(), 'wldb-ext-'));
  dirs.push(dir);
  mkdirSync(join(dir, 'proto/wanllmdb/fake/v1'), { recursive: true });
  writeFileSync(join(dir, 'proto/wanllmdb/fake/v1/fake.proto'), PROTO);
  writeFileSync(join(dir, 'program.js'), program);
  writeFileSync(join(dir, 'wanllmdb-plugin.json'), JSON.stringify({ id: 'fake', version: '0.1.0', command: [process.execPath, 'program.js'], ...manifest }));
  return dir;
}

async function startFails(dir: string): Promise<WldbError> {
  const kernel = new Kernel({ plugins: [externalPlugin(dir, process.env)], config: { db: 'sqlite::memory:', blobs: `file://${dir}/blobs`, bus: 'memory', logLevel: 'silent' } });
  const err = await kernel.start().then(
    () => undefined,
    (e: unknown) => e,
  );
  await kernel.stop();
  expect(err).toBeInstanceOf(WldbError);
  return err as WldbError;
}

describe('out-of-process plugin manifests', () => {
  it('reports every problem of a manifest at once, naming the field', () => {
    const dir = pluginDir({
      id: 'Bad_Id',
      command: [],
      permissions: ['everything', '*:*'],
      settings: { greeting: { env: 'GREETING', type: 'text' }, db: { env: 'WANLLMDB_DB', type: 'string', doc: 'the server’s database, if it could' } },
      colour: 'red',
    });
    const err = (() => {
      try {
        readManifest(dir);
      } catch (e) {
        return e as WldbError;
      }
    })();
    expect(err?.code).toBe(Errors.PLUGIN_INVALID.code);
    expect(err!.details.map((d) => d.field)).toEqual(
      expect.arrayContaining(['id', 'command', 'permissions[0]', 'permissions[1]', 'settings.greeting.env', 'settings.greeting.doc', 'settings.greeting.type', 'settings.db.env', 'colour']),
    );
    expect(err!.message).toContain('wanllmdb-plugin.json');
  });

  it('reads a valid manifest with its defaults, its settings becoming the plugin settings', () => {
    const dir = pluginDir({ settings: { size: { env: 'WANLLMDB_FAKE_SIZE', type: 'int', default: 3, min: 1, max: 9, doc: 'How big' } } });
    const m = readManifest(join(dir, 'wanllmdb-plugin.json'));
    expect(m).toMatchObject({ id: 'fake', dir, proto: join(dir, 'proto'), permissions: [], startTimeoutMs: 30_000, healthIntervalMs: 5_000 });
    expect(m.settings.size!.resolve('4', 'WANLLMDB_FAKE_SIZE')).toBe(4);
    expect(() => m.settings.size!.resolve('12', 'WANLLMDB_FAKE_SIZE')).toThrow(/WANLLMDB_FAKE_SIZE/);
  });
});

describe('the handshake', () => {
  it('takes the go-plugin line for a unix socket and gRPC, and refuses any other', () => {
    expect(parseHandshake('1|1|unix|/tmp/wldb-x/fake.sock|grpc\n')).toEqual({ address: 'unix:/tmp/wldb-x/fake.sock' });
    for (const line of ['1|2|unix|/tmp/a.sock|grpc', '1|1|tcp|127.0.0.1:1234|grpc', '1|1|unix|/tmp/a.sock|netrpc', 'hello', '1|1|unix|relative.sock|grpc']) {
      expect(() => parseHandshake(line), line).toThrow(expect.objectContaining({ code: Errors.PLUGIN_HANDSHAKE.code }));
    }
  });

  it('fails start with a coded error naming the line when a program prints something else', async () => {
    const err = await startFails(pluginDir({}, `console.log('ready!'); setInterval(() => {}, 1000);`));
    expect(err.code).toBe(Errors.PLUGIN_FAILED.code);
    expect(err.message).toContain(Errors.PLUGIN_HANDSHAKE.code);
    expect(err.message).toContain('"ready!"');
  });

  it('fails start with the program’s last output when it ends before it serves', async () => {
    const err = await startFails(pluginDir({}, `console.error('ModuleNotFoundError: grpc'); process.exit(3);`));
    expect(err.message).toContain('exit 3');
    expect(err.message).toContain('ModuleNotFoundError: grpc');
  });

  it('fails start saying how to fix a command that cannot run', async () => {
    const err = await startFails(pluginDir({ command: ['no-such-program-wldb'] }));
    expect(err.message).toMatch(/Cannot start the plugin program "no-such-program-wldb".*"command"/);
  });

  it('fails start after startTimeoutMs when a program never shakes hands, and kills it', async () => {
    const dir = pluginDir({ startTimeoutMs: 1_000 }, `require('fs').writeFileSync('pid', String(process.pid)); setInterval(() => {}, 1000);`);
    const err = await startFails(dir);
    expect(err.message).toMatch(/did not print its handshake line and serve within 1000 ms/);
    const pid = Number((await import('node:fs')).readFileSync(join(dir, 'pid'), 'utf8'));
    await expect.poll(() => isAlive(pid)).toBe(false);
  });

  it('never gives a program the server’s own environment: only the protocol’s variables, its settings and the basics', async () => {
    const dir = pluginDir(
      { startTimeoutMs: 2_000, settings: { size: { env: 'WANLLMDB_FAKE_SIZE', type: 'int', default: 3, doc: 'How big' } } },
      `require('fs').writeFileSync('env.json', JSON.stringify(process.env)); process.exit(0);`,
    );
    const kernel = new Kernel({
      plugins: [externalPlugin(dir, { PATH: process.env.PATH, WANLLMDB_DB: 'postgres://secret@db/x', WANLLMDB_FAKE_SIZE: '5' })],
      env: { WANLLMDB_FAKE_SIZE: '5' },
      config: { db: 'sqlite::memory:', blobs: `file://${dir}/blobs`, bus: 'memory', logLevel: 'silent' },
    });
    await kernel.start().catch(() => undefined);
    await kernel.stop();
    const env = JSON.parse((await import('node:fs')).readFileSync(join(dir, 'env.json'), 'utf8')) as Record<string, string>;
    expect(env.WANLLMDB_DB).toBeUndefined();
    expect(env).toMatchObject({ WANLLMDB_FAKE_SIZE: '5', WANLLMDB_PLUGIN_ID: 'fake', WANLLMDB_PLUGIN_PROTOCOL_VERSIONS: '1', WANLLMDB_PLUGIN_MAGIC_COOKIE: expect.any(String) });
    expect(env.WANLLMDB_PLUGIN_TOKEN).toMatch(/^wldbp_/);
    expect(env.WANLLMDB_KERNEL_ADDRESS).toMatch(/^unix:\//);
    expect(env.WANLLMDB_PROTO_PATH!.split(':')[0]).toBe(join(dir, 'proto'));
  });
});
