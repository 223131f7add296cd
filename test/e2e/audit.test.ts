// The audit log (issue 10, reference/edge-design.md §6) through a real CP on real Postgres: every
// admin write is recorded in its own transaction with who, what and where, secrets redacted; the
// hash chain verifies and reports an edited or deleted row; failed writes leave nothing; roles;
// editors scoped to tags.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pgClient from 'pg';
import { admin, startGateway, type GatewayProcess } from '../harness/gateway.ts';
import { startNats, startPostgres, type NatsHandle, type PgHandle } from '../harness/procs.ts';

const ROOT = 'audit-bootstrap-token-0123456789';
let pg: PgHandle; let nats: NatsHandle; let cp: GatewayProcess; let sql: pgClient.Client;
const A = (method: string, path: string, body?: unknown, token = ROOT, headers: Record<string, string> = {}) =>
  admin(cp.admin, method, path, body, { 'Kong-Admin-Token': token, ...headers });

interface Entry {
  seq: number; created_at: number; request_id: string; admin_id: string | null; admin_username: string | null; token_prefix: string | null;
  method: string; path: string; entity_type: string; entity_id: string; change: any; config_version: number; client_ip: string; prev_hash: string; hash: string;
}
/** Every entry, newest first. */
const all = async (): Promise<Entry[]> => (await A('GET', '/audit/requests?size=1000')).body.data;
const byRequest = async (r: { headers: Headers }): Promise<Entry> => {
  const id = r.headers.get('x-portico-request-id')!;
  const found = (await all()).filter((e) => e.request_id === id);
  assert.equal(found.length, 1, `one entry for request ${id}`);
  return found[0];
};
const verify = async () => (await A('GET', '/audit/verify')).body;

before(async () => {
  [pg, nats] = await Promise.all([startPostgres(), startNats()]);
  cp = await startGateway('control-plane', { env: { DATABASE_URL: pg.url, NATS_URL: nats.url, PORTICO_ADMIN_TOKEN: ROOT } });
  sql = new pgClient.Client({ connectionString: pg.url });
  await sql.connect();
});
after(async () => { await sql?.end(); await cp?.kill(); cp?.cleanup(); await Promise.all([pg?.stop(), nats?.stop()]); });

describe('audit entries', () => {
  it('records every kind of entity write with the admin, token prefix, request, entity, change, version and client', async () => {
    const me = (await A('GET', '/userinfo')).body.admin;
    const check = async (r: Awaited<ReturnType<typeof A>>, status: number, method: string, path: string, type: string, change: Record<string, unknown>) => {
      assert.equal(r.status, status, JSON.stringify(r.body));
      const e = await byRequest(r);
      assert.match(r.headers.get('x-portico-request-id')!, /^[0-9a-f-]{36}$/);
      assert.deepEqual(
        { admin_id: e.admin_id, admin_username: e.admin_username, token_prefix: e.token_prefix, method: e.method, path: e.path, entity_type: e.entity_type, entity_id: e.entity_id, config_version: e.config_version },
        { admin_id: me.id, admin_username: 'admin', token_prefix: '', method, path, entity_type: type, entity_id: change.id, config_version: Number(r.headers.get('x-portico-config-version')) },
      );
      assert.match(e.client_ip, /^(::ffff:)?127\.0\.0\.1$/);
      assert.deepEqual(e.change, change);
      return e;
    };
    const svc = await A('POST', '/services', { name: 'audited', url: 'http://127.0.0.1:9/a', tags: ['x'] });
    await check(svc, 201, 'POST', '/services', 'services', svc.body);
    const patched = await A('PATCH', '/services/audited', { retries: 2 });
    await check(patched, 200, 'PATCH', '/services/audited', 'services', patched.body);
    const put = await A('PUT', '/services/put-made', { url: 'http://127.0.0.1:9' });
    await check(put, 200, 'PUT', '/services/put-made', 'services', put.body);
    const route = await A('POST', '/services/audited/routes', { name: 'r1', paths: ['/a'] });
    await check(route, 201, 'POST', '/services/audited/routes', 'routes', route.body);
    const viaRoute = await A('PATCH', '/routes/r1/service', { retries: 3 });
    await check(viaRoute, 200, 'PATCH', '/routes/r1/service', 'services', viaRoute.body);
    const gone = await A('DELETE', '/services/put-made');
    await check(gone, 204, 'DELETE', '/services/put-made', 'services', put.body);

    // Secrets: a JWT secret, a basic-auth password (stored hashed), a key-auth key (stored hashed,
    // shown once), a plugin's redis.password. None reaches the log, in clear or hashed.
    await A('POST', '/consumers', { username: 'carol' });
    const jwt = await A('POST', '/consumers/carol/jwt', { key: 'iss-carol', secret: 'jwt-secret-value-1' });
    const jwtEntry = await check(jwt, 201, 'POST', '/consumers/carol/jwt', 'jwt_secrets', { ...jwt.body, key: '[REDACTED]', secret: '[REDACTED]' });
    assert.equal(jwtEntry.entity_id, jwt.body.id);
    const basic = await A('POST', '/consumers/carol/basic-auth', { username: 'carol', password: 'basic-password-1' });
    await check(basic, 201, 'POST', '/consumers/carol/basic-auth', 'basicauth_credentials', { ...basic.body, password: '[REDACTED]' });
    const keyAuth = await A('POST', '/consumers/carol/key-auth', { key: 'key-auth-secret-1' });
    const keyEntry = await byRequest(keyAuth);
    assert.equal(keyEntry.change.key_hash, '[REDACTED]');
    assert.ok(!('key' in keyEntry.change), 'the key shown once is not recorded');
    const plugin = await A('POST', '/plugins', { name: 'rate-limiting', config: { minute: 5, policy: 'redis', redis: { host: '127.0.0.1', password: 'redis-password-1' } } });
    const pluginEntry = await byRequest(plugin);
    assert.equal(pluginEntry.change.config.redis.password, '[REDACTED]');
    assert.equal(pluginEntry.change.config.redis.host, '127.0.0.1');
    const raw = JSON.stringify((await sql.query('SELECT * FROM audit_log')).rows);
    const keyHash = (await sql.query('SELECT key_hash FROM keyauth_credentials WHERE id = $1', [keyAuth.body.id])).rows[0].key_hash as string;
    for (const secret of ['jwt-secret-value-1', 'basic-password-1', 'key-auth-secret-1', 'redis-password-1', basic.body.password, keyHash]) {
      assert.ok(!raw.includes(secret), `${secret} is not in the audit table`);
    }
  });

  it('records /admins create, rotate and delete with the admin, never its token', async () => {
    const created = await A('POST', '/admins', { username: 'temp', role: 'viewer' });
    const e1 = await byRequest(created);
    assert.deepEqual([e1.method, e1.path, e1.entity_type, e1.entity_id, e1.change.username, e1.change.role], ['POST', '/admins', 'admins', created.body.id, 'temp', 'viewer']);
    const rotated = await A('POST', '/admins/temp/token');
    const e2 = await byRequest(rotated);
    assert.deepEqual([e2.method, e2.path, e2.entity_id, e2.change.token_prefix], ['POST', '/admins/temp/token', created.body.id, rotated.body.token.slice(0, 12)]);
    const deleted = await A('DELETE', '/admins/temp');
    const e3 = await byRequest(deleted);
    assert.deepEqual([e3.method, e3.entity_id, e3.change.username], ['DELETE', created.body.id, 'temp']);
    const raw = JSON.stringify((await sql.query('SELECT * FROM audit_log')).rows);
    assert.ok(!raw.includes(created.body.token) && !raw.includes(rotated.body.token));
  });

  it('names every answer with a request id of its own, ignoring one the client sends', async () => {
    const r = await A('GET', '/services', undefined, ROOT, { 'X-Portico-Request-Id': 'forged-id' });
    assert.match(r.headers.get('x-portico-request-id')!, /^[0-9a-f-]{36}$/);
    const denied = await A('GET', '/services', undefined, 'wrong-token-0123456789');
    assert.equal(denied.status, 401);
    assert.match(denied.headers.get('x-portico-request-id')!, /^[0-9a-f-]{36}$/);
    const w = await A('POST', '/consumers', { username: 'forger' }, ROOT, { 'X-Portico-Request-Id': 'forged-id' });
    assert.notEqual((await byRequest(w)).request_id, 'forged-id');
  });

  it('records concurrent writes in one unbroken chain', async () => {
    const rs = await Promise.all(Array.from({ length: 20 }, (_, i) => A('POST', '/consumers', { username: `many-${i}` })));
    assert.ok(rs.every((r) => r.status === 201));
    const entries = await all();
    assert.deepEqual(entries.map((e) => e.seq), Array.from({ length: entries.length }, (_, i) => entries.length - i));
    assert.deepEqual(await verify(), { valid: true, entries: entries.length });
  });
});

describe('failed writes', () => {
  it('leave no entry and no version: bad input, a unique violation, a delete the database refuses, a 404', async () => {
    const before = await all();
    const version = Number((await sql.query('SELECT version FROM config_state')).rows[0].version);
    assert.equal((await A('POST', '/services', { name: 'bad', url: 'ftp://x' })).status, 400);
    assert.equal((await A('POST', '/services', { name: 'audited', url: 'http://127.0.0.1:9' })).status, 409);
    assert.equal((await A('DELETE', '/services/audited')).status, 400, 'a route still references it');
    assert.equal((await A('PATCH', '/services/nope', { retries: 1 })).status, 404);
    assert.equal((await A('DELETE', '/services/nope')).status, 204);
    assert.equal((await A('POST', '/admins', { username: 'admin', role: 'viewer' })).status, 409);
    assert.deepEqual(await all(), before);
    assert.equal(Number((await sql.query('SELECT version FROM config_state')).rows[0].version), version);
  });
});

describe('GET /audit/requests', () => {
  it('filters by admin, entity, entity id, method and time, newest first', async () => {
    const entries = await all();
    const me = (await A('GET', '/userinfo')).body.admin;
    const seqs = entries.map((e) => e.seq);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => b - a));
    const q = async (query: string) => (await A('GET', `/audit/requests?size=1000&${query}`)).body.data as Entry[];
    assert.deepEqual(await q('admin=admin'), entries);
    assert.deepEqual(await q(`admin=${me.id}`), entries);
    assert.deepEqual(await q('admin=nobody'), []);
    assert.deepEqual(await q('entity=routes'), entries.filter((e) => e.entity_type === 'routes'));
    const svcId = entries.find((e) => e.change?.name === 'audited')!.entity_id;
    const forSvc = await q(`entity=services&entity_id=${svcId}`);
    assert.ok(forSvc.length >= 3);
    assert.ok(forSvc.every((e) => e.entity_id === svcId));
    assert.deepEqual(await q('method=delete'), entries.filter((e) => e.method === 'DELETE'));
    const now = Math.floor(Date.now() / 1000);
    assert.deepEqual(await q(`since=${now - 600}&until=${now + 600}`), entries);
    assert.deepEqual(await q(`since=${now + 600}`), []);
    assert.deepEqual(await q(`until=${now - 600}`), []);
    const oldest = entries[entries.length - 1].created_at;
    assert.deepEqual(await q(`until=${oldest}`), entries.filter((e) => e.created_at <= oldest));
  });

  it('pages with size, offset and next, keeping the filters', async () => {
    const expected = (await all()).filter((e) => e.entity_type === 'consumers');
    const seen: Entry[] = [];
    let next: string | null = '/audit/requests?entity=consumers&size=7';
    while (next) {
      const page = await A('GET', next);
      assert.equal(page.status, 200);
      assert.ok(page.body.data.length <= 7);
      seen.push(...page.body.data);
      next = page.body.next;
    }
    assert.deepEqual(seen, expected);
  });

  it('refuses bad options with 400', async () => {
    for (const query of ['since=yesterday', 'until=-1', 'method=GET', 'size=0', 'offset=!!', 'offset=bm90LWEtc2Vx', 'admin=']) {
      const r = await A('GET', `/audit/requests?${query}`);
      assert.equal(r.status, 400, query);
      assert.ok(r.body.message, query);
    }
  });
});

describe('GET /audit/verify', () => {
  it('keeps entries append-only in the database itself', async () => {
    for (const statement of ["UPDATE audit_log SET path = '/x' WHERE seq = 1", 'DELETE FROM audit_log WHERE seq = 1', 'TRUNCATE audit_log']) {
      await assert.rejects(sql.query(statement), /audit_log is append-only/, statement);
    }
  });

  it('answers valid, then reports an edited row, a deleted row and deleted newest rows at their seq', async () => {
    // What the chain is for: someone who bypasses the append-only triggers (here a superuser).
    await sql.query('SET session_replication_role = replica');
    const v = await verify();
    assert.equal(v.valid, true);
    assert.ok(v.entries > 20);
    const middle = Math.floor(v.entries / 2);
    const original = (await sql.query('SELECT * FROM audit_log WHERE seq = $1', [middle])).rows[0];

    await sql.query(`UPDATE audit_log SET admin_username = 'someone-else' WHERE seq = $1`, [middle]);
    const edited = await verify();
    assert.deepEqual({ ...edited, reason: undefined }, { valid: false, entries: v.entries, first_invalid: middle, reason: undefined });
    assert.match(edited.reason, /modified/);
    await sql.query(`UPDATE audit_log SET admin_username = $2 WHERE seq = $1`, [middle, original.admin_username]);
    assert.deepEqual(await verify(), v, 'restored, the chain holds again');

    await sql.query(`UPDATE audit_log SET change = jsonb_set(change, '{tags}', '["z"]') WHERE seq = $1`, [middle]);
    assert.equal((await verify()).first_invalid, middle, 'an edit inside the recorded change is found too');
    await sql.query(`UPDATE audit_log SET change = $2 WHERE seq = $1`, [middle, JSON.stringify(original.change)]);
    assert.deepEqual(await verify(), v);

    await sql.query('DELETE FROM audit_log WHERE seq = $1', [middle]);
    const deleted = await verify();
    assert.deepEqual({ ...deleted, reason: undefined }, { valid: false, entries: v.entries - 1, first_invalid: middle, reason: undefined });
    assert.match(deleted.reason, /missing/);
    const cols = Object.keys(original);
    const insert = (row: Record<string, unknown>) => sql.query(
      `INSERT INTO audit_log (${cols.join(', ')}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(', ')})`,
      cols.map((c) => (c === 'change' ? JSON.stringify(row[c]) : row[c])));
    await insert(original);
    assert.deepEqual(await verify(), v);

    const [newest] = (await sql.query('SELECT * FROM audit_log ORDER BY seq DESC LIMIT 1')).rows;
    const lastWrite = (await sql.query('SELECT * FROM audit_log WHERE method <> $1 AND entity_type <> $2 ORDER BY seq DESC LIMIT 1', ['x', 'admins'])).rows[0];
    assert.equal(Number(newest.seq), Number(lastWrite.seq), 'the newest entry is a config write');
    await sql.query('DELETE FROM audit_log WHERE seq = $1', [newest.seq]);
    const truncated = await verify();
    assert.equal(truncated.valid, false);
    assert.equal(truncated.first_invalid, Number(newest.seq));
    await insert(newest);
    assert.deepEqual(await verify(), v);
    await sql.query('SET session_replication_role = origin');
  });
});

describe('audit roles', () => {
  it('lets admins and auditors read the log, refuses viewers and editors, and lets nobody write it', async () => {
    const token = async (username: string, role: string) => (await A('POST', '/admins', { username, role })).body.token as string;
    const [viewer, editor, auditor] = [await token('audit-viewer', 'viewer'), await token('audit-editor', 'editor'), await token('audit-auditor', 'auditor')];
    for (const path of ['/audit/requests', '/audit/verify']) {
      assert.equal((await A('GET', path, undefined, viewer)).status, 403, path);
      assert.equal((await A('GET', path, undefined, editor)).status, 403, path);
      assert.equal((await A('GET', path, undefined, auditor)).status, 200, path);
      assert.equal((await A('GET', path)).status, 200, path);
      for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) assert.equal((await A(method, path, {}, auditor)).status, 405, `${method} ${path}`);
    }
  });
});

describe('tag-scoped editors', () => {
  it('let an editor write only entities carrying its tags, change nothing on a 403, and leave reads open', async () => {
    const made = await A('POST', '/admins', { username: 'team-a-ed', role: 'editor', tags: ['team-a', 'shared'] });
    assert.equal(made.status, 201);
    assert.deepEqual(made.body.tags, ['team-a', 'shared']);
    const ed = made.body.token as string;
    assert.deepEqual((await A('GET', '/userinfo', undefined, ed)).body.admin.tags, ['team-a', 'shared']);
    assert.equal((await A('POST', '/services', { name: 'untagged', url: 'http://127.0.0.1:9', tags: ['team-b'] })).status, 201);
    const entries = (await all()).length;

    const own = await A('POST', '/services', { name: 'a-svc', url: 'http://127.0.0.1:9', tags: ['team-a'] }, ed);
    assert.equal(own.status, 201);
    assert.equal((await byRequest(own)).admin_username, 'team-a-ed');
    assert.equal((await A('PATCH', '/services/a-svc', { retries: 1 }, ed)).status, 200);
    assert.equal((await A('POST', '/services/a-svc/routes', { name: 'a-route', paths: ['/a'], tags: ['shared'] }, ed)).status, 201);

    const refusals: [string, string, unknown][] = [
      ['POST', '/services', { name: 'b-svc', url: 'http://127.0.0.1:9' }],
      ['POST', '/services', { name: 'b-svc', url: 'http://127.0.0.1:9', tags: ['team-b'] }],
      ['PUT', '/services/b-svc', { url: 'http://127.0.0.1:9' }],
      ['PATCH', '/services/untagged', { tags: ['team-a'] }],
      ['PUT', '/services/untagged', { url: 'http://127.0.0.1:9', tags: ['team-a'] }],
      ['DELETE', '/services/untagged', undefined],
      ['PATCH', '/services/a-svc', { tags: ['team-b'] }],
      ['DELETE', '/routes/r1', undefined],
    ];
    const before = { services: (await A('GET', '/services')).body.data, routes: (await A('GET', '/routes')).body.data };
    const n = (await all()).length;
    for (const [method, path, body] of refusals) {
      const r = await A(method, path, body, ed);
      assert.equal(r.status, 403, `${method} ${path}: ${JSON.stringify(r.body)}`);
      assert.match(r.body.message, /^team-a-ed may (change|write) only entities tagged 'team-a', 'shared'/);
      assert.equal(r.headers.get('x-portico-config-version'), null);
    }
    assert.deepEqual({ services: (await A('GET', '/services')).body.data, routes: (await A('GET', '/routes')).body.data }, before, 'nothing changed');
    assert.equal((await all()).length, n, 'no entry for a refused write');

    const reads = await A('GET', '/services/untagged', undefined, ed);
    assert.equal(reads.status, 200, 'reads are not scoped');
    assert.equal((await A('DELETE', '/routes/a-route', undefined, ed)).status, 204);
    assert.equal((await A('DELETE', '/services/a-svc', undefined, ed)).status, 204);
    assert.equal((await all()).length, entries + 5);
  });

  it('refuses tags on a role they cannot scope, and malformed tags', async () => {
    const viewer = await A('POST', '/admins', { username: 'tagged-viewer', role: 'viewer', tags: ['team-a'] });
    assert.equal(viewer.status, 400);
    assert.ok(viewer.body.fields.tags);
    for (const tags of [[], 'team-a', [''], [1], ['a,b']]) {
      const r = await A('POST', '/admins', { username: 'tagged-bad', role: 'editor', tags });
      assert.equal(r.status, 400, JSON.stringify(tags));
      assert.ok(r.body.fields.tags, JSON.stringify(tags));
    }
    assert.equal((await A('GET', '/admins/tagged-bad')).status, 404);
  });
});

describe('without authentication', () => {
  it('audits writes with no admin, and the chain verifies', async () => {
    const open = await startGateway('control-plane', { env: { DATABASE_URL: undefined, NATS_URL: nats.url } });
    try {
      const r = await admin(open.admin, 'POST', '/services', { name: 'loopback', url: 'http://127.0.0.1:9' });
      assert.equal(r.status, 201);
      const [e] = (await admin(open.admin, 'GET', '/audit/requests')).body.data as Entry[];
      assert.deepEqual([e.seq, e.admin_id, e.admin_username, e.token_prefix, e.entity_id, e.request_id], [1, null, null, null, r.body.id, r.headers.get('x-portico-request-id')]);
      assert.deepEqual((await admin(open.admin, 'GET', '/audit/verify')).body, { valid: true, entries: 1 });
    } finally { await open.kill(); open.cleanup(); }
  });
});
