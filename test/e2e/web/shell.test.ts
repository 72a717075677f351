import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { E2E_ADMIN, startServer, type ServerProcess } from '../server-process.js';
import { ensureUiBuilt, openBrowser, screenshot, signInUi } from './browser.js';
import { newUser, pagesPerTest, setTheme, type Who } from './pages.js';

/**
 * The web shell in a real browser against a real `wanllmdb serve`: sign-in,
 * projects, deep links, themes, API keys, organisations, first-start setup.
 * Each test signs in as a user of its own, so its projects, keys,
 * organisations and sessions are nobody else's.
 */

const dataDir = () => mkdtempSync(join(tmpdir(), 'wldb-e2e-web-'));

async function api(base: string, method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; json: any }> {
  const res = await fetch(base + path, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

describe('web shell (browser)', { timeout: 90_000 }, () => {
  let server: ServerProcess;
  let browser: Browser;
  let adminHeaders: Record<string, string>;
  const pages = pagesPerTest(() => ({ base: server.base, browser }));

  beforeAll(async () => {
    await ensureUiBuilt();
    [server, browser] = await Promise.all([startServer(['--data', dataDir()]), openBrowser()]);
    adminHeaders = (await server.credentials()).headers;
  }, 180_000);

  /** A new user, and a page signed in as them. */
  async function asNewUser(label: string): Promise<{ who: Who; page: Page }> {
    const who = await newUser(server.base, adminHeaders, label);
    return { who, page: await pages.open({ as: who }) };
  }
  const tokenOf = async (who: Who): Promise<string> => (await api(server.base, 'POST', '/api/v1/auth/login', { email: who.email, password: who.password })).json.data.accessToken;

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('sends / to the sign-in page, refuses a wrong password, then signs in', async () => {
    const page = await pages.open({ as: null });
    await page.goto(`${server.base}/`);
    await page.waitForURL((u) => u.pathname === '/login');
    expect(new URL(page.url()).searchParams.get('next')).toBe('/projects');
    await expect.poll(() => page.getByTestId('login-email').isVisible()).toBe(true);
    await screenshot(page, 'login-light');

    await page.getByTestId('login-email').fill(E2E_ADMIN.email);
    await page.getByTestId('login-password').fill('not-the-password');
    await page.getByTestId('login-password').press('Enter');
    await expect.poll(() => page.getByTestId('login-error').textContent(), { timeout: 10_000 }).toMatch(/password|email/i);
    expect(new URL(page.url()).pathname).toBe('/login');

    // Registration is open on a fresh server: the form says why it refuses a short password.
    await page.getByTestId('show-register').click();
    await page.getByTestId('register-email').fill('someone@e2e.test');
    await page.getByTestId('register-password').fill('short');
    await page.getByTestId('register-confirm').fill('short');
    await page.getByTestId('register-submit').click();
    expect(await page.getByTestId('register-password').evaluate((el: HTMLInputElement) => el.validity.tooShort)).toBe(true);
    await page.getByTestId('show-login').click();

    await signInUi(page, server.base);
    expect(new URL(page.url()).pathname).toBe('/projects');
    await expect.poll(() => page.locator('#who').textContent()).toBe(E2E_ADMIN.email);
  });

  it('creates a project from the projects page and finds it in the list', async () => {
    const { page } = await asNewUser('projects');
    await page.goto(`${server.base}/projects`);
    await expect.poll(() => page.getByTestId('projects-empty').isVisible(), { timeout: 10_000 }).toBe(true);
    await page.getByTestId('new-project').click();
    await page.getByTestId('project-name').fill('UI e2e project');
    await page.getByTestId('project-description').fill('made by the browser test');
    await page.getByTestId('project-visibility').selectOption('public');
    await page.getByTestId('project-name').press('Enter');
    const row = page.getByTestId('project-row').filter({ hasText: 'UI e2e project' });
    await expect.poll(() => row.count(), { timeout: 10_000 }).toBe(1);
    expect(await row.textContent()).toContain('public');
    const href = await row.getByTestId('project-link').getAttribute('href');
    expect(href).toMatch(/^\/projects\/[0-9a-f-]{36}$/);
    await expect.poll(() => page.getByTestId('project-created').isVisible()).toBe(true);

    // A duplicate name is refused with the server's message.
    await page.getByTestId('new-project').click();
    await page.getByTestId('project-name').fill('UI e2e project');
    await page.getByTestId('project-create').click();
    await expect.poll(() => page.getByTestId('project-create-error').textContent(), { timeout: 10_000 }).toMatch(/exists|taken|already/i);
    await page.getByTestId('new-project').click(); // cancel
    await screenshot(page, 'projects-light');
  });

  it('keeps the session and the page on reload of a deep link, and searches through the address', async () => {
    // Other tests' public projects are listed too: this test counts only the rows of its own one.
    const { who, page } = await asNewUser('deep-link');
    expect((await api(server.base, 'POST', '/api/v1/projects', { name: 'deep-link project' }, await tokenOf(who))).status).toBe(201);
    const own = () => page.getByTestId('project-row').filter({ hasText: 'deep-link project' });
    await page.goto(`${server.base}/projects`);
    await expect.poll(() => own().count(), { timeout: 10_000 }).toBe(1);
    await page.reload();
    expect(new URL(page.url()).pathname).toBe('/projects');
    await expect.poll(() => own().count(), { timeout: 10_000 }).toBe(1);

    await page.getByTestId('project-search').fill('no-such-thing');
    await page.waitForURL((u) => u.searchParams.get('search') === 'no-such-thing');
    await expect.poll(() => page.getByTestId('projects-empty').textContent()).toContain('No project matches');
    await page.goto(`${server.base}/projects?search=deep-link`);
    await expect.poll(() => page.getByTestId('project-row').count(), { timeout: 10_000 }).toBe(1);
    expect(await own().count()).toBe(1);
    expect(await page.getByTestId('project-search').inputValue()).toBe('deep-link');
  });

  it('switches to the dark theme and back, and remembers it across a reload', async () => {
    const { who, page } = await asNewUser('theme');
    expect((await api(server.base, 'POST', '/api/v1/projects', { name: 'theme project' }, await tokenOf(who))).status).toBe(201);
    await page.goto(`${server.base}/projects`);
    // The page has loaded its list (other tests' public projects may be in it too).
    await page.getByTestId('project-row').filter({ hasText: 'theme project' }).waitFor();
    await setTheme(page, 'dark');
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    expect(bg).toBe('rgb(18, 21, 26)');
    await screenshot(page, 'projects-dark');
    await page.reload();
    await expect.poll(() => page.locator('html').getAttribute('data-theme')).toBe('dark');
    await setTheme(page, 'light');
    expect(await page.evaluate(() => getComputedStyle(document.body).backgroundColor)).toBe('rgb(255, 255, 255)');
  });

  it('creates an API key on the settings page, shows it once, and revokes it', async () => {
    const { who, page } = await asNewUser('keys');
    await page.goto(`${server.base}/projects`);
    await page.getByRole('link', { name: 'Settings' }).click();
    await page.waitForURL((u) => u.pathname === '/settings');
    await expect.poll(() => page.getByTestId('me-email').textContent(), { timeout: 10_000 }).toBe(who.email);

    await page.getByTestId('key-name').fill('browser-key');
    await page.getByTestId('key-scopes').fill('runs:write, *:read');
    await page.getByTestId('key-name').press('Enter');
    await expect.poll(() => page.getByTestId('new-key').inputValue(), { timeout: 10_000 }).toMatch(/^wldb_/);
    const key = await page.getByTestId('new-key').inputValue();
    expect(await page.getByTestId('new-key-box').textContent()).toMatch(/only this once/);
    const row = page.locator('[data-testid="key-row"][data-key-name="browser-key"]');
    await expect.poll(() => row.count()).toBe(1);
    expect(await row.textContent()).toContain('runs:write');
    expect((await api(server.base, 'GET', '/api/v1/auth/me', undefined, key)).status).toBe(200);
    await screenshot(page, 'settings-light');
    await setTheme(page, 'dark');
    await screenshot(page, 'settings-dark');
    await setTheme(page, 'light');

    // The key is gone once dismissed: nothing on the page shows it again.
    await page.getByTestId('dismiss-key').click();
    expect(await page.getByTestId('new-key').count()).toBe(0);
    const leaked = await page.evaluate((k) => {
      const walk = (root: Document | ShadowRoot): boolean =>
        [...root.querySelectorAll('*')].some(
          (el) => (el instanceof HTMLInputElement && el.value.includes(k)) || (el.shadowRoot ? el.shadowRoot.textContent?.includes(k) || walk(el.shadowRoot) : false),
        );
      return walk(document);
    }, key);
    expect(leaked).toBe(false);

    await row.getByTestId('revoke-key').click();
    await row.getByTestId('confirm-revoke').click();
    await expect.poll(() => row.textContent(), { timeout: 10_000 }).toMatch(/revoked/);
    expect((await api(server.base, 'GET', '/api/v1/auth/me', undefined, key)).status).toBe(401);

    // A wrong current password: the server's refusal is shown.
    await page.getByTestId('pw-current').fill('wrong-password');
    await page.getByTestId('pw-new').fill('another-password');
    await page.getByTestId('pw-confirm').fill('another-password');
    await page.getByTestId('pw-confirm').press('Enter');
    await expect.poll(() => page.getByTestId('pw-error').textContent(), { timeout: 10_000 }).toMatch(/password/i);
  });

  it('creates an organisation and adds a member on the organisation page', async () => {
    const other = await newUser(server.base, adminHeaders, 'member');
    const { page } = await asNewUser('org-owner');
    await page.goto(`${server.base}/settings`);
    await page.getByTestId('orgs-link').click();
    await page.waitForURL((u) => u.pathname === '/orgs');
    await expect.poll(() => page.getByTestId('org-row').count(), { timeout: 10_000 }).toBeGreaterThan(0); // the personal one
    await page.getByTestId('org-name').fill('Research Lab');
    await page.getByTestId('org-name').press('Enter');
    await page.waitForURL((u) => /^\/orgs\/[^/]+$/.test(u.pathname), { timeout: 10_000 });
    await expect.poll(() => page.getByTestId('org-title').textContent(), { timeout: 10_000 }).toBe('Research Lab');

    // An unknown email: the server's message.
    await page.getByTestId('member-email').fill('nobody@e2e.test');
    await page.getByTestId('member-add').click();
    await expect.poll(() => page.getByTestId('members-error').textContent(), { timeout: 10_000 }).toBeTruthy();

    await page.getByTestId('member-email').fill(other.email);
    await page.getByTestId('member-new-role').selectOption('viewer');
    await page.getByTestId('member-email').press('Enter');
    const row = page.locator(`[data-testid="member-row"][data-email="${other.email}"]`);
    await expect.poll(() => row.count(), { timeout: 10_000 }).toBe(1);
    expect(await row.getByTestId('member-role').inputValue()).toBe('viewer');

    // Change the role, create a team and a custom role.
    await row.getByTestId('member-role').selectOption('member');
    await expect.poll(() => page.getByTestId('members-notice').textContent(), { timeout: 10_000 }).toContain('is now member');
    await page.getByTestId('team-name').fill('vision');
    await page.getByTestId('team-name').press('Enter');
    await expect.poll(() => page.getByTestId('team-row').filter({ hasText: 'vision' }).count(), { timeout: 10_000 }).toBe(1);
    await page.getByTestId('role-name').fill('reader-writer');
    await page.getByTestId('role-permissions').fill('*:read, runs:write');
    await page.getByTestId('role-permissions').press('Enter');
    await expect.poll(() => page.getByTestId('role-row').filter({ hasText: 'reader-writer' }).count(), { timeout: 10_000 }).toBe(1);
    await page.getByTestId('service-name').fill('ci-bot');
    await page.getByTestId('service-create').click();
    await expect.poll(() => page.getByTestId('service-key').inputValue(), { timeout: 10_000 }).toMatch(/^wldb_/);
    await screenshot(page, 'org-light');
    await setTheme(page, 'dark');
    await screenshot(page, 'org-dark');
    await setTheme(page, 'light');

    const orgId = new URL(page.url()).pathname.split('/')[2]!;
    const members = (await api(server.base, 'GET', `/api/v1/orgs/${orgId}/members`, undefined, await tokenOf(E2E_ADMIN))).json.data;
    expect(members.find((m: any) => m.email === other.email)?.role).toBe('member');
  });

  it('signs out everywhere from the settings page', async () => {
    const { who, page } = await asNewUser('sign-out');
    const elsewhere = await tokenOf(who); // a second session, ended too
    expect((await api(server.base, 'GET', '/api/v1/auth/me', undefined, elsewhere)).status).toBe(200);
    await page.goto(`${server.base}/settings`);
    await expect.poll(() => page.getByTestId('me-email').textContent()).toBe(who.email); // the page has loaded
    await page.getByTestId('sign-out-everywhere').click();
    await page.waitForURL((u) => u.pathname === '/login', { timeout: 10_000 });
    await page.goto(`${server.base}/settings`);
    await page.waitForURL((u) => u.pathname === '/login' && u.searchParams.get('next') === '/settings');
    expect((await api(server.base, 'GET', '/api/v1/auth/me', undefined, elsewhere)).status).toBe(401);
  });
});

describe('first start (browser)', { timeout: 90_000 }, () => {
  let server: ServerProcess;
  let browser: Browser;
  const pages = pagesPerTest(() => ({ base: server.base, browser }));

  beforeAll(async () => {
    await ensureUiBuilt();
    [server, browser] = await Promise.all([startServer(['--data', dataDir()], { WANLLMDB_BOOTSTRAP_ADMIN: '' }), openBrowser()]);
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('creates the administrator from the setup link', async () => {
    const setupToken = () => /\/setup#token=([^"\s]+)/.exec(server.output())?.[1];
    await expect.poll(setupToken, { message: 'the server logs a setup link' }).toBeTruthy();
    const token = setupToken()!;
    const page = await pages.open({ as: null });
    await page.goto(`${server.base}/setup#token=${token}`);
    expect(await page.getByTestId('setup-token').inputValue()).toBe(token);
    await page.getByTestId('setup-email').fill('first@e2e.test');
    await page.getByTestId('setup-password').fill('first-password');
    await page.getByTestId('setup-confirm').fill('first-password');
    await screenshot(page, 'setup-light');
    await page.getByTestId('setup-confirm').press('Enter');
    await page.waitForURL((u) => u.pathname === '/projects', { timeout: 15_000 });
    expect(new URL(page.url()).hash).toBe('');
    const me = await api(server.base, 'POST', '/api/v1/auth/login', { email: 'first@e2e.test', password: 'first-password' });
    const who = await api(server.base, 'GET', '/api/v1/auth/me', undefined, me.json.data.accessToken);
    expect(who.json.data.user.isSuperuser).toBe(true);

    // The token works once: a second use shows the server's refusal.
    await page.evaluate(() => localStorage.clear());
    await page.goto(`${server.base}/setup#token=${token}`);
    await page.getByTestId('setup-email').fill('second@e2e.test');
    await page.getByTestId('setup-password').fill('second-password');
    await page.getByTestId('setup-confirm').fill('second-password');
    await page.getByTestId('setup-submit').click();
    await expect.poll(() => page.getByTestId('setup-error').textContent(), { timeout: 10_000 }).toMatch(/setup token/i);
  });
});
