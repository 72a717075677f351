import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { init, type InitOptions, type Run } from '@wanllmdb/sdk';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type ServerProcess } from '../server-process.js';
import { callApi, ensureUiBuilt, openBrowser, screenshot } from './browser.js';
import { pagesPerTest, setTheme } from './pages.js';

/**
 * The run page, live charts and the compare view in a real browser: runs
 * are logged through the SDK (remote mode, an API key) against a real
 * `wanllmdb serve`; a point logged while the charts page is open must show
 * in the `loss` chart without a reload.
 *
 * Runs `a` (running, system metrics on) and `b` (finished) are made once and
 * only read; a test that changes a run (notes, tags, a new point) makes its own.
 */

/**
 * The figure is ≤ 2 s (bench/ui.ts measures ~40 ms on an idle machine);
 * here the point must arrive live — without a reload — within a budget that
 * survives a loaded CI machine running other suites in parallel.
 */
const LIVE_BUDGET_MS = 10_000;
const PROJECT = 'e2e-web-charts';

/** The `data-last` of a series in a chart's legend (Playwright's CSS locators pierce shadow roots). */
const lastOf = (page: Page, runId: string, key: string) => page.locator(`wl-line-chart[data-key="${key}"] [data-series="${runId}:${key}"]`).first();

describe('run page and compare view (browser)', { timeout: 90_000 }, () => {
  let server: ServerProcess;
  let browser: Browser;
  let headers: Record<string, string>;
  let sdk: InitOptions;
  let a: Run;
  let b: Run;
  let lastLoss = 0;
  const pages = pagesPerTest(() => ({ base: server.base, browser }));

  beforeAll(async () => {
    await ensureUiBuilt();
    [server, browser] = await Promise.all([startServer(['--data', mkdtempSync(join(tmpdir(), 'wldb-e2e-run-page-'))]), openBrowser()]);
    const { apiKey } = await server.credentials();
    headers = (await server.credentials()).headers;
    sdk = { url: `grpc://127.0.0.1:${server.grpcPort}`, apiKey, project: PROJECT, captureConsole: false, handleExit: false, heartbeatMs: 0, timeoutMs: 30_000, systemMetrics: false };
    a = await init({ ...sdk, name: 'baseline', tags: ['web'], notes: 'first try', config: { lr: 0.01, optimizer: 'adam', model: { layers: 4, act: 'relu' }, seed: 1 }, systemMetrics: { intervalMs: 1000 } });
    b = await init({ ...sdk, name: 'lower-lr', config: { lr: 0.001, optimizer: 'adam', model: { layers: 4, act: 'gelu' }, seed: 2 } });
    for (let step = 0; step < 300; step++) {
      lastLoss = Math.exp(-step / 80) + 0.05 * Math.sin(step / 3);
      a.log({ loss: lastLoss, acc: 1 - Math.exp(-step / 60), train: { loss: lastLoss * 1.1, lr: 0.01 * 0.99 ** step } }, { step });
      b.log({ loss: Math.exp(-step / 150) + 0.1, acc: 1 - Math.exp(-step / 120), train: { loss: Math.exp(-step / 150) * 1.1 } }, { step });
    }
    await Promise.all([a.flush(), b.flush()]);
    b.summary.set('best_acc', 0.8);
    await b.finish();
    // Console lines for the logs tab.
    await callApi(server.base, headers, 'POST', `/api/v1/runs/${a.id}/logs`, {
      lines: Array.from({ length: 2000 }, (_, i) => ({ line: `epoch ${Math.floor(i / 100)} batch ${i % 100}: loss=${(1 / (i + 1)).toFixed(5)}${i % 250 === 0 ? ' checkpoint saved' : ''}`, stream: i % 500 === 7 ? 'stderr' : 'stdout' })),
    });
  }, 180_000);

  afterAll(async () => {
    await a?.finish().catch(() => undefined);
    await browser?.close();
    await server?.stop();
  });

  const open = () => pages.open({ viewport: { width: 1360, height: 900 } });

  /** Opens a run's charts and waits until the loss chart shows `last` (data loaded, chart drawn). */
  async function openCharts(runId: string, last: number): Promise<Page> {
    const page = await open();
    await page.goto(`${server.base}/runs/${runId}/charts`);
    await expect.poll(() => lastOf(page, runId, 'loss').getAttribute('data-last'), { timeout: 15_000 }).toBe(String(last));
    return page;
  }

  it('finds the run from the projects list: project → runs table → run page', async () => {
    const page = await open();
    await page.goto(`${server.base}/projects`);
    await page.getByRole('link', { name: PROJECT }).first().click();
    await page.waitForURL((u) => u.pathname.startsWith(`/projects/${a.projectId}`));
    await page.goto(`${server.base}/projects/${a.projectId}/runs`);
    const row = page.locator(`[data-testid=run-row][data-run-id="${a.id}"]`);
    await row.waitFor({ timeout: 15_000 });
    await row.getByRole('link', { name: 'baseline' }).click();
    await page.waitForURL((u) => u.pathname === `/runs/${a.id}`);
  });

  it('shows the run overview with editable notes and tags, config tree and summary', async () => {
    // A run of its own: the test edits its notes and tags.
    const { data: run } = await callApi(server.base, headers, 'POST', `/api/v1/projects/${a.projectId}/runs`, {
      name: 'notes-and-tags',
      tags: ['web'],
      notes: 'first try',
      config: { lr: 0.01, optimizer: 'adam', model: { layers: 4, act: 'relu' }, seed: 1 },
    });
    const page = await open();
    await page.goto(`${server.base}/runs/${run.id}`);
    await expect.poll(() => page.locator('#run-state').textContent(), { timeout: 15_000 }).toContain('running');
    await expect.poll(() => page.locator('wl-config-tree [data-key="act"]').count()).toBeGreaterThan(0);
    await page.locator('#notes-text').click();
    await page.locator('#notes-input').fill('tuned the learning rate');
    await page.locator('#save-notes').click();
    await expect.poll(() => page.locator('#notes-text').textContent()).toContain('tuned the learning rate');
    await page.locator('#tag-input').fill('candidate');
    await page.locator('#tag-input').press('Enter');
    await expect.poll(() => page.locator('#tags [data-tag="candidate"]').count()).toBe(1);
    const saved = (await callApi(server.base, headers, 'GET', `/api/v1/runs/${run.id}`)).data;
    expect(saved.notes).toBe('tuned the learning rate');
    expect(saved.tags).toEqual(['web', 'candidate']);
    await page.locator('#config-search').fill('gelu');
    await expect.poll(() => page.locator('wl-config-tree p.muted').textContent()).toContain('Nothing matches');
    await page.locator('#config-search').fill('act');
    await expect.poll(() => page.locator('wl-config-tree tr[data-key="model.act"] mark').count()).toBeGreaterThan(0);
    await page.locator('#config-search').fill('');
    await screenshot(page, 'run-overview-light');
  });

  it('charts every metric, grouped with system metrics last, in both themes', async () => {
    const page = await openCharts(a.id, lastLoss);
    expect(Number(await page.locator('wl-line-chart[data-key="loss"]').evaluate((el: any, id: string) => el.lastValue(id, 'loss'), a.id))).toBe(lastLoss);
    const groups = () => page.locator('details.group').evaluateAll((els) => els.map((e) => e.getAttribute('data-group')));
    expect((await groups()).slice(0, 2)).toEqual(['Charts', 'train']);
    await expect.poll(async () => (await groups()).at(-1), { timeout: 15_000 }).toBe('System');
    await screenshot(page, 'run-charts-light');
    await setTheme(page, 'dark');
    await screenshot(page, 'run-charts-dark');
  });

  it('shows a point logged while the charts are open, without a reload (the ≤ 2 s figure is bench/ui.ts)', async () => {
    // A run of its own: the test logs into it.
    const run = await init({ ...sdk, name: 'live' });
    try {
      for (let step = 0; step < 10; step++) run.log({ loss: 1 / (step + 1) }, { step });
      await run.flush();
      const page = await openCharts(run.id, 0.1);
      await page.evaluate(() => ((window as unknown as { liveMarker: number }).liveMarker = 1));
      // The server has subscribed the chart's stream: the point can only come through it.
      await page.locator('wl-line-chart[data-key="loss"][data-live="open"]').waitFor({ state: 'attached', timeout: 15_000 });
      const t0 = Date.now();
      run.log({ loss: 0.0123 }, { step: 10 });
      await run.flush();
      await expect.poll(() => lastOf(page, run.id, 'loss').getAttribute('data-last'), { timeout: LIVE_BUDGET_MS, interval: 25 }).toBe('0.0123');
      const ms = Date.now() - t0;
      console.log(`live point: logged → shown in ${ms} ms`);
      expect(ms).toBeLessThan(LIVE_BUDGET_MS);
      expect(await page.evaluate(() => (window as unknown as { liveMarker?: number }).liveMarker)).toBe(1);
    } finally {
      await run.finish();
    }
  });

  it('zooms by dragging and re-queries the range at full detail', async () => {
    const page = await openCharts(a.id, lastLoss);
    const chart = page.locator('wl-line-chart[data-key="loss"]');
    const over = chart.locator('.u-over');
    await over.waitFor({ state: 'visible' });
    const box = await over.boundingBox();
    expect(box, 'the loss chart is drawn').not.toBeNull();
    const query = page.waitForRequest((r) => r.url().endsWith('/api/v1/metrics/query') && JSON.parse(r.postData() ?? '{}').xMin !== undefined, { timeout: 25_000 });
    await page.mouse.move(box!.x + box!.width * 0.2, box!.y + box!.height / 2);
    await page.mouse.down();
    await page.mouse.move(box!.x + box!.width * 0.4, box!.y + box!.height / 2, { steps: 5 });
    await page.mouse.up();
    const body = JSON.parse((await query).postData()!);
    expect(body.xMin).toBeGreaterThan(20);
    expect(body.xMax).toBeLessThan(150);
    await expect.poll(() => chart.locator('button.reset').count()).toBe(1);
    await chart.locator('button.reset').click();
    await expect.poll(() => chart.locator('button.reset').count()).toBe(0);
  });

  it('shows the console log virtualised, with search and highlighting', async () => {
    const page = await open();
    await page.goto(`${server.base}/runs/${a.id}/logs`);
    await expect.poll(() => page.locator('wl-run-logs').evaluate((el: any) => el.lines.length), { timeout: 15_000 }).toBe(2000);
    // Virtualised: far fewer line elements than lines.
    expect(await page.locator('wl-run-logs .line').count()).toBeLessThan(300);
    await page.locator('wl-run-logs .log-search').fill('checkpoint');
    await expect.poll(() => page.locator('wl-run-logs .matches').textContent()).toContain('8 matching lines');
    await page.locator('wl-run-logs .log-search').press('Enter');
    await expect.poll(() => page.locator('wl-run-logs .line.current mark').count()).toBeGreaterThan(0);
    await screenshot(page, 'run-logs-light');
  });

  it('compares two runs: overlaid charts and the differing config keys highlighted', async () => {
    const page = await open();
    await page.goto(`${server.base}/projects/${a.projectId}/compare?runs=${a.id},${b.id}`);
    const lr = page.locator('wl-compare-view tr[data-key="lr"]');
    await expect.poll(() => lr.getAttribute('class'), { timeout: 15_000 }).toContain('differs');
    expect(await page.locator('wl-compare-view tr[data-key="model.act"]').getAttribute('class')).toContain('differs');
    expect(await page.locator('wl-compare-view tr[data-key="optimizer"]').getAttribute('class')).not.toContain('differs');
    const bg = await lr.locator('td').first().evaluate((td) => getComputedStyle(td).backgroundColor);
    expect(bg).not.toBe('rgba(0, 0, 0, 0)');
    // Both runs overlaid in the loss chart.
    await expect.poll(() => page.locator(`wl-compare-view wl-line-chart[data-key="loss"] [data-series]`).count(), { timeout: 15_000 }).toBe(2);
    await page.locator('wl-compare-view .only-diffs').check();
    await expect.poll(() => page.locator('wl-compare-view tr[data-key="optimizer"]').count()).toBe(0);
    await page.locator('wl-compare-view .only-diffs').uncheck();
    await expect.poll(() => page.locator('wl-compare-view tr[data-key="optimizer"]').count()).toBe(1);
    await screenshot(page, 'compare-light');
    await setTheme(page, 'dark');
    await screenshot(page, 'compare-dark');
  });

  it('has panels that fill their box and send their config up', async () => {
    const page = await open();
    await page.goto(`${server.base}/runs/${a.id}/files`);
    await page.locator('wl-run-page #run-state').waitFor();
    await page.evaluate(
      ([pid, ids]) => {
        const host = document.createElement('div');
        host.id = 'panels';
        host.style.cssText = 'position:fixed;inset:60px 20px auto 20px;display:grid;grid-template-columns:repeat(3,1fr);gap:12px;z-index:9;background:var(--wl-bg);padding:8px';
        const configs: [string, Record<string, unknown>][] = [
          ['wl-line-chart-panel', { keys: ['loss', 'acc'], xKey: 'step', smoothing: 0.5, logScale: false, ignoreOutliers: false }],
          ['wl-scatter-panel', { x: 'config.lr', y: 'summary.loss' }],
          ['wl-parallel-coordinates-panel', { axes: ['config.lr', 'config.model.act', 'config.seed'], metric: 'summary.loss' }],
        ];
        (window as any).panelEvents = [];
        for (const [tag, config] of configs) {
          const box = document.createElement('div');
          box.style.cssText = 'height:300px;display:flex;flex-direction:column;border:1px solid var(--wl-border);padding:6px;overflow:auto';
          const el = Object.assign(document.createElement(tag), { projectId: pid, runIds: ids, config });
          el.addEventListener('wl-panel-config', (e: any) => (window as any).panelEvents.push({ tag, detail: e.detail }));
          box.append(el);
          host.append(box);
        }
        document.body.append(host);
      },
      [a.projectId, [a.id, b.id]] as const,
    );
    const panel = page.locator('#panels wl-line-chart-panel');
    await expect.poll(() => panel.locator('[data-series]').count(), { timeout: 15_000 }).toBe(4);
    // The legend is inside the panel's box (the chart took the height that is left).
    const legend = (await panel.locator('.legend').boundingBox())!;
    const box = (await page.locator('#panels > div').first().boundingBox())!;
    expect(legend.y + legend.height).toBeLessThanOrEqual(box.y + box.height + 1);
    await panel.locator('.edit-toggle').click();
    await panel.locator('input.log').check();
    await expect.poll(() => page.evaluate(() => (window as any).panelEvents.at(-1))).toMatchObject({ tag: 'wl-line-chart-panel', detail: { keys: ['loss', 'acc'], logScale: true } });
    // Every panel has drawn (the scatter and parallel-coordinates canvases too) before the screenshots.
    await expect.poll(() => page.locator('#panels [data-drawn-theme="light"]').count()).toBeGreaterThanOrEqual(3);
    await screenshot(page, 'panels-light');
    await setTheme(page, 'dark');
    await screenshot(page, 'panels-dark');
  });

  it('renders 100 runs × 1,000 buckets quickly (timings logged)', async () => {
    const page = await open();
    const runIds = Array.from({ length: 100 }, (_, r) => `00000000-0000-4000-8000-${String(r).padStart(12, '0')}`);
    const data = runIds.map((runId, r) => {
      const x = Array.from({ length: 1000 }, (_, i) => i * 100 + (r % 7));
      const value = x.map((s) => Math.exp(-s / (20_000 + r * 300)) + 0.02 * Math.sin(s / 700 + r));
      return { runId, key: 'loss', sampled: true, x, value, min: value.map((v) => v - 0.01), max: value.map((v) => v + 0.01), count: x.map(() => 100), time: [] };
    });
    // This page only (its own context): every chart query answers these series.
    await page.route('**/api/v1/metrics/query', (route) => route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({ data }) }));
    // A page without charts of its own (the mocked query would answer them too).
    await page.goto(`${server.base}/runs/${a.id}/files`);
    await page.locator('wl-run-page #run-state').waitFor();
    const result = await page.evaluate(async (ids) => {
      const el = document.createElement('wl-line-chart') as any;
      el.style.cssText = 'position:fixed;top:60px;left:20px;width:1100px;z-index:9;background:var(--wl-bg)';
      const t0 = performance.now();
      const rendered = new Promise<{ ms: number; series: number; points: number; requestMs: number; parseMs: number }>((resolve) =>
        el.addEventListener('wl-chart-rendered', (e: CustomEvent) => e.detail.series > 0 && resolve(e.detail)),
      );
      el.runIds = ids;
      el.keys = ['loss'];
      el.height = 360;
      el.ignoreOutliers = true;
      document.body.append(el);
      const d = await rendered;
      return { total: performance.now() - t0, draw: d.ms, request: d.requestMs, parse: d.parseMs, series: d.series, points: d.points };
    }, runIds);
    console.log(
      `100 runs × 1,000 buckets: ${result.total.toFixed(0)} ms mount → drawn; request ${result.request.toFixed(0)} ms (a 10 MB mocked answer through the test's route), ` +
        `decode ${result.parse.toFixed(0)} ms, align + draw ${result.draw.toFixed(0)} ms (${result.series} series, ${result.points} x values)`,
    );
    expect(result.series).toBe(100);
    // What the chart itself spends (the network is the server's part).
    expect(result.parse + result.draw).toBeLessThan(1500); // ~100 ms idle; the budget survives a loaded CI machine
    // Interaction stays smooth: a redraw (e.g. a hover-free re-layout) is fast too.
    const redraw = await page.evaluate(async () => {
      const el = [...document.querySelectorAll('wl-line-chart')].at(-1) as any;
      const done = new Promise<number>((r) => el.addEventListener('wl-chart-rendered', (e: CustomEvent) => r(e.detail.ms), { once: true }));
      el.smoothing = 0.6;
      return done;
    });
    console.log(`100 runs × 1,000 buckets: re-smoothing and redrawing took ${redraw.toFixed(0)} ms`);
    expect(redraw).toBeLessThan(1500);
    await screenshot(page, 'chart-100-runs');
  });
});
