import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Errors } from '../errors.js';
import { loadConfig, redactUrl } from './config.js';

const dir = () => mkdtempSync(join(tmpdir(), 'wldb-config-'));

describe('loadConfig', () => {
  it('defaults to the embedded store under ./.wanllmdb', () => {
    const cwd = dir();
    const c = loadConfig({ env: {}, cwd });
    expect(c).toMatchObject({
      dataDir: join(cwd, '.wanllmdb'),
      db: `sqlite://${join(cwd, '.wanllmdb', 'wanllmdb.db')}`,
      blobs: `file://${join(cwd, '.wanllmdb', 'blobs')}`,
      bus: 'memory',
      grpcPort: 50051,
      httpPort: 8080,
      host: '127.0.0.1',
    });
  });

  it('takes flags over environment over the config file', () => {
    const cwd = dir();
    const file = join(cwd, 'wanllmdb.json');
    writeFileSync(file, JSON.stringify({ httpPort: 7001, grpcPort: 7002, bus: 'nats://127.0.0.1:4222', dataDir: 'from-file' }));
    const c = loadConfig({ cwd, file, env: { WANLLMDB_HTTP_PORT: '7101', WANLLMDB_GRPC_PORT: '7102' }, flags: { httpPort: 7201 } });
    expect(c.httpPort).toBe(7201);
    expect(c.grpcPort).toBe(7102);
    expect(c.bus).toBe('nats://127.0.0.1:4222');
    expect(c.dataDir).toBe(join(cwd, 'from-file'));
  });

  it('names the setting as the user wrote it when a value is bad', () => {
    const cases: [Parameters<typeof loadConfig>[0], RegExp][] = [
      [{ env: { WANLLMDB_DB: 'mysql://x' } }, /WANLLMDB_DB has an invalid value "mysql:\/\/x"/],
      [{ env: {}, flags: { blobs: 'ftp://x' } }, /--blobs has an invalid value/],
      [{ env: { WANLLMDB_HTTP_PORT: '70000' } }, /WANLLMDB_HTTP_PORT .* an integer from 0 to 65535/],
      [{ env: { WANLLMDB_LOG_LEVEL: 'loud' } }, /WANLLMDB_LOG_LEVEL/],
    ];
    for (const [opts, message] of cases) {
      try {
        loadConfig(opts);
        expect.unreachable();
      } catch (e) {
        expect(Errors.CONFIG_INVALID.is(e)).toBe(true);
        expect((e as Error).message).toMatch(message);
      }
    }
  });

  it('bounds slow and idle clients and connections by default, each a validated setting', () => {
    expect(loadConfig({ env: {}, cwd: dir() })).toMatchObject({
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 60_000,
      idleTimeoutMs: 72_000,
      maxConnections: 'auto',
      maxConnectionsPerAddress: 256,
    });
    const c = loadConfig({
      env: { WANLLMDB_HEADERS_TIMEOUT_MS: '2000', WANLLMDB_REQUEST_TIMEOUT_MS: '5000', WANLLMDB_IDLE_TIMEOUT_MS: '3000', WANLLMDB_MAX_CONNECTIONS: '4000' },
      flags: { maxConnectionsPerAddress: 0 },
    });
    expect(c).toMatchObject({ headersTimeoutMs: 2000, requestTimeoutMs: 5000, idleTimeoutMs: 3000, maxConnections: 4000, maxConnectionsPerAddress: 0 });
    expect(() => loadConfig({ env: { WANLLMDB_MAX_CONNECTIONS: 'lots' } })).toThrow(/WANLLMDB_MAX_CONNECTIONS .* an integer from 1/);
    expect(() => loadConfig({ env: { WANLLMDB_IDLE_TIMEOUT_MS: '10' } })).toThrow(/WANLLMDB_IDLE_TIMEOUT_MS .* an integer from 1000/);
    expect(() => loadConfig({ env: { WANLLMDB_HEADERS_TIMEOUT_MS: '90000' } })).toThrow(
      /WANLLMDB_HEADERS_TIMEOUT_MS \(90000 ms\) is longer than the default of requestTimeoutMs \(60000 ms\).*Lower the first or raise the second/,
    );
  });

  it('refuses unreadable, non-JSON and unknown-key config files', () => {
    const cwd = dir();
    const bad = join(cwd, 'bad.json');
    writeFileSync(bad, '{ nope');
    expect(() => loadConfig({ env: {}, file: bad })).toThrow(/not valid JSON/);
    writeFileSync(bad, JSON.stringify({ colour: 'red' }));
    expect(() => loadConfig({ env: {}, file: bad })).toThrow(/unknown setting\(s\) colour/);
    expect(() => loadConfig({ env: {}, file: join(cwd, 'missing.json') })).toThrow(/cannot be read/);
  });

  it('never shows a password from a URL', () => {
    expect(redactUrl('postgres://me:s3cret@db:5432/x')).toBe('postgres://me:***@db:5432/x');
    expect(() => loadConfig({ env: { WANLLMDB_DB: 'mysql://me:s3cret@db/x' } })).toThrow(/^(?!.*s3cret)/);
  });
});
