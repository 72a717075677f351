import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterEach, expect, vi } from 'vitest';
import { E2E_ADMIN } from '../server-process.js';
import { callApi, sessionState, type Who } from './browser.js';

export type { Who };

/**
 * What makes the browser tests independent of one another: every test opens
 * its own page in a new browser context — its own storage, so no theme,
 * session, sort, filter or selection is left over by another test — signed
 * in with a session of its own (or not at all); the context is closed after
 * the test, and the test fails if the page threw. A test that changes data
 * makes its own (a project, a run, a user), so any test runs alone or in any
 * order.
 */

let users = 0;

/** A new user made by the administrator (`adminHeaders`), named after `label`: data no other test touches. */
export async function newUser(base: string, adminHeaders: Record<string, string>, label: string): Promise<Who & { id: string; username: string }> {
  const username = `${label}-${process.pid}-${++users}`;
  const who = { email: `${username}@e2e.test`, password: `${username}-password` };
  const { data } = await callApi(base, adminHeaders, 'POST', '/api/v1/admin/users', { ...who, username });
  return { ...who, id: data.id, username };
}

export interface PageOptions {
  /** Signed in as this user (the e2e administrator by default); `null`: not signed in. */
  as?: Who | null;
  viewport?: { width: number; height: number };
}

/**
 * Registers, in the calling describe block, the closing of every page a
 * test opened and the check that none of them threw; returns `open`, which
 * makes a test's page. `env` gives the server's base URL and the browser
 * (known once beforeAll has run).
 */
export function pagesPerTest(env: () => { base: string; browser: Browser }): { open(opts?: PageOptions): Promise<Page> } {
  // A loaded CI machine can take longer than expect.poll's default second to render a state.
  vi.setConfig({ expect: { poll: { timeout: 10_000, interval: 50 } } });
  let opened: { context: BrowserContext; errors: string[] }[] = [];
  afterEach(async () => {
    const done = opened;
    opened = [];
    await Promise.all(done.map((o) => o.context.close()));
    expect(done.flatMap((o) => o.errors), 'uncaught errors in the page').toEqual([]);
  });
  return {
    async open({ as = E2E_ADMIN, viewport = { width: 1280, height: 800 } }: PageOptions = {}): Promise<Page> {
      const { base, browser } = env();
      const context = await browser.newContext({ viewport, colorScheme: 'light', ...(as ? { storageState: await sessionState(base, as) } : {}) });
      const errors: string[] = [];
      opened.push({ context, errors });
      const page = await context.newPage();
      page.setDefaultTimeout(10_000);
      page.on('pageerror', (e) => errors.push(e.message));
      return page;
    },
  };
}

/**
 * Switches the theme with the header's button and waits until <html> and
 * every chart drawn so far show it (charts redraw on the next frame).
 */
export async function setTheme(page: Page, theme: 'light' | 'dark'): Promise<void> {
  const html = page.locator('html');
  if ((await html.getAttribute('data-theme')) !== theme) await page.locator('#theme').click();
  await expect.poll(() => html.getAttribute('data-theme')).toBe(theme);
  await expect.poll(() => page.locator(`[data-drawn-theme]:not([data-drawn-theme="${theme}"])`).count()).toBe(0);
}
