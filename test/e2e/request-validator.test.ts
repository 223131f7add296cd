// request-validator (issue 14) through real CP and DP processes and a real upstream that records
// what it receives: bodies, parameters (query, header, path), content types, verbose answers, the
// configurable status, drafts, bodies the validator cannot read, and schemas refused at write time
// (admin API and POST /config) with the JSON pointer of the problem. An invalid request never
// reaches the upstream.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { gzipSync } from 'node:zlib';
import { startStack, type Stack } from '../harness/stack.ts';

let s: Stack;

const PERSON = JSON.stringify({
  type: 'object', required: ['name'], additionalProperties: false,
  properties: { name: { type: 'string', minLength: 1 }, age: { type: 'integer', minimum: 0 }, email: { type: 'string', format: 'email' } },
});

before(async () => {
  s = await startStack({ dps: 1 });
  await s.A('POST', '/services', { name: 'rv', url: s.upstream.url });
  await route('body', ['/body'], { body_schema: PERSON, max_body_bytes: 4096 });
  await route('verbose', ['/verbose'], { body_schema: PERSON, verbose_response: true, status_code: 422 });
  await route('charset', ['/charset'], { body_schema: PERSON, allowed_content_types: ['application/json; charset=utf-8', 'application/vnd.person+json'] });
  await route('params', ['~/items/(?<id>[^/]+)$'], {
    verbose_response: true,
    parameter_schema: [
      { name: 'id', in: 'path', required: true, schema: '{"type":"integer","minimum":1}' },
      { name: 'limit', in: 'query', required: false, schema: '{"type":"integer","maximum":100}' },
      { name: 'tags', in: 'query', required: false, style: 'pipeDelimited', explode: false, schema: '{"type":"array","items":{"enum":["a","b"]},"maxItems":2}' },
      { name: 'X-Api-Version', in: 'header', required: true, schema: '{"enum":["1","2"]}' },
    ],
  });
  await route('tree', ['/tree'], { version: 'draft7', body_schema: '{"type":"object","properties":{"children":{"type":"array","items":{"$ref":"#"}}}}' });
  await route('draft4', ['/draft4'], { body_schema: '{"properties":{"n":{"maximum":5,"exclusiveMaximum":true}}}' });
  await route('draft2020', ['/draft2020'], { version: 'draft2020-12', body_schema: '{"type":"array","prefixItems":[{"type":"string"}],"items":{"type":"integer"}}' });
});
after(async () => { await s?.stop(); });

async function route(name: string, paths: string[], config: Record<string, unknown>): Promise<void> {
  assert.equal((await s.A('POST', '/services/rv/routes', { name, paths, strip_path: false })).status, 201);
  const r = await s.write('POST', `/routes/${name}/plugins`, { name: 'request-validator', config });
  assert.equal(r.status, 201, JSON.stringify(r.body));
}

interface Answer { status: number; body: any; headers: Headers }
async function send(path: string, body: string | Buffer | undefined, headers: Record<string, string> = { 'content-type': 'application/json' }, method = 'POST'): Promise<Answer> {
  const r = await fetch(s.dps[0].proxy + path, { method, body: typeof body === 'string' || body === undefined ? body : new Uint8Array(body), headers });
  const text = await r.text();
  let parsed: unknown = text;
  try { parsed = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, body: parsed, headers: r.headers };
}

/** Sends a request that must be refused, and checks that the upstream never saw it. */
async function refused(path: string, body: string | Buffer | undefined, headers?: Record<string, string>, method?: string): Promise<Answer> {
  const hits = s.upstream.hits;
  const r = await send(path, body, headers, method);
  assert.equal(s.upstream.hits, hits, `the upstream saw a refused request (${path}: ${r.status})`);
  return r;
}

/** A chunked request (no Content-Length), as a streaming client sends it. */
function sendChunked(path: string, chunks: string[]): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(s.dps[0].proxy + path, { method: 'POST', headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    for (const c of chunks) req.write(c);
    req.end();
  });
}

describe('request body', () => {
  it('a conforming body reaches the upstream unchanged', async () => {
    const body = '{"name":"Ada","age":36,  "email":"ada@example.com"}';
    const r = await send('/body', body);
    assert.equal(r.status, 200);
    assert.equal(r.body.body, body, 'the bytes the client sent');
  });

  it('a body that does not conform is 400 with Kong\'s message, and never sent upstream', async () => {
    for (const body of ['{"age":3}', '{"name":"","age":3}', '{"name":"a","age":-1}', '{"name":"a","email":"nope"}', '{"name":"a","extra":1}', '[]', '"x"', '{}']) {
      const r = await refused('/body', body);
      assert.equal(r.status, 400, body);
      assert.equal(r.body.message, 'request body doesn\'t conform to schema');
      assert.equal(r.body.errors, undefined, 'not verbose');
      assert.ok(r.body.request_id);
    }
  });

  it('verbose_response lists each error with its pointer; status_code 422 (Tyk\'s) applies', async () => {
    const r = await refused('/verbose', '{"name":"","age":-1,"extra":true}');
    assert.equal(r.status, 422);
    assert.equal(r.body.message, 'request body doesn\'t conform to schema');
    const errors = (r.body.errors as { in: string; pointer: string; keyword: string; message: string }[]).map((e) => `${e.in} ${e.pointer} ${e.keyword}`).sort();
    assert.deepEqual(errors, ['body  additionalProperties', 'body /age minimum', 'body /name minLength']);
    assert.equal((await send('/verbose', '{"name":"a"}')).status, 200);
  });

  it('invalid JSON is refused before the validator', async () => {
    const r = await refused('/body', '{"name":');
    assert.equal(r.status, 400);
    assert.match(r.body.message, /not valid JSON/);
  });

  it('a body over max_body_bytes is 413, declared or chunked, and never sent upstream', async () => {
    const big = JSON.stringify({ name: 'x'.repeat(5000) });
    assert.equal((await refused('/body', big)).status, 413);
    const hits = s.upstream.hits;
    const r = await sendChunked('/body', [big.slice(0, 3000), big.slice(3000)]);
    assert.equal(r.status, 413);
    assert.equal(s.upstream.hits, hits);
  });

  it('a recursive schema validates trees; a body nested past the stack is 400, not a 500', async () => {
    assert.equal((await send('/tree', '{"children":[{"children":[]},{}]}')).status, 200);
    assert.equal((await refused('/tree', '{"children":[{"children":1}]}')).status, 400);
    const deep = `${'{"children":['.repeat(60_000)}${']}'.repeat(60_000)}`;
    const r = await refused('/tree', deep);
    assert.equal(r.status, 400);
    assert.equal(r.body.message, 'request body doesn\'t conform to schema');
    assert.equal((await send('/tree', '{}')).status, 200, 'the node still serves');
  });

  it('a compressed body cannot be validated: 415, never sent upstream', async () => {
    const r = await refused('/body', gzipSync('{"name":"a"}'), { 'content-type': 'application/json', 'content-encoding': 'gzip' });
    assert.equal(r.status, 415);
    assert.match(r.body.message, /Content-Encoding/);
  });
});

describe('content types', () => {
  it('a type not allowed is refused with Kong\'s message', async () => {
    for (const headers of [{ 'content-type': 'text/plain' }, { 'content-type': 'application/x-www-form-urlencoded' }, {} as Record<string, string>]) {
      const r = await refused('/body', headers['content-type'] === undefined ? undefined : 'name=a', headers);
      assert.equal(r.status, 400, JSON.stringify(headers));
      assert.equal(r.body.message, 'specified Content-Type is not allowed');
    }
  });

  it('parameters must match an allowed entry (charset case-insensitive)', async () => {
    assert.equal((await send('/charset', '{"name":"a"}', { 'content-type': 'application/json; charset=UTF-8' })).status, 200);
    assert.equal((await send('/charset', '{"name":"a"}', { 'content-type': 'application/vnd.person+json' })).status, 200);
    assert.equal((await refused('/charset', '{"name":"a"}', { 'content-type': 'application/json' })).status, 400);
    assert.equal((await refused('/charset', '{"name":"a"}', { 'content-type': 'application/json; charset=latin1' })).status, 400);
    assert.equal((await refused('/charset', '{"name":1}', { 'content-type': 'application/vnd.person+json' })).status, 400);
  });
});

describe('parameters', () => {
  const v = { 'x-api-version': '2' };
  it('valid path, query and header parameters pass, coerced from text', async () => {
    const r = await send('/items/42?limit=100&tags=a|b', undefined, v, 'GET');
    assert.equal(r.status, 200);
    assert.equal(r.body.url, '/items/42?limit=100&tags=a|b');
  });

  it('each invalid parameter is refused, naming it, and never sent upstream', async () => {
    const cases: [string, Record<string, string>, string, string][] = [
      ['/items/0', v, 'path', 'id'],
      ['/items/abc', v, 'path', 'id'],
      ['/items/1?limit=101', v, 'query', 'limit'],
      ['/items/1?limit=ten', v, 'query', 'limit'],
      ['/items/1?tags=a|c', v, 'query', 'tags'],
      ['/items/1?tags=a|b|a', v, 'query', 'tags'],
      ['/items/1', {}, 'header', 'X-Api-Version'],
      ['/items/1', { 'x-api-version': '3' }, 'header', 'X-Api-Version'],
    ];
    for (const [path, headers, where, name] of cases) {
      const r = await refused(path, undefined, headers, 'GET');
      assert.equal(r.status, 400, path);
      assert.equal(r.body.message, 'request param doesn\'t conform to schema');
      assert.equal(r.body.errors[0].in, where, path);
      assert.equal(r.body.errors[0].name, name, path);
    }
  });
});

describe('drafts', () => {
  it('draft 4 (the default) reads exclusiveMaximum as a boolean', async () => {
    assert.equal((await send('/draft4', '{"n":4.9}')).status, 200);
    assert.equal((await refused('/draft4', '{"n":5}')).status, 400);
  });

  it('draft 2020-12 has prefixItems; the same schema under draft 4 is refused at write', async () => {
    assert.equal((await send('/draft2020', '["a",1,2]')).status, 200);
    assert.equal((await refused('/draft2020', '["a","b"]')).status, 400);
    assert.equal((await refused('/draft2020', '[1]')).status, 400);
    const r = await s.A('POST', '/plugins', { name: 'request-validator', config: { body_schema: '{"type":"array","prefixItems":[{"type":"string"}]}' } });
    assert.equal(r.status, 400);
    assert.match(r.body.fields.config.body_schema, /'\/prefixItems'.*unknown keyword/);
  });
});

describe('schemas refused at write time', () => {
  const cases: [string, string, RegExp][] = [
    ['a wrong type name', '{"properties":{"age":{"type":"int"}}}', /^invalid JSON Schema at '\/properties\/age\/type'/],
    ['a misspelt keyword', '{"properties":{"name":{"minLenght":1}}}', /'\/properties\/name\/minLenght'.*unknown keyword/],
    ['a dangling $ref', '{"properties":{"a":{"$ref":"#/definitions/missing"}}}', /'\/properties\/a\/\$ref'/],
    ['a remote $ref', '{"properties":{"a":{"$ref":"http://169.254.169.254/latest/meta-data"}}}', /'\/properties\/a\/\$ref'.*never fetched/],
    ['$data', '{"properties":{"a":{"maximum":{"$data":"1/b"}}}}', /'\/properties\/a\/maximum\/\$data'.*not supported/],
    ['a backtracking pattern', '{"properties":{"a":{"pattern":"^(\\\\w+)\\\\1$"}}}', /'\/properties\/a\/pattern'.*RE2/],
    ['a deep schema', `${'{"not":'.repeat(70)}{}${'}'.repeat(70)}`, /nested deeper than 64 levels/],
    ['a huge schema', JSON.stringify({ enum: Array.from({ length: 40_000 }, (_, i) => `value-${i}`) }), /length must be at most 262144/],
    ['not JSON', '{"type": object}', /not valid JSON/],
  ];

  for (const [what, schema, message] of cases) {
    it(`refuses ${what} on the admin API (400, the pointer in fields), changing nothing`, async () => {
      const before = (await s.A('GET', '/status')).body.configuration.version;
      const r = await s.A('POST', '/routes/body/plugins', { name: 'request-validator', config: { body_schema: schema } });
      assert.equal(r.status, 400, JSON.stringify(r.body).slice(0, 200));
      assert.match(r.body.fields.config.body_schema, message);
      assert.equal((await s.A('GET', '/status')).body.configuration.version, before);
    });
  }

  it('refuses a bad parameter schema with its path and pointer', async () => {
    const r = await s.A('POST', '/plugins', { name: 'request-validator', config: { parameter_schema: [{ name: 'a', in: 'query', required: true, schema: '{"type":"array","items":{"type":"nmber"}}' }] } });
    assert.equal(r.status, 400);
    assert.match(r.body.fields.config.parameter_schema[0].schema, /'\/items\/type'/);
  });

  it('refuses a bad schema in POST /config, saying where, and changes nothing', async () => {
    const before = (await s.A('GET', '/status')).body.configuration.version;
    const file = {
      _format_version: '3.0',
      services: [{ name: 'x', url: 'http://127.0.0.1:1', routes: [{ name: 'x', paths: ['/x'], plugins: [{ name: 'request-validator', config: { body_schema: '{"properties":{"a":{"minimum":"0"}}}' } }] }] }],
    };
    const r = await s.A('POST', '/config', JSON.stringify(file), { 'content-type': 'application/json' });
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.match(r.body.message, /body_schema: invalid JSON Schema at '\/properties\/a\/minimum'/);
    assert.equal((await s.A('GET', '/status')).body.configuration.version, before);
    assert.equal((await send('/body', '{"name":"still served"}')).status, 200);
  });
});
