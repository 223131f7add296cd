// The body phase (issue 11) through real CP and DP processes: request-transformer body lists on JSON,
// form and multipart bodies; response-transformer JSON keys on plain and compressed upstream bodies;
// the -advanced variants; json-transform; and what is never buffered (too large, not JSON, routes
// without body plugins) streaming through untouched, marked and counted.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { SignJWT } from 'jose';
import { startStack, type Stack } from '../harness/stack.ts';

let s: Stack;
/** A real upstream answering what the tests name: `/echo` reflects the request, `/doc/<name>` serves a document. */
let upstream: http.Server;
let hits = 0;
const BIG = JSON.stringify({ items: Array.from({ length: 4000 }, (_, i) => ({ id: i, name: `item-${i}` })) });
const USER = { user_id: 123, first_name: 'John', created_at: '2024-01-01', password_hash: 'x', internal_notes: 'n', metadata: { labels: { team_id: 'a', 'app.kubernetes.io/name': 'b' } } };

function doc(name: string, accept: string | undefined): { type: string; body: Buffer; encoding?: string } {
  const json = (v: unknown) => Buffer.from(JSON.stringify(v));
  switch (name) {
    case 'user': return { type: 'application/json', body: json(USER) };
    case 'list': return { type: 'application/vnd.api+json', body: json({ data: { users: [{ id: 1, secret: 's', name: 'a' }, { id: 2, secret: 't', name: 'b' }] }, meta: { page: 1 } }) };
    case 'gzip': return { type: 'application/json', body: gzipSync(json({ keep: 1, drop: 2, accept: accept ?? null })), encoding: 'gzip' };
    case 'br': return { type: 'application/json', body: brotliCompressSync(json({ keep: 1, drop: 2 })), encoding: 'br' };
    case 'deflate': return { type: 'application/json', body: deflateSync(json({ keep: 1, drop: 2 })), encoding: 'deflate' };
    case 'big': return { type: 'application/json', body: Buffer.from(BIG) };
    case 'text': return { type: 'text/plain', body: Buffer.from('drop: not json') };
    case 'broken': return { type: 'application/json', body: Buffer.from('{"drop": 1,') };
    default: return { type: 'application/json', body: json({ name }) };
  }
}

before(async () => {
  upstream = http.createServer((req, res) => {
    hits++;
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const url = new URL(req.url!, 'http://x');
      const status = Number(url.searchParams.get('status') ?? 200);
      if (url.pathname.startsWith('/doc/')) {
        const d = doc(url.pathname.slice(5), req.headers['accept-encoding']);
        const chunked = url.searchParams.has('chunked');
        res.writeHead(status, { 'content-type': d.type, etag: '"v1"', ...(d.encoding ? { 'content-encoding': d.encoding } : {}), ...(chunked ? {} : { 'content-length': d.body.length }) });
        res.end(d.body);
        return;
      }
      const body = Buffer.concat(parts);
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ headers: req.headers, body: body.toString('latin1'), bytes: body.length }));
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  s = await startStack({ dps: 1 });
  await s.A('POST', '/services', { name: 'bt', url: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}` });
});
after(async () => { await s?.stop(); upstream?.close(); });

async function route(name: string, paths: string[], plugins: { name: string; config?: Record<string, unknown> }[]): Promise<void> {
  assert.equal((await s.write('POST', '/services/bt/routes', { name, paths, strip_path: true })).status, 201);
  for (const plugin of plugins) {
    const r = await s.write('POST', `/routes/${name}/plugins`, plugin);
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }
}

interface Echoed { headers: http.IncomingHttpHeaders; body: string; bytes: number }
async function send(path: string, body: string, contentType: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; echo: Echoed; text: string }> {
  const r = await fetch(s.dps[0].proxy + path, { method: 'POST', body, headers: { 'content-type': contentType, ...headers } });
  const text = await r.text();
  let echo = {} as Echoed;
  try { echo = JSON.parse(text) as Echoed; } catch { /* an error body */ }
  return { status: r.status, headers: r.headers, echo, text };
}

/** A chunked request (no Content-Length), as a client streaming its body sends it. */
function sendChunked(path: string, chunks: string[], contentType: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(s.dps[0].proxy + path, { method: 'POST', headers: { 'content-type': contentType, 'transfer-encoding': 'chunked' } }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text: Buffer.concat(parts).toString() }));
    });
    req.on('error', reject);
    for (const c of chunks) req.write(c);
    req.end();
  });
}

async function metric(name: string): Promise<number> {
  const text = await (await fetch(s.dps[0].status + '/metrics')).text();
  return Number(new RegExp(`^portico_${name}_total (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
}

describe('request-transformer body lists', () => {
  before(() => route('rq', ['/rq'], [{
    name: 'request-transformer', config: {
      remove: { body: ['secret'] }, rename: { body: ['old:new'] }, replace: { body: ['role:user', 'absent:x'] },
      add: { body: ['source:gateway', 'client:$(headers.x-client)', 'role:never'] }, append: { body: ['tags:b', 'fresh:only'] },
    },
  }]));

  it('edits a JSON body in Kong\'s order and sends it with its new Content-Length', async () => {
    const r = await send('/rq/echo', JSON.stringify({ secret: 's', old: 'moved', role: 'admin', tags: 'a' }), 'application/json', { 'x-client': 'cli' });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(JSON.parse(r.echo.body), { new: 'moved', role: 'user', tags: ['a', 'b'], source: 'gateway', client: 'cli', fresh: ['only'] });
    assert.equal(Number(r.echo.headers['content-length']), r.echo.bytes);
  });

  it('edits a form-urlencoded body', async () => {
    const r = await send('/rq/echo', 'secret=s&old=moved&role=admin&tags=a', 'application/x-www-form-urlencoded');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.echo.body, 'role=user&tags=a&tags=b&new=moved&source=gateway&client=&fresh=only');
    assert.equal(Number(r.echo.headers['content-length']), r.echo.bytes);
  });

  it('edits a multipart body\'s fields and keeps its file parts byte for byte', async () => {
    const form = new FormData();
    form.append('secret', 's');
    form.append('role', 'admin');
    form.append('upload', new Blob([Buffer.from([0, 1, 2, 255])], { type: 'application/octet-stream' }), 'f.bin');
    const r = await fetch(s.dps[0].proxy + '/rq/echo', { method: 'POST', body: form });
    const echo = await r.json() as Echoed;
    assert.equal(r.status, 200);
    const body = echo.body;
    assert.doesNotMatch(body, /name="secret"/);
    assert.match(body, /name="role"\r\n\r\nuser\r\n/);
    assert.match(body, /name="source"\r\n\r\ngateway\r\n/);
    assert.ok(body.includes('filename="f.bin"\r\nContent-Type: application/octet-stream\r\n\r\n\x00\x01\x02\xff\r\n'), body);
    assert.equal(Number(echo.headers['content-length']), echo.bytes);
  });

  it('answers 400 to invalid JSON on a route that transforms request JSON, and never calls the upstream', async () => {
    const before = hits;
    const r = await send('/rq/echo', '{"secret": ', 'application/json');
    assert.equal(r.status, 400);
    assert.match(r.text, /not valid JSON/);
    assert.equal(hits, before);
  });

  it('streams a body of another type untouched, marked not-json', async () => {
    const r = await send('/rq/echo', 'secret=s as text', 'text/plain');
    assert.equal(r.status, 200);
    assert.equal(r.echo.body, 'secret=s as text');
    assert.equal(r.headers.get('x-portico-body-skipped'), 'not-json');
  });
});

describe('the body cap', () => {
  before(() => route('cap', ['/cap'], [{ name: 'json-transform', config: { max_body_bytes: 1024, request: { ops: [{ op: 'deny', paths: ['$.secret'] }] } } }]));
  const big = JSON.stringify({ secret: 's', pad: 'x'.repeat(4000) });

  it('streams a larger body with a Content-Length through untouched, marked too-large and counted', async () => {
    const counted = await metric('body_skipped_request_too_large');
    const r = await send('/cap/echo', big, 'application/json');
    assert.equal(r.status, 200);
    assert.equal(r.echo.body, big);
    assert.equal(r.headers.get('x-portico-body-skipped'), 'too-large');
    assert.equal(await metric('body_skipped_request_too_large'), counted + 1);
  });

  it('streams a larger chunked body through whole: what was read before the cap, then the rest', async () => {
    const chunks = [big.slice(0, 700), big.slice(700, 1500), big.slice(1500)];
    const r = await sendChunked('/cap/echo', chunks, 'application/json');
    assert.equal(r.status, 200);
    assert.equal((JSON.parse(r.text) as Echoed).body, big);
    assert.equal(r.headers['x-portico-body-skipped'], 'too-large');
  });

  it('still answers 413 to a chunked body over a request-size-limiting limit while buffering it', async () => {
    await route('cap-limit', ['/cap-limit'], [
      { name: 'json-transform', config: { request: { ops: [{ op: 'deny', paths: ['$.secret'] }] } } },
      { name: 'request-size-limiting', config: { allowed_payload_size: 1, size_unit: 'kilobytes' } },
    ]);
    const before = hits;
    const r = await sendChunked('/cap-limit/echo', [big.slice(0, 600), big.slice(600, 1500)], 'application/json');
    assert.equal(r.status, 413);
    assert.equal(hits, before);
    const ok = await sendChunked('/cap-limit/echo', ['{"secret":1,', '"a":2}'], 'application/json');
    assert.deepEqual(JSON.parse((JSON.parse(ok.text) as Echoed).body), { a: 2 });
  });

  it('transforms a chunked body under the cap', async () => {
    const r = await sendChunked('/cap/echo', ['{"secret":', '"s","keep":1}'], 'application/json');
    assert.equal(r.status, 200);
    const echo = JSON.parse(r.text) as Echoed;
    assert.deepEqual(JSON.parse(echo.body), { keep: 1 });
    assert.equal(Number(echo.headers['content-length']), echo.bytes);
  });
});

describe('response-transformer JSON keys', () => {
  before(() => route('rs', ['/rs'], [{
    name: 'response-transformer', config: {
      remove: { json: ['drop', 'password_hash'] }, rename: { json: ['first_name:firstName'] },
      add: { json: ['count:3', 'ok:true', 'label:x'], json_types: ['number', 'boolean'] },
    },
  }]));

  it('edits a JSON response (json_types), fixes Content-Length and drops the ETag', async () => {
    const r = await fetch(s.dps[0].proxy + '/rs/doc/user');
    const text = await r.text();
    const body = JSON.parse(text) as Record<string, unknown>;
    assert.equal(body.firstName, 'John');
    assert.equal(body.password_hash, undefined);
    assert.deepEqual([body.count, body.ok, body.label], [3, true, 'x']);
    assert.equal(Number(r.headers.get('content-length')), Buffer.byteLength(text));
    assert.equal(r.headers.get('etag'), null);
  });

  for (const enc of ['gzip', 'br', 'deflate']) {
    it(`decodes a ${enc} upstream body, transforms it and sends it unencoded`, async () => {
      const r = await fetch(s.dps[0].proxy + `/rs/doc/${enc}?chunked`, { headers: { 'accept-encoding': 'identity' } });
      const body = await r.json() as Record<string, unknown>;
      assert.equal(r.headers.get('content-encoding'), null);
      assert.equal(body.keep, 1);
      assert.equal(body.drop, undefined);
      if (enc === 'gzip') assert.equal(body.accept, 'identity', 'the upstream was asked for identity');
    });
  }

  it('streams non-JSON and invalid JSON responses untouched, marked', async () => {
    const t = await fetch(s.dps[0].proxy + '/rs/doc/text');
    assert.equal(await t.text(), 'drop: not json');
    assert.equal(t.headers.get('x-portico-body-skipped'), 'not-json');
    const b = await fetch(s.dps[0].proxy + '/rs/doc/broken');
    assert.equal(await b.text(), '{"drop": 1,');
    assert.equal(b.headers.get('x-portico-body-skipped'), 'invalid-json');
    assert.equal(b.headers.get('etag'), '"v1"');
  });

  it('streams a response over the cap untouched, declared or chunked', async () => {
    await route('rs-cap', ['/rs-cap'], [{ name: 'response-transformer-advanced', config: { max_body_bytes: 2048, remove: { json: ['items'] } } }]);
    for (const q of ['', '?chunked']) {
      const r = await fetch(s.dps[0].proxy + `/rs-cap/doc/big${q}`);
      assert.equal(await r.text(), BIG);
      assert.equal(r.headers.get('x-portico-body-skipped'), 'too-large');
    }
  });
});

describe('response-transformer-advanced', () => {
  it('navigates nested paths and arrays with dots_in_keys false, keeps allow lists, and obeys if_status', async () => {
    await route('rsa', ['/rsa'], [{
      name: 'response-transformer-advanced', config: {
        dots_in_keys: false,
        allow: { json: ['data.users[*].id', 'data.users[*].name', 'meta'] },
        rename: { json: ['data.users[*].name:data.users[*].login'] },
        add: { json: ['meta.source:gw'], if_status: ['200-299'] },
      },
    }]);
    const r = await fetch(s.dps[0].proxy + '/rsa/doc/list');
    assert.deepEqual(await r.json(), { data: { users: [{ id: 1, login: 'a' }, { id: 2, login: 'b' }] }, meta: { page: 1, source: 'gw' } });
    const e = await fetch(s.dps[0].proxy + '/rsa/doc/list?status=500');
    assert.deepEqual((await e.json() as { meta: unknown }).meta, { page: 1 }, 'add applies to 2xx only');
  });

  it('replaces the whole body (replace.body)', async () => {
    await route('rsb', ['/rsb'], [{ name: 'response-transformer-advanced', config: { replace: { body: '{"replaced":true}', if_status: ['500'] } } }]);
    const r = await fetch(s.dps[0].proxy + '/rsb/doc/user?status=500');
    assert.equal(await r.text(), '{"replaced":true}');
    assert.equal((await (await fetch(s.dps[0].proxy + '/rsb/doc/user')).json() as { user_id: number }).user_id, 123);
  });

  it('refuses bad nested paths and statuses with the field', async () => {
    const r = await s.A('POST', '/services/bt/plugins', { name: 'response-transformer-advanced', config: { dots_in_keys: false, remove: { json: ['a..b'] }, add: { if_status: ['99'] } } });
    assert.equal(r.status, 400);
    assert.deepEqual((r.body as { fields: unknown }).fields, { config: { remove: { json: ["'a..b': expected a key at 2"] }, add: { if_status: ['invalid status or range: 99'] } } });
  });
});

describe('json-transform', () => {
  it('renames a v1 client\'s camelCase keys to the service\'s snake_case and back', async () => {
    await route('jt-case', ['/jt-case'], [{
      name: 'json-transform', config: {
        request: { ops: [{ op: 'case', keys: 'snake_case' }] },
        response: { ops: [{ op: 'case', keys: 'camelCase', exclude: ['$.metadata.labels'] }] },
      },
    }]);
    const r = await send('/jt-case/echo', JSON.stringify({ firstName: 'John', lastName: 'Doe' }), 'application/json');
    assert.deepEqual(JSON.parse((JSON.parse(r.text) as { body: string }).body), { first_name: 'John', last_name: 'Doe' });
    const u = await (await fetch(s.dps[0].proxy + '/jt-case/doc/user')).json() as Record<string, unknown>;
    assert.equal(u.firstName, 'John');
    assert.equal(u.createdAt, '2024-01-01');
    assert.deepEqual(u.metadata, { labels: { team_id: 'a', 'app.kubernetes.io/name': 'b' } }, 'excluded map keys are data');
  });

  it('returns {"user_id",…} as {"id","firstName",…}, internal fields removed, wrapped in {"data": …}', async () => {
    await route('jt-user', ['/jt-user'], [{
      name: 'json-transform', config: {
        response: {
          ops: [
            { op: 'deny', paths: ['$.password_hash', '$.internal_notes', '$.metadata'] },
            { op: 'rename', from: '$.user_id', to: '$.id' },
            { op: 'case', keys: 'camelCase' },
            { op: 'set', path: '$.version', value: 2 },
            { op: 'wrap', key: 'data', meta: { api: 'v1' } },
          ],
        },
      },
    }]);
    const r = await fetch(s.dps[0].proxy + '/jt-user/doc/user');
    assert.deepEqual(await r.json(), { api: 'v1', data: { id: 123, firstName: 'John', createdAt: '2024-01-01', version: 2 } });
  });

  it('unwraps and sets templated, typed values on the request', async () => {
    await route('jt-req', ['/jt-req'], [{
      name: 'json-transform', config: {
        request: { ops: [{ op: 'unwrap', path: '$.payload' }, { op: 'set', path: '$.meta.count', template: '$(headers.x-count)', type: 'number' }] },
      },
    }]);
    const r = await send('/jt-req/echo', JSON.stringify({ payload: { a: 1 } }), 'application/json', { 'x-count': '7' });
    assert.deepEqual(JSON.parse((JSON.parse(r.text) as { body: string }).body), { a: 1, meta: { count: 7 } });
  });

  it('refuses bad paths, ops and templates at write time with the field', async () => {
    const r = await s.A('POST', '/services/bt/plugins', {
      name: 'json-transform', config: {
        request: { ops: [{ op: 'deny', paths: ['user.name'] }, { op: 'set', path: '$.a', template: '$(os.exit)' }, { op: 'case', keys: 'SCREAMING' }] },
        response: { ops: [{ op: 'rename', from: '$.a[', to: '$' }] },
      },
    });
    assert.equal(r.status, 400);
    assert.deepEqual((r.body as { fields: unknown }).fields, {
      config: {
        request: {
          ops: [
            { paths: ["'user.name' must start with $"] },
            { template: "unknown template variable 'os' in 'os.exit' (known: headers, query_params, uri_captures, shared, consumer, jwt, request_id)" },
            { keys: 'expected one of: camelCase, snake_case, kebab-case, PascalCase' },
          ],
        },
        response: { ops: [{ from: "'$.a[': expected a key at 3", to: 'must name a key, not the root ($)' }] },
      },
    });
  });
});

describe('templates with the authenticated identity', () => {
  it('fill $(consumer.username) and $(jwt.claim.sub) from the verified token, in headers and bodies', async () => {
    await s.write('POST', '/consumers', { username: 'alice' });
    const secret = 'a-very-secret-hmac-key-of-enough-length';
    await s.write('POST', '/consumers/alice/jwt', { key: 'tpl-issuer', secret });
    await route('tpl', ['/tpl'], [
      { name: 'jwt' },
      { name: 'request-transformer', config: { add: { headers: ['x-user:$(consumer.username)', 'x-sub:$(jwt.claim.sub)'], body: ['owner:$(consumer.id)'] } } },
      { name: 'json-transform', config: { request: { ops: [{ op: 'set', path: '$.tenant', template: '$(jwt.claim.tenant)' }] } } },
    ]);
    const token = await new SignJWT({ iss: 'tpl-issuer', sub: 'user-42', tenant: 'acme' }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(secret));
    const r = await send('/tpl/echo', '{"a":1}', 'application/json', { authorization: `Bearer ${token}` });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual([r.echo.headers['x-user'], r.echo.headers['x-sub']], ['alice', 'user-42']);
    const consumer = (await s.A('GET', '/consumers/alice')).body as { id: string };
    assert.deepEqual(JSON.parse(r.echo.body), { a: 1, owner: consumer.id, tenant: 'acme' });
  });

  it('refuses an unknown template variable at write time', async () => {
    const r = await s.A('POST', '/services/bt/plugins', { name: 'request-transformer', config: { add: { body: ['x:$(jwt.sub)'] } } });
    assert.equal(r.status, 400);
    assert.deepEqual((r.body as { fields: unknown }).fields, { config: { add: { body: ["unsupported template expression 'jwt.sub': write jwt.claim.<name>"] } } });
  });
});

describe('routes without body plugins', () => {
  it('stream bodies as before: no marker, the bytes as sent', async () => {
    await route('plain', ['/plain'], []);
    const r = await send('/plain/echo', '{"not": "parsed"', 'application/json');
    assert.equal(r.status, 200);
    assert.equal(r.echo.body, '{"not": "parsed"');
    assert.equal(r.headers.get('x-portico-body-skipped'), null);
    const g = await fetch(s.dps[0].proxy + '/plain/doc/gzip', { headers: { 'accept-encoding': 'gzip' } });
    assert.equal(g.headers.get('content-encoding'), 'gzip');
  });
});
