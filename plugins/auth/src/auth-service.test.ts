import { metadataBackends } from '@wanllmdb/core/testing';
import { describe, expect, it } from 'vitest';
import { authAdminRef } from './auth-admin.js';
import { rejection, useAuthKernel } from './fixtures/auth-kernel.js';

const A = 'auth.v1.AuthService/';

describe.each(metadataBackends())('AuthService on $name', (backend) => {
  const t = useAuthKernel(backend);

  it('registers, signs in, reads Me with a personal organisation, and refuses anonymous or wrong passwords', async () => {
    const { user, access } = await t.signUp('Ada@Example.org');
    expect(user).toMatchObject({ email: 'ada@example.org', username: 'ada', kind: 'user', isActive: true, isSuperuser: false });
    expect(user.defaultOrganizationId).toMatch(/^[0-9a-f-]{36}$/);
    const me = await t.call(`${A}GetMe`, {}, { token: access });
    expect(me.data.user.id).toBe(user.id);
    expect(me.data.authMethod).toBe('password');
    expect(me.data.memberships).toEqual([expect.objectContaining({ organizationId: user.defaultOrganizationId, role: 'owner' })]);
    expect((await rejection(t.call(`${A}GetMe`, {}))).code).toBe('WLDB_ERR_UNAUTHENTICATED');
    const wrong = await rejection(t.call(`${A}Login`, { email: 'ada@example.org', password: 'not the password' }));
    const unknown = await rejection(t.call(`${A}Login`, { email: 'nobody@example.org', password: 'not the password' }));
    expect(wrong.code).toBe('WLDB_ERR_UNAUTHENTICATED');
    expect(wrong.message).toBe('Email or password is wrong.');
    expect(unknown.message).toBe(wrong.message);
    const dup = await rejection(t.call(`${A}Register`, { email: 'ADA@example.org', password: 'another password', username: '', fullName: '' }));
    expect(dup.code).toBe('WLDB_ERR_ALREADY_EXISTS');
    // A second "ada" gets a unique username and personal organisation.
    const { user: ada2 } = await t.signUp('ada@other.org');
    expect(ada2.username).toBe('ada-2');
  });

  it('stores passwords as scrypt hashes, never plaintext', async () => {
    await t.signUp('hash@example.org', 'plain-text-password-1');
    const rows = await t.db.query<{ password_hash: string }>(`SELECT password_hash FROM users WHERE email = ?`, ['hash@example.org']);
    expect(rows[0]!.password_hash).toMatch(/^\$scrypt\$ln=\d+,r=8,p=1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    expect(rows[0]!.password_hash).not.toContain('plain-text-password-1');
  });

  it('validates registration fields', async () => {
    const e = await rejection(t.call(`${A}Register`, { email: 'not-an-email', password: 'short', username: 'Bad Name!', fullName: 'x\u0000y' }));
    expect(e.code).toBe('WLDB_ERR_VALIDATION');
    expect(e.details.map((d) => d.field).sort()).toEqual(['email', 'fullName', 'password', 'username']);
    expect(e.message).not.toContain('short');
  });

  it('rotates refresh tokens; reusing a spent one revokes the whole session', async () => {
    const { access, refresh } = await t.signUp('rot@example.org');
    const next = (await t.call(`${A}Refresh`, { refreshToken: refresh })).data;
    expect(next.refreshToken).not.toBe(refresh);
    expect(next.tokenType).toBe('Bearer');
    expect(next.expiresIn).toBe(1800);
    await t.call(`${A}GetMe`, {}, { token: next.accessToken });
    const reuse = await rejection(t.call(`${A}Refresh`, { refreshToken: refresh }));
    expect(reuse.code).toBe('WLDB_ERR_UNAUTHENTICATED');
    expect(reuse.message).toMatch(/already used/);
    // The family is gone: the newer refresh token and both access tokens are refused.
    expect((await rejection(t.call(`${A}Refresh`, { refreshToken: next.refreshToken }))).code).toBe('WLDB_ERR_UNAUTHENTICATED');
    expect((await rejection(t.call(`${A}GetMe`, {}, { token: next.accessToken }))).code).toBe('WLDB_ERR_UNAUTHENTICATED');
    expect((await rejection(t.call(`${A}GetMe`, {}, { token: access }))).code).toBe('WLDB_ERR_UNAUTHENTICATED');
    expect((await rejection(t.call(`${A}Refresh`, { refreshToken: 'made-up' }))).code).toBe('WLDB_ERR_UNAUTHENTICATED');
  });

  it('logs out the current session, or everywhere', async () => {
    const one = await t.signUp('out@example.org');
    const two = (await t.call(`${A}Login`, { email: 'out@example.org', password: 'correct horse battery' })).data;
    const three = (await t.call(`${A}Login`, { email: 'out@example.org', password: 'correct horse battery' })).data;
    await t.call(`${A}Logout`, { everywhere: false }, { token: one.access });
    expect((await rejection(t.call(`${A}GetMe`, {}, { token: one.access }))).message).toMatch(/signed out/);
    expect((await rejection(t.call(`${A}Refresh`, { refreshToken: one.refresh }))).code).toBe('WLDB_ERR_UNAUTHENTICATED');
    await t.call(`${A}GetMe`, {}, { token: two.accessToken });
    await t.call(`${A}Logout`, { everywhere: true }, { token: two.accessToken });
    expect((await rejection(t.call(`${A}GetMe`, {}, { token: two.accessToken }))).code).toBe('WLDB_ERR_UNAUTHENTICATED');
    expect((await rejection(t.call(`${A}GetMe`, {}, { token: three.accessToken }))).code).toBe('WLDB_ERR_UNAUTHENTICATED');
  });

  it('refuses tampered, expired and malformed access tokens without echoing them', async () => {
    const { access } = await t.signUp('jwt@example.org');
    const [h, payload, sig] = access.split('.');
    const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
    for (const bad of [`${h}.${payload}.${flip(sig!, 5)}`, `${h}.${flip(payload!, 10)}.${sig}`, 'garbage', `${h}.${payload}.`]) {
      const e = await rejection(t.call(`${A}GetMe`, {}, { token: bad }));
      expect(e.code).toBe('WLDB_ERR_UNAUTHENTICATED');
      expect(e.message).not.toContain(bad);
    }
    t.clock.offset = 31 * 60 * 1000;
    try {
      const e = await rejection(t.call(`${A}GetMe`, {}, { token: access }));
      expect(e.code).toBe('WLDB_ERR_UNAUTHENTICATED');
      expect(e.message).toMatch(/expired; refresh it with POST \/api\/v1\/auth\/refresh/);
      // A client that still sends the stale token along with Refresh is not refused for it.
      const { refresh } = await t.signUp('jwt2@example.org');
      expect((await t.call(`${A}Refresh`, { refreshToken: refresh }, { token: access })).data.accessToken).toBeTruthy();
    } finally {
      t.clock.offset = 0;
    }
    expect((await rejection(t.call(`${A}GetMe`, {}, { headers: { authorization: 'Basic abc' } }))).code).toBe('WLDB_ERR_UNAUTHENTICATED');
  });

  it('changes a password: the old one stops working and other sessions end', async () => {
    const one = await t.signUp('pw@example.org', 'first password 1');
    const other = (await t.call(`${A}Login`, { email: 'pw@example.org', password: 'first password 1' })).data;
    const bad = await rejection(t.call(`${A}ChangePassword`, { currentPassword: 'nope nope nope', newPassword: 'second password 2' }, { token: one.access }));
    expect(bad.code).toBe('WLDB_ERR_VALIDATION');
    await t.call(`${A}ChangePassword`, { currentPassword: 'first password 1', newPassword: 'second password 2' }, { token: one.access });
    await t.call(`${A}GetMe`, {}, { token: one.access });
    expect((await rejection(t.call(`${A}GetMe`, {}, { token: other.accessToken }))).code).toBe('WLDB_ERR_UNAUTHENTICATED');
    expect((await rejection(t.call(`${A}Login`, { email: 'pw@example.org', password: 'first password 1' }))).code).toBe('WLDB_ERR_UNAUTHENTICATED');
    await t.call(`${A}Login`, { email: 'pw@example.org', password: 'second password 2' });
  });

  it('creates API keys shown once and stored only as a hash; lists, revokes, expires and narrows them', async () => {
    const { access, user } = await t.signUp('keys@example.org');
    const made = (await t.call(`${A}CreateApiKey`, { name: 'ci', scopes: [], expiresAt: '' }, { token: access })).data;
    expect(made.key).toMatch(/^wldb_[A-Za-z0-9_-]{43}$/);
    expect(made.apiKey).toMatchObject({ name: 'ci', scopes: ['*:*'], userId: user.id, prefix: made.key.slice(0, 10), revokedAt: '' });
    const stored = await t.db.query<Record<string, unknown>>('SELECT * FROM api_keys WHERE id = ?', [made.apiKey.id]);
    expect(JSON.stringify(stored)).not.toContain(made.key);
    const me = await t.call(`${A}GetMe`, {}, { token: made.key });
    expect(me.data).toMatchObject({ authMethod: 'api_key', scopes: ['*:*'] });
    const listed = (await t.call(`${A}ListApiKeys`, {}, { token: access })).data;
    expect(listed.map((k: any) => k.id)).toEqual([made.apiKey.id]);
    expect(JSON.stringify(listed)).not.toContain(made.key);
    expect(listed[0].lastUsedAt).not.toBe('');

    // Scopes narrow: a runs:read key cannot call a self:write method, nor mint a wider key.
    const narrow = (await t.call(`${A}CreateApiKey`, { name: 'read', scopes: ['runs:read', 'self:write'], expiresAt: '' }, { token: access })).data.key;
    const readOnly = (await t.call(`${A}CreateApiKey`, { name: 'ro', scopes: ['runs:read'], expiresAt: '' }, { token: access })).data.key;
    expect((await rejection(t.call(`${A}Logout`, { everywhere: false }, { token: readOnly }))).code).toBe('WLDB_ERR_PERMISSION_DENIED');
    const wider = await rejection(t.call(`${A}CreateApiKey`, { name: 'x', scopes: ['*:*'], expiresAt: '' }, { token: narrow }));
    expect(wider.code).toBe('WLDB_ERR_VALIDATION');
    const badScope = await rejection(t.call(`${A}CreateApiKey`, { name: 'x', scopes: ['RUNS:READ', 'runs', "' OR 1=1 --"], expiresAt: '' }, { token: access }));
    expect(badScope.details.map((d) => d.field)).toEqual(['scopes[0]', 'scopes[1]', 'scopes[2]']);

    await t.call(`${A}RevokeApiKey`, { id: made.apiKey.id }, { token: access });
    const revoked = await rejection(t.call(`${A}GetMe`, {}, { token: made.key }));
    expect(revoked.code).toBe('WLDB_ERR_UNAUTHENTICATED');
    expect(revoked.message).toMatch(/revoked\. Create a new one/);
    expect(revoked.message).not.toContain(made.key);
    expect((await rejection(t.call(`${A}RevokeApiKey`, { id: made.apiKey.id }, { token: access }))).code).toBe('WLDB_ERR_NOT_FOUND');

    const soon = new Date(Date.now() + 60_000).toISOString();
    const expiring = (await t.call(`${A}CreateApiKey`, { name: 'soon', scopes: [], expiresAt: soon }, { token: access })).data.key;
    await t.call(`${A}GetMe`, {}, { token: expiring });
    t.clock.offset = 2 * 60_000;
    try {
      expect((await rejection(t.call(`${A}GetMe`, {}, { token: expiring }))).message).toMatch(/expired on .* Create a new one/);
    } finally {
      t.clock.offset = 0;
    }
    expect((await rejection(t.call(`${A}CreateApiKey`, { name: 'past', scopes: [], expiresAt: '2001-01-01T00:00:00Z' }, { token: access }))).code).toBe('WLDB_ERR_VALIDATION');
    expect((await rejection(t.call(`${A}GetMe`, {}, { token: `wldb_${'a'.repeat(43)}` }))).code).toBe('WLDB_ERR_UNAUTHENTICATED');
  });

  it('switches self-registration off and on; the in-process AuthAdmin creates users', async () => {
    const admin = t.kernel.get(authAdminRef);
    const before = await admin.userCount();
    await admin.setAllowRegistration(false);
    try {
      const e = await rejection(t.call(`${A}Register`, { email: 'closed@example.org', password: 'long enough 1', username: '', fullName: '' }));
      expect(e.code).toBe('WLDB_ERR_PERMISSION_DENIED');
      expect(e.message).toMatch(/Self-registration is switched off; ask an administrator/);
      const root = await admin.createUser({ email: 'root@example.org', password: 'root password 1', username: 'root', superuser: true });
      expect(root).toMatchObject({ username: 'root', isSuperuser: true });
      expect(await admin.userCount()).toBe(before + 1);
      await expect(admin.createUser({ email: 'bad', password: 'x' })).rejects.toMatchObject({ code: 'WLDB_ERR_VALIDATION' });
    } finally {
      await admin.setAllowRegistration(true);
    }
    await t.signUp('open@example.org');
  });
});
