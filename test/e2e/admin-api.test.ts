// The admin API against a real CP process on real Postgres and NATS, as Kong's own specs do it
// (spec/02-integration/04-admin_api/10-services_routes_spec.lua, 09-routes_routes_spec.lua).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startNats, startPostgres, type NatsHandle, type PgHandle } from '../harness/procs.ts';
import { admin, startGateway, type GatewayProcess } from '../harness/gateway.ts';

let pg: PgHandle; let nats: NatsHandle; let cp: GatewayProcess;
const A = (method: string, path: string, body?: unknown, headers?: Record<string, string>) => admin(cp.admin, method, path, body, headers);
const form = (o: Record<string, string | string[]>) => {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(o)) for (const one of [v].flat()) p.append(k, one);
  return p;
};

before(async () => {
  [pg, nats] = await Promise.all([startPostgres(), startNats()]);
  cp = await startGateway('control-plane', { env: { DATABASE_URL: pg.url, NATS_URL: nats.url } });
});
after(async () => {
  await cp?.stop(); cp?.cleanup();
  await Promise.all([pg?.stop(), nats?.stop()]);
});

describe('services', () => {
  it('creates a service from the url shorthand with Kong defaults (201)', async () => {
    const r = await A('POST', '/services', form({ name: 'example_service', url: 'http://127.0.0.1:9000' }));
    assert.equal(r.status, 201);
    assert.equal(r.headers.get('content-type'), 'application/json; charset=utf-8');
    assert.deepEqual({ ...r.body, id: undefined, created_at: undefined, updated_at: undefined }, {
      id: undefined, created_at: undefined, updated_at: undefined, name: 'example_service', protocol: 'http', host: '127.0.0.1', port: 9000, path: null,
      retries: 5, connect_timeout: 60000, write_timeout: 60000, read_timeout: 60000, enabled: true,
      tls_verify: null, tls_verify_depth: null, ca_certificates: null, client_certificate: null, tags: null,
      circuit_breaker: null,
    });
    assert.match(r.body.id, /^[0-9a-f-]{36}$/);
    assert.equal(typeof r.body.created_at, 'number');
  });

  it('splits url variants as Kong does', async () => {
    const cases: [string, Record<string, unknown>][] = [
      ['https://example.test', { protocol: 'https', port: 443, path: null }],
      ['http://example.test/', { protocol: 'http', port: 80, path: '/' }],
      ['http://example.test:443', { protocol: 'http', port: 443, path: null }],
      ['http://example.test:8080/v1/x', { protocol: 'http', port: 8080, path: '/v1/x' }],
    ];
    for (const [url, want] of cases) {
      const r = await A('POST', '/services', { url });
      assert.equal(r.status, 201, url);
      for (const [k, v] of Object.entries(want)) assert.equal(r.body[k], v, `${url} ${k}`);
      await A('DELETE', `/services/${r.body.id}`);
    }
  });

  it('answers an invalid url with the two schema violations Kong reports', async () => {
    const r = await A('POST', '/services', { url: 'invalid url' });
    assert.equal(r.status, 400);
    assert.deepEqual(r.body, {
      code: 2, name: 'schema violation',
      message: '2 schema violations (host: required field missing; path: should start with: /)',
      fields: { host: 'required field missing', path: 'should start with: /' },
    });
  });

  it('gets by id and by name, and 404s an unknown one', async () => {
    const byName = await A('GET', '/services/example_service');
    assert.equal(byName.status, 200);
    const byId = await A('GET', `/services/${byName.body.id}`);
    assert.deepEqual(byId.body, byName.body);
    const missing = await A('GET', '/services/nope');
    assert.equal(missing.status, 404);
    assert.deepEqual(missing.body, { message: 'Not found' });
  });

  it('PATCH merges, PUT replaces and creates, both 200', async () => {
    const p = await A('PATCH', '/services/example_service', { retries: 3 });
    assert.equal(p.status, 200);
    assert.equal(p.body.retries, 3);
    assert.equal(p.body.port, 9000);
    const put = await A('PUT', '/services/example_service', { host: 'other.test' });
    assert.equal(put.status, 200);
    assert.equal(put.body.host, 'other.test');
    assert.equal(put.body.retries, 5, 'PUT resets omitted fields to defaults');
    assert.equal(put.body.id, p.body.id, 'PUT keeps the id');
    const created = await A('PUT', '/services/brand-new', { host: 'new.test' });
    assert.equal(created.status, 200);
    assert.equal(created.body.name, 'brand-new');
    const id = '4a6a4bc5-6c18-4d40-9a4f-58c8b3e4f0a1';
    const byId = await A('PUT', `/services/${id}`, { host: 'byid.test' });
    assert.equal(byId.status, 200);
    assert.equal(byId.body.id, id);
    await A('PUT', '/services/example_service', { url: 'http://127.0.0.1:9000' });
  });

  it('PATCH with url overwrites protocol, host, port and path', async () => {
    await A('PATCH', '/services/brand-new', { path: '/x' });
    const r = await A('PATCH', '/services/brand-new', { url: 'https://u.test:8443' });
    assert.deepEqual([r.body.protocol, r.body.host, r.body.port, r.body.path], ['https', 'u.test', 8443, null]);
  });

  it('PATCH of a missing service is 404; DELETE of a missing one is 204', async () => {
    assert.equal((await A('PATCH', '/services/ghost', { retries: 1 })).status, 404);
    assert.equal((await A('DELETE', '/services/ghost')).status, 204);
  });

  it('rejects a duplicate name with 409 and Kong\'s body', async () => {
    const r = await A('POST', '/services', { name: 'example_service', host: 'x.test' });
    assert.equal(r.status, 409);
    assert.deepEqual(r.body, {
      code: 5, name: 'unique constraint violation',
      message: 'UNIQUE violation detected on \'{name="example_service"}\'', fields: { name: 'example_service' },
    });
  });

  it('rejects wrong types, unknown fields, bad ranges and illegal names, storing nothing', async () => {
    const before = (await A('GET', '/services?size=1000')).body.data.length;
    const typed = await A('POST', '/services', { host: 'x.test', port: '80' });
    assert.equal(typed.status, 400);
    assert.deepEqual(typed.body.fields, { port: 'expected an integer' });
    const unknown = await A('POST', '/services', { host: 'x.test', colour: 'red' });
    assert.deepEqual([unknown.status, unknown.body.message, unknown.body.fields], [400, 'schema violation (colour: unknown field)', { colour: 'unknown field' }]);
    const range = await A('POST', '/services', { host: 'x.test', port: 70000 });
    assert.deepEqual(range.body.fields, { port: 'value should be between 0 and 65535' });
    const name = await A('POST', '/services', { host: 'x.test', name: 'bad name!' });
    assert.deepEqual(name.body.fields, { name: "invalid value 'bad name!': the only accepted ascii characters are alphanumerics or ., -, _, and ~" });
    const utf8 = await A('POST', '/services', { host: 'x.test', name: 'café-ü' });
    assert.equal(utf8.status, 201, 'non-ASCII names are allowed');
    await A('DELETE', `/services/${utf8.body.id}`);
    const several = await A('POST', '/services', { port: -1, protocol: 'ftp' });
    assert.equal(several.body.message, '3 schema violations (host: required field missing; port: value should be between 0 and 65535; protocol: expected one of: grpc, grpcs, http, https, tcp, tls, tls_passthrough, udp)');
    assert.equal((await A('GET', '/services?size=1000')).body.data.length, before);
  });

  it('answers malformed JSON, unsupported media types and too many arguments', async () => {
    const bad = await A('POST', '/services', '{"host":', { 'content-type': 'application/json' });
    assert.deepEqual([bad.status, bad.body], [400, { message: 'Cannot parse JSON body' }]);
    const empty = await A('POST', '/services', '', { 'content-type': 'application/json' });
    assert.deepEqual([empty.status, empty.body], [400, { message: 'Cannot parse JSON body' }]);
    const media = await A('POST', '/services', 'host: x', { 'content-type': 'text/yaml' });
    assert.equal(media.status, 415);
    const many = new URLSearchParams();
    for (let i = 0; i < 1001; i++) many.append(`tags[${i}]`, `t${i}`);
    const tooMany = await A('POST', '/services', many);
    assert.deepEqual([tooMany.status, tooMany.body], [400, { message: 'Too many arguments' }]);
  });

  it('accepts multipart bodies with coercion', async () => {
    const fd = new FormData();
    fd.append('name', 'multi'); fd.append('host', 'm.test'); fd.append('port', '8080'); fd.append('enabled', 'false');
    const r = await A('POST', '/services', fd);
    assert.equal(r.status, 201);
    assert.deepEqual([r.body.port, r.body.enabled], [8080, false]);
    await A('DELETE', '/services/multi');
  });

  it('answers 405 for an unsupported verb, OPTIONS with Allow, and 404 for an unknown path', async () => {
    const r = await A('DELETE', '/services');
    assert.deepEqual([r.status, r.body], [405, { message: 'Method not allowed' }]);
    const o = await A('OPTIONS', '/services');
    assert.equal(o.status, 204);
    assert.equal(o.headers.get('allow'), 'GET, HEAD, OPTIONS, POST');
    const nf = await A('GET', '/nothing-here');
    assert.deepEqual([nf.status, nf.body], [404, { message: 'Not found' }]);
    const head = await fetch(`${cp.admin}/services`, { method: 'HEAD' });
    assert.equal(head.status, 200);
  });
});

describe('routes', () => {
  it('creates a nested route with form arrays and Kong defaults', async () => {
    const r = await A('POST', '/services/example_service/routes', form({ 'paths[]': '/mock', name: 'example_route' }));
    assert.equal(r.status, 201);
    assert.deepEqual(r.body.paths, ['/mock']);
    assert.deepEqual(r.body.protocols, ['http', 'https']);
    assert.equal(r.body.strip_path, true);
    assert.equal(r.body.https_redirect_status_code, 426);
    const svc = await A('GET', '/services/example_service');
    assert.deepEqual(r.body.service, { id: svc.body.id });
  });

  it('reads every form array syntax the same way', async () => {
    for (const [i, body] of [
      'paths[]=/a&paths[]=/b', 'paths[1]=/a&paths[2]=/b', 'paths=/a&paths=/b', 'paths%5B%5D=/a&paths%5B%5D=/b',
    ].entries()) {
      const r = await A('POST', '/routes', new URLSearchParams(`${body}&name=arr${i}`));
      assert.equal(r.status, 201, body);
      assert.deepEqual(r.body.paths, ['/a', '/b'], body);
      await A('DELETE', `/routes/arr${i}`);
    }
    const single = await A('POST', '/routes', new URLSearchParams('paths=/solo&name=solo&strip_path=false&regex_priority=5&headers.x-foo[]=bar'));
    assert.deepEqual([single.body.paths, single.body.strip_path, single.body.regex_priority, single.body.headers], [['/solo'], false, 5, { 'x-foo': ['bar'] }]);
    await A('DELETE', '/routes/solo');
  });

  it('resolves service.name in a form body', async () => {
    const r = await A('POST', '/routes', form({ 'service.name': 'example_service', 'paths[]': '/by-name', name: 'by-name' }));
    assert.equal(r.status, 201);
    assert.ok(r.body.service.id);
    const bad = await A('POST', '/routes', form({ 'service.name': 'nope', 'paths[]': '/x' }));
    assert.equal(bad.status, 400);
    assert.equal(bad.body.code, 13);
    await A('DELETE', '/routes/by-name');
  });

  it('lists /services/{s}/routes and gets /routes/{r}/service', async () => {
    const list = await A('GET', '/services/example_service/routes');
    assert.equal(list.status, 200);
    assert.deepEqual(list.body.data.map((r: any) => r.name), ['example_route']);
    assert.equal(list.body.next, null);
    const svc = await A('GET', '/routes/example_route/service');
    assert.equal(svc.body.name, 'example_service');
    assert.equal((await A('DELETE', '/routes/example_route/service')).status, 405);
    assert.equal((await A('GET', '/services/brand-new/routes/example_route')).status, 404, 'a child of another parent is 404');
  });

  it('rejects a route without matchers with Kong\'s entity error', async () => {
    const r = await A('POST', '/routes', { name: 'empty' });
    assert.equal(r.status, 400);
    assert.deepEqual(r.body.fields, { '@entity': ["must set one of 'methods', 'hosts', 'headers', 'paths', 'snis' when 'protocols' is 'https'"] });
    const http = await A('POST', '/routes', { protocols: ['http'] });
    assert.equal(http.body.message, "schema violation (must set one of 'methods', 'hosts', 'headers', 'paths' when 'protocols' is 'http')");
  });

  it('rejects invalid regexes, unnormalized paths, bad hosts and Host headers', async () => {
    const regex = await A('POST', '/routes', { paths: ['~/users/(\\d+'] });
    assert.equal(regex.status, 400);
    assert.match(regex.body.fields.paths[0], /^invalid regex: '\/users\/\(\\d\+'/);
    const norm = await A('POST', '/routes', { paths: ['/a/../b'] });
    assert.deepEqual(norm.body.fields, { paths: ["non-normalized path, consider use '/b' instead"] });
    const empty = await A('POST', '/routes', { paths: ['/a//b'] });
    assert.deepEqual(empty.body.fields, { paths: ['must not have empty segments'] });
    const start = await A('POST', '/routes', { paths: ['abc'] });
    assert.deepEqual(start.body.fields, { paths: ['should start with: / (fixed path) or ~/ (regex path)'] });
    const wild = await A('POST', '/routes', { hosts: ['a.*.com'] });
    assert.deepEqual(wild.body.fields, { hosts: ['invalid wildcard: must be placed at leftmost or rightmost label'] });
    const host = await A('POST', '/routes', { headers: { Host: ['x'] } });
    assert.deepEqual(host.body.fields, { headers: { Host: "cannot contain 'host' header, which must be specified in the 'hosts' attribute" } });
    const proto = await A('POST', '/routes', { paths: ['/p'], protocols: ['http', 'ftp'] });
    assert.deepEqual(proto.body.fields, { protocols: [null, 'expected one of: grpc, grpcs, http, https, tcp, tls, tls_passthrough, udp'] });
  });

  it('rejects an unknown service id with a foreign key violation', async () => {
    const id = '00000000-0000-4000-8000-000000000000';
    const r = await A('POST', '/routes', { paths: ['/fk'], service: { id } });
    assert.deepEqual(r.body, {
      code: 4, name: 'foreign key violation',
      message: `the foreign key '{id="${id}"}' does not reference an existing 'services' entity.`,
      fields: { service: { id } },
    });
  });

  it('refuses to delete a service that routes still use', async () => {
    const r = await A('DELETE', '/services/example_service');
    assert.deepEqual([r.status, r.body], [400, {
      code: 4, name: 'foreign key violation',
      message: "an existing 'routes' entity references this 'services' entity", fields: { '@referenced_by': 'routes' },
    }]);
    assert.equal((await A('GET', '/services/example_service')).status, 200);
  });

  it('answers client mistakes that reach Postgres with a 4xx, never a 500', async () => {
    // A NUL reaches the database only through lookups and filters (writes refuse it first):
    // Postgres refuses it (SQLSTATE 22021), which is the client's mistake.
    const filter = await A('GET', '/consumers?custom_id=%00');
    assert.deepEqual([filter.status, filter.body.code], [400, 2]);
    assert.equal((await A('GET', '/services/svc%00')).status, 400);
    assert.equal((await A('GET', '/services?tags=%00')).status, 400);
    assert.equal((await A('POST', '/consumers', { username: 'a\u0000b' })).status, 400);
    assert.equal((await A('GET', '/services/%E0%A4%A')).status, 400);
    assert.deepEqual((await A('POST', '/key-auths', { key: 'no-consumer' })).body.fields, { consumer: 'required field missing' });
  });

  it('PATCH null clears a field and [] stays an empty array', async () => {
    const r = await A('POST', '/routes', { name: 'clear-me', paths: ['/c'], methods: ['GET'] });
    const p = await A('PATCH', '/routes/clear-me', { methods: null, hosts: [] });
    assert.deepEqual([p.body.methods, p.body.hosts], [null, []]);
    await A('DELETE', `/routes/${r.body.id}`);
  });
});

describe('lists', () => {
  it('paginates with size, offset and next; validates both', async () => {
    for (let i = 0; i < 5; i++) await A('POST', '/services', { name: `page-${i}`, host: 'p.test', tags: ['paged', i % 2 ? 'odd' : 'even'] });
    const first = await A('GET', '/services?size=2&tags=paged');
    assert.equal(first.body.data.length, 2);
    assert.ok(first.body.offset);
    assert.equal(first.body.next, `/services?offset=${encodeURIComponent(first.body.offset)}&tags=paged&size=2`);
    const seen = new Set(first.body.data.map((s: any) => s.id));
    let next = first.body.next;
    while (next) {
      const page = await A('GET', next);
      page.body.data.forEach((s: any) => seen.add(s.id));
      next = page.body.next;
    }
    assert.equal(seen.size, 5);
    assert.deepEqual((await A('GET', '/services?size=abc')).body, { code: 9, name: 'invalid size', message: 'size must be a number' });
    assert.deepEqual((await A('GET', '/services?size=1001')).body, { code: 9, name: 'invalid size', message: 'size must be an integer between 1 and 1000' });
    assert.deepEqual((await A('GET', '/services?offset=x')).body, { code: 7, name: 'invalid offset', message: "'x' is not a valid offset: bad base64 encoding" });
  });

  it('filters by tags with AND (,) and OR (/)', async () => {
    assert.equal((await A('GET', '/services?tags=paged,odd')).body.data.length, 2);
    assert.equal((await A('GET', '/services?tags=odd/even')).body.data.length, 5);
    const empty = await A('GET', '/services?tags=');
    assert.deepEqual([empty.status, empty.body.code, empty.body.message], [400, 11, 'invalid option (tags: cannot be null)']);
    assert.equal((await A('GET', '/services?tags=a,b,c,d,e,f')).body.message, 'invalid option (tags: cannot query more than 5 tags)');
  });

  it('serializes an empty collection as Kong does', async () => {
    const r = await fetch(`${cp.admin}/services?tags=none-such`);
    assert.equal(await r.text(), '{"data":[],"next":null}');
  });
});

describe('info endpoints', () => {
  it('GET / answers version and configuration', async () => {
    const r = await A('GET', '/');
    assert.equal(r.status, 200);
    assert.equal(r.body.configuration.database, 'postgres');
    assert.equal(r.body.configuration.role, 'control_plane');
    assert.match(r.body.node_id, /^[0-9a-f-]{36}$/);
  });

  it('GET /status reports the database and the latest config version', async () => {
    const r = await A('GET', '/status');
    assert.equal(r.body.database.reachable, true);
    assert.ok(r.body.configuration.version >= 1);
    assert.match(r.body.configuration.hash, /^[0-9a-f]{64}$/);
  });

  it('GET /schemas/{entity} gives fields with defaults; unknown is 404', async () => {
    const r = await A('GET', '/schemas/services');
    const port = r.body.fields.find((f: any) => f.port).port;
    assert.deepEqual([port.type, port.default], ['integer', 80]);
    assert.deepEqual((await A('GET', '/schemas/nope')).body, { message: "No entity named 'nope'" });
    const ok = await A('POST', '/schemas/routes/validate', { paths: ['/v'] });
    assert.deepEqual(ok.body, { message: 'schema validation successful' });
    const bad = await A('POST', '/schemas/routes/validate', { paths: ['v'] });
    assert.equal(bad.status, 400);
  });
});
