import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startServer, type ServerProcess } from '../server-process.js';
import { ensureUiBuilt, openBrowser, screenshot } from './browser.js';
import { pagesPerTest } from './pages.js';

/**
 * A third-party plugin (plugin-template/, outside the built-in packages)
 * loaded with --plugins adds a workspace panel without any change to the shell.
 */
describe('a third-party plugin adds a panel and a page (browser)', { timeout: 90_000 }, () => {
  let server: ServerProcess;
  let browser: Browser;
  const pages = pagesPerTest(() => ({ base: server.base, browser }));

  beforeAll(async () => {
    await ensureUiBuilt();
    [server, browser] = await Promise.all([
      startServer(['--data', mkdtempSync(join(tmpdir(), 'wldb-e2e-plugin-')), '--plugins', './plugin-template/src/index.ts']),
      openBrowser(),
    ]);
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('lists the plugin module in the UI manifest, and the workspace can add and render its panel', { timeout: 60_000 }, async () => {
    const manifest = await (await fetch(`${server.base}/api/v1/ui/manifest`)).json();
    expect(manifest.plugins).toContainEqual({ plugin: 'hello', modules: ['/ui/plugins/hello/hello-panel.js', '/ui/plugins/hello/hello-page.js'] });

    const { headers } = await server.credentials();
    const post = async (path: string, body: unknown) => {
      const res = await fetch(server.base + path, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      expect(res.ok, await res.clone().text()).toBe(true);
      return (await res.json()).data;
    };
    const project = await post('/api/v1/projects', { name: 'plugin panels' });
    await post(`/api/v1/projects/${project.id}/runs`, { name: 'first-run' });
    await post(`/api/v1/projects/${project.id}/runs`, { name: 'second-run' });

    const page = await pages.open({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${server.base}/projects/${project.id}/workspace`);
    const types = page.getByTestId('panel-type');
    await expect.poll(() => types.locator('option[value="hello.runs"]').count(), { timeout: 15_000 }).toBe(1);
    await types.selectOption('hello.runs');
    await page.getByTestId('add-panel').click();
    const panel = page.getByTestId('hello-panel');
    await expect.poll(() => panel.textContent(), { timeout: 15_000 }).toContain('Hello from a plugin: 2 runs');
    await expect.poll(() => page.locator('hello-runs-panel li').allTextContents()).toEqual(expect.arrayContaining([expect.stringContaining('first-run'), expect.stringContaining('second-run')]));
    await screenshot(page, 'plugin-panel');

    // Its page: linked in the header, deep-linkable.
    await page.locator('a[data-plugin="hello"]').click();
    await page.waitForURL((u) => u.pathname === '/hello');
    await expect.poll(() => page.getByTestId('hello-page').textContent(), { timeout: 15_000 }).toMatch(/Hello from a plugin page: you can see \d+ projects?/);
    await page.reload();
    await expect.poll(() => page.getByTestId('hello-page').textContent(), { timeout: 15_000 }).toMatch(/Hello from a plugin page/);
    await screenshot(page, 'plugin-page');
  });

  it('refuses to start with a plugin module that cannot be loaded or exports no plugin', async () => {
    const missing = await runCli(['serve', '--data', mkdtempSync(join(tmpdir(), 'wldb-e2e-plugin-')), '--plugins', './no/such/plugin.js']);
    expect(missing.code).toBe(2);
    expect(missing.output).toMatch(/Plugin module "\.\/no\/such\/plugin\.js".*cannot be loaded/);
    const notAPlugin = await runCli(['serve', '--data', mkdtempSync(join(tmpdir(), 'wldb-e2e-plugin-')), '--plugins', './plugin-template/ui/hello-panel.js']);
    expect(notAPlugin.code).toBe(2);
  });
});
