import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { routeSchema, serviceSchema, type Route } from '@portico/shared';
import { Router, updateRoutes, type MatchInput } from './router.ts';
import { drain } from '../compile/slice.ts';
import { upstreamPath } from './upstream-path.ts';

let n = 0;
const svc = serviceSchema.parse({ id: '00000000-0000-4000-8000-000000000001', created_at: 0, updated_at: 0, host: 'up.test' });
function route(fields: Record<string, unknown>): Route {
  n++;
  return routeSchema.parse({ id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`, created_at: n, updated_at: n, service: { id: svc.id }, ...fields });
}
/**
 * A route whose header or query rules have names zod's record parsing would drop (`__proto__`):
 * built from JSON, as the snapshot decoder sees them, so every name is an own key.
 */
function hostileRoute(fields: Record<string, unknown>, rules: { headers?: Record<string, string[]>; query?: Record<string, string[]> }): Route {
  const r = route({ ...fields, headers: rules.headers && { 'x-placeholder': ['1'] }, query: rules.query && { placeholder: ['1'] } });
  return { ...r, headers: rules.headers ? JSON.parse(JSON.stringify(rules.headers)) : r.headers, query: rules.query ? JSON.parse(JSON.stringify(rules.query)) : r.query };
}
const input = (path: string, extra: Partial<MatchInput> = {}): MatchInput => ({ method: 'GET', path, host: 'any.test', port: 8000, headers: {}, ...extra });

describe('Router', () => {
  it('matches prefixes as plain string prefixes (/route matches /routereq)', () => {
    const r = new Router([route({ name: 'a', paths: ['/route'] })], [svc]);
    assert.equal(r.match(input('/routereq'))?.route.name, 'a');
    assert.equal(r.match(input('/rout')), null);
  });

  it('prefers the longest prefix, then regex over prefix, then regex_priority', () => {
    const r = new Router([
      route({ name: 'short', paths: ['/a'] }),
      route({ name: 'long', paths: ['/a/b'] }),
      route({ name: 'rx-low', paths: ['~/a/b/\\d+'] }),
      route({ name: 'rx-high', paths: ['~/a/b/1'], regex_priority: 10 }),
    ], [svc]);
    assert.equal(r.match(input('/a/x'))?.route.name, 'short');
    assert.equal(r.match(input('/a/b/x'))?.route.name, 'long');
    assert.equal(r.match(input('/a/b/2'))?.route.name, 'rx-low');
    assert.equal(r.match(input('/a/b/1'))?.route.name, 'rx-high');
  });

  it('ranks more matcher fields above fewer, and plain hosts above wildcards', () => {
    const r = new Router([
      route({ name: 'path', paths: ['/x'] }),
      route({ name: 'path-method', paths: ['/x'], methods: ['GET'] }),
      route({ name: 'wild', hosts: ['*.h.test'] }),
      route({ name: 'plain', hosts: ['a.h.test'] }),
      route({ name: 'suffix', hosts: ['api.*'] }),
    ], [svc]);
    assert.equal(r.match(input('/x'))?.route.name, 'path-method');
    assert.equal(r.match(input('/x', { method: 'POST' }))?.route.name, 'path');
    assert.equal(r.match(input('/', { host: 'a.h.test' }))?.route.name, 'plain');
    assert.equal(r.match(input('/', { host: 'b.c.h.test' }))?.route.name, 'wild');
    assert.equal(r.match(input('/', { host: 'api.example.org' }))?.route.name, 'suffix');
  });

  it('matches headers case-insensitively, all names required, regex values with ~*', () => {
    const r = new Router([route({ name: 'h', headers: { 'X-A': ['One'], 'x-b': ['~*^v\\d$'] } })], [svc]);
    assert.equal(r.match(input('/', { headers: { 'x-a': 'one', 'x-b': 'V2' } }))?.route.name, 'h');
    assert.equal(r.match(input('/', { headers: { 'x-a': 'one' } })), null);
  });

  it('exposes regex captures and the matched text', () => {
    const r = new Router([route({ paths: ['~/users/(?<id>\\d+)'] })], [svc]);
    const m = r.match(input('/users/42/x'))!;
    assert.equal(m.matchedPath, '/users/42');
    assert.deepEqual(m.captures?.unnamed, ['42']);
    assert.deepEqual({ ...m.captures?.named }, { id: '42' });
  });

  it('gives a numbered group that did not take part as an empty string and leaves such a named group out (as Kong), on a null-prototype object', () => {
    const r = new Router([route({ paths: ['~/v(?:(\\d+)|(?<word>[a-z]+))/(?<constructor>x)?'] })], [svc]);
    const m = r.match(input('/v7/'))!;
    assert.equal(m.matchedPath, '/v7/');
    assert.deepEqual(m.captures?.unnamed, ['7', '', '']);
    assert.equal(Object.getPrototypeOf(m.captures?.named), null);
    assert.deepEqual({ ...m.captures?.named }, {});
    assert.equal(m.captures?.named.constructor, undefined, 'not the inherited Object constructor');
    assert.equal(r.match(input('/vab/x'))?.captures?.named.constructor, 'x');
  });

  it('matches header rules named after Object.prototype members only against a real header of that name', () => {
    // Probe 4.2: `headers.constructor` read the inherited function and every request threw.
    const names = ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf'];
    const r = new Router([
      route({ name: 'path', paths: ['/p'] }),
      ...names.map((h) => hostileRoute({ name: h.toLowerCase() }, { headers: { [h]: ['yes', '~*^re'] } })),
    ], [svc]);
    for (const name of names) {
      const h = name.toLowerCase(); // Node gives header names lower-cased; rule names are folded to match
      // Node's req.headers inherits from Object.prototype: a plain object literal is the same shape.
      assert.equal(r.match(input('/p', { headers: {} }))?.route.name, 'path', h);
      assert.equal(r.match(input('/other', { headers: { 'x-a': '1' } })), null, h);
      // An own property of that name (JSON.parse makes `__proto__` an own key).
      const own = JSON.parse(JSON.stringify({ [h]: 'YES' })) as MatchInput['headers'];
      assert.ok(Object.hasOwn(own, h));
      assert.equal(r.match(input('/other', { headers: own }))?.route.name, h);
      assert.equal(r.match(input('/other', { headers: JSON.parse(JSON.stringify({ [h]: ['no', 'Regex'] })) }))?.route.name, h);
      assert.equal(r.match(input('/other', { headers: JSON.parse(JSON.stringify({ [h]: 'no' })) })), null, h);
    }
  });

  it('reads request headers as own properties, so a polluted Object.prototype matches nothing', () => {
    const r = new Router([route({ name: 'h', headers: { 'x-polluted': ['v'] } })], [svc]);
    const proto = Object.prototype as Record<string, unknown>;
    proto['x-polluted'] = 'v';
    try {
      assert.equal(r.match(input('/', { headers: {} })), null);
    } finally {
      delete proto['x-polluted'];
    }
    assert.equal(r.match(input('/', { headers: { 'x-polluted': 'V' } }))?.route.name, 'h');
  });

  it('matches a header rule against any value of a repeated header', () => {
    const r = new Router([route({ name: 'c', headers: { 'set-cookie': ['b'] } })], [svc]);
    assert.equal(r.match(input('/', { headers: { 'set-cookie': ['a', 'B'] } }))?.route.name, 'c');
    assert.equal(r.match(input('/', { headers: { 'set-cookie': ['a'] } })), null);
    assert.equal(r.match(input('/', { headers: { 'set-cookie': undefined } })), null);
  });

  it('answers a catastrophic-backtracking path regex on a 10,000-character path (RE2, linear time)', () => {
    // Probe 4.3: on V8's engine 33 characters took 36.7 s, doubling per character.
    const r = new Router([route({ name: 'redos', paths: ['~/(a+)+$'] }), route({ name: 'root', paths: ['/'] })], [svc]);
    const attack = '/' + 'a'.repeat(10_000) + '!';
    assert.equal(r.match(input(attack))?.route.name, 'root');
    const m = r.match(input('/' + 'a'.repeat(10_000)))!;
    assert.equal(m.route.name, 'redos');
    assert.equal(m.captures?.unnamed[0].length, 10_000);
  });

  it('answers a catastrophic-backtracking ~* header regex on a 10,000-character value', () => {
    const r = new Router([route({ name: 'h', headers: { 'x-a': ['~*^(a+)+$'] } })], [svc]);
    assert.equal(r.match(input('/', { headers: { 'x-a': 'a'.repeat(10_000) + '!' } })), null);
    assert.equal(r.match(input('/', { headers: { 'x-a': 'A'.repeat(10_000) } }))?.route.name, 'h');
  });

  it('refuses, naming the route, a regex RE2 cannot run in linear time', () => {
    // The admin API refuses these at write time; a snapshot from elsewhere (an older database, a
    // forged message) must still be refused whole, so the routes are built past the schema.
    const raw = (fields: Partial<Route>) => ({ ...route({ paths: ['/x'] }), ...fields }) as Route;
    assert.throws(() => new Router([raw({ id: '00000000-0000-4000-8000-00000000abcd', paths: ['~/(a)\\1'] })], [svc]),
      /route 00000000-0000-4000-8000-00000000abcd: invalid regex in paths: '\/\(a\)\\1'/);
    assert.throws(() => new Router([raw({ headers: { 'x-a': ['~*(?<=x)a'] } })], [svc]), /invalid regex in headers\.x-a/);
  });

  it('matches query rules: any listed value, or any value with *, on names that are Object.prototype members', () => {
    const r = new Router([
      route({ name: 'v', paths: ['/q'], query: { version: ['1', '2'] } }),
      hostileRoute({ name: 'any', paths: ['/a'] }, { query: { ['__proto__']: ['*'] } }),
      hostileRoute({ name: 'ctor', paths: ['/c'] }, { query: { constructor: ['x'] } }),
      route({ name: 'plain', paths: ['/'] }),
    ], [svc]);
    assert.equal(r.match(input('/q', { query: '?version=2' }))?.route.name, 'v');
    assert.equal(r.match(input('/q', { query: 'version=3&version=1' }))?.route.name, 'v');
    assert.equal(r.match(input('/q', { query: 'version=3' }))?.route.name, 'plain');
    assert.equal(r.match(input('/a', { query: '__proto__' }))?.route.name, 'any');
    assert.equal(r.match(input('/a', { query: '__proto__=1&x' }))?.route.name, 'any');
    assert.equal(r.match(input('/a', { query: 'constructor=1' }))?.route.name, 'plain');
    assert.equal(r.match(input('/c', { query: 'constructor=x' }))?.route.name, 'ctor');
    assert.equal(r.match(input('/c', { query: 'toString=x' }))?.route.name, 'plain');
    assert.equal(r.match(input('/c'))?.route.name, 'plain');
    assert.equal(r.match(input('/q', { query: '%E0%A4%A&version=%ZZ' }))?.route.name, 'plain');
  });

  it('keeps no request state on the router (the parsed query lives in the match call)', () => {
    const r = new Router([route({ name: 'v', paths: ['/q'], query: { version: ['1'] } })], [svc]);
    const before = Object.entries(r);
    assert.equal(r.match(input('/q', { query: 'version=1' }))?.route.name, 'v');
    assert.deepEqual(Object.entries(r), before);
    assert.ok(!Object.values(r).some((v) => v instanceof URLSearchParams));
  });

  it('leaves routes of disabled services out', () => {
    const off = { ...svc, enabled: false };
    assert.equal(new Router([route({ paths: ['/x'] })], [off]).match(input('/x')), null);
  });

  it('updated with a shorter prefix that outranks a longer one, stops probing no earlier than the new route (the per-length bound is lowered at commit)', () => {
    const short = route({ name: 'short', paths: ['/a'] });
    const long = route({ name: 'long', paths: ['/abcd'] });
    const running = new Router([short, long], [svc]);
    assert.equal(running.match(input('/abcd'))?.route.name, 'long');
    // More fields outrank a longer path (§3.3): this '/a' route beats '/abcd' for a GET.
    const methods = route({ name: 'short-get', paths: ['/a'], methods: ['GET'] });
    for (const change of [undefined, { added: [methods], removed: [] }]) {
      const routes = [short, long, methods];
      const updated = drain(updateRoutes(new Router([short, long], [svc]).prepared, routes, [svc], () => [], change));
      assert.ok(updated, 'an update, not a full build');
      const next = new Router(routes, [svc], () => [], updated.prepared);
      assert.equal(next.pending, true);
      next.commit();
      assert.equal(next.match(input('/abcd'))?.route.name, 'short-get', `change ${change ? 'told' : 'found'}`);
      assert.equal(next.match(input('/abcd', { method: 'POST' }))?.route.name, 'long');
      assert.deepEqual(updated.added.map((r) => r.name), ['short-get']);
    }
  });

  it('updated with the change told, gives up to a full build when the change is not against what it was made from', () => {
    const a = route({ name: 'a', paths: ['/a'] });
    const b = route({ name: 'b', paths: ['/b'] });
    const prepared = new Router([a], [svc]).prepared;
    assert.equal(drain(updateRoutes(prepared, [b], [svc], () => [], { added: [b], removed: [route({ paths: ['/x'] })] })), null, 'removes a route it never had');
    assert.equal(drain(updateRoutes(prepared, [a, b], [svc], () => [], { added: [a, b], removed: [] })), null, 'adds a route it has');
  });

  it('routes among 10,000 routes to the right one', () => {
    const routes = Array.from({ length: 10_000 }, (_, i) => route({ name: `r${i}`, paths: [`/svc${i}/items`] }));
    const r = new Router(routes, [svc]);
    assert.equal(r.match(input('/svc9999/items/1'))?.route.name, 'r9999');
    assert.equal(r.match(input('/svc1/items'))?.route.name, 'r1');
    assert.equal(r.match(input('/svc10000/items')), null);
  });
});

describe('upstreamPath (path_handling v0)', () => {
  const rows: [string | null, string, string, boolean, string][] = [
    ['/', '/route', '/route', true, '/'],
    ['/', '/route', '/routereq', true, '/req'],
    ['/srv', '/rou', '/roureq', true, '/srv/req'],
    ['/srv', '/rou', '/roureq', false, '/srv/roureq'],
    ['/srv/', '/rou', '/rou', true, '/srv'],
    ['/service', '/', '/', true, '/service'],
    ['/service', '/route', '/route/', true, '/service/'],
    ['/service/', '/route', '/routereq', true, '/service/req'],
    ['/service', '', '/route/', true, '/service/route/'],
    ['/service', '/route', '/route../req', true, '/service/req'],
    [null, '/x', '/x/y', false, '/x/y'],
    ['/s/', '/x', '/x/', true, '/s/'],
  ];
  for (const [S, P, R, strip, want] of rows) {
    it(`${S} + ${P} (${strip}) + ${R} → ${want}`, () => assert.equal(upstreamPath(S, P, R, strip), want));
  }
});
