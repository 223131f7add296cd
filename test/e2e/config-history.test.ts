// Config history and rollback (issue 12) through a real CP on Postgres and three DPs over NATS:
// who made each version and what it changed, a version as a file, the diff of two, and a
// rollback that writes a new version equal to an old one and reaches every DP.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { startStack, type Stack } from '../harness/stack.ts';
import { statusOf } from '../harness/gateway.ts';

const ROOT = 'history-root-token-0123456789';
let s: Stack;
let alice = '';

const as = (token: string) => (method: string, path: string, body?: unknown) =>
  s.A(method, path, typeof body === 'string' ? body : body, { 'Kong-Admin-Token': token, ...(typeof body === 'string' ? { 'content-type': 'application/yaml' } : {}) });
const root = () => as(ROOT);
const hashesOnDps = async () => Promise.all(s.dps.map(async (d) => (await statusOf(d)).hash));
const proxiedOnDps = async (p: string) => Promise.all(s.dps.map(async (d) => (await fetch(d.proxy + p)).status));

const fileA = (url: string) => `_format_version: "3.0"
services:
- name: api
  url: ${url}
  routes: [{name: v1, paths: [/v1]}]
consumers:
- username: bob
  jwt_secrets: [{key: bob-iss, secret: bob-secret, algorithm: HS256}]
`;
const fileB = (url: string) => `_format_version: "3.0"
services:
- name: api
  url: ${url}
  routes: [{name: v2, paths: [/v2]}]
`;

const versions: Record<string, { version: number; hash: string }> = {};
async function write(token: string, method: string, path: string, body?: unknown) {
  const r = await as(token)(method, path, body);
  assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
  const v = r.body?.version ?? Number(r.headers.get('x-portico-config-version'));
  await s.converge(v);
  return { r, version: v as number };
}

before(async () => {
  s = await startStack({ dps: 3, cpEnv: { PORTICO_ADMIN_TOKEN: ROOT, PORTICO_CONFIG_HISTORY: '6' } });
  const created = await root()('POST', '/admins', { username: 'alice', role: 'editor' });
  alice = created.body.token;
  const a = await write(ROOT, 'POST', '/config', fileA(s.upstream.url));
  versions.a = { version: a.version, hash: (await s.A('GET', '/status', undefined, { 'Kong-Admin-Token': ROOT })).body.configuration.hash };
  const b = await write(alice, 'POST', '/services', { name: 'extra', url: s.upstream.url });
  versions.b = { version: b.version, hash: '' };
  const c = await write(alice, 'POST', '/config', fileB(s.upstream.url));
  versions.c = { version: c.version, hash: '' };
});
after(async () => { await s?.stop(); });

describe('GET /config/versions', () => {
  it('lists every version newest first with who made it and a one-line summary', async () => {
    const list = (await root()('GET', '/config/versions')).body.data as any[];
    const byVersion = new Map(list.map((v) => [v.version, v]));
    assert.deepEqual(list.map((v) => v.version), [...list.map((v) => v.version)].sort((x, y) => y - x));
    assert.deepEqual(byVersion.get(versions.a.version).changed_by, ['admin']);
    assert.equal(byVersion.get(versions.a.version).hash, versions.a.hash);
    assert.match(byVersion.get(versions.a.version).summary, /^config: \+1 services, \+1 routes, \+1 consumers, \+1 jwt_secrets$/);
    assert.deepEqual(byVersion.get(versions.b.version).changed_by, ['alice']);
    assert.equal(byVersion.get(versions.b.version).summary, 'POST services');
    assert.match(byVersion.get(versions.c.version).summary, /^config: \+1 routes, -1 services, -1 routes, -1 consumers, -1 jwt_secrets$/);
  });

  it('answers a version as a file, and the diff between two', async () => {
    const r = await root()('GET', `/config/versions/${versions.a.version}`);
    assert.equal(r.status, 200);
    assert.equal(r.body.hash, versions.a.hash);
    const doc = parse(r.body.config);
    assert.equal(doc.services[0].routes[0].name, 'v1');
    assert.equal(doc.consumers[0].jwt_secrets[0].secret, 'bob-secret');
    const d = (await root()('GET', `/config/versions/${versions.a.version}/diff/${versions.c.version}`)).body;
    assert.deepEqual(d.changes.routes.created.map((e: any) => e.name), ['v2']);
    assert.deepEqual(d.changes.routes.deleted.map((e: any) => e.name), ['v1']);
    assert.deepEqual(d.changes.consumers.deleted.map((e: any) => e.name), ['bob']);
  });

  it('hides secrets from viewers', async () => {
    const viewer = (await root()('POST', '/admins', { username: 'val', role: 'viewer' })).body.token;
    const doc = parse((await as(viewer)('GET', `/config/versions/${versions.a.version}`)).body.config);
    assert.equal(doc.consumers[0].jwt_secrets[0].secret, '[REDACTED]');
    assert.equal((await as(viewer)('POST', '/config/rollback', { version: versions.a.version })).status, 403);
  });
});

describe('POST /config/rollback', () => {
  it('writes a new version equal to the old one, and all three DPs run its hash', async () => {
    assert.deepEqual(await proxiedOnDps('/v1/x'), [404, 404, 404]);
    const { r, version } = await write(alice, 'POST', '/config/rollback', { version: versions.a.version });
    assert.equal(r.status, 201);
    assert.ok(version > versions.c.version, 'history stays linear');
    assert.match(r.body.summary, /\+1 routes/);
    assert.deepEqual(await hashesOnDps(), [versions.a.hash, versions.a.hash, versions.a.hash]);
    assert.deepEqual(await proxiedOnDps('/v1/x'), [200, 200, 200]);
    assert.deepEqual(await proxiedOnDps('/v2/x'), [404, 404, 404]);
    const list = (await root()('GET', '/config/versions')).body.data;
    assert.equal(list[0].summary, `rollback to ${versions.a.version}: ${r.body.summary}`);
    assert.deepEqual(list[0].changed_by, ['alice']);
  });

  it('to the content already running changes nothing', async () => {
    const r = await root()('POST', '/config/rollback', { version: versions.a.version });
    assert.equal(r.status, 200);
    assert.equal(r.body.version, null);
  });

  it('refuses a version not kept, and a bad body, changing nothing', async () => {
    const before = (await root()('GET', '/config/versions')).body.data[0];
    assert.equal((await root()('POST', '/config/rollback', { version: 99_999 })).status, 404);
    for (const body of [{}, { version: 'one' }, { version: -1 }, { version: 1.5 }, 'not json']) {
      const r = await root()('POST', '/config/rollback', body);
      assert.equal(r.status, 400, JSON.stringify(body));
    }
    assert.equal((await root()('GET', '/config/versions/abc')).status, 400);
    assert.deepEqual((await root()('GET', '/config/versions')).body.data[0], before);
  });

  it('keeps only PORTICO_CONFIG_HISTORY versions', async () => {
    for (let i = 0; i < 7; i++) await write(ROOT, 'POST', '/services', { name: `svc-${i}`, url: s.upstream.url });
    const list = (await root()('GET', '/config/versions')).body.data;
    assert.equal(list.length, 6);
    assert.equal((await root()('GET', `/config/versions/${versions.a.version}`)).status, 404);
  });
});
