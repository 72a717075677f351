import { metadataBackends } from '@wanllmdb/core/testing';
import { describe, expect, it } from 'vitest';
import { authAdminRef } from './auth-admin.js';
import { rejection, useAuthKernel } from './fixtures/auth-kernel.js';

const REGISTER = 'auth.v1.AuthService/Register';

describe.each(metadataBackends())('first-start setup token on $name', (backend) => {
  const t = useAuthKernel(backend);

  it('lets the first administrator register once, even with self-registration off', async () => {
    const admin = t.kernel.get(authAdminRef);
    await admin.setAllowRegistration(false);
    const stale = await admin.createSetupToken();
    const token = await admin.createSetupToken(); // replaces the first
    const body = (email: string, setupToken: string) => ({ email, password: 'first admin pw', username: '', fullName: '', setupToken });
    expect((await rejection(t.call(REGISTER, body('a@example.org', stale)))).code).toBe('WLDB_ERR_PERMISSION_DENIED');
    const stored = JSON.stringify(await t.db.query('SELECT * FROM server_settings'));
    expect(stored).not.toContain(token);
    const first = (await t.call(REGISTER, body('first@example.org', token))).data;
    expect(first).toMatchObject({ email: 'first@example.org', isSuperuser: true });
    const again = await rejection(t.call(REGISTER, body('second@example.org', token)));
    expect(again.code).toBe('WLDB_ERR_PERMISSION_DENIED');
    expect(again.message).toMatch(/setup token is wrong, expired or already used/);
    await expect(admin.createSetupToken()).rejects.toMatchObject({ code: 'WLDB_ERR_PERMISSION_DENIED' });
    expect((await rejection(t.call(REGISTER, body('third@example.org', '')))).message).toMatch(/switched off/);
  });
});

describe.each(metadataBackends())('session purge on $name', (backend) => {
  const t = useAuthKernel(backend);

  it('removes ended sessions and their refresh tokens, keeps live ones', async () => {
    const { AuthRepository } = await import('./repository.js');
    const live = await t.signUp('live@example.org');
    const ended = await t.signUp('ended@example.org');
    await t.call('auth.v1.AuthService/Logout', { everywhere: false }, { token: ended.access });
    const repo = new AuthRepository(t.db);
    expect(await repo.purgeSessions(Date.now() + 1000)).toBe(2);
    await t.call('auth.v1.AuthService/GetMe', {}, { token: live.access });
    expect((await rejection(t.call('auth.v1.AuthService/Refresh', { refreshToken: ended.refresh }))).code).toBe('WLDB_ERR_UNAUTHENTICATED');
  });
});
