// Admin API trust boundary (ARCHITECTURE.md invariant 9): tokens, roles, redaction for viewers,
// failed-attempt limits, the loopback-only mode without admins, and CORS from an allowlist only.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import pgClient from 'pg';
import { admin, startGateway, type GatewayProcess } from '../harness/gateway.ts';
import { startNats, startPostgres, type NatsHandle, type PgHandle } from '../harness/procs.ts';

const ROOT_TOKEN = 'bootstrap-token-0123456789';
const GUI = 'http://gui.example:8002';
let pg: PgHandle; let nats: NatsHandle; let cp: GatewayProcess;
const A = (method: string, path: string, token?: string, body?: unknown, headers: Record<string, string> = {}) =>
  admin(cp.admin, method, path, body, token ? { 'Kong-Admin-Token': token, ...headers } : headers);
const exited = (g: GatewayProcess) => new Promise<number | null>((r) => g.proc.exitCode !== null ? r(g.proc.exitCode) : g.proc.once('exit', r));

before(async () => {
  [pg, nats] = await Promise.all([startPostgres(), startNats()]);
  cp = await startGateway('control-plane', { env: { DATABASE_URL: pg.url, NATS_URL: nats.url, PORTICO_ADMIN_TOKEN: ROOT_TOKEN, PORTICO_ADMIN_GUI_ORIGINS: GUI } });
});
after(async () => { await cp?.kill(); cp?.cleanup(); await Promise.all([pg?.stop(), nats?.stop()]); });

describe('admin tokens', () => {
  it('answers 401 on every endpoint without a token, and keeps /status open for probes', async () => {
    const endpoints = (await A('GET', '/endpoints', ROOT_TOKEN)).body.data as string[];
    assert.ok(endpoints.length > 30);
    for (const e of endpoints) {
      const path = e.replace(/\{[^}]+\}/g, 'x');
      for (const method of ['GET', 'POST', 'DELETE']) {
        const r = await A(method, path);
        if (e === '/status' && method === 'GET') { assert.equal(r.status, 200); continue; }
        assert.equal(r.status, 401, `${method} ${path}`);
        assert.equal(r.body.message, 'Invalid credentials. Token or User credentials required');
      }
    }
  });

  it('takes the token as Kong-Admin-Token or a Bearer, and refuses a wrong one', async () => {
    assert.equal((await A('GET', '/services', ROOT_TOKEN)).status, 200);
    assert.equal((await admin(cp.admin, 'GET', '/services', undefined, { Authorization: `Bearer ${ROOT_TOKEN}` })).status, 200);
    assert.equal((await A('GET', '/services', ROOT_TOKEN + 'x')).status, 401);
    assert.equal((await admin(cp.admin, 'GET', '/services', undefined, { Authorization: `Basic ${ROOT_TOKEN}` })).status, 401);
  });

  it('creates admins whose token is shown once, hashed at rest, expiring, rotated and revoked at once', async () => {
    const created = await A('POST', '/admins', ROOT_TOKEN, { username: 'ed', role: 'editor' });
    assert.equal(created.status, 201);
    assert.match(created.body.token, /^ptc_adm_[A-Za-z0-9_-]{40}$/);
    const listed = await A('GET', '/admins', ROOT_TOKEN);
    assert.ok(!JSON.stringify(listed.body).includes(created.body.token), 'the token is never listed');
    assert.ok(!('token_hash' in (await A('GET', '/admins/ed', ROOT_TOKEN)).body));
    const client = new pgClient.Client({ connectionString: pg.url });
    await client.connect();
    const rows = await client.query('SELECT token_hash FROM admins WHERE username = $1', ['ed']);
    await client.end();
    assert.match(rows.rows[0].token_hash, /^[0-9a-f]{64}$/);
    assert.equal((await A('GET', '/services', created.body.token)).status, 200);

    const rotated = await A('POST', '/admins/ed/token', ROOT_TOKEN);
    assert.equal(rotated.status, 201);
    assert.equal((await A('GET', '/services', created.body.token)).status, 401, 'the old token stops at once');
    assert.equal((await A('GET', '/services', rotated.body.token)).status, 200);
    assert.equal((await A('DELETE', '/admins/ed', ROOT_TOKEN)).status, 204);
    assert.equal((await A('GET', '/services', rotated.body.token)).status, 401, 'a deleted admin is revoked at once');

    const short = await A('POST', '/admins', ROOT_TOKEN, { username: 'brief', role: 'viewer', ttl: 1 });
    await new Promise((r) => setTimeout(r, 2100));
    const expired = await A('GET', '/services', short.body.token);
    assert.equal(expired.status, 401);
    assert.equal(expired.body.message, 'Token expired');
  });

  it('refuses bad admin input with field errors and a duplicate with 409', async () => {
    const bad = await A('POST', '/admins', ROOT_TOKEN, { username: 'a b\r\n', role: 'god', extra: 1 });
    assert.equal(bad.status, 400);
    assert.deepEqual(Object.keys(bad.body.fields).sort(), ['extra', 'role', 'username']);
    await A('POST', '/admins', ROOT_TOKEN, { username: 'dup', role: 'viewer' });
    assert.equal((await A('POST', '/admins', ROOT_TOKEN, { username: 'dup', role: 'viewer' })).status, 409);
  });
});

describe('roles', () => {
  it('lets an editor change config but not admins, a viewer read with secrets redacted, and an auditor neither', async () => {
    const ed = (await A('POST', '/admins', ROOT_TOKEN, { username: 'editor1', role: 'editor' })).body.token;
    const viewer = (await A('POST', '/admins', ROOT_TOKEN, { username: 'viewer1', role: 'viewer' })).body.token;
    const auditor = (await A('POST', '/admins', ROOT_TOKEN, { username: 'auditor1', role: 'auditor' })).body.token;
    assert.equal((await A('POST', '/consumers', ed, { username: 'alice' })).status, 201);
    assert.equal((await A('POST', '/consumers/alice/jwt', ed, { key: 'iss-a', secret: 'hmac-secret-value' })).status, 201);
    assert.equal((await A('GET', '/admins', ed)).status, 403);
    const denied = await A('POST', '/services', viewer, { name: 'v', url: 'http://127.0.0.1:9' });
    assert.equal(denied.status, 403);
    assert.equal(denied.body.message, 'viewer1, you do not have permissions to create this resource');
    const jwts = await A('GET', '/consumers/alice/jwt', viewer);
    assert.equal(jwts.status, 200);
    assert.equal(jwts.body.data[0].secret, '[REDACTED]');
    assert.equal(jwts.body.data[0].key, '[REDACTED]');
    assert.equal((await A('GET', '/consumers/alice/jwt', ed)).body.data[0].secret, 'hmac-secret-value');
    assert.equal((await A('GET', '/services', auditor)).status, 403);
    assert.equal((await A('GET', '/userinfo', auditor)).body.admin.role, 'auditor');
  });

  it('answers 403 on every endpoint a role lacks: writes for a viewer, everything but the audit trail for an auditor', async () => {
    const viewer = (await A('POST', '/admins', ROOT_TOKEN, { username: 'viewer-walk', role: 'viewer' })).body.token;
    const auditor = (await A('POST', '/admins', ROOT_TOKEN, { username: 'auditor-walk', role: 'auditor' })).body.token;
    const endpoints = (await A('GET', '/endpoints', ROOT_TOKEN)).body.data as string[];
    for (const e of endpoints) {
      const path = e.replace(/\{[^}]+\}/g, 'x');
      if (e === '/status') continue;
      for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
        if (method === 'POST' && /^\/schemas\/.*validate$/.test(e)) continue;
        assert.equal((await A(method, path, viewer)).status, 403, `viewer ${method} ${path}`);
      }
      const audit = e.startsWith('/audit') || e === '/userinfo';
      if (!audit) assert.equal((await A('GET', path, auditor)).status, 403, `auditor GET ${path}`);
    }
  });

  it('limits failed attempts per client address with 429, concurrent ones included, but never a valid token', async () => {
    const statuses = await Promise.all(Array.from({ length: 30 }, (_, i) => A('GET', '/services', `wrong-${i}`).then((r) => r.status)));
    assert.ok(statuses.filter((s) => s === 429).length >= 10, 'at least the 21st to 30th failure of the window are refused');
    const r = await A('GET', '/services', 'wrong-again');
    assert.equal(r.status, 429);
    const wait = Number(r.headers.get('retry-after'));
    assert.ok(wait >= 1 && wait <= 60, `Retry-After ${wait}`);
    assert.equal((await A('GET', '/services', ROOT_TOKEN)).status, 200, 'whoever shares the address still gets in with a valid token');
  });

  it('lists a generated token by its first 12 characters and an operator-chosen one by none', async () => {
    const list = (await A('GET', '/admins', ROOT_TOKEN)).body.data as { username: string; token_prefix: string }[];
    assert.equal(list.find((a) => a.username === 'admin')!.token_prefix, '');
    assert.ok(list.filter((a) => a.username !== 'admin').every((a) => /^ptc_adm_.{4}$/.test(a.token_prefix)));
  });
});

describe('CORS', () => {
  it('answers a preflight from an allowed origin with what it asked for, and gives other origins nothing', async () => {
    const pre = await fetch(cp.admin + '/services', { method: 'OPTIONS', headers: { Origin: GUI, 'Access-Control-Request-Method': 'PATCH', 'Access-Control-Request-Headers': 'kong-admin-token, content-type' } });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), GUI);
    assert.equal(pre.headers.get('access-control-allow-credentials'), 'true');
    assert.equal(pre.headers.get('access-control-allow-methods'), 'PATCH');
    assert.equal(pre.headers.get('access-control-allow-headers'), 'kong-admin-token, content-type');
    assert.match(pre.headers.get('vary') ?? '', /Origin/);
    const evil = await fetch(cp.admin + '/services', { method: 'OPTIONS', headers: { Origin: 'http://evil.example', 'Access-Control-Request-Method': 'GET' } });
    assert.equal(evil.headers.get('access-control-allow-origin'), null);
    const got = await fetch(cp.admin + '/services', { headers: { Origin: GUI, 'Kong-Admin-Token': ROOT_TOKEN } });
    assert.equal(got.headers.get('access-control-allow-origin'), GUI);
    assert.match(got.headers.get('access-control-expose-headers') ?? '', /X-Portico-Request-Id/);
    const other = await fetch(cp.admin + '/consumers', { headers: { Origin: 'http://evil.example', 'Kong-Admin-Token': ROOT_TOKEN } });
    assert.equal(other.headers.get('access-control-allow-origin'), null);
    assert.equal(other.headers.get('access-control-allow-credentials'), null);
  });
});

describe('without admins', () => {
  it('serves loopback tools, but not web pages or a rebound Host, and refuses to listen beyond loopback', async () => {
    const open = await startGateway('control-plane', { env: { DATABASE_URL: undefined, NATS_URL: nats.url } });
    try {
      assert.equal((await admin(open.admin, 'GET', '/services')).status, 200);
      const page = await admin(open.admin, 'POST', '/services', 'name=x&url=http://127.0.0.1:9', { Origin: 'http://evil.example', 'content-type': 'application/x-www-form-urlencoded' });
      assert.equal(page.status, 403);
      assert.equal((await admin(open.admin, 'GET', '/consumers', undefined, { 'Sec-Fetch-Site': 'cross-site' })).status, 403, 'a no-cors GET from another site');
      assert.equal((await admin(open.admin, 'GET', '/services')).body.data.length, 0, 'nothing was written');
      // fetch cannot set Host; a DNS-rebound page's requests carry the attacker's name.
      const u = new URL(open.admin);
      const rebound = await new Promise<number>((resolve, reject) => {
        http.get({ host: u.hostname, port: u.port, path: '/consumers', headers: { Host: 'evil.example:8001' } }, (res) => { res.resume(); resolve(res.statusCode!); }).on('error', reject);
      });
      assert.equal(rebound, 403);
    } finally { await open.kill(); open.cleanup(); }
    const exposed = await startGateway('control-plane', { env: { DATABASE_URL: undefined, NATS_URL: nats.url, PORTICO_ADMIN_LISTEN: '0.0.0.0:0' }, waitReady: false });
    assert.equal(await exited(exposed), 2);
    assert.match(exposed.logs(), /PORTICO_ADMIN_LISTEN is 0\.0\.0\.0:0, not loopback, and no admin exists: set PORTICO_ADMIN_TOKEN/);
    exposed.cleanup();
  });
});
