import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Errors, type ErrorDetail } from '../errors.js';
import type { LogLevel } from '../kernel/logger.js';

/** Everything `wanllmdb serve` and the embedded kernel can be told. */
export interface WanllmdbConfig {
  /** Folder for the embedded defaults (SQLite file, blobs). */
  dataDir: string;
  /** `sqlite:///path.db` or `postgres://…` */
  db: string;
  /** `file:///dir` or `s3://bucket?endpoint=…` */
  blobs: string;
  /** `memory` or `nats://host:port` */
  bus: string;
  /** Address the servers bind to. */
  host: string;
  grpcPort: number;
  httpPort: number;
  /** Largest HTTP request body accepted, in bytes. */
  bodyLimitBytes: number;
  /** How long a graceful stop waits for in-flight calls before it cuts them. */
  shutdownTimeoutMs: number;
  logLevel: LogLevel;
  /** Browser origins other than the server's own that may call the HTTP API (CORS); none by default. */
  corsOrigins: string[];
  /** `required`: every call signs in (the server default); `off`: one local user (loopback only). */
  auth: 'required' | 'off';
  /** Third-party plugin modules to load besides the built-in ones (paths or package names). */
  plugins: string[];
  /** HTTP: the longest wait for a request's headers (a slow-loris client is cut with 408). */
  headersTimeoutMs: number;
  /** The longest wait for a whole request to arrive: HTTP headers and body; each gRPC request message. */
  requestTimeoutMs: number;
  /** A connection with no call in flight is closed after this (HTTP keep-alive; gRPC connection idle). */
  idleTimeoutMs: number;
  /** Open connections on the HTTP and gRPC ports together; `auto` stays below the process's open-file limit. */
  maxConnections: number | 'auto';
  /** Open connections from one client address (both ports together); 0 for none, e.g. behind a proxy. */
  maxConnectionsPerAddress: number;
  /**
   * Server processes sharing the ports (node:cluster workers on the same
   * data); `auto` is one per core. Only `wanllmdb serve` uses it.
   */
  workers: number | 'auto';
}

/** A setting: its config-file key, its environment variable and its flag. */
interface Setting {
  key: keyof WanllmdbConfig;
  env: string;
  flag: string;
  parse(raw: unknown, name: string): unknown;
}

const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function bad(name: string, raw: unknown, expected: string): never {
  const shown = typeof raw === 'string' ? redactUrl(raw) : JSON.stringify(raw);
  throw Errors.CONFIG_INVALID(`Setting ${name} has an invalid value ${JSON.stringify(shown)}: expected ${expected}.`, [
    { field: name, message: `expected ${expected}` },
  ]);
}

const str = (raw: unknown, name: string) => (typeof raw === 'string' && raw.trim() !== '' ? raw.trim() : bad(name, raw, 'a non-empty string'));
const int = (min: number, max: number) => (raw: unknown, name: string) => {
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\d+$/.test(raw.trim()) ? Number(raw) : NaN;
  return Number.isInteger(n) && n >= min && n <= max ? n : bad(name, raw, `an integer from ${min} to ${max}`);
};
const urlOf = (schemes: string[], expected: string) => (raw: unknown, name: string) => {
  const s = str(raw, name);
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(s)?.[1]?.toLowerCase();
  if (s === 'memory' && schemes.includes('memory')) return s;
  if (!scheme || !schemes.includes(scheme)) bad(name, s, expected);
  return s;
};

/** A comma-separated list (or, in a config file, an array) of strings that each pass `ok`. */
const listOf = (ok: (item: string) => boolean, expected: string) => (raw: unknown, name: string) => {
  const list: unknown[] = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(',').map((x) => x.trim()).filter(Boolean) : bad(name, raw, `a comma-separated list of ${expected}`);
  for (const item of list) if (typeof item !== 'string' || !ok(item)) bad(name, item, expected);
  return list as string[];
};

const SETTINGS: Setting[] = [
  { key: 'dataDir', env: 'WANLLMDB_DATA', flag: '--data', parse: str },
  { key: 'db', env: 'WANLLMDB_DB', flag: '--db', parse: urlOf(['sqlite', 'postgres', 'postgresql'], 'sqlite:///path/to/file.db or postgres://user@host:5432/db') },
  { key: 'blobs', env: 'WANLLMDB_BLOBS', flag: '--blobs', parse: urlOf(['file', 's3'], 'file:///path/to/dir or s3://bucket?endpoint=http://host:9000') },
  { key: 'bus', env: 'WANLLMDB_BUS', flag: '--bus', parse: urlOf(['memory', 'nats'], 'memory or nats://host:4222') },
  { key: 'host', env: 'WANLLMDB_HOST', flag: '--host', parse: str },
  { key: 'grpcPort', env: 'WANLLMDB_GRPC_PORT', flag: '--port', parse: int(0, 65535) },
  { key: 'httpPort', env: 'WANLLMDB_HTTP_PORT', flag: '--http-port', parse: int(0, 65535) },
  { key: 'bodyLimitBytes', env: 'WANLLMDB_BODY_LIMIT', flag: '--body-limit', parse: int(1024, 2 ** 31) },
  { key: 'shutdownTimeoutMs', env: 'WANLLMDB_SHUTDOWN_TIMEOUT_MS', flag: '--shutdown-timeout', parse: int(0, 600_000) },
  { key: 'headersTimeoutMs', env: 'WANLLMDB_HEADERS_TIMEOUT_MS', flag: '--headers-timeout', parse: int(1000, 600_000) },
  { key: 'requestTimeoutMs', env: 'WANLLMDB_REQUEST_TIMEOUT_MS', flag: '--request-timeout', parse: int(1000, 3_600_000) },
  { key: 'idleTimeoutMs', env: 'WANLLMDB_IDLE_TIMEOUT_MS', flag: '--idle-timeout', parse: int(1000, 3_600_000) },
  {
    key: 'maxConnections', env: 'WANLLMDB_MAX_CONNECTIONS', flag: '--max-connections',
    parse: (raw, name) => (raw === 'auto' ? raw : int(1, 1_000_000)(raw, name)),
  },
  {
    key: 'workers', env: 'WANLLMDB_WORKERS', flag: '--workers',
    parse: (raw, name) => (raw === 'auto' ? raw : int(1, 256)(raw, name)),
  },
  { key: 'maxConnectionsPerAddress', env: 'WANLLMDB_MAX_CONNECTIONS_PER_ADDRESS', flag: '--max-connections-per-address', parse: int(0, 1_000_000) },
  { key: 'corsOrigins', env: 'WANLLMDB_CORS_ORIGINS', flag: '--cors-origins', parse: listOf((o) => /^https?:\/\/[^/\s]+$/.test(o), 'origins such as https://ui.example.com:8443 (scheme://host[:port], no path)') },
  { key: 'plugins', env: 'WANLLMDB_PLUGINS', flag: '--plugins', parse: listOf((m) => m.length > 0, 'module paths or package names') },
  {
    key: 'auth', env: 'WANLLMDB_AUTH', flag: '--no-auth',
    parse: (raw, name) => (raw === 'required' || raw === 'off' ? raw : bad(name, raw, '"required" or "off"')),
  },
  {
    key: 'logLevel', env: 'WANLLMDB_LOG_LEVEL', flag: '--log-level',
    parse: (raw, name) => (LOG_LEVELS.includes(raw as LogLevel) ? raw : bad(name, raw, LOG_LEVELS.join(' | '))),
  },
];

export const CONFIG_ENV_VARS = SETTINGS.map((s) => s.env);

export interface LoadConfigOptions {
  /** Values from command-line flags (highest precedence), keyed like WanllmdbConfig. */
  flags?: Partial<Record<keyof WanllmdbConfig, unknown>>;
  env?: NodeJS.ProcessEnv;
  /** A JSON config file (lowest precedence above defaults). */
  file?: string;
  cwd?: string;
}

/**
 * Resolves the configuration: flags over environment over config file over
 * defaults. A bad value stops here with WLDB_ERR_CONFIG_INVALID naming the
 * setting as the user wrote it (flag, variable or file key).
 */
export function loadConfig(opts: LoadConfigOptions = {}): WanllmdbConfig {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  const flags = opts.flags ?? {};
  const filePath = opts.file ?? env.WANLLMDB_CONFIG;
  let fromFile: Record<string, unknown> = {};
  if (filePath) {
    let text: string;
    try {
      text = readFileSync(resolve(cwd, filePath), 'utf8');
    } catch {
      throw Errors.CONFIG_INVALID(`Config file ${filePath} cannot be read. Check the path given by --config or WANLLMDB_CONFIG.`, [{ field: 'config', message: 'unreadable' }]);
    }
    try {
      fromFile = JSON.parse(text) as Record<string, unknown>;
    } catch (e) {
      throw Errors.CONFIG_INVALID(`Config file ${filePath} is not valid JSON (${(e as Error).message}). Fix the file.`, [{ field: 'config', message: 'invalid JSON' }]);
    }
    if (!fromFile || typeof fromFile !== 'object' || Array.isArray(fromFile)) {
      throw Errors.CONFIG_INVALID(`Config file ${filePath} must hold a JSON object.`, [{ field: 'config', message: 'not an object' }]);
    }
    const known = new Set<string>(SETTINGS.map((s) => s.key));
    const unknown = Object.keys(fromFile).filter((k) => !known.has(k));
    if (unknown.length) {
      const details: ErrorDetail[] = unknown.map((k) => ({ field: k, message: 'unknown setting' }));
      throw Errors.CONFIG_INVALID(`Config file ${filePath} has unknown setting(s) ${unknown.join(', ')}. Known: ${[...known].join(', ')}.`, details);
    }
  }

  const raw: Partial<Record<keyof WanllmdbConfig, unknown>> = {};
  const source: Partial<Record<keyof WanllmdbConfig, string>> = {};
  for (const s of SETTINGS) {
    if (flags[s.key] !== undefined) { raw[s.key] = flags[s.key]; source[s.key] = s.flag; }
    else if (env[s.env] !== undefined && env[s.env] !== '') { raw[s.key] = env[s.env]; source[s.key] = s.env; }
    else if (fromFile[s.key] !== undefined) { raw[s.key] = fromFile[s.key]; source[s.key] = `${s.key} in ${filePath}`; }
  }
  const parsed: Partial<WanllmdbConfig> = {};
  for (const s of SETTINGS) {
    if (raw[s.key] !== undefined) (parsed as Record<string, unknown>)[s.key] = s.parse(raw[s.key], source[s.key]!);
  }

  const headersTimeoutMs = parsed.headersTimeoutMs ?? 10_000;
  const requestTimeoutMs = parsed.requestTimeoutMs ?? 60_000;
  // The whole request includes its headers (node:http refuses the opposite).
  if (headersTimeoutMs > requestTimeoutMs) {
    const named = (k: 'headersTimeoutMs' | 'requestTimeoutMs') => source[k] ?? `the default of ${k}`;
    throw Errors.CONFIG_INVALID(
      `${named('headersTimeoutMs')} (${headersTimeoutMs} ms) is longer than ${named('requestTimeoutMs')} (${requestTimeoutMs} ms); the headers are part of the request. Lower the first or raise the second.`,
      [{ field: source.headersTimeoutMs ?? source.requestTimeoutMs ?? 'headersTimeoutMs', message: 'must not exceed the request timeout' }],
    );
  }
  const dataDir = resolve(cwd, parsed.dataDir ?? '.wanllmdb');
  return {
    dataDir,
    db: parsed.db ?? `sqlite://${resolve(dataDir, 'wanllmdb.db')}`,
    blobs: parsed.blobs ?? `file://${resolve(dataDir, 'blobs')}`,
    bus: parsed.bus ?? 'memory',
    host: parsed.host ?? '127.0.0.1',
    grpcPort: parsed.grpcPort ?? 50051,
    httpPort: parsed.httpPort ?? 8080,
    bodyLimitBytes: parsed.bodyLimitBytes ?? 16 * 1024 * 1024,
    shutdownTimeoutMs: parsed.shutdownTimeoutMs ?? 10_000,
    logLevel: parsed.logLevel ?? 'info',
    corsOrigins: parsed.corsOrigins ?? [],
    auth: parsed.auth ?? 'required',
    plugins: parsed.plugins ?? [],
    headersTimeoutMs,
    requestTimeoutMs,
    // Longer than the 60 s idle timeout of common load balancers, so they, not we, close first (no reset races).
    idleTimeoutMs: parsed.idleTimeoutMs ?? 72_000,
    maxConnections: parsed.maxConnections ?? 'auto',
    // One address rarely needs more (a browser opens ≤ 6 plus its live streams); a flood from one address stops here.
    maxConnectionsPerAddress: parsed.maxConnectionsPerAddress ?? 256,
    workers: parsed.workers ?? 'auto',
  };
}

/** A URL fit for a log line or an error: its password replaced. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]+:)[^@/]*@/i, '$1***@').replace(/(secretAccessKey=)[^&]*/i, '$1***');
}

