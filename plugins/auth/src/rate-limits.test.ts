import { metadataBackends } from '@wanllmdb/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rejection, startAuthKernel, type AuthKernel } from './fixtures/auth-kernel.js';
import { rateLimitsFrom } from './rate-limits.js';

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
    expect(rateLimitsFrom({ WANLLMDB_RATE_LIMIT_PER_MIN: '7' }).callsPerMinute).toBe(7);
    expect(() => rateLimitsFrom({ WANLLMDB_RATE_LIMIT_PER_MIN: 'lots' })).toThrow(/WANLLMDB_RATE_LIMIT_PER_MIN/);
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
