import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { definePlugin } from '../kernel/define-plugin.js';
import { Kernel } from '../kernel/kernel.js';

/** The HTTP face serves a built web UI at / (deep links get index.html) and plugins' UI modules. */
describe('serving the web UI and plugin UI modules', () => {
  const root = mkdtempSync(join(tmpdir(), 'wldb-ui-'));
  const ui = join(root, 'dist');
  const pluginDir = join(root, 'plugin');
  let kernel: Kernel;
  let base = '';

  beforeAll(async () => {
    mkdirSync(join(ui, 'assets'), { recursive: true });
    mkdirSync(pluginDir);
    writeFileSync(join(ui, 'index.html'), '<!doctype html><wl-app></wl-app>');
    writeFileSync(join(ui, 'assets', 'app-1234.js'), 'export {};');
    writeFileSync(join(pluginDir, 'panel.js'), 'window.wanllmdb.registerPanel({ type: "x.panel" });');
    writeFileSync(join(root, 'secret.txt'), 'not for the web');
    const plugin = definePlugin({ id: 'extra', version: '1.0.0', init: (ctx) => ctx.ui({ modules: [join(pluginDir, 'panel.js')] }) });
    kernel = new Kernel({
      plugins: [plugin],
      config: { db: 'sqlite::memory:', blobs: `file://${join(root, 'blobs')}`, bus: 'memory', logLevel: 'silent', host: '127.0.0.1', grpcPort: 0, httpPort: 0 },
      listen: true,
      uiDir: ui,
    });
    const ports = await kernel.start();
    base = `http://127.0.0.1:${ports!.httpPort}`;
  });
  afterAll(() => kernel?.stop());

  it('serves the shell at / and at every page path (deep links, reloads)', async () => {
    for (const path of ['/', '/projects', '/runs/0b7e5c1a-3f0e-4c8e-9a57-3d1c2b4e5f60/charts?x=1']) {
      const res = await fetch(base + path);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/text\/html/);
      expect(await res.text()).toContain('<wl-app>');
    }
  });

  it('serves hashed assets as immutable', async () => {
    const res = await fetch(`${base}/assets/app-1234.js`);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toMatch(/immutable/);
  });

  it('lists and serves plugin UI modules, and nothing else', async () => {
    expect(await (await fetch(`${base}/api/v1/ui/manifest`)).json()).toEqual({ plugins: [{ plugin: 'extra', modules: ['/ui/plugins/extra/panel.js'] }] });
    const mod = await fetch(`${base}/ui/plugins/extra/panel.js`);
    expect(mod.headers.get('content-type')).toMatch(/javascript/);
    expect(await mod.text()).toContain('registerPanel');
    for (const path of ['/ui/plugins/extra/other.js', '/ui/plugins/extra/..%2F..%2Fsecret.txt', '/ui/plugins/nope/panel.js']) {
      const res = await fetch(base + path);
      expect(res.status, path).toBe(404);
      expect((await res.text())).not.toContain('not for the web');
    }
    const traversal = await fetch(`${base}/..%2Fsecret.txt`);
    expect(await traversal.text()).not.toContain('not for the web');
  });

  it('keeps API errors as JSON envelopes', async () => {
    const res = await fetch(`${base}/api/v1/nothing`);
    expect(res.status).toBe(404);
    expect((await res.json()).error.code).toBe('WLDB_ERR_ROUTE_NOT_FOUND');
  });

  it('refuses UI modules that are not absolute .js paths', () => {
    const bad = definePlugin({ id: 'bad', version: '1.0.0', init: (ctx) => ctx.ui({ modules: ['relative.js'] }) });
    const k = new Kernel({ plugins: [bad], config: { db: 'sqlite::memory:', bus: 'memory', logLevel: 'silent' } });
    return expect(k.start()).rejects.toThrow(/absolute paths of built \.js files/);
  });
});
