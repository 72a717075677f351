/**
 * The one way the UI talks to the server: JSON over HTTP, the bearer token
 * of the session, one refresh-and-retry on an expired access token, and
 * Server-Sent Events read through fetch (EventSource cannot send an
 * Authorization header). `Api` is the transport of the clients generated
 * from the .proto contract (api/services.ts); its path-based methods
 * (`get`, `post`, …) are for plugin UI modules (`window.wanllmdb.api`) and
 * the kernel's routes outside the contract.
 */
import { auth, httpClient, type CallOptions, type HttpBinding, type HttpTransport } from '@wanllmdb/proto/client';
import { httpRoute } from '@wanllmdb/proto/client';

export interface ErrorDetail {
  field?: string;
  message: string;
}

/** An error envelope from the server ({"error":{code,message,details}}), or a network failure. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: ErrorDetail[] = [],
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/**
 * The `data` of an answer. The contract declares message fields optional,
 * but the server always sends `data` with a success; an answer without it
 * is the server's fault, reported as such rather than met later as a crash.
 */
export function dataOf<T>(answer: { data?: T }): T {
  if (answer.data === undefined) throw new ApiError(502, 'NO_DATA', 'The server answered without the data it should send. Reload the page; if it happens again, report it with the server log.');
  return answer.data;
}

export interface Tokens {
  accessToken: string;
  refreshToken: string;
  /** Epoch ms when the access token expires. */
  expiresAt: number;
}

/** How the server wants callers to sign in: `required` (a server with accounts) or `off` (embedded / --no-auth). */
export type AuthMode = 'required' | 'off';

const STORAGE_KEY = 'wanllmdb.session';
type Listener = () => void;
type Query = Record<string, string | number | boolean | undefined>;
interface RequestOptions {
  /** Sent without the session's token, and never refreshed (sign-up, sign-in, the refresh itself). */
  anonymous?: boolean;
  signal?: AbortSignal;
}

export class Api implements HttpTransport {
  private tokens: Tokens | undefined;
  private refreshing: Promise<boolean> | undefined;
  private readonly listeners = new Set<Listener>();

  /** The same server without the session: what sign-up and sign-in go through (a stale token must not refuse them). */
  readonly anonymous: HttpTransport = {
    send: async (verb, path, body, options) => (await this.request<unknown>(verb, path, body, { anonymous: true, signal: options?.signal })) ?? {},
  };
  private readonly authAnonymous = httpClient(auth.v1.AuthService, this.anonymous);
  private readonly authSession = httpClient(auth.v1.AuthService, this);

  constructor(
    private readonly base = '',
    private readonly storage: Storage | undefined = globalThis.localStorage,
  ) {
    try {
      const raw = this.storage?.getItem(STORAGE_KEY);
      if (raw) this.tokens = JSON.parse(raw) as Tokens;
    } catch {
      this.tokens = undefined;
    }
  }

  get signedIn(): boolean {
    return !!this.tokens;
  }

  /** Called when the session starts or ends (sign-in, sign-out, refresh failed). */
  onSessionChange(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  setTokens(t: auth.v1.TokenPair | undefined): void {
    this.tokens = t && { accessToken: t.accessToken, refreshToken: t.refreshToken, expiresAt: Date.now() + t.expiresIn * 1000 };
    if (this.tokens) this.storage?.setItem(STORAGE_KEY, JSON.stringify(this.tokens));
    else this.storage?.removeItem(STORAGE_KEY);
    for (const fn of this.listeners) fn();
  }

  /** `off` when the server has no accounts (no auth routes), else `required`. */
  async authMode(): Promise<AuthMode> {
    const res = await fetch(this.base + httpRoute(auth.v1.AuthService, 'getMe', {}).path, { headers: this.headers() });
    if (res.status === 404) return 'off';
    return 'required';
  }

  async login(email: string, password: string): Promise<void> {
    this.setTokens(dataOf(await this.authAnonymous.login({ email, password })));
  }

  async logout(everywhere = false): Promise<void> {
    try {
      if (this.tokens) await this.authSession.logout({ everywhere });
    } finally {
      this.setTokens(undefined);
    }
  }

  // ------------------------------------------------------------ HttpTransport (the generated clients)

  /** One call with the session (see `request`); a 204 No Content answer is `{}`. */
  async send(verb: HttpBinding['verb'], path: string, body: unknown, options?: CallOptions): Promise<unknown> {
    return (await this.request<unknown>(verb, path, body, { signal: options?.signal })) ?? {};
  }

  /** A server stream as an AsyncIterable (what generated clients' stream methods return); ends with the stream or `signal`. */
  events(path: string, options?: CallOptions): AsyncIterable<unknown> {
    return this.readStream(path, options?.signal);
  }

  // ------------------------------------------------------------ by path (plugin UI modules, kernel routes)

  get<T = any>(path: string, query?: Query): Promise<T> {
    return this.request<T>('GET', withQuery(path, query));
  }
  post<T = any>(path: string, body: unknown = {}, opts: { anonymous?: boolean } = {}): Promise<T> {
    return this.request<T>('POST', path, body, opts);
  }
  put<T = any>(path: string, body: unknown = {}): Promise<T> {
    return this.request<T>('PUT', path, body);
  }
  patch<T = any>(path: string, body: unknown = {}): Promise<T> {
    return this.request<T>('PATCH', path, body);
  }
  del<T = any>(path: string): Promise<T> {
    return this.request<T>('DELETE', path);
  }

  async request<T>(method: string, path: string, body?: unknown, opts: RequestOptions = {}): Promise<T> {
    const init: RequestInit = { method, body: body === undefined ? undefined : JSON.stringify(body), signal: opts.signal };
    return parse<T>(await this.fetchWithSession(path, init, body === undefined ? {} : { 'content-type': 'application/json' }, opts.anonymous));
  }

  /**
   * GETs a file's bytes with the session's credentials (a plain link cannot
   * send them); rejects with the server's error. With `maxBytes`, only the
   * first bytes (a preview): asked for as a range and cut there, the rest of
   * the answer never read.
   */
  async download(path: string, opts: { maxBytes?: number; signal?: AbortSignal } = {}): Promise<Blob> {
    const max = opts.maxBytes;
    const res = await this.fetchWithSession(path, { signal: opts.signal }, max === undefined ? {} : { range: `bytes=0-${max - 1}` });
    if (res.status === 416) return new Blob([]); // a range of an empty file: nothing to show
    if (!res.ok) await parse(res);
    if (max === undefined || !res.body) return res.blob();
    const parts: Uint8Array[] = [];
    let have = 0;
    const reader = res.body.getReader();
    try {
      while (have < max) {
        const { value, done } = await reader.read();
        if (done) break;
        parts.push(value.subarray(0, max - have));
        have += Math.min(value.length, max - have);
      }
    } finally {
      reader.cancel().catch(() => undefined);
    }
    return new Blob(parts as BlobPart[]);
  }

  /**
   * Reads a server stream (SSE): `onMessage` gets each `data:` JSON. Resolves
   * when the stream ends or `signal` aborts; rejects with the stream's error.
   * `onOpen` runs once the server has subscribed (its first comment line).
   */
  async stream<T = any>(path: string, onMessage: (msg: T) => void, signal: AbortSignal, onOpen?: () => void): Promise<void> {
    for await (const msg of this.readStream(path, signal, onOpen)) onMessage(msg as T);
  }

  /** One fetch with the session's token (unless anonymous), sent again after a refresh on 401; a network failure is an ApiError. */
  private async fetchWithSession(path: string, init: RequestInit, headers: Record<string, string> = {}, anonymous = false): Promise<Response> {
    const once = () =>
      fetch(this.base + path, { ...init, headers: { ...(anonymous ? {} : this.headers()), ...headers } }).catch((e: unknown) => {
        throw new ApiError(0, 'NETWORK', `The server cannot be reached (${e instanceof Error ? e.message : String(e)}).`);
      });
    let res = await once();
    if (res.status === 401 && !anonymous && (await this.refresh())) res = await once();
    return res;
  }

  /** The SSE reader: each `data:` JSON in turn; `event: end` ends it, `event: error` throws the server's error, an abort ends it quietly. */
  private async *readStream(path: string, signal?: AbortSignal, onOpen?: () => void): AsyncGenerator<unknown, void> {
    const open = () => fetch(this.base + path, { headers: { ...this.headers(), accept: 'text/event-stream' }, signal });
    let res = await open();
    if (res.status === 401 && (await this.refresh())) res = await open();
    if (!res.ok || !res.body) return void (await parse(res));
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    let opened = false;
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buf += value;
        let cut: number;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          if (!opened) (opened = true), onOpen?.();
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = block
            .split('\n')
            .filter((l) => l.startsWith('data: '))
            .map((l) => l.slice(6))
            .join('\n');
          if (event === 'end') return;
          if (event === 'error') {
            const e = (JSON.parse(data) as { error: { code: string; message: string; details: ErrorDetail[] } }).error;
            throw new ApiError(500, e.code, e.message, e.details);
          }
          if (data) yield JSON.parse(data) as unknown;
        }
      }
    } catch (e) {
      if (signal?.aborted) return;
      throw e;
    } finally {
      // A reader that stops early (a `break` in for-await) closes the connection.
      reader.cancel().catch(() => undefined);
    }
  }

  private headers(): Record<string, string> {
    return this.tokens ? { authorization: `Bearer ${this.tokens.accessToken}` } : {};
  }

  /**
   * One refresh at a time; false (and signed out) when the refresh token is
   * spent or expired. Sent anonymously, so a refused refresh is not itself
   * refreshed; a network failure keeps the session (the server may be back).
   */
  private refresh(): Promise<boolean> {
    const t = this.tokens;
    if (!t) return Promise.resolve(false);
    this.refreshing ??= (async () => {
      try {
        const r = await this.authAnonymous.refresh({ refreshToken: t.refreshToken });
        this.setTokens(dataOf(r));
        return true;
      } catch (e) {
        if (e instanceof ApiError && e.code === 'NETWORK') throw e;
        this.setTokens(undefined);
        return false;
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }
}

/** `path` with the query's non-empty values appended (`withQuery('/projects', { page: 2 })` → `/projects?page=2`). */
export function withQuery(path: string, query?: Query): string {
  if (!query) return path;
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `${path}${path.includes('?') ? '&' : '?'}${s}` : path;
}

async function parse<T>(res: Response): Promise<T> {
  const text = await res.text();
  const json = text ? (JSON.parse(text) as unknown) : undefined;
  if (!res.ok) {
    const e = (json as { error?: { code: string; message: string; details?: ErrorDetail[] } } | undefined)?.error;
    throw new ApiError(res.status, e?.code ?? `HTTP_${res.status}`, e?.message ?? `${res.status} ${res.statusText}`, e?.details ?? []);
  }
  return json as T;
}

/** The app's one client. */
export const api = new Api();
