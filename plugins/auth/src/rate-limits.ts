import { Errors, setting, type WldbError } from '@wanllmdb/core';
import cluster from 'node:cluster';
import { RateLimiterCluster, RateLimiterClusterMaster, RateLimiterMemory, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';


/**
 * In-memory limits, one count per server (the worker processes of one
 * `wanllmdb serve` share the primary's; separate replicas each enforce
 * their own). Calls: per API key or user, and per address, with run ingest
 * (methods marked `(wanllmdb.auth.v1.ingest)`: metric batches, console
 * lines, heartbeats) in budgets of its own, so ordinary calls on a key (a
 * sweep's run lists, a dashboard's polling) never starve the runs logging
 * with it, and a busy ingest never locks the key out of everything else. A
 * client stream (StreamMetrics) counts once, however many batches it
 * carries: charging it per batch would refuse a stream after part of it is
 * stored. Sign-in: failed logins per account
 * and per address, registrations per address.
 */
export interface RateLimitOptions {
  /** Authenticated calls per minute per API key / user (WANLLMDB_RATE_LIMIT_PER_MIN), ingest aside. */
  callsPerMinute: number;
  /** Authenticated calls per minute per address (WANLLMDB_RATE_LIMIT_PER_ADDRESS_PER_MIN), ingest aside. */
  callsPerAddressPerMinute: number;
  /** Ingest calls per minute per API key / user (WANLLMDB_INGEST_RATE_LIMIT_PER_MIN). */
  ingestPerMinute: number;
  /** Ingest calls per minute per address (WANLLMDB_INGEST_RATE_LIMIT_PER_ADDRESS_PER_MIN). */
  ingestPerAddressPerMinute: number;
  /** The length of the call and ingest windows, in seconds: 60 ("per minute"); tests shorten it. */
  windowSeconds: number;
  /** Failed logins per account within the window before it is locked for the rest of it. */
  loginFailuresPerAccount: number;
  loginFailuresPerAddress: number;
  loginWindowSeconds: number;
  registrationsPerAddress: number;
  registrationWindowSeconds: number;
}

export const DEFAULT_RATE_LIMITS: RateLimitOptions = {
  callsPerMinute: 6000,
  callsPerAddressPerMinute: 12_000,
  // A run sends a few streams, one log call and at most one heartbeat per second: a sweep of 100 runs on one key fits many times over.
  ingestPerMinute: 60_000,
  ingestPerAddressPerMinute: 120_000,
  windowSeconds: 60,
  loginFailuresPerAccount: 10,
  loginFailuresPerAddress: 50,
  loginWindowSeconds: 15 * 60,
  registrationsPerAddress: 20,
  registrationWindowSeconds: 60 * 60,
};

/**
 * The limits a server operator sets (the rest are fixed, or set in code by
 * tests): plugin settings of auth. `overrides` given in code win over the
 * environment.
 */
export function rateLimitSettings(overrides: Partial<RateLimitOptions> = {}) {
  const perMinute = (env: string, option: 'callsPerMinute' | 'callsPerAddressPerMinute' | 'ingestPerMinute' | 'ingestPerAddressPerMinute', doc: string) =>
    setting.int({ env, default: DEFAULT_RATE_LIMITS[option], min: 1, max: 1_000_000_000, doc, ...(overrides[option] !== undefined ? { value: overrides[option] } : {}) });
  return {
    callsPerMinute: perMinute('WANLLMDB_RATE_LIMIT_PER_MIN', 'callsPerMinute', 'authenticated calls per minute per API key or user, run ingest aside'),
    callsPerAddressPerMinute: perMinute('WANLLMDB_RATE_LIMIT_PER_ADDRESS_PER_MIN', 'callsPerAddressPerMinute', 'authenticated calls per minute per client address, run ingest aside'),
    ingestPerMinute: perMinute('WANLLMDB_INGEST_RATE_LIMIT_PER_MIN', 'ingestPerMinute', 'run ingest calls (metrics, logs, heartbeats) per minute per API key or user'),
    ingestPerAddressPerMinute: perMinute('WANLLMDB_INGEST_RATE_LIMIT_PER_ADDRESS_PER_MIN', 'ingestPerAddressPerMinute', 'run ingest calls per minute per client address'),
  };
}

const retryAfter = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

/** RATE_LIMITED with the wait in its message and `retryAfter` detail; `hint` follows the wait. */
export function rateLimited(message: string, ms: number, hint = ''): WldbError {
  const s = retryAfter(ms);
  return Errors.RATE_LIMITED(`${message} Retry in ${s} s.${hint ? ` ${hint}` : ''}`, [{ field: 'retryAfter', message: String(s) }]);
}

/** How long a worker waits for the primary's count before it lets the call through (the limits protect; they must not fail calls). */
const SHARED_COUNT_TIMEOUT_MS = 2_000;

/**
 * One limiter. In a worker of `wanllmdb serve --workers N` the counts live in
 * the primary (rate-limiter-flexible's cluster mode over the workers' IPC
 * channel, see hostSharedRateLimits), so a limit holds for the whole server
 * however connections are spread over workers; elsewhere in this process.
 */
function limiter(opts: ConstructorParameters<typeof RateLimiterMemory>[0] & { keyPrefix: string }): RateLimiterAbstract {
  return cluster.isWorker ? new RateLimiterCluster({ ...opts, timeoutMs: SHARED_COUNT_TIMEOUT_MS }) : new RateLimiterMemory(opts);
}

/**
 * One call to count: ingest or not, the credential (`key:<id>` / `user:<id>`),
 * the address ('' for none), and the two budgets' points and window.
 */
type CallCount = [ingest: 0 | 1, who: string, address: string, principalPoints: number, addressPoints: number, windowSeconds: number];
/** Undefined when the call fits; else which budget refused it (0 the credential's, 1 the address's) and the ms until it frees up. */
type CallVerdict = [refusedBy: 0 | 1, msBeforeNext: number] | null;

/** The four per-call budgets of one process, by name, points and window. */
class CallBudgets {
  private readonly limiters = new Map<string, RateLimiterMemory>();

  private limiter(keyPrefix: string, points: number, duration: number): RateLimiterMemory {
    const id = `${keyPrefix}:${points}:${duration}`;
    let l = this.limiters.get(id);
    if (!l) this.limiters.set(id, (l = new RateLimiterMemory({ keyPrefix, points, duration })));
    return l;
  }

  /** Counts a call in its credential's budget and, if that had room, its address's. */
  async count([ingest, who, address, principalPoints, addressPoints, duration]: CallCount): Promise<CallVerdict> {
    try {
      await this.limiter(ingest ? 'ingest' : 'call', principalPoints, duration).consume(who);
    } catch (e) {
      if (e instanceof RateLimiterRes) return [0, e.msBeforeNext];
      throw e;
    }
    if (!address) return null;
    try {
      await this.limiter(ingest ? 'ingest-addr' : 'addr', addressPoints, duration).consume(address);
    } catch (e) {
      if (e instanceof RateLimiterRes) return [1, e.msBeforeNext];
      throw e;
    }
    return null;
  }
}

interface CallCountsRequest {
  wldbCallCounts: { id: number; calls: CallCount[] };
}
interface CallCountsReply {
  wldbCallCounts: { id: number; verdicts: CallVerdict[] };
}

/**
 * A worker's side of the shared per-call counts: the calls of one turn of the
 * event loop go to the primary in ONE message and come back in one (a message
 * per limiter per call was ~8 % of a worker's CPU at 1,000 calls/s). A
 * primary that does not answer in SHARED_COUNT_TIMEOUT_MS lets the calls
 * through.
 */
class SharedCallCounts {
  private next = 1;
  private queued: { call: CallCount; settle: (v: CallVerdict) => void }[] = [];
  private readonly waiting = new Map<number, { settle: ((v: CallVerdict) => void)[]; timer: NodeJS.Timeout }>();

  constructor() {
    process.on('message', (m: unknown) => {
      const reply = (m as Partial<CallCountsReply> | null)?.wldbCallCounts;
      if (!reply) return;
      const batch = this.waiting.get(reply.id);
      if (!batch) return;
      this.waiting.delete(reply.id);
      clearTimeout(batch.timer);
      batch.settle.forEach((settle, i) => settle(reply.verdicts[i] ?? null));
    });
  }

  count(call: CallCount): Promise<CallVerdict> {
    return new Promise((settle) => {
      if (this.queued.push({ call, settle }) === 1) setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    const batch = this.queued;
    this.queued = [];
    const id = this.next++;
    const settle = batch.map((b) => b.settle);
    const timer = setTimeout(() => {
      this.waiting.delete(id);
      for (const s of settle) s(null);
    }, SHARED_COUNT_TIMEOUT_MS);
    timer.unref();
    this.waiting.set(id, { settle, timer });
    const letThrough = () => {
      // The channel to the primary is closed or closing (the server is stopping): the calls go through.
      if (!this.waiting.delete(id)) return;
      clearTimeout(timer);
      for (const s of settle) s(null);
    };
    if (!process.connected) return letThrough();
    // A failed send is reported to the callback (without one, as an 'error' event that would end the process).
    process.send!({ wldbCallCounts: { id, calls: batch.map((b) => b.call) } } satisfies CallCountsRequest, undefined, undefined, (err) => {
      if (err) letThrough();
    });
  }
}

let sharedCallCounts: SharedCallCounts | undefined;

/** In the primary of a server with worker processes, before they are forked: holds the counts their limiters share. */
export function hostSharedRateLimits(): void {
  new RateLimiterClusterMaster();
  const budgets = new CallBudgets();
  cluster.on('message', (worker, m: unknown) => {
    const request = (m as Partial<CallCountsRequest> | null)?.wldbCallCounts;
    if (!request) return;
    void Promise.all(request.calls.map((c) => budgets.count(c).catch(() => null))).then((verdicts) => {
      if (worker.isConnected()) worker.send({ wldbCallCounts: { id: request.id, verdicts } } satisfies CallCountsReply);
    });
  });
}

export class RateLimits {
  /** The per-call budgets: in this process, or (in a worker) the primary's. */
  private readonly calls: { count(call: CallCount): Promise<CallVerdict> };
  private readonly loginAccount: RateLimiterAbstract;
  private readonly loginAddress: RateLimiterAbstract;
  private readonly register: RateLimiterAbstract;

  constructor(readonly options: RateLimitOptions) {
    this.calls = cluster.isWorker ? (sharedCallCounts ??= new SharedCallCounts()) : new CallBudgets();
    this.loginAccount = limiter({ keyPrefix: 'login-acct', points: options.loginFailuresPerAccount, duration: options.loginWindowSeconds });
    this.loginAddress = limiter({ keyPrefix: 'login-addr', points: options.loginFailuresPerAddress, duration: options.loginWindowSeconds });
    this.register = limiter({ keyPrefix: 'register', points: options.registrationsPerAddress, duration: options.registrationWindowSeconds });
  }

  /**
   * Counts one authenticated call — in the ingest budgets for a run ingest
   * method, in the call budgets otherwise; throws RATE_LIMITED past a limit.
   * `who` is `key:<id>` or `user:<id>`.
   */
  async call(who: string, address: string, ingest = false): Promise<void> {
    const o = this.options;
    const verdict = ingest
      ? await this.calls.count([1, who, address, o.ingestPerMinute, o.ingestPerAddressPerMinute, o.windowSeconds])
      : await this.calls.count([0, who, address, o.callsPerMinute, o.callsPerAddressPerMinute, o.windowSeconds]);
    if (!verdict) return;
    const [by, ms] = verdict;
    if (ingest) {
      const hint = 'If it keeps happening, send fewer, larger batches, or ask the operator to raise WANLLMDB_INGEST_RATE_LIMIT_PER_MIN.';
      throw rateLimited(by === 0 ? 'Too many metric, log or heartbeat calls with this credential.' : 'Too many metric, log or heartbeat calls from this address.', ms, hint);
    }
    throw rateLimited(by === 0 ? 'Too many calls with this credential.' : 'Too many calls from this address.', ms);
  }

  /** Throws RATE_LIMITED when the account or the address has used up its failed logins. */
  async loginAllowed(account: string, address: string): Promise<void> {
    await blockedCheck(this.loginAccount, account, 'Too many failed sign-ins for this account; it is locked for now.');
    if (address) await blockedCheck(this.loginAddress, address, 'Too many failed sign-ins from this address.');
  }

  async loginFailed(account: string, address: string): Promise<void> {
    await this.loginAccount.consume(account).catch(() => undefined);
    if (address) await this.loginAddress.consume(address).catch(() => undefined);
  }

  async loginSucceeded(account: string): Promise<void> {
    await this.loginAccount.delete(account).catch(() => undefined);
  }

  async registration(address: string): Promise<void> {
    if (address) await consume(this.register, address, 'Too many registrations from this address.');
  }
}

async function consume(limiter: RateLimiterAbstract, key: string, message: string, hint = ''): Promise<void> {
  try {
    await limiter.consume(key);
  } catch (e) {
    if (e instanceof RateLimiterRes) throw rateLimited(message, e.msBeforeNext, hint);
    // The primary did not answer in time (it is stopping us, or stuck): the call goes through.
    if (e instanceof Error && /timeout/i.test(e.message)) return;
    throw e;
  }
}

async function blockedCheck(limiter: RateLimiterAbstract, key: string, message: string): Promise<void> {
  const res = await limiter.get(key).catch(() => null);
  if (res && res.consumedPoints >= limiter.points) throw rateLimited(message, res.msBeforeNext);
}
