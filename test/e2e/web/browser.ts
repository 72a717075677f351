import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { E2E_ADMIN } from '../server-process.js';

/**
 * The browser tests' harness: Debian's Chromium driven by playwright-core
 * (never a downloaded browser), the web UI built when its sources changed,
 * screenshots under test-results/ and a sign-in through the UI.
 */

const repo = fileURLToPath(new URL('../../..', import.meta.url));
const web = join(repo, 'shells/web');
const dist = join(web, 'dist/index.html');
export const RESULTS_DIR = join(repo, 'test-results');

/** Where the system's Chromium is (CHROMIUM_PATH overrides). */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Launches headless Chromium: no sandbox (containers), no GPU, no calls home. */
export function openBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless=new',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Saves a full-page PNG as test-results/<name>.png and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const path = join(RESULTS_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage: true, animations: 'disabled' });
  return path;
}

/**
 * Calls the server's JSON API with `auth` headers (an API key's, say) and
 * returns the parsed body; throws on a status other than 2xx, with the body.
 */
export async function callApi(base: string, auth: Record<string, string>, method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(base + path, {
    method,
    headers: { ...auth, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

export interface Who {
  email: string;
  password: string;
}

/** Where the UI keeps its session (shells/web/src/api/client.ts). */
export const SESSION_KEY = 'wanllmdb.session';

type StorageState = Exclude<Parameters<Browser['newContext']>[0], undefined>['storageState'];

/**
 * A browser context's storage holding a new session of `who`, signed in
 * through the API — as the page keeps it after a sign-in. A sign-in of its
 * own, so no other test's sign-out, refresh or password change can end it
 * (the sign-in form itself is tested in shell.test.ts).
 */
export async function sessionState(base: string, who: Who = E2E_ADMIN): Promise<StorageState> {
  const { data } = await callApi(base, {}, 'POST', '/api/v1/auth/login', { email: who.email, password: who.password });
  const session = { accessToken: data.accessToken, refreshToken: data.refreshToken, expiresAt: Date.now() + data.expiresIn * 1000 };
  return { cookies: [], origins: [{ origin: new URL(base).origin, localStorage: [{ name: SESSION_KEY, value: JSON.stringify(session) }] }] };
}

/** Signs in through the login page as `who` (the e2e administrator by default) and waits to leave it. */
export async function signInUi(page: Page, base: string, who: Who = E2E_ADMIN): Promise<void> {
  if (!new URL(page.url() === 'about:blank' ? base : page.url()).pathname.startsWith('/login')) await page.goto(`${base}/login`);
  await page.getByTestId('login-email').fill(who.email);
  await page.getByTestId('login-password').fill(who.password);
  await page.getByTestId('login-submit').click();
  await page.waitForURL((u) => !u.pathname.startsWith('/login'), { timeout: 15_000 });
}

/** The newest modification time of the UI's sources (src/, index.html, the Vite config). */
function newestSource(): number {
  let newest = 0;
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, entry.name);
      if (entry.isDirectory()) walk(p);
      else newest = Math.max(newest, statSync(p).mtimeMs);
    }
  };
  walk(join(web, 'src'));
  // Built-in plugins' UIs (plugins/<id>/ui) are bundled with the shell.
  for (const p of readdirSync(join(web, '../../plugins'))) if (existsSync(join(web, '../../plugins', p, 'ui'))) walk(join(web, '../../plugins', p, 'ui'));
  for (const f of ['index.html', 'vite.config.ts', 'package.json']) newest = Math.max(newest, statSync(join(web, f)).mtimeMs);
  return newest;
}

function builtAt(): number {
  try {
    return statSync(dist).mtimeMs;
  } catch {
    return 0;
  }
}

function runViteBuild(): Promise<void> {
  // vite's exports hide bin/; its package.json is exported.
  const vite = join(dirname(createRequire(join(web, 'package.json')).resolve('vite/package.json')), 'bin', 'vite.js');
  // NODE_ENV=production: under vitest it is 'test', which would bundle Lit's development build.
  // Built beside dist/ and swapped in, so servers of other test files never see a half-written dist/.
  const next = join(web, 'dist-next');
  rmSync(next, { recursive: true, force: true });
  const proc = spawn(process.execPath, [vite, 'build', '--logLevel', 'warn', '--outDir', 'dist-next'], { cwd: web, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_ENV: 'production' } });
  let out = '';
  proc.stdout.on('data', (c: Buffer) => (out += c));
  proc.stderr.on('data', (c: Buffer) => (out += c));
  return new Promise((resolve, reject) => {
    proc.once('error', reject);
    proc.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`vite build failed (${code}):\n${out}`));
      rmSync(join(web, 'dist'), { recursive: true, force: true });
      renameSync(next, join(web, 'dist'));
      resolve();
    });
  });
}

let building: Promise<void> | undefined;

/**
 * Builds shells/web/dist when it is missing or older than a source file:
 * once per process, and one build at a time across the test files running
 * in parallel (a lock directory; a stale lock from a killed run is taken over).
 */
export function ensureUiBuilt(): Promise<void> {
  building ??= (async () => {
    if (builtAt() >= newestSource()) return;
    mkdirSync(RESULTS_DIR, { recursive: true });
    const lock = join(RESULTS_DIR, '.ui-build-lock');
    const until = Date.now() + 120_000;
    for (;;) {
      try {
        mkdirSync(lock);
        break;
      } catch {
        const age = Date.now() - (statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
        if (age > 90_000) rmSync(lock, { recursive: true, force: true });
        else if (Date.now() > until) throw new Error(`${lock} is held by another build for too long`);
        else await new Promise((r) => setTimeout(r, 250));
      }
    }
    try {
      if (builtAt() < newestSource()) await runViteBuild(); // another file's build may have just done it
    } finally {
      rmSync(lock, { recursive: true, force: true });
    }
  })();
  return building;
}
