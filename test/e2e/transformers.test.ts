// request-transformer and response-transformer (issue 11; headers and query strings) through real
// CP and DP processes: what the upstream receives (headers, query, method, path) and what the
// client gets back, and hostile configs refused at write time.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, type Stack } from '../harness/stack.ts';
import { startUpstream, type Echo, type Upstream } from '../harness/upstream.ts';

let s: Stack;
let sick: Upstream | undefined;

async function call(p: string, init: RequestInit = {}): Promise<{ status: number; echo: Echo; headers: Headers }> {
  const r = await fetch(s.dps[0].proxy + p, init);
  const text = await r.text();
  return { status: r.status, echo: JSON.parse(text) as Echo, headers: r.headers };
}

async function route(name: string, paths: string[], plugins: { name: string; config?: Record<string, unknown> }[]): Promise<void> {
  await s.A('POST', '/services/tf/routes', { name, paths });
  for (const plugin of plugins) {
    const r = await s.write('POST', `/routes/${name}/plugins`, plugin);
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }
}

before(async () => {
  s = await startStack({ dps: 1 });
  await s.A('POST', '/services', { name: 'tf', url: `${s.upstream.url}/base` });
});
after(async () => { await s?.stop(); await sick?.close(); });

describe('request-transformer', () => {
  it('removes, renames, replaces, adds and appends headers and query arguments in Kong\'s order, with templates', async () => {
    await route('rt', ['/rt'], [{
      name: 'request-transformer', config: {
        remove: { headers: ['x-secret'], querystring: ['debug'] },
        rename: { headers: ['x-old:x-new'], querystring: ['old:new'] },
        replace: { headers: ['x-user:$(headers.x-user)-checked', 'Host:virtual.test'], querystring: ['q:replaced'] },
        add: { headers: ['X-Request-ID:$(request_id)', 'x-from-query:$(query_params.q)', 'x-absent:[$(headers.nope)]', 'x-user:never'], querystring: ['page:1'] },
        append: { headers: ['x-multi:two'], querystring: ['tag:b'] },
      },
    }]);
    const r = await call('/rt/items?q=search&debug=1&old=o&tag=a', { headers: { 'x-secret': 's', 'x-old': 'moved', 'x-user': 'bob', 'x-multi': 'one' } });
    assert.equal(r.status, 200);
    const h = r.echo.headers;
    assert.equal(h['x-secret'], undefined);
    assert.equal(h.host, 'virtual.test', 'Host is replaceable');
    assert.deepEqual([h['x-old'], h['x-new']], [undefined, 'moved'], 'rename keeps the value');
    assert.equal(h['x-user'], 'bob-checked', 'replaced (present), not added again');
    assert.equal(h['x-request-id'], r.headers.get('x-portico-request-id'), '$(request_id) is the id the gateway answers with');
    assert.equal(h['x-from-query'], 'search', 'templates read the request before this plugin changed it');
    assert.equal(h['x-absent'], '[]', 'an absent value renders empty');
    assert.equal(h['x-multi'], 'one, two', 'append makes a repeated header');
    assert.equal(r.echo.url, '/base/items?q=replaced&tag=a&new=o&page=1&tag=b');
  });

  it('refuses (400, upstream not called) a request whose query would put CR/LF into a templated header', async () => {
    const hits = s.upstream.hits;
    const r = await fetch(s.dps[0].proxy + '/rt/items?q=a%0D%0AX-Evil:%201');
    assert.equal(r.status, 400);
    assert.match(await r.text(), /header/i);
    assert.equal(s.upstream.hits, hits);
  });

  it('changes the upstream method and path (replace.uri from the route\'s regex captures, escaped)', async () => {
    await route('rt-uri', ['~/users/(?<id>\\d+)/(\\w+)$'], [{
      name: 'request-transformer', config: { http_method: 'POST', replace: { uri: '/v2/accounts/$(uri_captures.id)/my files/$(uri_captures[2])' } },
    }]);
    const r = await call('/users/42/photos?size=large');
    assert.equal(r.status, 200);
    assert.equal(r.echo.method, 'POST');
    assert.equal(r.echo.url, '/v2/accounts/42/my%20files/photos?size=large', 'the whole upstream path, the query kept');
  });
});

describe('request-transformer and balancing', () => {
  it('keeps a replaced Host on a service balanced over an upstream', async () => {
    await s.A('POST', '/upstreams', { name: 'bal.internal' });
    await s.A('POST', '/upstreams/bal.internal/targets', { target: `127.0.0.1:${new URL(s.upstream.url).port}` });
    await s.A('POST', '/services', { name: 'bal', host: 'bal.internal', port: 80 });
    await s.A('POST', '/services/bal/routes', { name: 'bal', paths: ['/bal'] });
    const r = await s.write('POST', '/routes/bal/plugins', { name: 'request-transformer', config: { replace: { headers: ['Host:virtual.test'] } } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const out = await call('/bal/x');
    assert.equal(out.status, 200);
    assert.equal(out.echo.headers.host, 'virtual.test');
  });
});

describe('request-transformer and retries', () => {
  it('retries judge the method sent upstream: a GET turned into POST is not retried on a listed status', async () => {
    sick = await startUpstream();
    sick.mode.status = 503;
    await s.A('POST', '/upstreams', { name: 'sick.internal', status_retries: { statuses: [503], base_delay_ms: 5, budget_ms: 1_000 } });
    await s.A('POST', '/upstreams/sick.internal/targets', { target: `127.0.0.1:${sick.port}` });
    await s.A('POST', '/services', { name: 'sick', host: 'sick.internal', port: 80, retries: 2 });
    await s.A('POST', '/services/sick/routes', { name: 'sick-get', paths: ['/sick-get'] });
    await s.A('POST', '/services/sick/routes', { name: 'sick-post', paths: ['/sick-post'] });
    const r = await s.write('POST', '/routes/sick-post/plugins', { name: 'request-transformer', config: { http_method: 'POST' } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    let hits = sick.hits;
    assert.equal((await fetch(s.dps[0].proxy + '/sick-get')).status, 503);
    assert.equal(sick.hits - hits, 3, 'control: a GET is tried 1 + retries times');
    hits = sick.hits;
    assert.equal((await fetch(s.dps[0].proxy + '/sick-post')).status, 503);
    assert.equal(sick.hits - hits, 1, 'sent as POST, so never replayed');
    assert.equal(sick.seen.at(-1)!.method, 'POST');
  });
});

describe('response-transformer', () => {
  it('strips, renames, adds and appends response headers', async () => {
    await route('resp', ['/resp'], [{
      name: 'response-transformer', config: {
        remove: { headers: ['X-Upstream'] },
        rename: { headers: ['x-upstream-port:x-served-by'] },
        add: { headers: ['X-Frame-Options:DENY', 'content-type:text/plain'] },
        append: { headers: ['cache-control:no-store'] },
      },
    }]);
    const r = await call('/resp');
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-upstream'), null);
    assert.equal(r.headers.get('x-upstream-port'), null);
    assert.equal(r.headers.get('x-served-by'), String(s.upstream.port));
    assert.equal(r.headers.get('x-frame-options'), 'DENY');
    assert.equal(r.headers.get('content-type'), 'application/json', 'add never overwrites');
    assert.equal(r.headers.get('cache-control'), 'no-store');
  });
});

describe('hostile transformer configuration', () => {
  it('is refused at write time with the field named, and changes nothing', async () => {
    const before = (await s.A('GET', '/plugins')).body.data.length;
    const cases: [Record<string, unknown>, Record<string, unknown>][] = [
      [{ name: 'request-transformer', config: { add: { headers: ['x-a:1\r\nX-Evil: 1'] } } }, { add: { headers: ['must not contain control characters (CR, LF, NUL…)'] } }],
      [{ name: 'request-transformer', config: { remove: { headers: ['bad header'] } } }, { remove: { headers: ["'bad header' is not a valid header"] } }],
      [{ name: 'request-transformer', config: { append: { querystring: ['no-colon'] } } }, { append: { querystring: ['invalid value: no-colon'] } }],
      [{ name: 'request-transformer', config: { http_method: 'get' } }, { http_method: 'invalid value: get' }],
      [{ name: 'request-transformer', config: { add: { body: ['a'] } } }, { add: { body: ['invalid value: a'] } }],
      [{ name: 'request-transformer', config: { remove: { json: ['a'] } } }, { remove: { json: 'unknown field' } }],
      [{ name: 'request-transformer', config: { replace: { uri: '/$(os.execute("x"))' } } },
        { replace: { uri: `unknown template variable 'os' in 'os.execute("x")' (known: headers, query_params, uri_captures, shared, consumer, jwt, request_id)` } }],
      [{ name: 'response-transformer', config: { add: { headers: ['set-cookie:a=1\nX-Evil: 1'] } } }, { add: { headers: ['must not contain control characters (CR, LF, NUL…)'] } }],
      [{ name: 'response-transformer', config: { rename: { headers: ['x-a:bad:name'] } } }, { rename: { headers: ["'bad:name' is not a valid header"] } }],
    ];
    for (const [plugin, fields] of cases) {
      const r = await s.A('POST', '/plugins', plugin);
      assert.equal(r.status, 400, JSON.stringify(plugin));
      assert.deepEqual(r.body.fields, { config: fields }, JSON.stringify(plugin));
    }
    assert.equal((await s.A('GET', '/plugins')).body.data.length, before);
  });
});
