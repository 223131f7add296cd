// `npx portico config …` (issue 12) against the all-in-one on PGlite with an admin token: offline
// validation, diff with exit codes, sync twice, dump, select tags, env templates, errors.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { admin, ROOT, startGateway, type GatewayProcess } from '../harness/gateway.ts';
import { startUpstream, type Upstream } from '../harness/upstream.ts';
import { tmpRoot } from '../harness/procs.ts';

const TOKEN = 'cli-root-token-0123456789';
let g: GatewayProcess;
let upstream: Upstream;
let dir: string;

/** Runs the CLI as a user would: `npx portico …` from the repository root (or node + tsx, faster). */
function portico(args: string[], opts: { env?: Record<string, string>; npx?: boolean } = {}): Promise<{ code: number | null; out: string; err: string }> {
  const [cmd, pre] = opts.npx ? ['npx', ['portico']] : [process.execPath, ['--import=tsx', 'portico.ts']];
  const p = spawn(cmd, [...pre, ...args], { cwd: ROOT, env: { PATH: process.env.PATH, HOME: process.env.HOME, ...opts.env } });
  let out = ''; let err = '';
  p.stdout.on('data', (d) => { out += d; });
  p.stderr.on('data', (d) => { err += d; });
  return new Promise((resolve) => p.on('close', (code) => resolve({ code, out, err })));
}
const withServer = () => ['--admin-url', g.admin, '--token', TOKEN, '--no-color'];
function file(name: string, text: string): string {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
}
const A = (method: string, p: string, body?: unknown) => admin(g.admin, method, p, body, { 'Kong-Admin-Token': TOKEN });

const shop = () => `_format_version: "3.0"
services:
- name: shop
  url: ${upstream.url}
  routes:
  - name: shop-r
    paths: [/shop]
  plugins:
  - name: key-auth
consumers:
- username: carol
  keyauth_credentials:
  - key: '\${{ env "PORTICO_CAROL_KEY" }}'
`;

before(async () => {
  dir = tmpRoot();
  upstream = await startUpstream();
  g = await startGateway('all-in-one', { env: { PORTICO_ADMIN_TOKEN: TOKEN } });
});
after(async () => { await g?.kill(); g?.cleanup(); await upstream?.close(); });

describe('portico config validate (offline)', () => {
  it('accepts a good file with no gateway at all, via npx from the repository root', async () => {
    const r = await portico(['config', 'validate', file('good.yml', shop())], { npx: true, env: { PORTICO_CAROL_KEY: 'k' } });
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /good\.yml: valid \(5 entities\)/);
  });

  it('exits 2 on a bad file, each problem with its path and line', async () => {
    const bad = file('bad.yml', '_format_version: "3.0"\nservices:\n- name: a\n  url: http://x\n  routes:\n  - {name: r, paths: [nope]}\n- {name: a, url: "http://y"}\n');
    const r = await portico(['config', 'validate', bad]);
    assert.equal(r.code, 2);
    assert.match(r.err, /services\[0\]\.routes\[0\]\.paths\[0\]: should start with: \/.*\(line 6\)/);
    assert.match(r.err, /services\[1\]: duplicate of services\[0\] \(a\) \(line 7\)/);
  });

  it('exits 2 when a template names an unset variable', async () => {
    const r = await portico(['config', 'validate', file('env.yml', shop())]);
    assert.equal(r.code, 2);
    assert.match(r.err, /consumers\[0\]\.keyauth_credentials\[0\]\.key: environment variable PORTICO_CAROL_KEY is not set \(line 13\)/);
  });
});

describe('portico config diff / sync / dump', () => {
  it('diff --exit-code exits 1 and lists what sync would create; the gateway is unchanged', async () => {
    const r = await portico(['config', 'diff', '--exit-code', file('shop.yml', shop()), ...withServer()], { env: { PORTICO_CAROL_KEY: 'carol-key' } });
    assert.equal(r.code, 1, r.err);
    assert.match(r.out, /^\+ service shop$/m);
    assert.match(r.out, /^\+ route shop-r$/m);
    assert.match(r.out, /^\+ keyauth_credential carl…|^\+ keyauth_credential caro…$/m);
    assert.doesNotMatch(r.out, /\x1b\[/, 'no colour codes with --no-color');
    assert.equal((await A('GET', '/services')).body.data.length, 0);
  });

  it('sync applies the file (templates from the CLI\'s environment), and a second sync changes nothing', async () => {
    const env = { PORTICO_CAROL_KEY: 'carol-key' };
    const first = await portico(['config', 'sync', path.join(dir, 'shop.yml'), ...withServer()], { env });
    assert.equal(first.code, 0, first.err);
    assert.match(first.out, /^synced: \+1 services, \+1 routes, \+1 consumers, \+1 plugins, \+1 keyauth_credentials \(config version \d+\)$/m);
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      status = (await fetch(`${g.proxy}/shop/x`, { headers: { apikey: 'carol-key' } })).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(status, 200);
    const second = await portico(['config', 'sync', path.join(dir, 'shop.yml'), ...withServer()], { env });
    assert.equal(second.code, 0);
    assert.match(second.out, /in sync: no changes/);
    const diff = await portico(['config', 'diff', '--exit-code', path.join(dir, 'shop.yml'), ...withServer()], { env });
    assert.equal(diff.code, 0);
    assert.match(diff.out, /Summary: no changes/);
  });

  it('diff shows the fields an update changes', async () => {
    const changed = file('changed.yml', shop().replace('paths: [/shop]', 'paths: [/shop, /store]'));
    const r = await portico(['config', 'diff', changed, ...withServer()], { env: { PORTICO_CAROL_KEY: 'carol-key' } });
    assert.equal(r.code, 0);
    assert.match(r.out, /^~ route shop-r\n\s+paths: \["\/shop"\] → \["\/shop","\/store"\]$/m);
  });

  it('dump writes a file that syncs back with no changes', async () => {
    const out = path.join(dir, 'dump.yml');
    const r = await portico(['config', 'dump', '-o', out, ...withServer()]);
    assert.equal(r.code, 0, r.err);
    const back = await portico(['config', 'diff', '--exit-code', out, ...withServer()]);
    assert.equal(back.code, 0, back.out + back.err);
  });

  it('--select-tag syncs a team\'s slice and leaves untagged entities untouched', async () => {
    const before = (await A('GET', '/services/shop')).body;
    const team = file('team.yml', `_format_version: "3.0"\nservices:\n- name: team-b-svc\n  url: ${upstream.url}\n  routes: [{name: team-b-r, paths: [/team-b]}]\n`);
    const r = await portico(['config', 'sync', '--select-tag', 'team-b', team, ...withServer()]);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual((await A('GET', '/services/team-b-svc')).body.tags, ['team-b']);
    assert.deepEqual((await A('GET', '/services/shop')).body, before);
    const dump = await portico(['config', 'dump', '--select-tag', 'team-b', ...withServer()]);
    assert.match(dump.out, /team-b-svc/);
    assert.doesNotMatch(dump.out, /name: shop/);
    // An empty team file removes only the team's entities.
    const empty = file('empty.yml', '_format_version: "3.0"\n');
    assert.equal((await portico(['config', 'sync', '--select-tag', 'team-b', empty, ...withServer()])).code, 0);
    assert.equal((await A('GET', '/services/team-b-svc')).status, 404);
    assert.deepEqual((await A('GET', '/services/shop')).body, before);
  });

  it('exits 2 without the token, on a refused file (with lines), and with no gateway', async () => {
    const noToken = await portico(['config', 'diff', path.join(dir, 'team.yml'), '--admin-url', g.admin]);
    assert.equal(noToken.code, 2);
    assert.match(noToken.err, /answered 401/);
    const dangling = file('dangling.yml', '_format_version: "3.0"\nroutes:\n- name: r\n  paths: [/r]\n  service: nowhere\n');
    const refused = await portico(['config', 'sync', dangling, ...withServer()]);
    assert.equal(refused.code, 2);
    assert.match(refused.err, /routes\[0\]\.service: references a service .*\(line 5\)/);
    const down = await portico(['config', 'dump', '--admin-url', 'http://127.0.0.1:9']);
    assert.equal(down.code, 2);
    assert.match(down.err, /cannot reach the admin API at http:\/\/127\.0\.0\.1:9/);
    const usage = await portico(['config', 'frobnicate']);
    assert.equal(usage.code, 2);
  });
});
