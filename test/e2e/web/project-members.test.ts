import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type ServerProcess } from '../server-process.js';
import { callApi, ensureUiBuilt, openBrowser, screenshot } from './browser.js';
import { newUser, pagesPerTest, type Who } from './pages.js';

/**
 * The project page's Members tab in a real browser against a real
 * `wanllmdb serve`: an owner grants a user and a team roles on a private
 * project of an organisation and takes one back; the user then opens the
 * project, and the server's refusal of their own grant shows by the form.
 * Each test makes its own organisation, user, team and project.
 */

interface Fixture {
  orgId: string;
  orgName: string;
  user: Who & { id: string; username: string };
  userId: string;
  teamId: string;
  projectId: string;
}

describe('project members (browser)', { timeout: 90_000 }, () => {
  let server: ServerProcess;
  let browser: Browser;
  let headers: Record<string, string>;
  let orgs = 0;
  const pages = pagesPerTest(() => ({ base: server.base, browser }));

  const call = (method: string, path: string, body?: unknown, auth: Record<string, string> = headers) => callApi(server.base, auth, method, path, body);

  /** A private project of a new organisation, which has a viewer (the user) and a team. */
  async function makeFixture(): Promise<Fixture> {
    const orgName = `Members E2E Org ${++orgs}`;
    const orgId = (await call('POST', '/api/v1/orgs', { name: orgName })).data.id;
    const user = await newUser(server.base, headers, 'pm-user');
    await call('POST', `/api/v1/orgs/${orgId}/members`, { email: user.email, role: 'viewer' });
    const teamId = (await call('POST', `/api/v1/orgs/${orgId}/teams`, { name: 'research', description: 'the research team' })).data.id;
    const project = (await call('POST', '/api/v1/projects', { name: 'members-e2e', organizationId: orgId, visibility: 'private' })).data;
    expect(project.organizationId).toBe(orgId);
    expect(project.visibility).toBe('private');
    return { orgId, orgName, user, userId: user.id, teamId, projectId: project.id };
  }

  beforeAll(async () => {
    await ensureUiBuilt();
    [server, browser] = await Promise.all([startServer(['--data', mkdtempSync(join(tmpdir(), 'wldb-e2e-pm-'))]), openBrowser()]);
    headers = (await server.credentials()).headers;
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  const rows = (p: Page) => p.locator('[data-testid="project-member-row"]');
  const row = (p: Page, type: string, id: string) => p.locator(`[data-testid="project-member-row"][data-subject-type="${type}"][data-subject-id="${id}"]`);

  it('shows the organisation of the project with a link to it', async () => {
    const { orgId, orgName, projectId } = await makeFixture();
    const page = await pages.open();
    await page.goto(`${server.base}/projects/${projectId}`);
    const link = page.getByTestId('project-org').first();
    await expect.poll(() => link.textContent()).toBe(orgName);
    expect(await link.getAttribute('href')).toBe(`/orgs/${orgId}`);
  });

  it('grants a user and a team roles, and removes the team grant', async () => {
    const { orgId, user, userId, teamId, projectId } = await makeFixture();
    const page = await pages.open();
    await page.goto(`${server.base}/projects/${projectId}`);
    await page.getByTestId('tab-members').click();
    await page.waitForURL((u) => u.pathname.endsWith('/members'));
    await expect.poll(() => page.getByTestId('project-members-empty').count()).toBe(1);
    expect(await page.getByTestId('project-members-org').getAttribute('href')).toBe(`/orgs/${orgId}`);

    // The subject select lists the organisation's members and its teams.
    const subject = page.getByTestId('grant-subject');
    await expect.poll(() => subject.locator(`option[value="user:${userId}"]`).count()).toBe(1);
    expect(await subject.locator(`option[value="team:${teamId}"]`).textContent()).toMatch(/research/);

    await subject.selectOption(`user:${userId}`);
    await page.getByTestId('grant-role').selectOption('member');
    await page.getByTestId('grant-submit').click();
    await expect.poll(() => row(page, 'user', userId).count()).toBe(1);
    expect(await row(page, 'user', userId).getByTestId('project-member-role').textContent()).toBe('member');
    expect(await row(page, 'user', userId).textContent()).toContain(user.username);
    expect(await page.getByTestId('project-members-notice').textContent()).toMatch(/member/);

    await subject.selectOption(`team:${teamId}`);
    await page.getByTestId('grant-role').selectOption('viewer');
    await page.getByTestId('grant-submit').click();
    await expect.poll(() => row(page, 'team', teamId).count()).toBe(1);
    expect(await row(page, 'team', teamId).getByTestId('project-member-role').textContent()).toBe('viewer');
    expect(await rows(page).count()).toBe(2);
    await screenshot(page, 'project-members');

    // Remove asks twice.
    await row(page, 'team', teamId).getByTestId('remove-grant').click();
    await row(page, 'team', teamId).getByTestId('confirm-remove-grant').click();
    await expect.poll(() => row(page, 'team', teamId).count()).toBe(0);
    expect(await rows(page).count()).toBe(1);
    expect(await page.getByTestId('project-members-error').count()).toBe(0);

    const grants = (await call('GET', `/api/v1/projects/${projectId}/members`)).data;
    expect(grants).toEqual([{ projectId, subjectType: 'user', subjectId: userId, subjectName: expect.any(String), role: 'member' }]);
  });

  it('opens the project for the granted user, and shows the server refusing their grant', async () => {
    const { orgId, user, userId, teamId, projectId } = await makeFixture();
    await call('PUT', `/api/v1/projects/${projectId}/members`, { subjectType: 'user', subjectId: userId, role: 'member' });
    const other = await pages.open({ as: user });
    await other.goto(`${server.base}/projects/${projectId}`);
    await expect.poll(() => other.locator('wl-project-page h1').textContent()).toBe('members-e2e');
    expect(await other.getByTestId('project-error').count()).toBe(0);

    await other.getByTestId('tab-members').click();
    await expect.poll(() => row(other, 'user', userId).count()).toBe(1);
    // A viewer of the organisation (a member of the project) may not hand out roles.
    const subject = other.getByTestId('grant-subject');
    await expect.poll(() => subject.locator(`option[value="team:${teamId}"]`).count()).toBe(1);
    await subject.selectOption(`team:${teamId}`);
    await other.getByTestId('grant-role').selectOption('viewer');
    await other.getByTestId('grant-submit').click();
    await expect.poll(() => other.getByTestId('project-members-error').count()).toBe(1);
    expect(await other.getByTestId('project-members-error').textContent()).toMatch(/projects:admin/);
    expect(await rows(other).count()).toBe(1);
    await screenshot(other, 'project-members-viewer');

    // With an organisation role that may not list its members, the form gives way to a note.
    await call('POST', `/api/v1/orgs/${orgId}/roles`, { name: 'project-reader', permissions: ['projects:read', 'runs:read', 'orgs:read'] });
    await call('PATCH', `/api/v1/orgs/${orgId}/members/${userId}`, { role: 'project-reader' });
    await other.reload();
    await expect.poll(() => other.getByTestId('project-members-readonly').count()).toBe(1);
    expect(await other.getByTestId('grant-form').count()).toBe(0);
  });
});
