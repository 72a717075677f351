import { Command, InvalidArgumentError } from 'commander';
import { WldbError } from '@wanllmdb/core';
import { serveCommand } from './cluster.js';
import { builtInSettingsHelp } from './serve.js';
import { registerAdminCommand } from './admin-command.js';
import { registerArtifactCommand } from './artifact-command.js';
import { registerSyncCommand } from './sync-command.js';

const program = new Command('wanllmdb')
  .description('wanLLMDB: track experiments, version artifacts, register, tune and serve models.')
  .showHelpAfterError();

const port = (name: string) => (v: string) => {
  if (!/^\d+$/.test(v) || Number(v) > 65535) throw new InvalidArgumentError(`${name} must be a port number (0–65535).`);
  return Number(v);
};

program
  .command('serve')
  .description('Serve gRPC and HTTP/JSON over the data folder (embedded SQLite + files by default).')
  .option('--data <dir>', 'data folder for the embedded defaults [env WANLLMDB_DATA]', undefined)
  .option('--port <port>', 'gRPC port [env WANLLMDB_GRPC_PORT, default 50051]', port('--port'))
  .option('--http-port <port>', 'HTTP port [env WANLLMDB_HTTP_PORT, default 8080]', port('--http-port'))
  .option('--host <address>', 'address to bind [env WANLLMDB_HOST, default 127.0.0.1]')
  .option('--db <url>', 'sqlite:///path.db | postgres://… [env WANLLMDB_DB]')
  .option('--blobs <url>', 'file:///dir | s3://bucket?endpoint=… [env WANLLMDB_BLOBS]')
  .option('--bus <url>', 'memory | nats://host:4222 [env WANLLMDB_BUS]')
  .option('--body-limit <bytes>', 'largest HTTP request body [env WANLLMDB_BODY_LIMIT]')
  .option('--headers-timeout <ms>', 'longest wait for an HTTP request\'s headers [env WANLLMDB_HEADERS_TIMEOUT_MS, default 10000]')
  .option('--request-timeout <ms>', 'longest wait for a whole request (HTTP headers + body, each gRPC message) [env WANLLMDB_REQUEST_TIMEOUT_MS, default 60000]')
  .option('--idle-timeout <ms>', 'close a connection idle this long [env WANLLMDB_IDLE_TIMEOUT_MS, default 72000]')
  .option('--max-connections <n>', 'connections held at once, HTTP and gRPC together, or auto (below ulimit -n) [env WANLLMDB_MAX_CONNECTIONS]')
  .option('--max-connections-per-address <n>', 'connections held at once from one address, 0 for no cap [env WANLLMDB_MAX_CONNECTIONS_PER_ADDRESS, default 256]')
  .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent [env WANLLMDB_LOG_LEVEL]')
  .option('--cors-origins <list>', 'other browser origins allowed to call the HTTP API, comma-separated [env WANLLMDB_CORS_ORIGINS]')
  .option('--plugins <list>', 'third-party plugin modules to load, comma-separated paths or package names [env WANLLMDB_PLUGINS]')
  .option('--no-auth', 'no sign-in: every caller is the local administrator (refused unless --host is loopback) [env WANLLMDB_AUTH=off]')
  .option('--workers <n>', 'server processes sharing the ports: a number, or auto = one per core [env WANLLMDB_WORKERS, default auto]')
  .option('--config <file>', 'JSON config file [env WANLLMDB_CONFIG]')
  .addHelpText('after', builtInSettingsHelp())
  .action(async (o: Record<string, string | number | boolean | undefined>) => {
    await serveCommand({
      configFile: o.config as string | undefined,
      flags: {
        dataDir: o.data, grpcPort: o.port, httpPort: o.httpPort, host: o.host,
        db: o.db, blobs: o.blobs, bus: o.bus, bodyLimitBytes: o.bodyLimit, logLevel: o.logLevel,
        corsOrigins: o.corsOrigins, auth: o.auth === false ? 'off' : undefined, plugins: o.plugins,
        headersTimeoutMs: o.headersTimeout, requestTimeoutMs: o.requestTimeout, idleTimeoutMs: o.idleTimeout,
        maxConnections: o.maxConnections, maxConnectionsPerAddress: o.maxConnectionsPerAddress,
        workers: o.workers,
      },
    });
  });

registerSyncCommand(program);
registerArtifactCommand(program);
registerAdminCommand(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof WldbError) {
    console.error(`wanllmdb: ${err.message} [${err.code}]`);
    process.exit(2);
  }
  console.error(err);
  process.exit(1);
});
