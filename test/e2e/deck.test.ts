// decK works unchanged (issue 12): Debian's `deck` 1.4.0 (/usr/bin/deck; .ci/run installs it)
// driving the all-in-one through dump, diff, sync and reset, as a Kong user would, with the admin
// token in decK's --headers. Plus what decK relies on: GET / naming the Kong version whose admin
// API Portico implements, POST /schemas/plugins/validate, and key-auth keys given back (sealed at
// rest by the keyring) to roles that may see secrets.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { admin, startGateway, type GatewayProcess } from '../harness/gateway.ts';
import { startUpstream, type Upstream } from '../harness/upstream.ts';
import { tmpRoot, waitFor } from '../harness/procs.ts';
import { makeCa, makeCert } from '../harness/certs.ts';

const TOKEN = 'deck-root-token-0123456789';
let g: GatewayProcess;
let upstream: Upstream;
let dir: string;
let adminUrl: string;
function deck(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('deck', [...args, '--kong-addr', adminUrl, '--headers', `Kong-Admin-Token:${TOKEN}`, '--no-color'],
      { cwd: dir, env: { PATH: process.env.PATH, HOME: dir }, timeout: 60_000 },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: stdout + stderr }));
  });
}
const A = (method: string, p: string, body?: unknown, token = TOKEN) => admin(g.admin, method, p, body, { 'Kong-Admin-Token': token });
const summary = (out: string) => {
  const m = /Created: (\d+)\s+Updated: (\d+)\s+Deleted: (\d+)/.exec(out);
  assert.ok(m, out);
  return { created: Number(m[1]), updated: Number(m[2]), deleted: Number(m[3]) };
};
async function proxiedEventually(p: string, headers: Record<string, string>, want: number) {
  await waitFor(`${p} → ${want}`, async () => (await fetch(g.proxy + p, { headers })).status === want, 10_000, 50);
}

const kongFile = (url: string) => `_format_version: "1.1"
services:
- name: orders
  url: ${url}
  routes:
  - name: orders-r
    paths: [/orders]
  plugins:
  - name: key-auth
consumers:
- username: dave
  keyauth_credentials: [{key: dave-key-123}]
  jwt_secrets: [{key: dave-iss, secret: dave-jwt-secret, algorithm: HS256}]
  acls: [{group: silver}]
upstreams:
- name: pool.internal
  targets: [{target: "10.0.0.9:80", weight: 50}]
plugins:
- name: correlation-id
`;

before(async () => {
  dir = tmpRoot();
  upstream = await startUpstream();
  g = await startGateway('all-in-one', { env: { PORTICO_ADMIN_TOKEN: TOKEN } });
  // decK talks to the gateway directly: /certificates, /snis and /ca_certificates exist (issue 15).
  adminUrl = g.admin;
});
after(async () => {
  await g?.kill(); g?.cleanup(); await upstream?.close();
});

describe('what decK reads first', () => {
  it('GET / reports the Kong version whose admin API Portico implements, and Portico\'s own', async () => {
    const r = await A('GET', '/');
    assert.match(r.body.version, /^3\.\d+\.\d+$/);
    assert.match(r.body.portico_version, /^\d+\.\d+\.\d+/);
    const ping = await deck(['ping']);
    assert.equal(ping.code, 0, ping.out);
    assert.match(ping.out, /Kong version:\s+3\.\d+\.\d+/);
  });

  it('POST /schemas/plugins/validate answers 200 for a valid plugin and 400 with the violation otherwise, writing nothing', async () => {
    const ok = await A('POST', '/schemas/plugins/validate', { name: 'rate-limiting', config: { minute: 5 } });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.message, 'schema validation successful');
    const bad = await A('POST', '/schemas/plugins/validate', { name: 'rate-limiting', config: { minute: -1 } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.code, 2);
    assert.ok(bad.body.fields.config.minute);
    assert.equal((await A('GET', '/plugins')).body.data.length, 0);
  });

  it('dumps an empty gateway', async () => {
    const r = await deck(['dump', '-o', path.join(dir, 'empty.yaml')]);
    assert.equal(r.code, 0, r.out);
  });
});

describe('deck sync, dump, diff and reset', () => {
  it('syncs a Kong file (PUT by id for every entity), and the proxy serves it', async () => {
    writeFileSync(path.join(dir, 'kong.yaml'), kongFile(upstream.url));
    const r = await deck(['sync', '-s', 'kong.yaml']);
    assert.equal(r.code, 0, r.out);
    assert.deepEqual(summary(r.out), { created: 10, updated: 0, deleted: 0 });
    await proxiedEventually('/orders/x', { apikey: 'dave-key-123' }, 200);
    assert.equal((await fetch(`${g.proxy}/orders/x`)).status, 401);
  });

  it('dumps keys as Kong does (the keyring gives them back), and the dump syncs with no changes', async () => {
    const r = await deck(['dump', '-o', path.join(dir, 'dump.yaml')]);
    assert.equal(r.code, 0, r.out);
    const dump = readFileSync(path.join(dir, 'dump.yaml'), 'utf8');
    assert.match(dump, /key: dave-key-123/);
    assert.match(dump, /name: orders-r/);
    const diff = await deck(['diff', '-s', 'dump.yaml']);
    assert.equal(diff.code, 0, diff.out);
    assert.deepEqual(summary(diff.out), { created: 0, updated: 0, deleted: 0 });
    const again = await deck(['sync', '-s', 'dump.yaml']);
    assert.deepEqual(summary(again.out), { created: 0, updated: 0, deleted: 0 });
  });

  it('syncs an edit as one update (keeping the Portico-only fields decK does not know) and a removal as a delete', async () => {
    const dump = readFileSync(path.join(dir, 'dump.yaml'), 'utf8');
    assert.equal((await A('PATCH', '/routes/orders-r', { query: { v: ['1'] } })).status, 200);
    writeFileSync(path.join(dir, 'edit.yaml'), dump.replace('- /orders', '- /purchases'));
    const r = await deck(['sync', '-s', 'edit.yaml']);
    assert.equal(r.code, 0, r.out);
    assert.deepEqual(summary(r.out), { created: 0, updated: 1, deleted: 0 });
    const route = (await A('GET', '/routes/orders-r')).body;
    assert.deepEqual(route.paths, ['/purchases']);
    assert.deepEqual(route.query, { v: ['1'] }, 'decK\'s PUT leaves out what it does not know; Portico keeps it');
    await proxiedEventually('/purchases/x?v=1', { apikey: 'dave-key-123' }, 200);
    const withoutAcl = dump.replace('- /orders', '- /purchases').replace(/\n\s+acls:\n\s+- group: silver/, '');
    writeFileSync(path.join(dir, 'noacl.yaml'), withoutAcl);
    const del = await deck(['sync', '-s', 'noacl.yaml']);
    assert.deepEqual(summary(del.out), { created: 0, updated: 0, deleted: 1 });
    assert.equal((await A('GET', '/consumers/dave/acls')).body.data.length, 0);
  });

  it('resets the gateway to empty', async () => {
    const r = await deck(['reset', '--force']);
    assert.equal(r.code, 0, r.out);
    for (const p of ['/services', '/routes', '/consumers', '/plugins', '/upstreams', '/key-auths']) {
      assert.deepEqual((await A('GET', p)).body.data, [], p);
    }
  });
});

describe('deck with certificates, SNIs and CA certificates', () => {
  const indent = (pem: string) => pem.trim().split('\n').map((l) => '    ' + l).join('\n');
  it('syncs a certificate with a nested SNI and a CA certificate, dumps them, diffs clean, and resets them away', async () => {
    // decK 1.4's file schema requires ids on certificates and CA certificates.
    const leaf = makeCert({ cn: 'shop.example.test' });
    const ca = makeCa('decK Test CA');
    writeFileSync(path.join(dir, 'tls.yaml'), `_format_version: "1.1"
certificates:
- id: 6f1c1a52-3b9e-4c8e-9a51-2f6d0f0c0a01
  cert: |
${indent(leaf.cert)}
  key: |
${indent(leaf.key)}
  snis:
  - name: shop.example.test
ca_certificates:
- id: 6f1c1a52-3b9e-4c8e-9a51-2f6d0f0c0a02
  cert: |
${indent(ca.cert)}
`);
    const r = await deck(['sync', '-s', 'tls.yaml']);
    assert.equal(r.code, 0, r.out);
    assert.deepEqual(summary(r.out), { created: 3, updated: 0, deleted: 0 });
    assert.deepEqual((await A('GET', '/snis')).body.data.map((s: { name: string }) => s.name), ['shop.example.test']);
    const d = await deck(['dump', '-o', path.join(dir, 'tls-dump.yaml')]);
    assert.equal(d.code, 0, d.out);
    const dump = readFileSync(path.join(dir, 'tls-dump.yaml'), 'utf8');
    assert.match(dump, /name: shop\.example\.test/);
    assert.match(dump, /ca_certificates:/);
    const diff = await deck(['diff', '-s', 'tls-dump.yaml']);
    assert.equal(diff.code, 0, diff.out);
    assert.deepEqual(summary(diff.out), { created: 0, updated: 0, deleted: 0 });
    // The two file formats meet: decK's dump imports through POST /config as no change, and
    // Portico's own export (private keys included for an admin) diffs clean in decK.
    const imported = await A('POST', '/config', dump, TOKEN);
    assert.equal(imported.status, 200, JSON.stringify(imported.body));
    assert.equal(imported.body.summary, 'no changes');
    const ours = (await A('GET', '/config')).body.config as string;
    assert.ok(ours.includes(leaf.key.trim().split('\n')[1]), 'the private key is in the export');
    writeFileSync(path.join(dir, 'tls-portico.yaml'), ours);
    const ourDiff = await deck(['diff', '-s', 'tls-portico.yaml']);
    assert.equal(ourDiff.code, 0, ourDiff.out);
    assert.deepEqual(summary(ourDiff.out), { created: 0, updated: 0, deleted: 0 });
    const reset = await deck(['reset', '--force']);
    assert.equal(reset.code, 0, reset.out);
    for (const p of ['/certificates', '/snis', '/ca_certificates']) assert.deepEqual((await A('GET', p)).body.data, [], p);
  });
});

describe('key-auth keys and the keyring', () => {
  it('gives the key back to admins, redacts it for viewers, and keeps only the hash in the snapshot', async () => {
    await A('POST', '/consumers', { username: 'erin' });
    const created = await A('POST', '/consumers/erin/key-auth', { key: 'erin-key-456' });
    assert.equal(created.status, 201);
    const listed = (await A('GET', '/key-auths')).body.data[0];
    assert.equal(listed.key, 'erin-key-456');
    assert.equal((await A('GET', `/consumers/erin/key-auth/${listed.id}`)).body.key, 'erin-key-456');
    const viewer = (await A('POST', '/admins', { username: 'vic', role: 'viewer' })).body.token;
    assert.equal((await A('GET', '/key-auths', undefined, viewer)).body.data[0].key, '[REDACTED]');
    const versions = (await A('GET', '/config/versions')).body.data;
    const file = (await A('GET', `/config/versions/${versions[0].version}`)).body.config as string;
    assert.doesNotMatch(file, /erin-key-456/, 'snapshots carry the hash only');
    assert.match(file, /key_hash: [0-9a-f]{64}/);
  });

  it('keeps the keyring key in the data dir, not in the database (0600)', async () => {
    const stat = await import('node:fs').then((fs) => fs.statSync(path.join(g.dataDir, 'keyring.key')));
    assert.equal(stat.mode & 0o777, 0o600);
  });
});
