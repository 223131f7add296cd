// Headless Chromium for end-to-end tests of Portico Manager: Debian's /usr/bin/chromium driven by
// playwright-core (which downloads nothing), a fresh profile per launch, no background traffic.
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { ROOT } from './gateway.ts';

export const CHROMIUM = process.env.PORTICO_TEST_CHROMIUM ?? '/usr/bin/chromium';
/** Screenshots the GUI tests leave for people to look at (gitignored). */
export const ARTIFACTS = path.join(ROOT, 'test', 'artifacts');

const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

export interface Browser {
  context: BrowserContext;
  newPage(): Promise<Page>;
  close(): Promise<void>;
}

export async function launchBrowser(): Promise<Browser> {
  const profile = mkdtempSync(path.join(os.tmpdir(), 'portico-chromium-'));
  // launchPersistentContext is how playwright takes our own --user-data-dir: a fresh one per launch.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 1366, height: 860 },
  });
  return {
    context,
    newPage: () => context.newPage(),
    async close() { await context.close(); rmSync(profile, { recursive: true, force: true }); },
  };
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** Signs in on the GUI's page with a token, as a person would. */
export async function signIn(page: Page, gui: string, token: string): Promise<void> {
  await page.goto(gui + '/');
  await page.getByLabel('Admin token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('navigation', { name: 'Sections' }).waitFor();
}
