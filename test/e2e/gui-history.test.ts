// Portico Manager's config history in a browser, against issue 12's endpoints (GET /config/versions,
// /config/versions/{a}/diff/{b}, POST /config/rollback): versions with who and what, a diff between
// two, and rollback after a confirmation that shows the diff, until every data plane runs the old
// hash again. Needs issue 12 merged: before that /config/versions answers 404 and this file fails.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { startStack, type Stack } from '../harness/stack.ts';
import { statusOf } from '../harness/gateway.ts';
import { waitFor } from '../harness/procs.ts';
import { launchBrowser, screenshot, type Browser } from '../harness/browser.ts';

let s: Stack; let browser: Browser; let page: Page;

before(async () => {
  s = await startStack({ dps: 2 });
  browser = await launchBrowser();
  page = await browser.newPage();
});
after(async () => { await browser?.close(); await s?.stop(); });

describe('config history in Portico Manager', () => {
  it('diffs two versions and rolls back to one, after a confirmation, on every node', async () => {
    const first = await s.write('POST', '/services', { name: 'hist', url: 'http://127.0.0.1:9/a' });
    const old = Number(first.headers.get('x-portico-config-version'));
    const oldHash = (await statusOf(s.dps[0])).hash;
    await s.write('PATCH', '/services/hist', { port: 8080 });
    const latest = await s.write('POST', '/services/hist/routes', { name: 'hist-route', paths: ['/hist'] });
    const newHash = (await statusOf(s.dps[0])).hash;
    assert.notEqual(newHash, oldHash);

    // No admins on this CP: the page opens on loopback without a token, as the admin API does.
    await page.goto(s.cp.gui + '/#history');
    await page.getByRole('heading', { level: 2, name: 'Config history' }).waitFor();
    const versions = page.getByRole('table', { name: 'Config versions' });
    await versions.getByRole('cell', { name: String(old), exact: true }).waitFor();

    await page.getByLabel('Diff from version').selectOption(String(old));
    await page.getByLabel('Diff to version').selectOption(latest.headers.get('x-portico-config-version')!);
    await page.getByRole('button', { name: 'Compare' }).click();
    const diff = page.getByTestId('diff').first();
    await diff.getByText('hist-route').waitFor();
    assert.match((await diff.textContent())!, /port/);

    await page.getByRole('button', { name: `Roll back to ${old}` }).click();
    const dialog = page.getByRole('dialog', { name: `Roll back to version ${old}?` });
    await dialog.getByText('hist-route').waitFor();
    await screenshot(page, 'history-rollback-confirm');
    await dialog.getByRole('button', { name: 'Roll back' }).click();
    await page.getByRole('status').getByText(`holds the content of version ${old}`).waitFor();

    for (const dp of s.dps) await waitFor('old hash on the node', async () => (await statusOf(dp)).hash === oldHash, 15_000, 50);
    assert.equal((await s.A('GET', '/services/hist/routes')).body.data.length, 0);
    await screenshot(page, 'history');
  });

  it('cancels a rollback without writing anything', async () => {
    const before = (await s.A('GET', '/config/versions')).body.data[0].version;
    await page.reload();
    await page.getByRole('button', { name: /^Roll back to / }).first().click();
    await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
    await page.getByRole('dialog').waitFor({ state: 'hidden' });
    assert.equal((await s.A('GET', '/config/versions')).body.data[0].version, before);
  });
});
