// Declarative config (issue 12) through a real CP on Postgres and a DP over NATS: POST /config in
// one transaction, GET /config back to the same hash, dry runs, select tags, renames, bad files;
// and the all-in-one on PGlite loading PORTICO_DECLARATIVE_CONFIG at start.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { startStack, type Stack } from '../harness/stack.ts';
import { admin, startGateway, statusOf } from '../harness/gateway.ts';
import { tmpRoot } from '../harness/procs.ts';

let s: Stack;

/** POST a file (YAML text or a document); waits for the DP when a version was written. */
async function post(file: string | object, query = '') {
  const body = typeof file === 'string' ? file : JSON.stringify(file);
  const r = await s.A('POST', `/config${query}`, body, { 'content-type': typeof file === 'string' ? 'application/yaml' : 'application/json' });
  if (r.status === 201) await s.converge(r.body.version);
  return r;
}
const cpLatest = async () => (await s.A('GET', '/status')).body.configuration as { version: number; hash: string };
const exported = async (q = '') => (await s.A('GET', `/config${q}`)).body.config as string;
const proxied = async (p: string, headers: Record<string, string> = {}) => (await fetch(s.dps[0].proxy + p, { headers })).status;

const yml = (upstream: string) => `
_format_version: "3.0"
services:
- name: shop
  url: ${upstream}
  tags: [team-a]
  routes:
  - name: shop-r
    paths: ["/shop"]
    plugins:
    - name: rate-limiting
      config: {minute: 100, policy: local}
  plugins:
  - name: key-auth
consumers:
- username: alice
  keyauth_credentials: [{key: alice-secret-key}]
  jwt_secrets: [{key: alice-iss, secret: s3cr3t, algorithm: HS256}]
  basicauth_credentials: [{username: alice, password: pw}]
  acls: [{group: gold}]
upstreams:
- name: pool.internal
  targets: [{target: "10.0.0.5:8080", weight: 100}]
`;

before(async () => {
  s = await startStack({ dps: 1 });
});
after(async () => { await s?.stop(); });

describe('POST /config and GET /config', () => {
  it('imports a nested file in one transaction (one version) that the DP serves', async () => {
    const v0 = (await cpLatest()).version;
    const r = await post(yml(s.upstream.url));
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.version, v0 + 1, 'one version for the whole file');
    assert.match(r.body.summary, /\+1 services, \+1 routes/);
    assert.equal(await proxied('/shop/x'), 401);
    assert.equal(await proxied('/shop/x', { apikey: 'alice-secret-key' }), 200);
    const alice = (await s.A('GET', '/consumers/alice/acls')).body.data;
    assert.deepEqual(alice.map((a: any) => a.group), ['gold']);
  });

  it('exports a file that imports back to the same config hash, and changes nothing twice', async () => {
    const before = await cpLatest();
    const file = await exported();
    assert.match(file, /_format_version: "3.0"/);
    assert.match(file, /routes:\n\s+- id: /, 'routes nested under their service');
    const again = await post(file);
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.equal(again.body.version, null);
    assert.equal(again.body.summary, 'no changes');
    const same = await post(yml(s.upstream.url));
    assert.equal(same.body.version, null, 'the original file, a second time: nothing to do (password and key unchanged)');
    assert.deepEqual(await cpLatest(), before);
    assert.equal((await post(file, '?check_hash=1')).status, 304);
  });

  it('dry_run answers the per-entity diff and writes nothing', async () => {
    const before = await cpLatest();
    const changed = yml(s.upstream.url).replace('paths: ["/shop"]', 'paths: ["/shop", "/store"]').replace('acls: [{group: gold}]', '');
    const r = await post(changed, '?dry_run=1');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.dry_run, true);
    assert.deepEqual(r.body.changes.routes.updated.map((u: any) => [u.name, u.after.paths]), [['shop-r', ['/shop', '/store']]]);
    assert.deepEqual(r.body.changes.acls.deleted.map((d: any) => d.name), ['gold']);
    assert.equal(r.body.summary, '~1 routes, -1 acls');
    assert.deepEqual(await cpLatest(), before);
    assert.equal((await s.A('GET', '/consumers/alice/acls')).body.data.length, 1);
  });

  it('a rename keeps the entity\'s id, so its routes and plugins stay', async () => {
    const svc = (await s.A('GET', '/services/shop')).body;
    const route = (await s.A('GET', '/routes/shop-r')).body;
    const r = await post(yml(s.upstream.url).replace('name: shop\n', 'name: shop2\n'));
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.summary, '~1 services');
    assert.equal((await s.A('GET', '/services/shop2')).body.id, svc.id);
    assert.equal((await s.A('GET', '/routes/shop-r')).body.created_at, route.created_at);
    assert.equal(await proxied('/shop/x', { apikey: 'alice-secret-key' }), 200);
  });

  it('accepts Kong 3.x shorthands (rate-limiting redis_host) and fills a plugin given by name only', async () => {
    const r = await post(`_format_version: "3.0"
services:
- name: legacy
  url: ${s.upstream.url}
  tags: [legacy]
  routes: [{name: legacy-r, paths: [/legacy]}]
  plugins:
  - name: rate-limiting
    config: {minute: 5, policy: redis, redis_host: redis.internal, redis_port: 6380}
  - name: correlation-id
_info: {select_tags: [legacy]}
`);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const plugins = (await s.A('GET', '/services/legacy/plugins')).body.data;
    const rl = plugins.find((p: any) => p.name === 'rate-limiting');
    assert.equal(rl.config.redis.host, 'redis.internal');
    assert.equal(rl.config.redis.port, 6380);
    assert.equal('redis_host' in rl.config, false);
    assert.equal(plugins.find((p: any) => p.name === 'correlation-id').config.header_name, 'Kong-Request-ID');
  });

  it('select_tags manages only tagged entities and leaves the untagged ones untouched', async () => {
    const untagged = (await s.A('GET', '/services/shop2')).body;
    const r = await post({ _format_version: '3.0', _info: { select_tags: ['legacy'] }, services: [] });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal((await s.A('GET', '/services/legacy')).status, 404, 'the tagged service went');
    assert.deepEqual((await s.A('GET', '/services/shop2')).body, untagged, 'the untagged one is untouched');
    const dump = await exported('?select_tags=team-a');
    assert.match(dump, /select_tags:\n\s+- team-a/);
    assert.doesNotMatch(dump, /alice/, 'only entities with the tag');
  });
});

describe('bad files change nothing and say where', () => {
  const cases: [string, string, RegExp][] = [
    ['a YAML syntax error', '_format_version: "3.0"\nservices:\n  - name: a\n   url: x\n', /invalid YAML.*\(line 4\)/],
    ['an unknown key', '_format_version: "3.0"\nservices:\n- name: a\n  url: http://x\n  routes:\n  - name: r\n    paths: [/a]\n    colour: red\n', /services\[0\]\.routes\[0\]\.colour: unknown field \(line 8\)/],
    ['a bad path', '_format_version: "3.0"\nservices:\n- name: a\n  url: http://x\n  routes:\n  - {name: r0, paths: [/a]}\n  - {name: r1, paths: [nope]}\n', /services\[0\]\.routes\[1\]\.paths\[0\]: should start with: \/.*\(line 7\)/],
    ['duplicate names', '_format_version: "3.0"\nservices:\n- {name: a, url: "http://x"}\n- {name: a, url: "http://y"}\n', /services\[1\]: duplicate of services\[0\] \(a\) \(line 4\)/],
    ['a dangling reference', '_format_version: "3.0"\nroutes:\n- {name: r, paths: [/a], service: nowhere}\n', /routes\[0\]\.service: references a service .*"nowhere" \(line 3\)/],
    ['a wrong _format_version', '_format_version: "9.9"\nservices: []\n', /_format_version: expected one of: 1\.1, 2\.1, 3\.0 \(line 1\)/],
    ['a plugin config failing its schema', '_format_version: "3.0"\nplugins:\n- name: rate-limiting\n  config: {minute: -1}\n', /plugins\[0\]\.config\.minute: .* \(line 4\)/],
    ['an environment template (the sender substitutes it)', '_format_version: "3.0"\nconsumers:\n- username: u\n  keyauth_credentials: [{key: \'${{ env "PORTICO_SIGNING_KEY" }}\'}]\n', /must be substituted before the file is sent/],
    ['a prototype key', '{"_format_version": "3.0", "services": [{"name": "p", "url": "http://x", "__proto__": {"x": 1}}]}', /reserved name/],
  ];
  for (const [what, file, message] of cases) {
    it(`refuses ${what} with code 14 and the path`, async () => {
      const before = await cpLatest();
      const r = await post(file);
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.equal(r.body.code, 14);
      assert.equal(r.body.name, 'invalid declarative configuration');
      assert.match(r.body.message, message);
      assert.deepEqual(await cpLatest(), before);
    });
  }

  it('Kong\'s nested `fields` mirror the file', async () => {
    const r = await post('_format_version: "3.0"\nservices:\n- name: a\n  url: http://x\n  routes:\n  - {name: r0, paths: [/a]}\n  - {name: r1, paths: [nope]}\n');
    assert.deepEqual(r.body.fields.services[0].routes[1].paths, ['should start with: / (fixed path) or ~/ (regex path)']);
  });

  it('an empty body is Kong\'s "expected a declarative configuration"', async () => {
    const r = await s.A('POST', '/config', '');
    assert.equal(r.status, 400);
    assert.equal(r.body.message, 'expected a declarative configuration');
  });
});

describe('PORTICO_DECLARATIVE_CONFIG', () => {
  it('loads the file into the embedded store at start (all-in-one, PGlite)', async () => {
    const dir = tmpRoot();
    const file = path.join(dir, 'kong.yml');
    writeFileSync(file, yml(s.upstream.url).replace('alice-secret-key', `'\${{ env "PORTICO_ALICE_KEY" }}'`));
    const g = await startGateway('all-in-one', { env: { PORTICO_DECLARATIVE_CONFIG: file, PORTICO_ALICE_KEY: 'from-the-env' } });
    try {
      assert.equal((await fetch(`${g.proxy}/shop/x`, { headers: { apikey: 'from-the-env' } })).status, 200);
      const st = await statusOf(g);
      const versions = (await admin(g.admin, 'GET', '/config/versions')).body.data;
      assert.equal(versions[0].hash, st.hash);
      assert.match(versions[0].summary, /LOAD|config/);
    } finally { await g.kill(); g.cleanup(); }
  });

  it('refuses to start on a bad file, saying where (exit 2)', async () => {
    const dir = tmpRoot();
    const file = path.join(dir, 'kong.yml');
    writeFileSync(file, '_format_version: "3.0"\nservices:\n- {name: a, url: "ftp://x"}\n');
    const g = await startGateway('all-in-one', { env: { PORTICO_DECLARATIVE_CONFIG: file }, waitReady: false });
    const code = await new Promise((r) => g.proc.once('exit', r));
    assert.equal(code, 2);
    assert.match(g.logs(), /PORTICO_DECLARATIVE_CONFIG .* is invalid:[\s\S]*services\[0\]/);
    g.cleanup();
  });
});
