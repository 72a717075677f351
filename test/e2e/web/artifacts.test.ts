import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Artifact, init, type InitOptions } from '@wanllmdb/sdk';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type ServerProcess } from '../server-process.js';
import { ensureUiBuilt, openBrowser, screenshot } from './browser.js';
import { pagesPerTest } from './pages.js';

/**
 * The artifacts UI in a real browser against a real `wanllmdb serve`: a
 * script (the TypeScript SDK, remote over gRPC with an API key) logs a
 * dataset in one run (two versions, one file changed between them); a
 * second run uses the first version and logs a model. Then the project's
 * Artifacts tab lists both, the model's lineage graph shows both edges
 * (dataset → run 2 → model, run 1 → dataset) and leads to the run page,
 * whose Artifacts tab lists the run's inputs and outputs; the files browser
 * previews JSON, CSV and JSON Lines; the diff of the two dataset versions
 * shows the one changed file; a third run's alpaca dataset, one row of
 * which lacks "output", validates to a report of that row. The data is made
 * once and only read.
 */

const PROJECT = 'e2e-web-artifacts';

describe('artifacts (browser)', { timeout: 90_000 }, () => {
  let server: ServerProcess;
  let browser: Browser;
  let projectId = '';
  let run1 = '';
  let run2 = '';
  let data = { artifactId: '', v0: '', v1: '' };
  let model = { artifactId: '', v0: '' };
  let aliases = '';
  let alpaca = '';
  const pages = pagesPerTest(() => ({ base: server.base, browser }));

  beforeAll(async () => {
    const root = mkdtempSync(join(tmpdir(), 'wldb-e2e-artifacts-'));
    await ensureUiBuilt();
    [server, browser] = await Promise.all([startServer(['--data', join(root, 'server')]), openBrowser()]);
    const { apiKey } = await server.credentials();
    const sdk: InitOptions = { url: `grpc://127.0.0.1:${server.grpcPort}`, apiKey, project: PROJECT, captureConsole: false, handleExit: false, heartbeatMs: 0, timeoutMs: 30_000, systemMetrics: false };
    const folder = (name: string, files: Record<string, string | Buffer>) => {
      const dir = join(root, name);
      for (const [path, text] of Object.entries(files)) {
        mkdirSync(join(dir, path, '..'), { recursive: true });
        writeFileSync(join(dir, path), text);
      }
      return dir;
    };
    const raw = {
      'config.json': JSON.stringify({ rows: 3, source: 'e2e', split: { train: 2, test: 1 } }),
      'labels.csv': 'id,label\n1,cat\n2,"dog, big"\n',
      'train/part-0.jsonl': '{"instruction":"add","input":"1+1","output":"2"}\n{"instruction":"greet","input":"","output":"hello"}\n',
      'README.md': '# e2e data\n',
      // A 1×1 PNG.
      'pixel.png': Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64'),
    };

    // Run 1 logs the dataset, then a second version with one file changed.
    const prepare = await init({ ...sdk, name: 'prepare' });
    const dataset = new Artifact('e2e-data', 'dataset', { metadata: { rows: 3 } });
    await dataset.addDir(folder('data-v0', raw));
    const d0 = await prepare.logArtifact(dataset, { aliases: ['stable'] });
    const changed = new Artifact('e2e-data', 'dataset', { metadata: { rows: 4 } });
    await changed.addDir(folder('data-v1', { ...raw, 'labels.csv': 'id,label\n1,cat\n2,"dog, big"\n3,bird\n' }));
    const d1 = await prepare.logArtifact(changed);
    // A collection of its own for the alias test, which changes its aliases.
    const a0 = await prepare.logArtifact(await new Artifact('e2e-aliases', 'result').addDir(folder('aliases-v0', { 'a.txt': 'a' })), { aliases: ['stable'] });
    await prepare.logArtifact(await new Artifact('e2e-aliases', 'result').addDir(folder('aliases-v1', { 'a.txt': 'b' })));
    await prepare.finish();
    expect([d0.version, d1.version]).toEqual(['v0', 'v1']);

    // Run 2 uses the first version and logs a model.
    const train = await init({ ...sdk, name: 'train' });
    await train.useArtifact('e2e-data:stable').version();
    const weights = new Artifact('e2e-model', 'model');
    await weights.addDir(folder('model', { 'weights.bin': 'not really weights\u0000\u0001', 'card.json': '{"arch":"mlp"}' }));
    const m0 = await train.logArtifact(weights);
    await train.finish();

    // Run 3 logs an alpaca dataset whose second line lacks "output".
    const curate = await init({ ...sdk, name: 'curate' });
    const sft = new Artifact('e2e-alpaca', 'dataset');
    await sft.addDir(
      folder('alpaca-v0', {
        'train.jsonl': '{"instruction":"add","input":"1+1","output":"2"}\n{"instruction":"greet","input":""}\n{"instruction":"sub","input":"3-1","output":"2"}\n',
        'README.md': '# alpaca\n',
      }),
    );
    const s0 = await curate.logArtifact(sft);
    await curate.finish();

    projectId = prepare.projectId;
    run1 = prepare.id;
    run2 = train.id;
    data = { artifactId: d0.artifactId, v0: d0.id, v1: d1.id };
    model = { artifactId: m0.artifactId, v0: m0.id };
    aliases = a0.artifactId;
    alpaca = s0.artifactId;
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  const open = () => pages.open({ viewport: { width: 1360, height: 900 } });
  const tab = (state: Record<string, string> = {}) => `${server.base}/projects/${projectId}/artifacts${Object.keys(state).length ? `?${new URLSearchParams(state)}` : ''}`;

  it('lists the project’s artifacts by type, and searches them', async () => {
    const page = await open();
    await page.goto(`${server.base}/projects/${projectId}`);
    await page.getByTestId('tab-artifacts').click();
    await page.waitForURL((u) => u.pathname === `/projects/${projectId}/artifacts`);
    const row = (name: string) => page.locator(`[data-testid=artifact-row][data-name="${name}"]`);
    await row('e2e-data').waitFor();
    await row('e2e-model').waitFor();
    expect(await page.locator('[data-testid=artifact-group]').evaluateAll((els) => els.map((e) => e.getAttribute('data-type')))).toEqual(['dataset', 'model', 'result']);
    expect(await row('e2e-data').locator('td').nth(1).textContent()).toContain('v1');
    await page.getByTestId('artifact-search').fill('model');
    await expect.poll(() => page.locator('[data-testid=artifact-row]').count()).toBe(1);
    await row('e2e-model').waitFor();
    await page.getByTestId('artifact-search').fill('nothing-like-this');
    await page.getByTestId('artifacts-empty').waitFor();
    await page.getByTestId('artifact-search').fill('');
    await row('e2e-data').getByTestId('artifact-link').click();
    await page.getByTestId('versions-table').waitFor();
    expect(await page.locator('[data-testid=version-row]').evaluateAll((els) => els.map((e) => e.getAttribute('data-version')))).toEqual(['v1', 'v0']);
    await expect.poll(() => page.locator('[data-testid=version-row][data-version=v0]').textContent()).toContain('stable');
    await screenshot(page, 'artifacts-versions');
  });

  it('draws the model’s lineage with both edges, and a click on the run opens its inputs and outputs', async () => {
    const page = await open();
    await page.goto(tab({ artifact: model.artifactId }));
    await page.getByTestId('artifact-view-lineage').click();
    const edge = (from: string, to: string) => page.locator(`[data-testid=lineage-edge][data-from="${from}"][data-to="${to}"]`);
    await edge(`run:${run2}`, `version:${model.v0}`).waitFor({ state: 'attached' });
    await edge(`version:${data.v0}`, `run:${run2}`).waitFor({ state: 'attached' });
    await edge(`run:${run1}`, `version:${data.v0}`).waitFor({ state: 'attached' });
    expect(await page.locator('[data-testid=lineage-edge]').count()).toBe(3);
    // Runs and versions are different shapes, labelled by name.
    expect(await page.locator(`[data-node-id="run:${run2}"]`).getAttribute('data-label')).toBe('train');
    expect(await page.locator(`[data-node-id="version:${data.v0}"]`).getAttribute('data-label')).toBe('e2e-data:v0');
    expect(await page.locator(`[data-node-id="version:${model.v0}"] rect`).getAttribute('rx')).not.toBe(await page.locator(`[data-node-id="run:${run2}"] rect`).getAttribute('rx'));
    await screenshot(page, 'artifacts-lineage');

    await page.locator(`[data-node-id="run:${run2}"]`).click();
    await page.waitForURL((u) => u.pathname === `/runs/${run2}`);
    await page.getByTestId('tab-artifacts').click();
    await page.waitForURL((u) => u.pathname === `/runs/${run2}/artifacts`);
    await page.locator('[data-testid=run-inputs] [data-testid=run-artifact-row][data-name=e2e-data][data-version=v0]').waitFor();
    await page.locator('[data-testid=run-outputs] [data-testid=run-artifact-row][data-name=e2e-model][data-version=v0]').waitFor();
    expect(await page.locator('[data-testid=run-inputs] [data-testid=run-artifact-row]').count()).toBe(1);
    expect(await page.locator('[data-testid=run-outputs] [data-testid=run-artifact-row]').count()).toBe(1);
    await screenshot(page, 'artifacts-run-inputs-outputs');
  });

  it('opens a version from the lineage graph', async () => {
    const page = await open();
    await page.goto(tab({ artifact: model.artifactId, view: 'lineage' }));
    await page.locator(`[data-node-id="version:${data.v0}"]`).click();
    await page.waitForURL((u) => u.searchParams.get('artifact') === data.artifactId && u.searchParams.get('v') === 'v0');
    await expect.poll(() => page.getByTestId('artifact-name').textContent()).toBe('e2e-data');
    // The dataset's own lineage: run 1 logged it, run 2 used it.
    await page.locator(`[data-testid=lineage-edge][data-from="run:${run1}"][data-to="version:${data.v0}"]`).waitFor({ state: 'attached' });
    await page.locator(`[data-testid=lineage-edge][data-from="version:${data.v0}"][data-to="run:${run2}"]`).waitFor({ state: 'attached' });
  });

  it('browses a version’s files by directory and previews JSON, CSV and JSON Lines', async () => {
    const page = await open();
    await page.goto(tab({ artifact: data.artifactId, v: 'v0', view: 'files' }));
    await page.locator('[data-testid=dir-row][data-dir="train/"]').waitFor();
    expect(await page.locator('[data-testid=file-row]').evaluateAll((els) => els.map((e) => e.getAttribute('data-path')))).toEqual(['README.md', 'config.json', 'labels.csv', 'pixel.png']);

    await page.locator('[data-testid=file-row][data-path="config.json"] [data-testid=file-link]').click();
    const text = page.locator('[data-testid=file-preview][data-path="config.json"] [data-testid=preview-text]');
    await text.waitFor();
    // Pretty-printed: one key a line, indented.
    expect(await text.textContent()).toBe(JSON.stringify({ rows: 3, source: 'e2e', split: { train: 2, test: 1 } }, null, 2));
    await screenshot(page, 'artifacts-files-json');

    await page.locator('[data-testid=file-row][data-path="labels.csv"] [data-testid=file-link]').click();
    const csv = page.locator('[data-testid=file-preview][data-path="labels.csv"] [data-testid=preview-table]');
    await csv.waitFor();
    expect(await csv.locator('th').allTextContents()).toEqual(['id', 'label']);
    expect(await csv.locator('tbody tr').nth(1).locator('td').allTextContents()).toEqual(['2', 'dog, big']);

    await page.locator('[data-testid=file-row][data-path="pixel.png"] [data-testid=file-link]').click();
    const img = page.locator('[data-testid=file-preview][data-path="pixel.png"] [data-testid=preview-image]');
    await img.waitFor();
    await expect.poll(() => img.evaluate((el: HTMLImageElement) => el.complete && el.naturalWidth)).toBe(1);

    await page.locator('[data-testid=dir-row][data-dir="train/"] a').click();
    await page.locator('[data-testid=file-row][data-path="train/part-0.jsonl"] [data-testid=file-link]').click();
    const jsonl = page.locator('[data-testid=file-preview][data-path="train/part-0.jsonl"] [data-testid=preview-table]');
    await jsonl.waitFor();
    expect(await jsonl.locator('th').allTextContents()).toEqual(['instruction', 'input', 'output']);
    expect(await jsonl.locator('tbody tr').count()).toBe(2);
  });

  it('diffs two versions of the dataset: one changed file', async () => {
    const page = await open();
    await page.goto(tab({ artifact: data.artifactId }));
    await page.getByTestId('artifact-view-diff').click();
    await expect.poll(() => page.getByTestId('diff-changed').textContent()).toContain('1 changed');
    expect(await page.getByTestId('diff-added').textContent()).toContain('0 added');
    expect(await page.getByTestId('diff-removed').textContent()).toContain('0 removed');
    const rows = page.locator('[data-testid=diff-row]');
    expect(await rows.count()).toBe(1);
    expect(await rows.first().getAttribute('data-status')).toBe('changed');
    expect(await rows.first().getAttribute('data-path')).toBe('labels.csv');
    await screenshot(page, 'artifacts-diff');
  });

  it('sets, moves and removes an alias, with its history', async () => {
    const page = await open();
    await page.goto(tab({ artifact: aliases, v: 'v1' }));
    await page.locator('[data-testid=version-card][data-version=v1]').waitFor();
    await page.getByTestId('alias-input').fill('candidate');
    await page.getByTestId('alias-set').click();
    await page.locator('[data-testid=version-aliases] [data-alias=candidate]').waitFor();
    // Moving "stable" from v0 to v1.
    await page.getByTestId('alias-input').fill('stable');
    await page.getByTestId('alias-set').click();
    await page.locator('[data-testid=version-aliases] [data-alias=stable]').waitFor();
    await expect.poll(() => page.locator('[data-testid=version-row][data-version=v0]').textContent()).not.toContain('stable');
    await page.locator('[data-testid=version-aliases] [data-alias=candidate] [data-testid=alias-remove]').click();
    await expect.poll(() => page.locator('[data-testid=version-aliases] [data-alias=candidate]').count()).toBe(0);
    await page.getByTestId('artifact-view-aliases').click();
    const history = page.getByTestId('alias-history');
    await history.waitFor();
    const lines = await history.locator('tbody tr').allTextContents();
    expect(lines.some((l) => l.includes('stable') && l.includes('v0 → v1'))).toBe(true);
    expect(lines.some((l) => l.includes('candidate') && l.includes('removed from v1'))).toBe(true);

    // Deleting a version asks once more.
    await page.goto(tab({ artifact: aliases, v: 'v0' }));
    await page.locator('[data-testid=version-card][data-version=v0]').waitFor();
    await page.getByTestId('version-delete').click();
    await page.getByTestId('version-delete-confirm').click();
    await expect.poll(() => page.locator('[data-testid=version-row]').evaluateAll((els) => els.map((e) => e.getAttribute('data-version')))).toEqual(['v1']);
  });

  it('validates a dataset version: one bad row, with its line, field and reason', async () => {
    const page = await open();
    await page.goto(tab({ artifact: alpaca, v: 'v0' }));
    await page.locator('[data-testid=version-card][data-version=v0]').waitFor();
    await page.getByTestId('dataset-validate').click();
    const report = page.getByTestId('validation-report');
    await report.waitFor();
    expect(await report.getAttribute('data-valid')).toBe('false');
    expect(await page.getByTestId('validation-format').textContent()).toBe('alpaca');
    expect(await page.getByTestId('validation-rows').textContent()).toBe('3');
    expect(await page.getByTestId('validation-invalid').textContent()).toBe('1');
    const bad = page.locator('[data-testid=validation-error]');
    expect(await bad.count()).toBe(1);
    expect(await bad.first().getAttribute('data-path')).toBe('train.jsonl');
    expect(await bad.first().getAttribute('data-line')).toBe('2');
    expect(await bad.first().locator('td').allTextContents()).toEqual(['train.jsonl', '2', 'output', 'is missing']);
    await screenshot(page, 'artifacts-dataset-validation');

    // A good dataset's version says so: the e2e dataset's JSON Lines file alone.
    await page.goto(tab({ artifact: data.artifactId, v: 'v0', view: 'files', dir: 'train/', file: 'train/part-0.jsonl' }));
    await page.getByTestId('dataset-validate').click();
    await page.getByTestId('validation-ok').waitFor();
    expect(await page.getByTestId('validation-rows').textContent()).toBe('2');
    expect(await page.getByTestId('validation-invalid').textContent()).toBe('0');
    // A file that is not data: the server's refusal shows in the page.
    await page.goto(tab({ artifact: alpaca, v: 'v0', view: 'files', file: 'README.md' }));
    await page.getByTestId('dataset-validate').click();
    await expect.poll(() => page.getByTestId('validation-error-message').textContent()).toContain('README.md is not a data file');
    expect(await page.getByTestId('validation-report').count()).toBe(0);
    // Not a dataset: no Validate action.
    await page.goto(tab({ artifact: model.artifactId, v: 'v0' }));
    await page.locator('[data-testid=version-card][data-version=v0]').waitFor();
    expect(await page.getByTestId('dataset-validate').count()).toBe(0);
  });
});
