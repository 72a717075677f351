import { Errors, type WldbError } from '@wanllmdb/core';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';

/**
 * In-memory limits (per process: with several replicas each enforces its own
 * share). Calls: per API key or user, and per address. Sign-in: failed
 * logins per account and per address, registrations per address.
 */
export interface RateLimitOptions {
  /** Authenticated calls per minute per API key / user (WANLLMDB_RATE_LIMIT_PER_MIN). */
  callsPerMinute: number;
  /** Authenticated calls per minute per address (WANLLMDB_RATE_LIMIT_PER_ADDRESS_PER_MIN). */
  callsPerAddressPerMinute: number;
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
  loginFailuresPerAccount: 10,
  loginFailuresPerAddress: 50,
  loginWindowSeconds: 15 * 60,
  registrationsPerAddress: 20,
  registrationWindowSeconds: 60 * 60,
};

function positiveInt(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw Errors.CONFIG_INVALID(`${name}=${JSON.stringify(raw)} is not a whole number of 1 or more. Fix or unset it.`, [{ field: name, message: 'not a positive integer' }]);
  return n;
}

/** The defaults, with the environment's and then `overrides`' values on top. */
export function rateLimitsFrom(env: NodeJS.ProcessEnv, overrides: Partial<RateLimitOptions> = {}): RateLimitOptions {
  const fromEnv: Partial<RateLimitOptions> = {};
  const perKey = positiveInt('WANLLMDB_RATE_LIMIT_PER_MIN', env.WANLLMDB_RATE_LIMIT_PER_MIN);
  const perAddress = positiveInt('WANLLMDB_RATE_LIMIT_PER_ADDRESS_PER_MIN', env.WANLLMDB_RATE_LIMIT_PER_ADDRESS_PER_MIN);
  if (perKey) fromEnv.callsPerMinute = perKey;
  if (perAddress) fromEnv.callsPerAddressPerMinute = perAddress;
  return { ...DEFAULT_RATE_LIMITS, ...fromEnv, ...overrides };
}

const retryAfter = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

export function rateLimited(message: string, ms: number): WldbError {
  const s = retryAfter(ms);
  return Errors.RATE_LIMITED(`${message} Retry in ${s} s.`, [{ field: 'retryAfter', message: String(s) }]);
}

export class RateLimits {
  private readonly perPrincipal: RateLimiterMemory;
  private readonly perAddress: RateLimiterMemory;
  private readonly loginAccount: RateLimiterMemory;
  private readonly loginAddress: RateLimiterMemory;
  private readonly register: RateLimiterMemory;

  constructor(readonly options: RateLimitOptions) {
    this.perPrincipal = new RateLimiterMemory({ keyPrefix: 'call', points: options.callsPerMinute, duration: 60 });
    this.perAddress = new RateLimiterMemory({ keyPrefix: 'addr', points: options.callsPerAddressPerMinute, duration: 60 });
    this.loginAccount = new RateLimiterMemory({ keyPrefix: 'login-acct', points: options.loginFailuresPerAccount, duration: options.loginWindowSeconds });
    this.loginAddress = new RateLimiterMemory({ keyPrefix: 'login-addr', points: options.loginFailuresPerAddress, duration: options.loginWindowSeconds });
    this.register = new RateLimiterMemory({ keyPrefix: 'register', points: options.registrationsPerAddress, duration: options.registrationWindowSeconds });
  }

  /** Counts one authenticated call; throws RATE_LIMITED past a limit. `who` is `key:<id>` or `user:<id>`. */
  async call(who: string, address: string): Promise<void> {
    await consume(this.perPrincipal, who, 'Too many calls with this credential.');
    if (address) await consume(this.perAddress, address, 'Too many calls from this address.');
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
    await this.loginAccount.delete(account);
  }

  async registration(address: string): Promise<void> {
    if (address) await consume(this.register, address, 'Too many registrations from this address.');
  }
}

async function consume(limiter: RateLimiterMemory, key: string, message: string): Promise<void> {
  try {
    await limiter.consume(key);
  } catch (e) {
    if (e instanceof RateLimiterRes) throw rateLimited(message, e.msBeforeNext);
    throw e;
  }
}

async function blockedCheck(limiter: RateLimiterMemory, key: string, message: string): Promise<void> {
  const res = await limiter.get(key);
  if (res && res.consumedPoints >= limiter.points) throw rateLimited(message, res.msBeforeNext);
}
