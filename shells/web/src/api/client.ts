/**
 * The one way the UI talks to the server: JSON over `/api/v1`, the bearer
 * token of the session, one refresh-and-retry on an expired access token,
 * and Server-Sent Events read through fetch (EventSource cannot send an
 * Authorization header).
 */

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

export class Api {
  private tokens: Tokens | undefined;
  private refreshing: Promise<boolean> | undefined;
  private readonly listeners = new Set<Listener>();

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

  setTokens(t: { accessToken: string; refreshToken: string; expiresIn: number } | undefined): void {
    this.tokens = t && { accessToken: t.accessToken, refreshToken: t.refreshToken, expiresAt: Date.now() + t.expiresIn * 1000 };
    if (this.tokens) this.storage?.setItem(STORAGE_KEY, JSON.stringify(this.tokens));
    else this.storage?.removeItem(STORAGE_KEY);
    for (const fn of this.listeners) fn();
  }

  /** `off` when the server has no accounts (no auth routes), else `required`. */
  async authMode(): Promise<AuthMode> {
    const res = await fetch(`${this.base}/api/v1/auth/me`, { headers: this.headers() });
    if (res.status === 404) return 'off';
    return 'required';
  }

  async login(email: string, password: string): Promise<void> {
    const r = await this.post<{ data: { accessToken: string; refreshToken: string; expiresIn: number } }>('/api/v1/auth/login', { email, password }, { anonymous: true });
    this.setTokens(r.data);
  }

  async logout(everywhere = false): Promise<void> {
    try {
      if (this.tokens) await this.post('/api/v1/auth/logout', { everywhere });
    } finally {
      this.setTokens(undefined);
    }
  }

  get<T = any>(path: string, query?: Record<string, string | number | boolean | undefined>): Promise<T> {
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

  async request<T>(method: string, path: string, body?: unknown, opts: { anonymous?: boolean; signal?: AbortSignal } = {}): Promise<T> {
    const init: RequestInit = { method, body: body === undefined ? undefined : JSON.stringify(body), signal: opts.signal };
    return parse<T>(await this.send(path, init, body === undefined ? {} : { 'content-type': 'application/json' }, opts.anonymous));
  }

  /** GETs a file's bytes with the session's credentials (a plain link cannot send them); rejects with the server's error. */
  async download(path: string): Promise<Blob> {
    const res = await this.send(path, {});
    if (!res.ok) await parse(res);
    return res.blob();
  }

  /** One fetch with the session's token (unless anonymous), sent again after a refresh on 401; a network failure is an ApiError. */
  private async send(path: string, init: RequestInit, headers: Record<string, string> = {}, anonymous = false): Promise<Response> {
    const once = () =>
      fetch(this.base + path, { ...init, headers: { ...(anonymous ? {} : this.headers()), ...headers } }).catch((e: unknown) => {
        throw new ApiError(0, 'NETWORK', `The server cannot be reached (${e instanceof Error ? e.message : String(e)}).`);
      });
    let res = await once();
    if (res.status === 401 && !anonymous && (await this.refresh())) res = await once();
    return res;
  }

  /**
   * Reads a server stream (SSE): `onMessage` gets each `data:` JSON. Resolves
   * when the stream ends or `signal` aborts; rejects with the stream's error.
   * `onOpen` runs once the server has subscribed (its first comment line).
   */
  async stream<T = any>(path: string, onMessage: (msg: T) => void, signal: AbortSignal, onOpen?: () => void): Promise<void> {
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
          if (data) onMessage(JSON.parse(data) as T);
        }
      }
    } catch (e) {
      if (signal.aborted) return;
      throw e;
    } finally {
      reader.releaseLock();
    }
  }

  private headers(): Record<string, string> {
    return this.tokens ? { authorization: `Bearer ${this.tokens.accessToken}` } : {};
  }

  /** One refresh at a time; false (and signed out) when the refresh token is spent or expired. */
  private refresh(): Promise<boolean> {
    const t = this.tokens;
    if (!t) return Promise.resolve(false);
    this.refreshing ??= (async () => {
      try {
        const res = await fetch(`${this.base}/api/v1/auth/refresh`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ refreshToken: t.refreshToken }),
        });
        if (!res.ok) {
          this.setTokens(undefined);
          return false;
        }
        this.setTokens(((await res.json()) as { data: { accessToken: string; refreshToken: string; expiresIn: number } }).data);
        return true;
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }
}

export function withQuery(path: string, query?: Record<string, string | number | boolean | undefined>): string {
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
