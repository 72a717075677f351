import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { STATUS_CODES } from 'node:http';
import type { Server, Socket } from 'node:net';
import type { WanllmdbConfig } from '../config/config.js';
import { Errors, type WldbError } from '../errors.js';
import type { Logger } from '../kernel/logger.js';

/**
 * Descriptors kept out of the connection budget: the database (SQLite file,
 * WAL, shared memory or a PostgreSQL pool), the bus, logs, worker threads'
 * pipes, the listening sockets.
 */
export const RESERVED_FDS = 512;

/**
 * Refused HTTP connections handled at once (read the request line, answer
 * 503 or /healthz, close politely); a newer one takes the slot of the oldest.
 * Taken from RESERVED_FDS.
 */
const MAX_LINGERING_REFUSALS = 128;
/** How long a refused HTTP connection may take to send its request line and read the answer before it is closed. */
const REFUSAL_LINGER_MS = 1000;
/** The request line of a health probe, which a refused connection is still answered (a probe must see a flooded server is alive). */
const HEALTH_REQUEST = /^(GET|HEAD) \/healthz(\?\S*)? HTTP\/1\.[01]$/;
/** At most one log line per this long about refused connections (a flood must not flood the log). */
const REFUSAL_LOG_INTERVAL_MS = 10_000;

/**
 * The process's open-file limit (soft; Node raises it to the hard limit at
 * start), or undefined where it cannot be read (Windows has none for sockets).
 */
export function openFileLimit(): number | undefined {
  try {
    const line = /^Max open files\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (line) return line[1] === 'unlimited' ? Infinity : Number(line[1]);
  } catch {
    // Not Linux: ask the shell, which inherits this process's limit.
  }
  try {
    const out = execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return out === 'unlimited' ? Infinity : /^\d+$/.test(out) ? Number(out) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The connection cap for a `maxConnections` setting. `auto` takes half of
 * what the open-file limit leaves after RESERVED_FDS, because a connection may
 * hold a second descriptor while it streams a blob; an explicit value may use
 * all of it, never more (the process would fail to open its own files).
 */
export function connectionCap(setting: WanllmdbConfig['maxConnections'], fdLimit: number | undefined): number {
  const usable = fdLimit === undefined ? undefined : Math.max(0, fdLimit - RESERVED_FDS);
  if (setting === 'auto') {
    if (usable === undefined) return 10_000;
    return Math.max(16, Math.floor(Math.min(usable, 200_000) / 2));
  }
  if (usable !== undefined && setting > usable) {
    throw Errors.CONFIG_INVALID(
      `--max-connections / WANLLMDB_MAX_CONNECTIONS is ${setting}, but the open-file limit (ulimit -n) is ${fdLimit}, which leaves room for ${usable} connections after ${RESERVED_FDS} descriptors for the server's own files. Raise the limit (ulimit -n, LimitNOFILE= in a systemd unit) or lower the setting.`,
      [{ field: 'maxConnections', message: `at most ${usable} with an open-file limit of ${fdLimit}` }],
    );
  }
  return setting;
}

/** `::ffff:10.0.0.1` (an IPv4 client on a dual-stack socket) counts as `10.0.0.1`. */
export function clientAddress(socket: Socket): string | undefined {
  const a = socket.remoteAddress;
  return a?.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

/**
 * A complete HTTP/1.1 answer carrying the error envelope, for a socket that
 * no request handler owns (a refused connection, a request that timed out).
 */
export function rawHttpError(e: WldbError, requestId: string = randomUUID()): string {
  const body = JSON.stringify({ error: e.toJSON(), meta: { timestamp: new Date().toISOString(), requestId } });
  return (
    `HTTP/1.1 ${e.httpStatus} ${STATUS_CODES[e.httpStatus] ?? ''}\r\n` +
    'content-type: application/json; charset=utf-8\r\n' +
    `content-length: ${Buffer.byteLength(body)}\r\n` +
    `x-request-id: ${requestId}\r\n` +
    'connection: close\r\n\r\n' +
    body
  );
}

/** `/healthz`'s answer, written by hand for a connection no server owns. */
export function rawHealth(serving: boolean): string {
  const body = JSON.stringify({ status: serving ? 'SERVING' : 'NOT_SERVING' });
  return (
    `HTTP/1.1 ${serving ? '200 OK' : '503 Service Unavailable'}\r\n` +
    'content-type: application/json; charset=utf-8\r\n' +
    `content-length: ${Buffer.byteLength(body)}\r\n` +
    'connection: close\r\n\r\n' +
    body
  );
}

export interface ConnectionLimitsOptions {
  /** Connections held at once across every guarded port. */
  maxConnections: number;
  /** Connections held at once from one address; 0 for no per-address cap. */
  maxConnectionsPerAddress: number;
  logger: Logger;
  /** What `/healthz` says to a refused connection (false while draining). */
  serving?: () => boolean;
}

type Refusal = 'address' | 'server';

/**
 * Caps the connections the servers hold, in total and per client address,
 * so a flood of slow or idle clients cannot use every descriptor (then
 * nothing, not even /healthz or sign-in, could be answered) and one address
 * cannot take the slots of everyone else. A refused HTTP connection gets a
 * 503 with the error envelope, or, when it asks `GET /healthz`, the health
 * answer: a probe reaches a flooded server even from the flooding address.
 * A refused gRPC connection is closed (HTTP/2 cannot answer before its
 * handshake).
 */
export class ConnectionLimits {
  private held = 0;
  /** Refused connections whose request line has not arrived yet. */
  private readonly refusing = new Set<Socket>();
  /** Refused connections already answered, waiting for the client to hang up (so no reset can lose the answer). */
  private readonly answered = new Set<Socket>();
  private readonly byAddress = new Map<string, number>();
  private refusedSinceLog = { address: 0, server: 0 };
  private lastLog = 0;

  constructor(private readonly opts: ConnectionLimitsOptions) {}

  /** From the settings, checked against this process's open-file limit. */
  static fromConfig(
    config: Pick<WanllmdbConfig, 'maxConnections' | 'maxConnectionsPerAddress'>,
    logger: Logger,
    serving?: () => boolean,
    fdLimit = openFileLimit(),
  ): ConnectionLimits {
    const maxConnections = connectionCap(config.maxConnections, fdLimit);
    if (maxConnections < 1000) {
      logger.warn(
        { maxConnections, openFileLimit: fdLimit },
        `the server holds at most ${maxConnections} connections${config.maxConnections === 'auto' ? ` (open-file limit ${fdLimit})` : ''}; for 1,000 users raise ulimit -n and --max-connections`,
      );
    }
    return new ConnectionLimits({ maxConnections, maxConnectionsPerAddress: config.maxConnectionsPerAddress, logger, serving });
  }

  get maxConnections(): number {
    return this.opts.maxConnections;
  }

  /** Connections held now (not counting refused ones being closed). */
  get open(): number {
    return this.held;
  }

  /**
   * Counts `socket` in, or refuses it. Returns whether the caller may serve
   * it; the count drops when the socket closes.
   */
  admit(socket: Socket, transport: 'http' | 'grpc'): boolean {
    const address = clientAddress(socket);
    if (address === undefined) {
      socket.destroy(); // already gone
      return false;
    }
    const { maxConnections, maxConnectionsPerAddress } = this.opts;
    const fromAddress = this.byAddress.get(address) ?? 0;
    const refusal: Refusal | undefined =
      this.held >= maxConnections ? 'server' : maxConnectionsPerAddress > 0 && fromAddress >= maxConnectionsPerAddress ? 'address' : undefined;
    if (refusal) {
      this.refuse(socket, transport, refusal, address);
      return false;
    }
    this.held++;
    this.byAddress.set(address, fromAddress + 1);
    socket.once('close', () => {
      this.held--;
      const left = (this.byAddress.get(address) ?? 1) - 1;
      if (left > 0) this.byAddress.set(address, left);
      else this.byAddress.delete(address);
    });
    return true;
  }

  /**
   * Puts the limits in front of `server`'s own connection handling (node:http
   * attaches its parser in a 'connection' listener): a refused socket never
   * reaches it.
   */
  guard(server: Server, transport: 'http' | 'grpc'): void {
    const own = server.listeners('connection') as ((socket: Socket) => void)[];
    server.removeAllListeners('connection');
    server.on('connection', (socket: Socket) => {
      if (this.admit(socket, transport)) for (const listener of own) listener.call(server, socket);
    });
  }

  private refuse(socket: Socket, transport: 'http' | 'grpc', why: Refusal, address: string): void {
    this.noteRefusal(why, address);
    socket.on('error', () => {}); // a client that resets is not our error
    if (transport !== 'http') {
      socket.destroy();
      return;
    }
    this.makeRoomToRefuse();
    const e =
      why === 'address'
        ? Errors.TOO_MANY_CONNECTIONS(
            `Your address holds ${this.opts.maxConnectionsPerAddress} connections to this server, the most it allows one address. Close idle connections and retry; an operator can raise --max-connections-per-address / WANLLMDB_MAX_CONNECTIONS_PER_ADDRESS (0 behind a proxy).`,
          )
        : Errors.TOO_MANY_CONNECTIONS(
            `The server holds ${this.opts.maxConnections} connections, the most it allows. Retry shortly; an operator can raise --max-connections / WANLLMDB_MAX_CONNECTIONS and ulimit -n.`,
          );
    this.refusing.add(socket);
    const timer = setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS);
    timer.unref();
    socket.once('close', () => {
      clearTimeout(timer);
      this.refusing.delete(socket);
      this.answered.delete(socket);
    });
    let answered = false;
    // node:http sockets are half-open: close once the client has hung up and our answer is out.
    socket.once('end', () => {
      if (!answered || socket.writableFinished) socket.destroy();
      else socket.once('finish', () => socket.destroy());
    });
    // Read the request line, then keep reading and dropping: closing with unread bytes sends a reset, which can lose the answer.
    let head = '';
    socket.on('data', (chunk: Buffer) => {
      if (answered) return;
      head += chunk.toString('latin1');
      const eol = head.indexOf('\r\n');
      if (eol < 0 && head.length < 1024) return;
      answered = true;
      this.refusing.delete(socket);
      this.answered.add(socket);
      socket.end(HEALTH_REQUEST.test(head.slice(0, Math.max(0, eol))) ? rawHealth(this.opts.serving?.() ?? true) : rawHttpError(e));
    });
  }

  /**
   * Frees a slot for one more refused connection when all are taken: closes
   * the longest-answered one (it has its 503), else the one that has waited
   * longest for its request line. So under a churning flood, or one of
   * connections that never send a byte, every newcomer still gets its turn
   * to be read, and a health probe, which asks at once, is answered.
   */
  private makeRoomToRefuse(): void {
    if (this.refusing.size + this.answered.size < MAX_LINGERING_REFUSALS) return;
    const oldest = (this.answered.values().next().value ?? this.refusing.values().next().value)!;
    this.answered.delete(oldest);
    this.refusing.delete(oldest);
    oldest.destroy();
  }

  private noteRefusal(why: Refusal, address: string): void {
    this.refusedSinceLog[why]++;
    const now = Date.now();
    if (now - this.lastLog < REFUSAL_LOG_INTERVAL_MS) return;
    this.opts.logger.warn(
      {
        refusedPerAddressCap: this.refusedSinceLog.address,
        refusedServerCap: this.refusedSinceLog.server,
        lastAddress: address,
        maxConnections: this.opts.maxConnections,
        maxConnectionsPerAddress: this.opts.maxConnectionsPerAddress,
      },
      'connections refused: a connection cap is reached (see --max-connections, --max-connections-per-address)',
    );
    this.lastLog = now;
    this.refusedSinceLog = { address: 0, server: 0 };
  }
}

/** How long a client may take; every one is a server setting (see WanllmdbConfig). */
export type TimeBounds = Pick<WanllmdbConfig, 'headersTimeoutMs' | 'requestTimeoutMs' | 'idleTimeoutMs'>;

/**
 * Fastify options that bound an HTTP client's time: headers, the whole
 * request (Fastify's default of 0 turns node:http's bound off, so a trickled
 * body was never cut) and an idle keep-alive connection.
 */
export function httpTimeBounds(t: TimeBounds): { requestTimeout: number; keepAliveTimeout: number; http: { headersTimeout: number; connectionsCheckingInterval: number } } {
  return {
    requestTimeout: t.requestTimeoutMs,
    keepAliveTimeout: t.idleTimeoutMs,
    http: {
      headersTimeout: t.headersTimeoutMs,
      // node:http looks for late requests only this often (30 s by default): a quarter of the bound keeps cuts near it.
      connectionsCheckingInterval: Math.min(5000, Math.max(100, Math.floor(Math.min(t.headersTimeoutMs, t.requestTimeoutMs) / 4))),
    },
  };
}

/**
 * Answers node:http's "request timed out" (headers or body too slow) with
 * the error envelope instead of Fastify's bare 408. Listens first and
 * destroys the socket, so Fastify's own client-error answer stands aside.
 */
export function answerRequestTimeouts(server: Server, t: TimeBounds): void {
  server.prependListener('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (err.code !== 'ERR_HTTP_REQUEST_TIMEOUT' || socket.destroyed) return;
    const e = Errors.REQUEST_TIMEOUT(
      `The request did not arrive in time: the server waits ${t.headersTimeoutMs} ms for the headers and ${t.requestTimeoutMs} ms for the whole request (--headers-timeout, --request-timeout). Send the request at once; on a slow link send less per request.`,
    );
    if (socket.writable) socket.write(rawHttpError(e));
    socket.destroy();
  });
}
