import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { maxHeaderSize } from 'node:http';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { basename } from 'node:path';
import cors from '@fastify/cors';
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type protobuf from 'protobufjs';
import { Errors, retryAfterSeconds, toWldbError, type ErrorDetail, type WldbError } from '../errors.js';
import type { Logger } from '../kernel/logger.js';
import { assertNoProblems, checkJson, coerceText, normalize, toJsonForm } from './codec.js';
import { answerRequestTimeouts, httpTimeBounds, rawHttpError, type ConnectionLimits, type TimeBounds } from './connection-limits.js';
import type { HttpRoute } from './contract.js';
import type { HttpAnswer } from './call-context.js';
import type { MountedMethod, RpcHost } from './rpc-host.js';

export interface HttpGatewayOptions {
  bodyLimitBytes: number;
  /** Origins (scheme://host:port) other than the server's own that browsers may call from; none by default. */
  corsOrigins?: readonly string[];
  /** The built web UI, served at `/`; any other GET that is not an API route gets its index.html (deep links). */
  uiDir?: string;
  /** Plugins' UI modules, listed at /api/v1/ui/manifest and served at /ui/plugins/<plugin>/<file>. */
  uiModules?: readonly { plugin: string; path: string }[];
  /** How long a client may take (headers, whole request, idle keep-alive); node:http's and Fastify's defaults when absent. */
  timeBounds?: TimeBounds;
  /** Admits each accepted connection (shared with the gRPC port); none when absent. */
  connections?: ConnectionLimits;
}

/** The design's error envelope: {"error":{code,message,details},"meta":{timestamp,requestId}}. */
function sendError(reply: FastifyReply, e: WldbError, requestId: string): FastifyReply {
  const retryAfter = retryAfterSeconds(e);
  if (retryAfter) reply.header('retry-after', retryAfter);
  return reply
    .code(e.httpStatus)
    .header('content-type', 'application/json; charset=utf-8')
    .send({ error: e.toJSON(), meta: { timestamp: new Date().toISOString(), requestId } });
}

/** Hashed assets never change; everything else is checked each time. */
function cacheHeaders(res: { setHeader(name: string, value: string): void }, path: string): void {
  res.setHeader('cache-control', /[\\/]assets[\\/]/.test(path) ? 'public, max-age=31536000, immutable' : 'no-cache');
}

/** `/api/v1/projects/{id}` → `/api/v1/projects/:id` (a literal `:` is escaped as `::`). */
export function toFastifyPath(template: string): { path: string; params: Map<string, string> } {
  const params = new Map<string, string>();
  let path = '';
  const re = /\{([A-Za-z0-9_.]+)\}/g;
  let last = 0;
  for (let m = re.exec(template); m; m = re.exec(template)) {
    path += template.slice(last, m.index).replace(/:/g, '::');
    const field = m[1]!;
    const param = field.replace(/\./g, '__');
    params.set(param, field);
    path += `:${param}`;
    last = m.index + m[0].length;
  }
  path += template.slice(last).replace(/:/g, '::');
  if (path.includes('{')) throw Errors.PLUGIN_INVALID(`HTTP path template ${template} uses a pattern the gateway does not support; use plain {field} segments.`);
  return { path, params };
}

/** Answers of this type are served as raw bytes with their own content type (downloads, exports). */
const HTTP_BODY = '.google.api.HttpBody';

const snakeToCamel = (s: string) => s.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/** Sets `a.b.c` in a nested object. */
function setPath(obj: Record<string, unknown>, dotted: string, value: unknown): void {
  const keys = dotted.split('.');
  let cur = obj;
  for (const k of keys.slice(0, -1)) cur = (cur[k] ??= {}) as Record<string, unknown>;
  cur[keys.at(-1)!] = value;
}

function fieldAt(type: protobuf.Type, dotted: string): protobuf.Field | undefined {
  let t: protobuf.Type | undefined = type;
  let f: protobuf.Field | undefined;
  for (const k of dotted.split('.')) {
    f = t?.fields[snakeToCamel(k)];
    if (!f) return undefined;
    f.resolve();
    t = f.resolvedType && 'fields' in f.resolvedType ? (f.resolvedType as protobuf.Type) : undefined;
  }
  return f;
}

/**
 * The HTTP/JSON face: routes come from each method's `(google.api.http)`
 * annotation and call the same handlers as gRPC, through RpcHost.invoke.
 * Server streams are served as Server-Sent Events.
 */
export class HttpGateway {
  readonly app: FastifyInstance;

  constructor(
    private readonly host: RpcHost,
    private readonly logger: Logger,
    opts: HttpGatewayOptions,
  ) {
    this.app = Fastify({
      logger: false,
      bodyLimit: opts.bodyLimitBytes,
      genReqId: (req) => {
        const given = req.headers['x-request-id'];
        return typeof given === 'string' && /^[\w.-]{1,128}$/.test(given) ? given : randomUUID();
      },
      // Malformed URLs and the like, before routing.
      frameworkErrors: (err, req, reply) => {
        sendError(reply, Errors.VALIDATION(`The request URL or headers are malformed (${err.message}). Fix the request.`), String(req.id));
      },
      forceCloseConnections: 'idle',
      return503OnClosing: true,
      ...(opts.timeBounds && httpTimeBounds(opts.timeBounds)),
    });
    if (opts.timeBounds) answerRequestTimeouts(this.app.server, opts.timeBounds);
    opts.connections?.guard(this.app.server, 'http');
    this.app.setErrorHandler((err: Error & { code?: string; statusCode?: number }, req, reply) => {
      sendError(reply, this.mapError(err), String(req.id));
    });
    // Bodies are JSON and nothing else: without Fastify's text/plain parser, any other content type is a 415.
    // A "__proto__" key is valid JSON: parsed as the own property JSON.parse makes of it, then refused by
    // name in checkJson (Fastify's default calls it "not valid JSON", which tells the caller nothing).
    this.app.removeAllContentTypeParsers();
    this.app.addContentTypeParser('application/json', { parseAs: 'string' }, this.app.getDefaultJsonParser('ignore', 'ignore'));
    // node:http refuses a request it cannot parse — above all a request line and headers over its
    // limit (a long URL) — before Fastify has a request; Fastify's answer to that has no envelope.
    this.app.server.prependListener('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      if (err.code === 'ECONNRESET' || err.code === 'ERR_HTTP_REQUEST_TIMEOUT' || socket.destroyed) return; // gone, or answered by answerRequestTimeouts
      const e =
        err.code === 'HPE_HEADER_OVERFLOW'
          ? Errors.HEADERS_TOO_LARGE(
              `The request line and headers are larger than this server accepts (${maxHeaderSize / 1024} KiB). Shorten the URL or headers, e.g. split a long list of values over several requests.`,
            )
          : Errors.VALIDATION(`The request is not valid HTTP/1.1 (${err.code ?? err.message}). Fix the client.`);
      if (socket.writable) socket.write(rawHttpError(e));
      socket.destroy();
    });
    const uiDir = opts.uiDir;
    const shell = (reply: FastifyReply) => reply.header('cache-control', 'no-cache').type('text/html; charset=utf-8').sendFile('index.html');
    if (uiDir) {
      void this.app.register(fastifyStatic, { root: uiDir, prefix: '/', wildcard: true, index: false, cacheControl: false, setHeaders: cacheHeaders });
      this.app.get('/', (_req, reply) => shell(reply));
    }
    this.app.setNotFoundHandler((req, reply) => {
      // A page of the UI (a deep link or a reload): the shell routes it.
      if (uiDir && req.method === 'GET' && !req.url.startsWith('/api/') && !req.url.startsWith('/ui/')) return shell(reply);
      sendError(reply, Errors.ROUTE_NOT_FOUND(`No route ${req.method} ${req.url.split('?')[0]}. See the API reference in docs/api.md for the routes this server serves.`), String(req.id));
    });
    // A callback hook, not an async one: it runs on every answer.
    this.app.addHook('onSend', (req, reply, payload, done) => {
      reply.header('x-request-id', String(req.id));
      done(null, payload);
    });
    // Same-origin calls (the server's own UI) need no CORS; other origins only when listed
    // (with none listed, no call pays for the CORS hooks: no answer carries a grant anyway).
    const allowed = new Set(opts.corsOrigins ?? []);
    if (allowed.size) void this.app.register(cors, {
      origin: (origin, cb) => cb(null, origin !== undefined && allowed.has(origin)),
      methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
      allowedHeaders: ['authorization', 'content-type', 'x-request-id'],
      exposedHeaders: ['x-request-id', 'retry-after'],
      maxAge: 600,
    });
    const modules = opts.uiModules ?? [];
    // Fixed once the plugins have registered: built once.
    const byPlugin = new Map<string, string[]>();
    for (const m of modules) byPlugin.set(m.plugin, [...(byPlugin.get(m.plugin) ?? []), `/ui/plugins/${m.plugin}/${basename(m.path)}`]);
    const manifest = { plugins: [...byPlugin].map(([plugin, list]) => ({ plugin, modules: list })) };
    this.app.get('/api/v1/ui/manifest', async () => manifest);
    this.app.get<{ Params: { plugin: string; file: string } }>('/ui/plugins/:plugin/:file', async (req, reply) => {
      const m = modules.find((x) => x.plugin === req.params.plugin && basename(x.path) === req.params.file);
      if (!m) return sendError(reply, Errors.ROUTE_NOT_FOUND(`No UI module ${req.url}. GET /api/v1/ui/manifest lists them.`), String(req.id));
      return reply.header('cache-control', 'no-cache').type('text/javascript; charset=utf-8').send(await readFile(m.path));
    });
    this.app.get('/healthz', async (_req, reply) => {
      const serving = !this.host.isDraining;
      return reply.code(serving ? 200 : 503).send({ status: serving ? 'SERVING' : 'NOT_SERVING' });
    });
  }

  private mapError(err: Error & { code?: string; statusCode?: number }): WldbError {
    switch (err.code) {
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return Errors.BODY_TOO_LARGE(`The request body is larger than this server's limit. Send less per request (split the batch) or raise --body-limit / WANLLMDB_BODY_LIMIT.`);
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return Errors.UNSUPPORTED_MEDIA_TYPE('The request body must be JSON. Send it with "Content-Type: application/json".');
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
        return Errors.MALFORMED_JSON('The request says it carries JSON but its body is empty. Send a JSON object, e.g. {}.');
      case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
        return Errors.VALIDATION('The Content-Length header does not match the body. Fix the client.');
    }
    if (err instanceof SyntaxError || (err.statusCode === 400 && /JSON/i.test(err.message))) {
      return Errors.MALFORMED_JSON(`The request body is not valid JSON (${err.message}). Fix the body and retry.`);
    }
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500 && !('grpcStatus' in err)) {
      return Errors.VALIDATION(`The request was refused: ${err.message}.`);
    }
    const e = toWldbError(err);
    if (e.code === Errors.INTERNAL.code) this.logger.error({ err }, 'unexpected error in the HTTP gateway');
    return e;
  }

  /**
   * Adds a route for every `(google.api.http)` binding of every mounted
   * method. A client stream is served over HTTP only when its binding's
   * `body` names a bytes field (an upload): the raw request body, streamed.
   */
  mountRoutes(): void {
    for (const m of this.host.mounted()) {
      for (const route of m.httpRoutes) {
        if (!m.requestStream) this.addRoute(m, route);
        else if (route.body && route.body !== '*' && fieldAt(m.requestType, route.body)?.type === 'bytes') this.addUploadRoute(m, route);
        else throw Errors.PLUGIN_INVALID(`${m.fullName} is a client stream bound to ${route.verb} ${route.template}: over HTTP a client stream is an upload, so its binding's body must name a bytes field (body: "data").`);
      }
    }
    // Uploads read their body as it arrives; any other route refuses it (buildRequest).
    if (this.uploadRoutes) this.app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));
  }

  /**
   * A client stream over HTTP: the path and query give the first message,
   * and the raw request body (application/octet-stream, never buffered
   * whole) arrives as the `route.body` bytes field of it and of the
   * messages after it, one per chunk read.
   */
  private addUploadRoute(m: MountedMethod, route: HttpRoute): void {
    const { path, params } = toFastifyPath(route.template);
    const type = m.requestType;
    const dataField = snakeToCamel(route.body!);
    const boundFields = new Set([...params.values()].map((f) => snakeToCamel(f.split('.')[0]!)));
    boundFields.add(dataField);
    this.uploadRoutes = true;
    this.app.route({
      method: route.verb,
      url: path,
      handler: async (req: FastifyRequest, reply: FastifyReply) => {
        const body = req.body;
        try {
          return await this.serveUpload(m, route, params, boundFields, dataField, req, reply);
        } finally {
          // Refused before its last byte (a wrong artifact, too large): the rest is never read, so the
          // connection cannot carry another request: it closes once the answer is out.
          if (body instanceof Readable && !body.readableEnded) {
            reply.header('connection', 'close');
            reply.raw.once('finish', () => req.raw.destroy());
          }
        }
      },
    });
  }

  private addRoute(m: MountedMethod, route: HttpRoute): void {
    const { path, params } = toFastifyPath(route.template);
    const type = m.requestType;
    const boundFields = new Set([...params.values()].map((f) => snakeToCamel(f.split('.')[0]!)));
    if (route.body && route.body !== '*') boundFields.add(snakeToCamel(route.body));
    this.app.route({
      method: route.verb,
      url: path,
      handler: async (req: FastifyRequest, reply: FastifyReply) => {
        const request = this.buildRequest(m, route, type, params, boundFields, req, req.body);
        const gone = new AbortController();
        // The response's 'close' comes once it is sent or its connection is gone; the request's
        // comes as soon as its body is read, long before a unary call is answered.
        reply.raw.once('close', () => {
          if (!reply.raw.writableFinished) gone.abort();
        });
        const origin = { transport: 'http' as const, headers: req.headers as Record<string, string | undefined>, requestId: String(req.id), address: req.ip, signal: gone.signal };
        if (m.responseType.fullName === HTTP_BODY) return this.serveRaw(m, request, origin, req, reply);
        if (m.responseStream) return this.serveSse(m, request, origin, req, reply);
        const result = await this.host.invoke(m, request, origin);
        const empty = m.responseType.fullName === '.google.protobuf.Empty';
        const status = m.httpStatus || (empty ? 204 : 200);
        if (status === 204) return reply.code(204).send();
        return reply.code(status).send(toJsonForm(m.responseType, result));
      },
    });
  }

  private async serveUpload(m: MountedMethod, route: HttpRoute, params: Map<string, string>, boundFields: Set<string>, dataField: string, req: FastifyRequest, reply: FastifyReply) {
    const type = m.requestType;
    const body = req.body;
    if (!(body instanceof Readable)) {
      throw Errors.UNSUPPORTED_MEDIA_TYPE(`${route.verb} ${route.template} takes the raw bytes as its body. Send them with "Content-Type: application/octet-stream".`);
    }
    const head = this.buildRequest(m, { ...route, body: '' }, type, params, boundFields, req, undefined) as Record<string, unknown>;
    const gone = new AbortController();
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) gone.abort();
    });
    req.raw.once('aborted', () => gone.abort());
    async function* messages() {
      let first = true;
      for await (const chunk of body as AsyncIterable<Buffer>) {
        yield first ? { ...head, [dataField]: chunk } : { ...normalize(type, {}), [dataField]: chunk };
        first = false;
      }
      if (first) yield { ...head, [dataField]: new Uint8Array(0) };
    }
    const origin = { transport: 'http' as const, headers: req.headers as Record<string, string | undefined>, requestId: String(req.id), address: req.ip, signal: gone.signal };
    const result = await this.host.invoke(m, messages(), origin);
    return reply.code(m.httpStatus || 200).send(toJsonForm(m.responseType, result));
  }

  /** Set once an upload route exists: octet-stream bodies are then passed on as streams. */
  private uploadRoutes = false;

  private buildRequest(
    m: MountedMethod,
    route: HttpRoute,
    type: protobuf.Type,
    params: Map<string, string>,
    boundFields: Set<string>,
    req: FastifyRequest,
    /** The parsed body: undefined when none was sent (an upload's bytes are not it). */
    body: unknown,
  ): unknown {
    const problems: ErrorDetail[] = [];
    let merged: Record<string, unknown> = {};
    // undefined: no body was sent; null: the body was the JSON text `null`, which is not an object.
    if (body instanceof Readable) throw Errors.UNSUPPORTED_MEDIA_TYPE('The request body must be JSON. Send it with "Content-Type: application/json".');
    if (route.body === '*') {
      if (body !== undefined) {
        if (body === null || typeof body !== 'object' || Array.isArray(body)) {
          throw Errors.VALIDATION(`The request body must be a JSON object, not ${body === null ? 'null' : Array.isArray(body) ? 'an array' : `a ${typeof body}`}. Wrap the values in {…} (send {} for none).`, [
            { field: '(body)', message: 'not an object' },
          ]);
        }
        merged = { ...(body as Record<string, unknown>) };
      }
    } else if (route.body) {
      if (body !== undefined) merged[route.body] = body;
    } else if (body !== undefined && !(typeof body === 'object' && body !== null && Object.keys(body).length === 0)) {
      throw Errors.VALIDATION(`${route.verb} ${route.template} takes no body. Send the values as query parameters.`, [{ field: '(body)', message: 'not allowed' }]);
    }
    // Query parameters fill fields the path and body don't (google.api.http semantics).
    if (route.body !== '*') {
      for (const [key, raw] of Object.entries((req.query ?? {}) as Record<string, string | string[]>)) {
        const field = fieldAt(type, key);
        if (!field) {
          problems.push({ field: key, message: `unknown query parameter; ${m.name} takes ${Object.keys(type.fields).filter((f) => !boundFields.has(f)).join(', ') || 'none'}` });
          continue;
        }
        if (boundFields.has(snakeToCamel(key.split('.')[0]!))) {
          problems.push({ field: key, message: 'is set by the path or body, not a query parameter' });
          continue;
        }
        const texts = (Array.isArray(raw) ? raw : [raw]).flatMap((t) => (field.repeated ? t.split(',') : [t]));
        setPath(merged, key, field.repeated ? texts.map((t) => coerceText(field, t)) : coerceText(field, texts.at(-1)!));
      }
    }
    for (const [param, fieldPath] of params) {
      const text = (req.params as Record<string, string>)[param] ?? '';
      const field = fieldAt(type, fieldPath);
      if (!field) throw Errors.PLUGIN_INVALID(`Route ${route.template} binds {${fieldPath}}, which ${type.name} does not have.`);
      setPath(merged, fieldPath, coerceText(field, text));
    }
    const checked = checkJson(type, merged);
    problems.push(...checked.problems);
    assertNoProblems(problems, 'The request');
    return normalize(type, checked.value);
  }

  private async serveSse(m: MountedMethod, request: unknown, origin: Parameters<RpcHost['invoke']>[2], req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const raw = reply.raw;
    reply.hijack();
    raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-request-id': String(req.id),
    });
    raw.write(': stream open\n\n');
    const write = (text: string) =>
      new Promise<void>((resolve) => {
        if (raw.destroyed || raw.writableEnded) return resolve();
        if (raw.write(text)) resolve();
        else raw.once('drain', () => resolve());
      });
    const keepAlive = setInterval(() => void write(': ping\n\n'), 15_000);
    try {
      await this.host.invoke(m, request, origin, (msg) => write(`data: ${JSON.stringify(toJsonForm(m.responseType, msg))}\n\n`));
      await write('event: end\ndata: {}\n\n');
    } catch (err) {
      const e = toWldbError(err);
      await write(`event: error\ndata: ${JSON.stringify({ error: e.toJSON() })}\n\n`);
    } finally {
      clearInterval(keepAlive);
      raw.end();
    }
  }

  /**
   * google.api.HttpBody answers: the first message's content type becomes the
   * response's, and each message's bytes are written as they come (a stream
   * of HttpBody is one download). An error before the first byte is an
   * ordinary error envelope; after it, the connection is cut so the client
   * sees an incomplete download rather than a silently truncated one.
   */
  private async serveRaw(m: MountedMethod, request: unknown, origin: Parameters<RpcHost['invoke']>[2], req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const raw = reply.raw;
    let started = false;
    // What the handler set (CallContext.respond): a 206 with its Content-Range, a 302 to a link, a length.
    let answer: HttpAnswer = {};
    const head = (contentType: string | undefined) => {
      // Headers first: one they cannot carry throws here, while the answer can still be an error envelope.
      raw.writeHead(answer.status ?? 200, { ...answer.headers, 'content-type': answer.headers?.['content-type'] ?? (contentType || 'application/octet-stream'), 'x-request-id': String(req.id) });
      reply.hijack();
      started = true;
    };
    const send = async (msg: unknown) => {
      const body = msg as { contentType?: string; data?: Uint8Array };
      if (!started) head(body.contentType);
      if (body.data?.length && !raw.destroyed && !raw.write(body.data)) {
        // A socket closed while full never drains: its close ends the wait too.
        await new Promise<void>((resolve) => {
          const done = () => (raw.off('drain', done), raw.off('close', done), resolve());
          raw.once('drain', done);
          raw.once('close', done);
        });
      }
    };
    const respond = (a: HttpAnswer) => {
      if (started) throw Errors.INTERNAL(`${m.fullName} set its HTTP answer after its first bytes were sent.`);
      answer = { status: a.status ?? answer.status, headers: { ...answer.headers, ...a.headers } };
    };
    try {
      if (m.responseStream) await this.host.invoke(m, request, { ...origin, respond }, send);
      else await send(await this.host.invoke(m, request, { ...origin, respond }));
      if (!started) head(undefined);
      raw.end();
    } catch (err) {
      if (!started) throw err;
      raw.destroy(toWldbError(err));
    }
  }

  async listen(host: string, port: number): Promise<number> {
    await this.app.listen({ host, port });
    const addr = this.app.server.address();
    return typeof addr === 'object' && addr ? addr.port : port;
  }

  /**
   * Stops accepting connections; waits for requests in flight. A keep-alive
   * connection whose last answer was still being flushed when the close
   * began (a client that has its Content-Length of bytes moves on before the
   * server's write completes) turns idle only afterwards: it is closed then,
   * not left open until its keep-alive timeout.
   */
  async close(): Promise<void> {
    const closing = this.app.close();
    const sweep = setInterval(() => this.app.server.closeIdleConnections(), 50);
    try {
      await closing;
    } finally {
      clearInterval(sweep);
    }
  }
}
