import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { routeSchema, serviceSchema, type Route } from '@portico/shared';
import { Router, type MatchInput } from './router.ts';
import { upstreamPath } from './upstream-path.ts';

let n = 0;
const svc = serviceSchema.parse({ id: '00000000-0000-4000-8000-000000000001', created_at: 0, updated_at: 0, host: 'up.test' });
function route(fields: Record<string, unknown>): Route {
  n++;
  return routeSchema.parse({ id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`, created_at: n, updated_at: n, service: { id: svc.id }, ...fields });
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
    assert.deepEqual(m.captures, { unnamed: ['42'], named: { id: '42' } });
  });

  it('leaves routes of disabled services out', () => {
    const off = { ...svc, enabled: false };
    assert.equal(new Router([route({ paths: ['/x'] })], [off]).match(input('/x')), null);
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
