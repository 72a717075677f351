import { metadataBackends } from '@wanllmdb/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rejection, startAuthKernel, type AuthKernel } from './fixtures/auth-kernel.js';
import { Contract, resolveSettings } from '@wanllmdb/core';
import { DEFAULT_RATE_LIMITS, RateLimits, rateLimitSettings } from './rate-limits.js';

const A = 'auth.v1.AuthService/';
const [sqlite] = metadataBackends();

describe('rate limits', () => {
  let t: AuthKernel;
  const saved = { ...process.env };

  beforeAll(async () => {
    process.env.WANLLMDB_RATE_LIMIT_PER_MIN = '5';
    process.env.WANLLMDB_RATE_LIMIT_PER_ADDRESS_PER_MIN = '8';
    t = await startAuthKernel(sqlite!, { auth: { rateLimits: { loginFailuresPerAccount: 3, loginFailuresPerAddress: 6, registrationsPerAddress: 4 } } });
  });
  afterAll(async () => {
    process.env.WANLLMDB_RATE_LIMIT_PER_MIN = saved.WANLLMDB_RATE_LIMIT_PER_MIN;
    process.env.WANLLMDB_RATE_LIMIT_PER_ADDRESS_PER_MIN = saved.WANLLMDB_RATE_LIMIT_PER_ADDRESS_PER_MIN;
    if (saved.WANLLMDB_RATE_LIMIT_PER_MIN === undefined) delete process.env.WANLLMDB_RATE_LIMIT_PER_MIN;
    if (saved.WANLLMDB_RATE_LIMIT_PER_ADDRESS_PER_MIN === undefined) delete process.env.WANLLMDB_RATE_LIMIT_PER_ADDRESS_PER_MIN;
    await t?.close();
  });

  it('reads the environment and refuses bad values', () => {
    const rateLimitsFrom = (env: NodeJS.ProcessEnv) => resolveSettings('auth', rateLimitSettings(), env);
    expect(rateLimitsFrom({ WANLLMDB_RATE_LIMIT_PER_MIN: '7' }).callsPerMinute).toBe(7);
    expect(() => rateLimitsFrom({ WANLLMDB_RATE_LIMIT_PER_MIN: 'lots' })).toThrow(/WANLLMDB_RATE_LIMIT_PER_MIN/);
    expect(rateLimitsFrom({ WANLLMDB_INGEST_RATE_LIMIT_PER_MIN: '9', WANLLMDB_INGEST_RATE_LIMIT_PER_ADDRESS_PER_MIN: '11' })).toMatchObject({ ingestPerMinute: 9, ingestPerAddressPerMinute: 11 });
    expect(() => rateLimitsFrom({ WANLLMDB_INGEST_RATE_LIMIT_PER_MIN: '0' })).toThrow(/WANLLMDB_INGEST_RATE_LIMIT_PER_MIN/);
    expect(() => rateLimitsFrom({ WANLLMDB_INGEST_RATE_LIMIT_PER_ADDRESS_PER_MIN: '1.5' })).toThrow(/WANLLMDB_INGEST_RATE_LIMIT_PER_ADDRESS_PER_MIN/);
  });

  it('counts run ingest (metrics, logs, heartbeats) in budgets of its own, per credential and per address', async () => {
    const limits = new RateLimits({ ...DEFAULT_RATE_LIMITS, callsPerMinute: 2, ingestPerMinute: 3, ingestPerAddressPerMinute: 5 });
    // The contract marks exactly the calls a live run makes by itself.
    const contract = new Contract();
    const ingest = contract.serviceNames().flatMap((s) => contract.methods(s)).filter((m) => m.ingest).map((m) => m.fullName).sort();
    expect(ingest).toEqual([
      'wanllmdb.tracking.v1.MetricService/AppendMetricBatch',
      'wanllmdb.tracking.v1.MetricService/BatchMetrics',
      'wanllmdb.tracking.v1.MetricService/LogMetrics',
      'wanllmdb.tracking.v1.MetricService/StreamMetrics',
      'wanllmdb.tracking.v1.RunLogService/AppendLogs',
      'wanllmdb.tracking.v1.RunService/Heartbeat',
    ]);
    const stream = true;
    const list = false;
    // The key's ordinary budget used up: its runs still log.
    for (let i = 0; i < 2; i++) await limits.call('key:a', '192.0.2.1', list);
    expect((await rejection(limits.call('key:a', '192.0.2.1', list))).code).toBe('WLDB_ERR_RATE_LIMITED');
    for (let i = 0; i < 3; i++) await limits.call('key:a', '192.0.2.1', stream);
    // Then the ingest budget too, with a message that says what to change.
    const e = await rejection(limits.call('key:a', '192.0.2.1', true));
    expect(e.code).toBe('WLDB_ERR_RATE_LIMITED');
    expect(e.message).toMatch(/metric, log or heartbeat calls with this credential\. Retry in \d+ s\. .*WANLLMDB_INGEST_RATE_LIMIT_PER_MIN/);
    expect(Number(e.details.find((d) => d.field === 'retryAfter')?.message)).toBeGreaterThan(0);
    // Busy ingest does not lock another key out of its ordinary calls; the address's ingest budget spans keys.
    await limits.call('key:b', '192.0.2.1', list);
    await limits.call('key:b', '192.0.2.1', stream);
    await limits.call('key:b', '192.0.2.1', stream);
    expect((await rejection(limits.call('key:b', '192.0.2.1', stream))).message).toMatch(/from this address/);
  });

  it('limits calls per credential, with a retryAfter detail', async () => {
    const { access } = await t.signUp('busy@example.org');
    for (let i = 0; i < 5; i++) await t.call(`${A}GetMe`, {}, { token: access });
    const e = await rejection(t.call(`${A}GetMe`, {}, { token: access }));
    expect(e.code).toBe('WLDB_ERR_RATE_LIMITED');
    const retry = e.details.find((d) => d.field === 'retryAfter');
    expect(Number(retry?.message)).toBeGreaterThan(0);
    expect(Number(retry?.message)).toBeLessThanOrEqual(60);
    // An API key has its own budget.
    const other = await t.signUp('busy2@example.org');
    const key = (await t.call(`${A}CreateApiKey`, { name: 'k', scopes: [], expiresAt: '' }, { token: other.access })).data.key;
    for (let i = 0; i < 5; i++) await t.call(`${A}GetMe`, {}, { token: key });
    expect((await rejection(t.call(`${A}GetMe`, {}, { token: key }))).code).toBe('WLDB_ERR_RATE_LIMITED');
  });

  it('limits calls per address across credentials', async () => {
    const a = await t.signUp('addr-a@example.org');
    const b = await t.signUp('addr-b@example.org');
    for (let i = 0; i < 4; i++) await t.call(`${A}GetMe`, {}, { token: a.access, address: '203.0.113.9' });
    for (let i = 0; i < 4; i++) await t.call(`${A}GetMe`, {}, { token: b.access, address: '203.0.113.9' });
    expect((await rejection(t.call(`${A}GetMe`, {}, { token: b.access, address: '203.0.113.9' }))).code).toBe('WLDB_ERR_RATE_LIMITED');
  });

  it('locks an account after repeated failed sign-ins, even for the right password', async () => {
    await t.signUp('victim@example.org', 'the real password');
    for (let i = 0; i < 3; i++) {
      expect((await rejection(t.call(`${A}Login`, { email: 'victim@example.org', password: `guess ${i} guess` }))).code).toBe('WLDB_ERR_UNAUTHENTICATED');
    }
    const locked = await rejection(t.call(`${A}Login`, { email: 'victim@example.org', password: 'the real password' }));
    expect(locked.code).toBe('WLDB_ERR_RATE_LIMITED');
    expect(Number(locked.details.find((d) => d.field === 'retryAfter')?.message)).toBeGreaterThan(60);
    // Other accounts are not locked.
    await t.signUp('bystander@example.org');
  });

  it('limits failed sign-ins and registrations per address', async () => {
    const from = { address: '198.51.100.7' };
    for (let i = 0; i < 6; i++) await rejection(t.call(`${A}Login`, { email: `nobody${i}@example.org`, password: 'whatever whatever' }, from));
    expect((await rejection(t.call(`${A}Login`, { email: 'someone@example.org', password: 'whatever whatever' }, from))).code).toBe('WLDB_ERR_RATE_LIMITED');
    const reg = (i: number) => t.call(`${A}Register`, { email: `reg${i}@example.org`, password: 'long enough 1', username: '', fullName: '' }, from);
    for (let i = 0; i < 4; i++) await reg(i);
    expect((await rejection(reg(9))).code).toBe('WLDB_ERR_RATE_LIMITED');
  });
});
