import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type ServerProcess } from '../server-process.js';
import { callApi, ensureUiBuilt, openBrowser, screenshot } from './browser.js';
import { pagesPerTest } from './pages.js';

/**
 * The project page in a real browser against a real `wanllmdb serve`: the
 * runs table (filter, sort, selection, a large project paged in the
 * background and virtualised), the workspace (panels, saved views).
 * A test that only reads uses the project made once; one that changes a
 * project (a saved view, a new run) makes its own.
 */

interface Fixture {
  projectId: string;
  runs: { id: string; name: string; lr: number }[];
}

describe('project runs table and workspace (browser)', { timeout: 90_000 }, () => {
  let server: ServerProcess;
  let browser: Browser;
  let headers: Record<string, string>;
  let shared: Fixture;
  const pages = pagesPerTest(() => ({ base: server.base, browser }));

  const call = (method: string, path: string, body?: unknown) => callApi(server.base, headers, method, path, body);

  /** A project of six runs (lr 0.001 … 0.006, loss and accuracy over 30 steps; runs 0–3 ended, run 3 crashed). */
  async function makeProject(name: string): Promise<Fixture> {
    const fixture: Fixture = { projectId: '', runs: [] };
    for (let i = 0; i < 6; i++) {
      const lr = Number((0.001 * (i + 1)).toFixed(3));
      const { data } = await call('POST', `/api/v1/projects/${name}/runs`, {
        name: `run-${i}`,
        tags: i % 2 ? ['odd'] : ['even', 'baseline'],
        config: { lr, optimizer: i < 3 ? 'adam' : 'sgd', model: { layers: 2 + i } },
      });
      fixture.projectId = data.projectId;
      fixture.runs.push({ id: data.id, name: data.name, lr });
      const metrics = [];
      for (let step = 0; step < 30; step++) {
        metrics.push({ name: 'loss', step, value: 2 / (1 + step * lr * 50) });
        metrics.push({ name: 'accuracy', step, value: 1 - 1 / (1 + step * lr * 20) });
      }
      await call('POST', `/api/v1/runs/${data.id}/metrics`, { metrics });
      if (i < 4) await call('POST', `/api/v1/runs/${data.id}/finish`, { exitCode: i === 3 ? 1 : 0, state: i === 3 ? 'crashed' : 'finished' });
    }
    return fixture;
  }

  beforeAll(async () => {
    await ensureUiBuilt();
    [server, browser] = await Promise.all([startServer(['--data', mkdtempSync(join(tmpdir(), 'wldb-e2e-ws-'))]), openBrowser()]);
    headers = (await server.credentials()).headers;
    shared = await makeProject('workspace-e2e');
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  const open = () => pages.open({ viewport: { width: 1400, height: 900 } });
  const rows = (page: Page) => page.locator('[data-testid="run-row"]');
  const rowIds = (page: Page) => rows(page).evaluateAll((els) => els.map((e) => e.getAttribute('data-run-id')));
  const idOf = (f: Fixture, name: string) => f.runs.find((r) => r.name === name)!.id;

  it('shows the overview: run counts by state and recent runs', async () => {
    const page = await open();
    await page.goto(`${server.base}/projects/${shared.projectId}`);
    await expect.poll(() => page.getByTestId('run-total').textContent()).toBe('6');
    await expect.poll(() => page.locator('[data-testid="recent-runs"] tbody tr').count()).toBe(6);
    expect(await page.getByTestId('state-chart').textContent()).toMatch(/finished\s*3/);
    await screenshot(page, 'project-overview');
  });

  it('filters and sorts the runs table on the server, and shows a bad filter\'s error', async () => {
    const page = await open();
    await page.goto(`${server.base}/projects/${shared.projectId}/runs`);
    await expect.poll(() => rows(page).count()).toBe(6);
    // Newest first by default.
    expect(await rowIds(page)).toEqual(shared.runs.map((r) => r.id).reverse());

    const filter = page.getByTestId('runs-filter');
    await filter.fill('config.lr >>> 1');
    await filter.press('Enter');
    await expect.poll(() => page.getByTestId('runs-error').textContent()).toMatch(/filter/i);

    await filter.fill('config.lr > 0.0025');
    await filter.press('Enter');
    await expect.poll(() => rows(page).count()).toBe(4);
    expect(await page.getByTestId('runs-error').count()).toBe(0);

    // The lr column (config keys become columns); click to sort ascending, again for descending.
    const lr = page.locator('[data-testid="column-header"][data-col="config.lr"]');
    await lr.click();
    await expect.poll(() => rowIds(page)).toEqual(['run-2', 'run-3', 'run-4', 'run-5'].map((n) => idOf(shared, n)));
    await lr.click();
    await expect.poll(() => rowIds(page)).toEqual(['run-5', 'run-4', 'run-3', 'run-2'].map((n) => idOf(shared, n)));

    // Group by a config key: two groups with counts.
    await page.getByTestId('group-by').selectOption('config.optimizer');
    await expect.poll(() => page.locator('[data-testid="run-group"]').count()).toBe(2);
    expect(await page.locator('[data-testid="run-group"][data-group="adam"]').textContent()).toMatch(/\(1\)/);
    await page.locator('[data-testid="run-group"][data-group="sgd"]').click(); // collapse
    await expect.poll(() => rows(page).count()).toBe(1);
    await page.getByTestId('group-by').selectOption('');
    await expect.poll(() => rows(page).count()).toBe(4);
  });

  it('selects two runs and charts them in a workspace saved as a view', async () => {
    // A project of its own: the test saves a view in it.
    const own = await makeProject('workspace-e2e-views');
    const page = await open();
    const { projectId } = own;
    await page.goto(`${server.base}/projects/${projectId}/runs`);
    await expect.poll(() => rows(page).count()).toBe(6);
    await page.locator(`[data-testid="run-select"][data-run-id="${idOf(own, 'run-5')}"]`).click();
    await page.locator(`[data-testid="run-select"][data-run-id="${idOf(own, 'run-3')}"]`).click();
    await expect.poll(() => page.getByTestId('runs-count').textContent()).toMatch(/2 selected/);
    await screenshot(page, 'runs-table');

    await page.getByTestId('open-workspace').click();
    await page.waitForURL((u) => u.pathname.endsWith('/workspace'));
    await expect.poll(() => page.getByText('2 selected runs').count()).toBe(1);
    // The default layout: one line chart per metric key the runs share.
    await expect.poll(() => page.locator('[data-panel-type="tracking.line-chart"]').count(), { timeout: 15_000 }).toBe(2);

    const before = await page.locator('[data-panel-type]').count();
    await page.getByTestId('add-panel').click();
    await expect.poll(() => page.locator('[data-panel-type]').count()).toBe(before + 1);
    const added = await page.locator('[data-panel-type]').last().getAttribute('data-panel-type');

    await page.getByTestId('save-view-as').click();
    await page.getByTestId('view-name').fill('my view');
    await page.getByTestId('view-scope').selectOption('shared');
    await page.getByTestId('save-view-confirm').click();
    await expect.poll(() => page.getByTestId('workspace-notice').textContent()).toMatch(/my view/);
    // The two line charts have drawn both runs before the screenshot.
    await expect.poll(() => page.locator('[data-panel-type="tracking.line-chart"] [data-series][data-last]:not([data-last=""])').count(), { timeout: 15_000 }).toBeGreaterThanOrEqual(4);
    await screenshot(page, 'workspace');

    const views = (await call('GET', `/api/v1/projects/${projectId}/views`)).data;
    expect(views.map((v: { name: string }) => v.name)).toEqual(['my view']);
    expect(views[0].scope).toBe('shared');
    expect(views[0].spec.panels.map((p: { type: string }) => p.type)).toEqual(['tracking.line-chart', 'tracking.line-chart', added]);

    // Reloaded, the workspace opens the last view used.
    await page.reload();
    const select = page.getByTestId('views');
    await expect.poll(() => select.evaluate((s: HTMLSelectElement) => s.selectedOptions[0]?.textContent ?? '')).toMatch(/my view/);
    expect(await select.inputValue()).toBe(views[0].id);
    await expect.poll(() => page.locator('[data-panel-type]').count()).toBe(before + 1);

    // Full screen and back with Esc.
    await page.locator('[data-testid="panel-fullscreen"]').first().click();
    await expect.poll(() => page.locator('.panel.fullscreen').count()).toBe(1);
    await page.keyboard.press('Escape');
    await expect.poll(() => page.locator('.panel.fullscreen').count()).toBe(0);
  });

  it('pages a large project in the background and renders only the visible rows', async () => {
    const page = await open();
    const big = 'workspace-e2e-big';
    const N = 2500;
    let bigId = '';
    const queue = Array.from({ length: N }, (_, i) => i);
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (let i = queue.shift(); i !== undefined; i = queue.shift()) {
          const { data } = await call('POST', `/api/v1/projects/${big}/runs`, { name: `bulk-${i}`, config: { i, half: i % 2 } });
          bigId = data.projectId;
        }
      }),
    );
    const started = Date.now();
    await page.goto(`${server.base}/projects/${bigId}/runs`);
    await expect.poll(() => rows(page).count(), { timeout: 10_000 }).toBeGreaterThan(5);
    const firstRowsAfter = Date.now() - started;
    await expect.poll(() => page.getByTestId('runs-count').textContent(), { timeout: 30_000 }).toBe(`${N} runs`);
    const rendered = await rows(page).count();
    expect(rendered).toBeLessThan(150); // virtualised: only what is on screen (plus a margin)
    // Scroll to the end (row heights settle as rows render, so keep scrolling): the oldest run appears.
    const last = page.locator('[data-testid="run-row"] [data-col="name"] a').getByText('bulk-0', { exact: true });
    await expect
      .poll(
        async () => {
          await page.locator('wl-runs-table').evaluate((el) => {
            const s = el.shadowRoot!.querySelector('.body')!;
            s.scrollTop = s.scrollHeight;
          });
          return last.count();
        },
        { timeout: 10_000 },
      )
      .toBeGreaterThan(0);
    await screenshot(page, 'runs-table-large');
    expect(firstRowsAfter).toBeLessThan(10_000);
  }, 180_000);

  it('updates the runs table live: a new run appears, finishes and goes without a reload', async () => {
    // A project of its own: the test adds and deletes a run.
    const own = await makeProject('workspace-e2e-live');
    const { projectId } = own;
    const page = await open();
    await page.goto(`${server.base}/projects/${projectId}/runs`);
    await expect.poll(() => rows(page).count()).toBe(6);
    await expect.poll(() => page.getByTestId('runs-live').count()).toBe(1);
    // A selection survives the live changes.
    const pick = page.locator(`[data-testid="run-select"][data-run-id="${idOf(own, 'run-1')}"]`);
    await pick.click();
    await expect.poll(() => page.getByTestId('runs-count').textContent()).toBe('6 runs · 1 selected');
    const selected = ' · 1 selected';
    // The page must not reload: a marker on the window survives only without one.
    await page.evaluate(() => ((window as unknown as { liveMarker: number }).liveMarker = 1));

    const { data } = await call('POST', `/api/v1/projects/${projectId}/runs`, { name: 'live-run', config: { lr: 0.5 } });
    const row = page.locator(`[data-testid="run-row"][data-run-id="${data.id}"]`);
    await expect.poll(() => row.count()).toBe(1);
    expect((await rowIds(page))[0]).toBe(data.id); // newest first
    expect(await row.locator('[data-col="state"]').textContent()).toMatch(/running/);
    await expect.poll(() => page.getByTestId('runs-count').textContent()).toBe(`7 runs${selected}`);

    await call('POST', `/api/v1/runs/${data.id}/finish`, { exitCode: 0 });
    await expect.poll(() => row.locator('[data-col="state"]').textContent()).toMatch(/finished/);

    await call('DELETE', `/api/v1/runs/${data.id}`);
    await expect.poll(() => row.count()).toBe(0);
    await expect.poll(() => page.getByTestId('runs-count').textContent()).toBe(`6 runs${selected}`);
    expect(await pick.isChecked()).toBe(true);
    expect(await page.evaluate(() => (window as unknown as { liveMarker?: number }).liveMarker)).toBe(1);
  });
});
