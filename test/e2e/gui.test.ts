// Portico Manager end to end, in headless Chromium (Debian's, driven by playwright-core): sign in,
// build a service, route, consumer, key and key-auth through the forms, proxy a request with the
// key and see it in the overview, edit a plugin through its generated form and see the admin API's
// field error beside the field, and a viewer who is offered nothing to edit. Beside it, the GUI
// listener's own boundary: same-origin only, CSP on every page, no file served that was not built.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import type { Page } from 'playwright-core';
import { admin, ROOT, startGateway, type GatewayProcess } from '../harness/gateway.ts';
import { startUpstream, type Upstream } from '../harness/upstream.ts';
import { waitFor } from '../harness/procs.ts';
import { launchBrowser, screenshot, signIn, type Browser } from '../harness/browser.ts';

const ROOT_TOKEN = 'gui-root-token-0123456789';
let gw: GatewayProcess; let upstream: Upstream; let browser: Browser; let page: Page;
const A = (method: string, path: string, body?: unknown, token = ROOT_TOKEN) => admin(gw.admin, method, path, body, { 'Kong-Admin-Token': token });

before(async () => {
  upstream = await startUpstream();
  gw = await startGateway('all-in-one', { env: { PORTICO_ADMIN_TOKEN: ROOT_TOKEN } });
  browser = await launchBrowser();
  page = await browser.newPage();
});
after(async () => {
  await browser?.close();
  await gw?.kill(); gw?.cleanup();
  await upstream?.close();
});

/** Opens a section from the side navigation, as a keyboard or mouse user would. */
async function open(p: Page, section: string) {
  await p.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: section, exact: true }).click();
  await p.getByRole('heading', { level: 2, name: section }).waitFor();
}

describe('Portico Manager in a browser', () => {
  it('refuses a wrong token and signs in with the right one, keeping it out of the URL', async () => {
    await page.goto(gw.gui + '/');
    await page.getByLabel('Admin token').fill('not-the-token-0123456789');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('Invalid credentials').waitFor();
    await signIn(page, gw.gui, ROOT_TOKEN);
    assert.equal(await page.getByTestId('role').textContent(), 'admin');
    assert.ok(!page.url().includes(ROOT_TOKEN));
    assert.equal(await page.evaluate(() => document.cookie), '');
    await screenshot(page, 'overview-empty');
  });

  it('creates a service, a route, a consumer with a key and key-auth, and the key proxies', async () => {
    await open(page, 'Services');
    await page.getByRole('button', { name: 'New service' }).click();
    const form = page.getByRole('form', { name: 'New service' });
    await form.getByLabel('name', { exact: true }).fill('echo');
    await form.getByLabel('host', { exact: true }).fill('127.0.0.1');
    await form.getByLabel('port', { exact: true }).fill(String(upstream.port));
    await form.getByRole('button', { name: 'Create' }).click();
    await page.getByRole('cell', { name: 'echo', exact: true }).waitFor();

    await open(page, 'Routes');
    await page.getByRole('button', { name: 'New route' }).click();
    const route = page.getByRole('form', { name: 'New route' });
    await route.getByLabel('name', { exact: true }).fill('echo-route');
    await route.getByLabel('paths', { exact: true }).fill('/gui-echo');
    await route.getByLabel('service', { exact: true }).selectOption({ label: 'echo' });
    await route.getByRole('button', { name: 'Create' }).click();
    await page.getByRole('cell', { name: 'echo-route', exact: true }).waitFor();
    await screenshot(page, 'routes');

    await open(page, 'Consumers');
    await page.getByRole('button', { name: 'New consumer' }).click();
    await page.getByRole('form', { name: 'New consumer' }).getByLabel('username', { exact: true }).fill('alice');
    await page.getByRole('form', { name: 'New consumer' }).getByRole('button', { name: 'Create' }).click();
    await page.getByRole('button', { name: 'Edit alice' }).click();
    await page.getByRole('button', { name: 'New key' }).click();
    const key = (await page.getByTestId('new-key').textContent())!.trim();
    assert.match(key, /^\S{16,}$/);
    await screenshot(page, 'consumer-key');
    // Shown once: opening the consumer again lists the key's prefix, never the key.
    await page.getByRole('button', { name: 'Cancel' }).click();
    await page.getByRole('button', { name: 'Edit alice' }).click();
    await page.getByRole('heading', { name: 'API keys (key-auth)' }).waitFor();
    assert.ok(!(await page.content()).includes(key));

    await open(page, 'Plugins');
    await page.getByRole('button', { name: 'New plugin' }).click();
    const plugin = page.getByRole('form', { name: 'New plugin' });
    await plugin.getByLabel('plugin', { exact: true }).selectOption('key-auth');
    await plugin.getByLabel('service', { exact: true }).selectOption({ label: 'echo' });
    await plugin.getByRole('button', { name: 'Create' }).click();
    await page.getByRole('cell', { name: 'key-auth', exact: true }).waitFor();

    await waitFor('key-auth applied', async () => (await fetch(`${gw.proxy}/gui-echo`)).status === 401, 10_000, 50);
    for (let i = 0; i < 5; i++) {
      const r = await fetch(`${gw.proxy}/gui-echo/hello`, { headers: { apikey: key } });
      assert.equal(r.status, 200);
      await r.arrayBuffer();
    }
    assert.equal(upstream.seen.at(-1)?.url, '/hello');
  });

  it('shows the proxied requests in the overview traffic and every node in sync', async () => {
    await open(page, 'Overview');
    await page.getByRole('cell', { name: 'in sync' }).waitFor();
    // A point needs two scrapes (5 s apart) around the traffic; the page refreshes every 5 s.
    await waitFor('traffic in the overview', async () => {
      const counts = await page.getByTestId('requests').allTextContents();
      return counts.reduce((n, c) => n + Number(c), 0) >= 5;
    }, 30_000, 500);
    assert.ok(await page.locator('.charts .uplot').count() >= 3, 'three charts drawn');
    await screenshot(page, 'overview');
  });

  it('edits a plugin through the form generated from its schema and shows the field error beside the field', async () => {
    const created = await A('POST', '/plugins', { name: 'rate-limiting', service: { name: 'echo' }, config: { minute: 1000, policy: 'local' } });
    assert.equal(created.status, 201);
    await open(page, 'Plugins');
    await page.getByRole('button', { name: 'Edit rate-limiting' }).click();
    const form = page.getByRole('form', { name: 'Edit plugin' });
    // Fields the UI has no code for: they come from /schemas/plugins/rate-limiting.
    const minute = form.getByLabel('minute', { exact: true });
    assert.equal(await minute.inputValue(), '1000');
    await form.getByLabel('limit_by', { exact: true }).waitFor();
    await minute.fill('lots');
    await form.getByRole('button', { name: 'Save' }).click();
    const error = form.locator('#f-config-minute-error');
    await error.waitFor();
    assert.match((await error.textContent())!, /number/);
    assert.equal(await minute.getAttribute('aria-invalid'), 'true');
    await screenshot(page, 'plugin-field-error');
    assert.equal((await A('GET', `/plugins/${created.body.id}`)).body.config.minute, 1000, 'nothing changed');

    await minute.fill('250');
    await form.getByRole('button', { name: 'Save' }).click();
    await form.waitFor({ state: 'detached' });
    assert.equal((await A('GET', `/plugins/${created.body.id}`)).body.config.minute, 250);
  });

  it('offers a viewer nothing to edit, and shows secrets redacted', async () => {
    const viewer = await A('POST', '/admins', { username: 'vera', role: 'viewer' });
    assert.equal(viewer.status, 201);
    const basic = await A('POST', '/consumers/alice/basic-auth', { username: 'alice', password: 'hunter2-secret-pw' });
    assert.equal(basic.status, 201);
    const p = await browser.newPage();
    await signIn(p, gw.gui, viewer.body.token);
    assert.equal(await p.getByTestId('role').textContent(), 'viewer');
    for (const section of ['Services', 'Routes', 'Consumers', 'Plugins', 'Upstreams']) {
      await open(p, section);
      assert.equal(await p.getByRole('button', { name: /^New / }).count(), 0, `${section}: no New button`);
      assert.equal(await p.getByRole('button', { name: /^(Edit|Delete) / }).count(), 0, `${section}: no Edit or Delete`);
    }
    await open(p, 'Plugins');
    await p.getByRole('button', { name: 'View rate-limiting' }).click();
    const form = p.getByRole('form', { name: 'Edit plugin' });
    assert.equal(await form.getByRole('button', { name: 'Save' }).count(), 0);
    assert.ok(await form.getByLabel('minute', { exact: true }).isDisabled());
    // The admin API redacts for viewers; the page shows what it is given.
    const seen = await p.evaluate(async () => (await fetch('/api/basic-auths', { headers: { 'Kong-Admin-Token': sessionStorage.getItem('portico.token')! } })).text());
    assert.ok(!seen.includes('hunter2'), 'no password in what a viewer gets');
    assert.equal(await p.getByRole('link', { name: 'Audit log' }).count(), 0, 'viewers have no audit log');
    await screenshot(p, 'viewer-plugins');
    await p.close();
  });

  it('pages through a long list, and narrows it by tag and by search', async () => {
    for (let i = 0; i < 22; i++) {
      assert.equal((await A('POST', '/services', { name: `bulk-${String(i).padStart(2, '0')}`, host: 'example.test', tags: [i % 2 ? 'odd' : 'even'] })).status, 201);
    }
    await open(page, 'Services');
    const rows = page.locator('table tbody tr');
    await waitFor('a full first page', async () => (await rows.count()) === 20, 10_000, 50);
    const first = await page.locator('table tbody tr td:first-child').allTextContents();
    await page.getByRole('button', { name: 'Next' }).click();
    // 22 made here, 1 before: the second page holds the 3 the first did not (the API orders by id).
    await waitFor('the second page', async () => (await rows.count()) === 3, 10_000, 50);
    const second = await page.locator('table tbody tr td:first-child').allTextContents();
    assert.deepEqual([...first, ...second].filter((n) => n.startsWith('bulk-')).sort(), Array.from({ length: 22 }, (_, i) => `bulk-${String(i).padStart(2, '0')}`));
    await page.getByRole('button', { name: 'Previous' }).click();
    await waitFor('the first page again', async () => (await rows.count()) === 20, 10_000, 50);

    await page.getByLabel('Tags').fill('odd');
    await page.getByLabel('Tags').press('Enter');
    await waitFor('only odd services', async () => {
      const names = await page.locator('table tbody tr td:first-child').allTextContents();
      return names.length === 11 && names.every((n) => Number(n.slice(5)) % 2 === 1);
    }, 10_000, 50);
    await page.getByLabel('Search').fill('bulk-1');
    await waitFor('searched', async () => (await page.locator('table tbody tr td:first-child').allTextContents()).sort().join() === 'bulk-11,bulk-13,bulk-15,bulk-17,bulk-19', 10_000, 50);
    await page.getByLabel('Search').fill('');
    await page.getByLabel('Tags').fill('');
    await page.getByLabel('Tags').press('Enter');
  });

  it('filters the audit log', async () => {
    await open(page, 'Audit log');
    await page.getByLabel('entity', { exact: true }).fill('consumers');
    await page.getByRole('button', { name: 'Filter' }).click();
    const entities = page.locator('table[aria-label="Audit entries"] tbody td:nth-child(5)');
    await waitFor('only consumer entries', async () => {
      const shown = await entities.allTextContents();
      return shown.length > 0 && shown.every((e) => e.startsWith('consumers '));
    }, 10_000, 100);
    assert.ok((await page.locator('table[aria-label="Audit entries"] tbody code').allTextContents()).includes('POST /consumers'));
    await screenshot(page, 'audit');
  });

  it('switches between light and dark themes from the keyboard', async () => {
    const before = await page.evaluate(() => document.documentElement.dataset.theme);
    await page.getByRole('button', { name: /Switch to (dark|light) theme/ }).focus();
    await page.keyboard.press('Enter');
    // The theme is set by an effect after the render: wait for it rather than read at once.
    await page.waitForFunction((b) => document.documentElement.dataset.theme !== b, before);
    const afterToggle = await page.evaluate(() => document.documentElement.dataset.theme);
    assert.notEqual(afterToggle, before);
    assert.ok(['light', 'dark'].includes(afterToggle!));
    await open(page, 'Overview');
    await page.getByRole('table', { name: 'Traffic summary' }).waitFor();
    await screenshot(page, `overview-${afterToggle}`);
  });
});

describe('the GUI listener boundary', () => {
  it('serves pages with a strict CSP, and only files the build made', async () => {
    const r = await fetch(gw.gui + '/services');
    assert.equal(r.status, 200);
    const csp = r.headers.get('content-security-policy')!;
    for (const d of ["default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"]) assert.ok(csp.includes(d), d);
    assert.equal(r.headers.get('x-frame-options'), 'DENY');
    assert.ok(!(await r.text()).includes('<script>'), 'no inline script');
    assert.equal((await fetch(gw.gui + '/assets/nope.js')).status, 404);
    for (const path of ['/../../../../etc/passwd', '/%2e%2e/%2e%2e/package.json', '/assets/..%2f..%2fmain.mjs']) {
      const t = await (await fetch(gw.gui + path)).text();
      assert.ok(!t.includes('root:') && !t.includes('"name"') && !t.includes('startControlPlane'), path);
    }
    assert.equal((await fetch(gw.gui + '/', { method: 'POST' })).status, 405);
  });

  it('hands /api to the admin API for its own pages only, and changes nothing for another origin', async () => {
    const token = { 'Kong-Admin-Token': ROOT_TOKEN, 'content-type': 'application/json' };
    assert.equal((await fetch(gw.gui + '/api/services')).status, 401, 'a token is needed');
    const own = await fetch(gw.gui + '/api/services', { headers: { ...token, 'sec-fetch-site': 'same-origin', origin: gw.gui } });
    assert.equal(own.status, 200);
    assert.equal(own.headers.get('cache-control'), 'no-store');
    const before = (await A('GET', '/consumers')).body.data.length;
    const hostiles: Record<string, string>[] = [{ origin: 'http://evil.example' }, { 'sec-fetch-site': 'cross-site' }, { 'sec-fetch-site': 'same-site' }, { origin: 'null' }];
    for (const hostile of hostiles) {
      const r = await fetch(gw.gui + '/api/consumers', { method: 'POST', headers: { ...token, ...hostile }, body: JSON.stringify({ username: 'mallory' }) });
      assert.equal(r.status, 403, JSON.stringify(hostile));
      assert.equal((await fetch(gw.gui + '/gui/traffic', { headers: { ...token, ...hostile } })).status, 403);
    }
    assert.equal((await A('GET', '/consumers')).body.data.length, before, 'nothing created');
    assert.equal((await fetch(gw.gui + '/gui/traffic')).status, 401, 'traffic needs a token too');
  });

  it('keeps the audit trail and failed-token limits on the real client address', async () => {
    const r = await fetch(gw.gui + '/api/consumers', { method: 'POST', headers: { 'Kong-Admin-Token': ROOT_TOKEN, 'content-type': 'application/json' }, body: JSON.stringify({ username: 'via-gui' }) });
    assert.equal(r.status, 201);
    const audit = await A('GET', '/audit/requests?entity=consumers&method=POST');
    const entry = audit.body.data.find((e: any) => e.change?.username === 'via-gui');
    assert.equal(entry.client_ip, '127.0.0.1');
    assert.equal(entry.path, '/consumers', 'the admin path, without the /api prefix');
  });
});

describe('PORTICO_GUI_LISTEN', () => {
  const run = (env: Record<string, string>) => spawnSync(process.execPath, ['dist/portico.mjs'], {
    cwd: ROOT, env: { PATH: process.env.PATH, PORTICO_DATA_DIR: '/nonexistent/portico-gui-test', ...env }, encoding: 'utf8', timeout: 20_000,
  });
  it('refuses a bad value, naming the variable', () => {
    const r = run({ PORTICO_GUI_LISTEN: 'nowhere' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /PORTICO_GUI_LISTEN: expected host:port, got 'nowhere', or off/);
  });

  it('does not serve the GUI off loopback while the admin API has no admins', async () => {
    const g = await startGateway('all-in-one', { env: { PORTICO_GUI_LISTEN: '0.0.0.0:0' }, waitReady: false });
    const code = await new Promise<number | null>((r) => g.proc.exitCode !== null ? r(g.proc.exitCode) : g.proc.once('exit', r));
    g.cleanup();
    assert.equal(code, 2);
    assert.match(g.logs(), /PORTICO_GUI_LISTEN is 0\.0\.0\.0:0, not loopback, and no admin exists/);
  });

  it('without admins, answers its own loopback pages and refuses a rebound host name', async () => {
    const g = await startGateway('all-in-one');
    try {
      assert.equal((await fetch(g.gui + '/api/services', { headers: { 'sec-fetch-site': 'same-origin' } })).status, 200);
      const port = new URL(g.gui).port;
      const rebound = await fetch(g.gui + '/api/services', { headers: { host: `evil.example:${port}`, origin: `http://evil.example:${port}`, 'sec-fetch-site': 'same-origin' } });
      assert.equal(rebound.status, 403);
    } finally { await g.kill(); g.cleanup(); }
  });
});
