// request-transformer with in-memory ports: Kong's order of operations, its list syntax and
// messages, templates (and '' for what is absent), http_method and replace.uri.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { requestTransformerAdvancedConfig, requestTransformerConfig, type RequestTransformerConfig } from './schema.ts';
import { requestTransformerAdvancedHandler, requestTransformerHandler } from './handler.ts';
import { instantiate, testCtx, testEnv } from '../test-ports.ts';
import type { RequestBody } from '../types.ts';
import type { Consumer } from '../../entities/consumer.ts';

const issues = (config: unknown) => {
  const r = requestTransformerConfig.safeParse(config);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('request-transformer handler', () => {
  it("fills Kong's defaults", () => {
    assert.deepEqual(requestTransformerConfig.parse({}), {
      http_method: null,
      remove: { headers: [], querystring: [], body: [] }, rename: { headers: [], querystring: [], body: [] },
      replace: { headers: [], querystring: [], body: [], uri: null }, add: { headers: [], querystring: [], body: [] },
      append: { headers: [], querystring: [], body: [] },
    });
  });

  it('applies remove → rename → replace → add → append to headers, as Kong documents', () => {
    const p = instantiate(requestTransformerHandler, requestTransformerConfig, {
      remove: { headers: ['x-drop', 'X-Gone'] },
      rename: { headers: ['X-Old:X-New'] },
      replace: { headers: ['x-new:replaced', 'x-absent:never'] },
      add: { headers: ['X-Added:1', 'x-keep:not-this', 'x-drop:re-added'] },
      append: { headers: ['x-keep:second', 'x-fresh:only'] },
    });
    const ctx = testCtx({ upstreamHeaders: { 'x-drop': 'a', 'x-gone': 'b', 'x-old': 'renamed-value', 'x-keep': 'first' } });
    p.access(ctx);
    assert.deepEqual(ctx.upstreamHeaders, {
      'x-new': 'replaced', // renamed (value kept), then replaced because now present
      'x-keep': ['first', 'second'], // add left the existing header, append made it repeated
      'x-added': '1', 'x-drop': 're-added', // removed, then added again (absent by then)
      'x-fresh': 'only',
    });
  });

  it('keeps the value on rename and leaves an absent source alone', () => {
    const p = instantiate(requestTransformerHandler, requestTransformerConfig, { rename: { headers: ['x-a:x-b', 'x-missing:x-c'] } });
    const ctx = testCtx({ upstreamHeaders: { 'x-a': ['1', '2'], 'x-c': 'kept' } });
    p.access(ctx);
    assert.deepEqual(ctx.upstreamHeaders, { 'x-b': ['1', '2'], 'x-c': 'kept' });
  });

  it('replaces Host even though it is never added or removed', () => {
    const p = instantiate(requestTransformerHandler, requestTransformerConfig, {
      remove: { headers: ['host'] }, add: { headers: ['host:added.test'] }, replace: { headers: ['Host:replaced.test'] },
    });
    const ctx = testCtx({ upstreamHeaders: { host: 'svc.test' } });
    p.access(ctx);
    assert.deepEqual(ctx.upstreamHeaders, { host: 'replaced.test' });
    const onlyAdd = instantiate(requestTransformerHandler, requestTransformerConfig, { add: { headers: ['host:added.test'] } });
    const c2 = testCtx({ upstreamHeaders: {} });
    onlyAdd.access(c2);
    assert.deepEqual(c2.upstreamHeaders, {});
  });

  it('applies the same order to the query string', () => {
    const p = instantiate(requestTransformerHandler, requestTransformerConfig, {
      remove: { querystring: ['secret'] },
      rename: { querystring: ['old:new', 'none:target'] },
      replace: { querystring: ['new:X', 'absent:Y'] },
      add: { querystring: ['page:1', 'limit:10'] },
      append: { querystring: ['tag:b', 'page:2'] },
    });
    const ctx = testCtx({ url: '/p?secret=s&old=o1&old=o2&target=t&limit=50&tag=a' });
    p.access(ctx);
    assert.equal(ctx.query().toString(), 'target=t&limit=50&tag=a&new=X&page=1&tag=b&page=2');
  });

  it('renders templates from the request as the plugin found it, absent values as empty', () => {
    const consumer = { id: 'c-1', username: 'alice', custom_id: null } as unknown as Consumer;
    const p = instantiate(requestTransformerHandler, requestTransformerConfig, {
      add: {
        headers: ['x-user:$(consumer.username)/$(consumer.id)', 'x-request-id:$(request_id)', 'x-from-q:$(query_params.q)',
          'x-api:$(headers.x_api_key)', 'x-quoted:$(headers["X-Api-Key"])', 'x-none:[$(headers.missing)$(consumer.custom_id)$(uri_captures.nope)]',
          'x-cap:$(uri_captures.id)-$(uri_captures[2])', 'x-shared:$(shared.tenant)', 'x-host:$(headers.host)'],
        querystring: ['renamed:$(headers.x-old)'],
      },
      // The template reads x-old before the rename below removes it.
      rename: { headers: ['x-old:x-new'] },
    });
    const ctx = testCtx({
      url: '/p?q=search&q=second', consumer, requestId: 'req-9',
      headers: { host: 'client.test' }, upstreamHeaders: { 'x-api-key': 'k1', 'x-old': 'was-old', host: 'upstream.test' },
      uriCaptures: { unnamed: ['42', 'tail'], named: { id: '42' } }, shared: { tenant: 't7' },
    });
    p.access(ctx);
    assert.deepEqual(ctx.upstreamHeaders, {
      'x-api-key': 'k1', host: 'upstream.test', 'x-new': 'was-old', 'x-user': 'alice/c-1', 'x-request-id': 'req-9', 'x-from-q': 'search',
      'x-api': 'k1', 'x-quoted': 'k1', 'x-none': '[]', 'x-cap': '42-tail', 'x-shared': 't7', 'x-host': 'client.test',
    });
    assert.equal(ctx.query().get('renamed'), 'was-old');
  });

  it('sets the upstream method and path (a template over the route\'s captures)', () => {
    const p = instantiate(requestTransformerHandler, requestTransformerConfig, { http_method: 'POST', replace: { uri: '/v2/users/$(uri_captures.id)' } });
    const ctx = testCtx({ uriCaptures: { unnamed: ['7'], named: { id: '7' } } });
    p.access(ctx);
    assert.deepEqual([ctx.methodOverride, ctx.pathOverride], ['POST', '/v2/users/7']);
    const none = testCtx();
    instantiate(requestTransformerHandler, requestTransformerConfig, { add: { headers: ['x:1'] } }).access(none);
    assert.deepEqual([none.methodOverride, none.pathOverride], [null, null]);
  });

  it('skips a pair with an empty literal value, as Kong', () => {
    const p = instantiate(requestTransformerHandler, requestTransformerConfig, { add: { headers: ['x-empty:'] }, replace: { querystring: ['a:'] } });
    const ctx = testCtx({ url: '/p?a=1', upstreamHeaders: {} });
    p.access(ctx);
    assert.deepEqual(ctx.upstreamHeaders, {});
    assert.equal(ctx.query().toString(), 'a=1');
  });

  it("refuses malformed pairs, bad header names and hostile values with Kong's messages", () => {
    assert.deepEqual(issues({
      http_method: 'get',
      remove: { headers: ['bad header'] },
      rename: { headers: ['x-a:bad name'], querystring: ['nocolon'] },
      replace: { headers: ['x-a:line\r\nX-Evil: 1'], uri: 'no-slash' },
      add: { headers: ['x-a'], querystring: ['q:a\u0000b'] },
      append: { headers: [':value', 'x-b:\u20ac'] },
    }), [
      'http_method: invalid value: get',
      "remove.headers.0: 'bad header' is not a valid header",
      "rename.headers.0: 'bad name' is not a valid header",
      'rename.querystring.0: invalid value: nocolon',
      'replace.headers.0: must not contain control characters (CR, LF, NUL…)',
      'replace.uri: must start with /',
      'add.headers.0: invalid value: x-a',
      'add.querystring.0: must not contain control characters (CR, LF, NUL, …)',
      'append.headers.0: invalid value: :value',
      'append.headers.1: must not contain control characters (CR, LF, NUL…)',
    ]);
  });

  it('refuses unknown template variables, bad expressions and malformed body entries at write time', () => {
    assert.deepEqual(issues({
      add: { headers: ['x:$(os.getenv("HOME"))', 'y:$(headers[1])', 'z:$(consumer.password)', 'w:$(headers.x'] },
      replace: { uri: '/$(uri_captures[0])' },
      append: { body: ['a', 'b:$(nope)'] },
    }), [
      "replace.uri: unsupported template expression 'uri_captures[0]': captures are numbered from 1",
      "add.headers.0: unknown template variable 'os' in 'os.getenv(\"HOME\")' (known: headers, query_params, uri_captures, shared, consumer, jwt, request_id)",
      "add.headers.1: unsupported template expression 'headers[1]'",
      "add.headers.2: unsupported template expression 'consumer.password': consumer has id, username and custom_id",
      "add.headers.3: unterminated template expression in '$(headers.x'",
      'append.body.0: invalid value: a',
      "append.body.1: unknown template variable 'nope' in 'nope' (known: headers, query_params, uri_captures, shared, consumer, jwt, request_id)",
    ]);
    assert.deepEqual(issues({ add: { headers: ['x:$(jwt.claim.sub)', 'y:$(jwt.sub)', 'z:$(jwt.claim)'] } }), [
      "add.headers.1: unsupported template expression 'jwt.sub': write jwt.claim.<name>",
      "add.headers.2: unsupported template expression 'jwt.claim': write jwt.claim.<name>",
    ]);
  });

  it('renders the verified token\'s claims ($(jwt.claim.x)): strings as they are, others as JSON, absent as empty', () => {
    const p = instantiate(requestTransformerHandler, requestTransformerConfig, {
      add: { headers: ['x-sub:$(jwt.claim.sub)', 'x-roles:$(jwt.claim["roles"])', 'x-none:[$(jwt.claim.nope)]'] },
    });
    const ctx = testCtx({ jwtClaims: { sub: 'user-1', roles: ['a', 'b'] } });
    p.access(ctx);
    assert.deepEqual(ctx.upstreamHeaders, { 'x-sub': 'user-1', 'x-roles': '["a","b"]', 'x-none': '[]' });
    const anonymous = testCtx();
    p.access(anonymous);
    assert.equal(anonymous.upstreamHeaders['x-sub'], '');
  });
});

describe('request-transformer config (property)', () => {
  const RUNS = Number(process.env.PORTICO_FUZZ_RUNS ?? 300);
  // name:value entries from names and values that matter to the grammar: valid templates, characters a
  // header refuses, broken template syntax, and anything else.
  const name = fc.constantFrom('x-a', 'X-B', 'host', 'x_c', 'q');
  const piece = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom('$(headers.x-a)', '$(headers["X-A"])', '$(query_params.q)', '$(uri_captures[1])', '$(uri_captures.id)', '$(request_id)', '$(consumer.username)', 'text', ':') },
    { weight: 3, arbitrary: fc.string({ maxLength: 4 }) },
    { weight: 1, arbitrary: fc.constantFrom('$(', ')', '\r', '\n', '\0', '\u20ac', '$(os.exit())') },
  );
  const entry = fc.tuple(name, fc.array(piece, { maxLength: 4 })).map(([n, v]) => `${n}:${v.join('')}`);
  const list = fc.array(entry, { maxLength: 2 });

  it('compiles every config the schema accepts, and sets only header values Node would send', () => {
    let accepted = 0;
    fc.assert(fc.property(list, list, list, fc.option(fc.array(piece, { maxLength: 4 }).map((v) => `/${v.join('')}`), { nil: null }), (headers, query, renames, uri) => {
      const r = requestTransformerConfig.safeParse({ add: { headers, querystring: query }, append: { headers }, rename: { headers: renames }, replace: { uri } });
      if (!r.success) return;
      accepted++;
      const p = instantiate(requestTransformerHandler, requestTransformerConfig, r.data as unknown as Record<string, unknown>);
      const ctx = testCtx({ url: '/p?q=v', upstreamHeaders: { 'x-a': 'one' }, uriCaptures: { unnamed: ['c'], named: { id: 'c' } } });
      p.access(ctx);
      for (const [name, v] of Object.entries(ctx.upstreamHeaders)) {
        assert.match(name, /^[a-z0-9_-]+$/);
        for (const one of Array.isArray(v) ? v : [v]) assert.match(one, /^[\t\x20-\x7e\x80-\xff]*$/);
      }
    }), { numRuns: RUNS });
    assert.ok(accepted > RUNS / 10, `only ${accepted} of ${RUNS} generated configs were valid: the property tested too little`);
  });
});

describe('request-transformer body lists (the body phase)', () => {
  const bodyOf = (p: { config: unknown; state: unknown }, body: RequestBody, ctx = testCtx()) => {
    const changed = requestTransformerHandler.body!.request!(ctx, body, p.config as RequestTransformerConfig, p.state as never, testEnv());
    return { changed, body };
  };

  it('declares the request body only when a body list is set', () => {
    const none = instantiate(requestTransformerHandler, requestTransformerConfig, { add: { headers: ['x:1'] } });
    assert.equal(requestTransformerHandler.body!.needs(none.config as RequestTransformerConfig, none.state).request, null);
    const some = instantiate(requestTransformerHandler, requestTransformerConfig, { remove: { body: ['a'] } });
    assert.deepEqual(requestTransformerHandler.body!.needs(some.config as RequestTransformerConfig, some.state), { request: 'form', response: false, maxBytes: 1024 * 1024 });
  });

  it('leaves a JSON array or scalar as it came, and reports no change when nothing applied', () => {
    const p = instantiate(requestTransformerHandler, requestTransformerConfig, { remove: { body: ['a'] } });
    assert.deepEqual(bodyOf(p, { kind: 'json', value: [1] }), { changed: false, body: { kind: 'json', value: [1] } });
    assert.equal(bodyOf(p, { kind: 'json', value: { b: 1 } }).changed, false);
  });

  it('-advanced: nested paths with dots_in_keys false, allow first, typed values; form values stay text', () => {
    const p = instantiate(requestTransformerAdvancedHandler, requestTransformerAdvancedConfig as never, {
      dots_in_keys: false, allow: { body: ['user', 'items'] },
      replace: { body: ['user.age:42'], json_types: ['number'] }, add: { body: ['user.active:true', 'items[*].seen:true'], json_types: ['boolean', 'string'] },
    });
    const r = bodyOf(p, { kind: 'json', value: { user: { age: 1, name: 'a' }, items: [{ id: 1 }, { id: 2 }], drop: 1 } });
    assert.deepEqual(r.body, { kind: 'json', value: { user: { age: 42, name: 'a', active: true }, items: [{ id: 1, seen: 'true' }, { id: 2, seen: 'true' }] } });
    const f = bodyOf(p, { kind: 'form', fields: { user: 'x', other: 'y' } });
    assert.deepEqual(f.body, { kind: 'form', fields: { user: 'x' } });
  });

  it('-advanced refuses a nested path that does not parse, with the entry\'s field', () => {
    const r = requestTransformerAdvancedConfig.safeParse({ dots_in_keys: false, rename: { body: ['a.b:c..d'] }, remove: { body: ['x.'] } });
    assert.deepEqual(r.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`), [
      "remove.body.0: 'x.': ends with .",
      "rename.body.0: 'c..d': expected a key at 2",
    ]);
  });
});
