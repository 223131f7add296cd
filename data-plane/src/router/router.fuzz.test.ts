// Property-based tests of the router (issue 9, fuzzing): random route sets and hostile requests.
// `match` never throws, and it picks what a brute-force reference model of Kong's rules picks
// (reference/kong-compat.md §3.2–3.3). Bounded in `npm test`; PORTICO_FUZZ_RUNS=20000 for a long run.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { routeSchema, serviceSchema, type Route, type Service } from '@portico/shared';
import { prepareRoutes, Router, updateRoutes, type MatchInput } from './router.ts';
import { drain } from '../compile/slice.ts';

const RUNS = Number(process.env.PORTICO_FUZZ_RUNS ?? 300);

const svc = serviceSchema.parse({ id: '00000000-0000-4000-8000-000000000001', created_at: 0, updated_at: 0, host: 'up.test' });
const off = serviceSchema.parse({ id: '00000000-0000-4000-8000-000000000002', created_at: 0, updated_at: 0, host: 'off.test', enabled: false });
const services = [svc, off];
/** Defaults as the snapshot carries them; fields are set on top, bypassing zod so hostile names stay own keys. */
const base = routeSchema.parse({ id: '00000000-0000-4000-8000-000000000000', created_at: 0, updated_at: 0, paths: ['/'] });

// Small alphabets so that generated routes and requests collide often.
const SEGMENTS = ['a', 'b', 'ab', 'api', 'v1', 'users', '42', 'é', '%2F', '.x'];
const HOSTS = ['a.test', 'b.test', 'a.b.test', '*.test', '*.b.test', 'a.*', 'api.*', 'a.test:8000', '*.test:9000', 'api.*:8000'];
const REQUEST_HOSTS = ['a.test', 'b.test', 'a.b.test', 'x.a.b.test', 'api.x', 'api.test', 'a.x', 'test', ''];
const HEADER_NAMES = ['x-a', 'x-b', 'constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf', 'X-Up'];
const HEADER_VALUES = ['1', 'yes', 'Yes', '~*^y', '~*^(a|b)+$', '~*[0-9]$', '~*^(a+)+$'];
const QUERY_NAMES = ['v', 'k', '__proto__', 'constructor'];
// Regex pieces valid, and with the same meaning, in RE2 and in JavaScript. `(a+)+` is the probe's
// catastrophic pattern: the model runs it on V8 only for paths of a few characters.
const REGEX_PIECES = ['/', 'a', 'b+', '(\\d+)', '([a-z]*)', '(a|ab)', '(?:v1|api)', '.', 'x?', '[^/]+', '(?<seg>[a-z]+)', '(a+)+', '$'];
const METHODS = ['GET', 'POST', 'PUT'];

const path = fc.array(fc.constantFrom(...SEGMENTS), { maxLength: 4 }).map((s) => '/' + s.join('/'));
const regexPath = fc.array(fc.constantFrom(...REGEX_PIECES), { minLength: 1, maxLength: 5 })
  // At most one named group per pattern (a repeated name is an error in both engines).
  .map((ps) => '~/' + ps.map((p, i) => (p.includes('?<seg>') && ps.indexOf(p) !== i ? '([a-z]+)' : p)).join(''));
const rules = (names: string[], values: string[]) =>
  fc.array(fc.tuple(fc.constantFrom(...names), fc.array(fc.constantFrom(...values), { minLength: 1, maxLength: 3 })), { maxLength: 2 })
    .map((entries) => (entries.length ? Object.fromEntries(entries) as Record<string, string[]> : null));

const routeFields = (withRegex: boolean, hostile: boolean) => fc.record({
  paths: fc.option(fc.array(withRegex ? fc.oneof(path, regexPath) : path, { minLength: 1, maxLength: 3 }), { nil: null }),
  methods: fc.option(fc.subarray(METHODS, { minLength: 1 }), { nil: null }),
  hosts: fc.option(fc.subarray(HOSTS, { minLength: 1, maxLength: 3 }), { nil: null }),
  headers: rules(HEADER_NAMES, HEADER_VALUES),
  query: rules(QUERY_NAMES, ['1', '2', '*']),
  regex_priority: fc.integer({ min: 0, max: 2 }),
  created_at: fc.integer({ min: 0, max: 3 }),
  protocols: fc.constantFrom<Route['protocols']>(['http', 'https'], ['https'], ['grpc']),
  service: fc.constantFrom(svc, off, null),
}).map((f) => (hostile ? f : { ...f, headers: null, query: null }));

/** A route set: ids in generation order; a route with no matcher field gets one path. */
const routeSet = (withRegex: boolean, hostile: boolean) => fc.array(routeFields(withRegex, hostile), { minLength: 1, maxLength: 10 }).map((list) =>
  list.map((f, i): Route => ({
    ...base, ...f,
    id: `00000000-0000-4000-8000-${String(i + 10).padStart(12, '0')}`,
    paths: f.paths ?? (f.methods || f.hosts || f.headers || f.query ? null : ['/']),
    service: f.service && { id: f.service.id },
  })));

const hostileString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: fc.constantFrom('a', '/', '%', '2', 'F', 'é', '\u0000', '\uffff', '\ud83d\ude00', '!'), maxLength: 60 }),
  fc.nat({ max: 12_000 }).map((n) => '/' + 'a'.repeat(n) + '!'),
);
const headerValue = fc.oneof(fc.constantFrom('1', 'yes', 'YES', 'ab', 'x9', ''), fc.string({ unit: 'binary', maxLength: 20 }), fc.nat({ max: 5000 }).map((n) => 'a'.repeat(n) + '!'));
const headerEntries = fc.array(fc.tuple(
  fc.oneof(fc.constantFrom(...HEADER_NAMES.map((h) => h.toLowerCase()), 'host', '', 'x-a '), fc.string({ maxLength: 12 })),
  fc.oneof(headerValue, fc.array(headerValue, { maxLength: 3 })),
), { maxLength: 4 });
/** As Node gives them (inherits Object.prototype), as JSON or a null-prototype object would. */
const headers = fc.tuple(headerEntries, fc.constantFrom('plain', 'null')).map(([entries, kind]) => {
  const h = Object.fromEntries(entries) as MatchInput['headers'];
  return kind === 'null' ? Object.assign(Object.create(null) as MatchInput['headers'], h) : h;
});
const query = fc.option(fc.oneof(
  fc.array(fc.tuple(fc.constantFrom(...QUERY_NAMES, 'x'), fc.constantFrom('1', '2', '', '%ZZ', '%E0%A4%A')), { maxLength: 3 })
    .map((kv) => '?' + kv.map(([k, v]) => `${k}=${v}`).join('&')),
  fc.string({ unit: 'binary', maxLength: 30 }),
), { nil: undefined });

const request = (hostile: boolean) => fc.record({
  method: hostile ? fc.oneof(fc.constantFrom(...METHODS, 'DELETE'), fc.string({ maxLength: 8 })) : fc.constantFrom(...METHODS, 'DELETE'),
  path: hostile ? fc.oneof(path, hostileString) : path,
  host: hostile ? fc.oneof(fc.constantFrom(...REQUEST_HOSTS), fc.string({ unit: 'binary', maxLength: 20 })) : fc.constantFrom(...REQUEST_HOSTS),
  port: fc.constantFrom(8000, 9000),
  headers: hostile ? headers : headerEntries.map((e) => Object.fromEntries(e.filter(([, v]) => typeof v === 'string' && v.length < 10)) as MatchInput['headers']),
  query: hostile ? query : fc.constant(undefined),
});

// ---- The reference model: try every (route, path) pair, keep the best by Kong's order. --------

function hostOk(rule: string, host: string, port: number): boolean {
  const [name, p] = rule.toLowerCase().split(':');
  if (p !== undefined && Number(p) !== port) return false;
  if (name.startsWith('*.')) return host.endsWith(name.slice(1));
  if (name.endsWith('.*')) return host.startsWith(name.slice(0, -1));
  return host === name;
}

function headerOk(name: string, values: string[], headers: MatchInput['headers']): boolean {
  const key = name.toLowerCase();
  if (!Object.prototype.hasOwnProperty.call(headers, key)) return false;
  const got = headers[key];
  return (Array.isArray(got) ? got : [got]).some((v) => typeof v === 'string' && values.some((w) =>
    w.startsWith('~*') ? new RegExp(w.slice(2), 'i').test(v) : w.toLowerCase() === v.toLowerCase()));
}

function queryOk(name: string, values: string[], raw: string | undefined): boolean {
  const got = new URLSearchParams((raw ?? '').replace(/^\?/, '')).getAll(name);
  return got.length > 0 && (values.includes('*') || got.some((v) => values.includes(v)));
}

interface Expected { id: string; matchedPath: string; unnamed: string[] | null; named: Record<string, string> | null }

function reference(routes: Route[], svcs: Service[], req: MatchInput): Expected | null {
  let best: { key: (number | string)[]; found: Expected } | null = null;
  for (const r of routes) {
    const s = r.service && svcs.find((x) => x.id === r.service!.id);
    if (s && !s.enabled) continue;
    if (!r.protocols.includes('http') && !r.protocols.includes('https')) continue;
    if (r.methods?.length && !r.methods.includes(req.method)) continue;
    if (r.hosts?.length && !r.hosts.some((h) => hostOk(h, req.host, req.port))) continue;
    if (r.headers && !Object.entries(r.headers).every(([n, v]) => headerOk(n, v, req.headers))) continue;
    if (r.query && !Object.entries(r.query).every(([n, v]) => queryOk(n, v, req.query))) continue;
    const headerCount = r.headers ? Object.keys(r.headers).length : 0;
    const fields = [r.methods?.length, r.hosts?.length, headerCount, r.paths?.length, r.snis?.length, r.query ? Object.keys(r.query).length : 0].filter(Boolean).length;
    const plainHosts = r.hosts?.length && r.hosts.every((h) => !h.includes('*')) ? 1 : 0;
    for (const p of r.paths ?? [null]) {
      let found: Expected;
      let isRegex = 0;
      if (p === null) found = { id: r.id, matchedPath: '', unnamed: null, named: null };
      else if (p.startsWith('~')) {
        const m = new RegExp('^(?:' + p.slice(1) + ')').exec(req.path);
        if (!m) continue;
        isRegex = 1;
        found = { id: r.id, matchedPath: m[0], unnamed: m.slice(1).map((x) => x ?? ''), named: Object.fromEntries(Object.entries(m.groups ?? {}).filter(([, v]) => v !== undefined)) };
      } else {
        if (!req.path.startsWith(p)) continue;
        found = { id: r.id, matchedPath: p, unnamed: null, named: null };
      }
      // Higher wins on the numbers; then the older route, then the smaller id.
      const key = [fields, plainHosts, headerCount, isRegex, isRegex ? r.regex_priority : 0, p && !isRegex ? p.length : 0, -r.created_at, r.id];
      if (!best || better(key, best.key)) best = { key, found };
    }
  }
  return best?.found ?? null;
}

function better(a: (number | string)[], b: (number | string)[]): boolean {
  for (let i = 0; i < a.length - 1; i++) if (a[i] !== b[i]) return (a[i] as number) > (b[i] as number);
  return a[a.length - 1] < b[b.length - 1];
}

function actual(router: Router, req: MatchInput): Expected | null {
  const m = router.match(req);
  return m && { id: m.route.id, matchedPath: m.matchedPath, unnamed: m.captures?.unnamed ?? null, named: m.captures ? { ...m.captures.named } : null };
}

describe('Router (property-based)', () => {
  it('never throws on hostile routes and requests, and answers only with a route of the set', () => {
    fc.assert(fc.property(routeSet(true, true), fc.array(request(true), { minLength: 1, maxLength: 8 }), (routes, reqs) => {
      const router = new Router(routes, services);
      for (const req of reqs) {
        const m = router.match(req);
        if (m) assert.ok(routes.includes(m.route));
        if (m?.captures) assert.equal(Object.getPrototypeOf(m.captures.named), null);
      }
    }), { numRuns: RUNS });
  });

  it('agrees with a brute-force model of Kong\'s rules on prefixes, methods and hosts', () => {
    fc.assert(fc.property(routeSet(false, false), fc.array(request(false), { minLength: 1, maxLength: 8 }), (routes, reqs) => {
      const router = new Router(routes, services);
      for (const req of reqs) assert.deepEqual(actual(router, req), reference(routes, services, req));
    }), { numRuns: RUNS });
  });

  it('agrees with the model with regex paths, header and query rules (RE2 and V8 give the same captures)', () => {
    const safeHeaders = fc.array(fc.tuple(fc.constantFrom(...HEADER_NAMES.map((h) => h.toLowerCase())), fc.oneof(
      fc.constantFrom('1', 'yes', 'YES', 'ab', 'x9', 'no'), fc.array(fc.constantFrom('1', 'Yes', 'b'), { maxLength: 2 }))), { maxLength: 3 })
      .map((e) => Object.fromEntries(e) as MatchInput['headers']);
    const req = fc.record({
      method: fc.constantFrom(...METHODS), path: fc.oneof(path, fc.array(fc.constantFrom('a', 'b', 'v1', 'api', '/', '42', 'x'), { maxLength: 8 }).map((s) => '/' + s.join(''))),
      host: fc.constantFrom(...REQUEST_HOSTS), port: fc.constantFrom(8000, 9000), headers: safeHeaders,
      query: fc.option(fc.array(fc.tuple(fc.constantFrom(...QUERY_NAMES), fc.constantFrom('1', '2', '3')), { maxLength: 3 }).map((kv) => kv.map(([k, v]) => `${k}=${v}`).join('&')), { nil: undefined }),
    });
    fc.assert(fc.property(routeSet(true, true), fc.array(req, { minLength: 1, maxLength: 8 }), (routes, reqs) => {
      const router = new Router(routes, services);
      for (const r of reqs) assert.deepEqual(actual(router, r), reference(routes, services, r));
    }), { numRuns: RUNS });
  });

  // compile/ updates the running router for a new snapshot (router/updateRoutes): routes whose
  // object and service did not change keep their sub-routes and ranks, new ones are ranked between
  // their neighbours. Through a chain of edits, every updated router must match as the model says.
  it('a router updated snapshot after snapshot matches as the model does at every step', () => {
    let nextId = 1000;
    const edit = fc.record({
      drop: fc.array(fc.nat(), { maxLength: 3 }),
      modify: fc.array(fc.tuple(fc.nat(), routeFields(true, true)), { maxLength: 2 }),
      add: fc.array(routeFields(true, true), { maxLength: 3 }),
      // A new object for the enabled service (an unrelated field changed), or the other one toggled.
      services: fc.constantFrom('same', 'new-object', 'toggle'),
      // The snapshot is rejected after its router was built: never committed, the running one serves on.
      rejected: fc.boolean(),
      // The caller says which route objects came and went (the decoder does), rather than updateRoutes comparing every route.
      told: fc.boolean(),
    });
    const req = fc.record({
      method: fc.constantFrom(...METHODS), path: fc.oneof(path, fc.array(fc.constantFrom('a', 'b', 'v1', 'api', '/', '42', 'x'), { maxLength: 8 }).map((s) => '/' + s.join(''))),
      host: fc.constantFrom(...REQUEST_HOSTS), port: fc.constantFrom(8000, 9000), headers: fc.constant({}),
      query: fc.option(fc.constantFrom('v=1', 'k=2', 'v=3&k=1'), { nil: undefined }),
    });
    const asRoute = (f: ReturnType<typeof routeFields> extends fc.Arbitrary<infer T> ? T : never, id: string): Route => ({
      ...base, ...f, id, paths: f.paths ?? (f.methods || f.hosts || f.headers || f.query ? null : ['/']), service: f.service && { id: f.service.id },
    });
    fc.assert(fc.property(routeSet(true, true), fc.array(edit, { minLength: 1, maxLength: 5 }), fc.array(req, { minLength: 1, maxLength: 6 }), (initial, edits, reqs) => {
      let routes = initial;
      let svcs: Service[] = services;
      let router = new Router(routes, svcs);
      for (const e of edits) {
        const [was, wasSvcs] = [routes, svcs];
        const dropped = new Set(e.drop.map((i) => routes[i % routes.length]));
        routes = routes.filter((r) => !dropped.has(r));
        for (const [i, f] of e.modify) if (routes.length) routes[i % routes.length] = asRoute(f, routes[i % routes.length].id);
        for (const f of e.add) routes.push(asRoute(f, `00000000-0000-4000-8000-${String(nextId++).padStart(12, '0')}`));
        if (e.services === 'new-object') svcs = [{ ...svcs[0], updated_at: svcs[0].updated_at + 1 }, svcs[1]];
        if (e.services === 'toggle') svcs = [svcs[0], { ...svcs[1], enabled: !svcs[1].enabled }];
        // A change is told only with the same services, as compile/ does (it reuses chains only then).
        const kept = new Set(routes);
        const change = e.told && svcs === wasSvcs ? { added: routes.filter((r) => !was.includes(r)), removed: was.filter((r) => !kept.has(r)) } : undefined;
        const updated = drain(updateRoutes(router.prepared, routes, svcs, () => [], change));
        if (updated) {
          // What compile/ edits the running route-id set with.
          const ids = new Set(was.map((r) => r.id));
          for (const r of updated.removed) ids.delete(r.id);
          for (const r of updated.added) ids.add(r.id);
          assert.deepEqual([...ids].sort(), routes.map((r) => r.id).sort());
        }
        const prepared = updated?.prepared ?? drain(prepareRoutes(routes, svcs, () => []));
        if (e.rejected) {
          for (const r of reqs) assert.deepEqual(actual(router, r), reference(was, wasSvcs, r), 'the running router, unchanged by one built and dropped');
          [routes, svcs] = [was, wasSvcs];
          continue;
        }
        router = new Router(routes, svcs, () => [], prepared);
        router.commit();
        assert.equal(router.size, new Router(routes, svcs).size);
        for (const r of reqs) assert.deepEqual(actual(router, r), reference(routes, svcs, r));
      }
    }), { numRuns: RUNS });
  });

  it('ranks run out of room between two neighbours after many inserts: updateRoutes says so and a full build takes over', () => {
    // Every new route has the same priority (a prefix of the same length) and sorts after the ones
    // before it but before the last (created between): each insert halves the gap, so doubles run
    // out after ~50 of them.
    const first: Route = { ...base, id: '00000000-0000-4000-8000-000000000001', created_at: 0, paths: ['/aaa'], service: { id: svc.id } };
    const last: Route = { ...base, id: '00000000-0000-4000-8000-000000000002', created_at: 1_000_000, paths: ['/zzz'], service: { id: svc.id } };
    let routes = [first, last];
    let router = new Router(routes, services);
    let fullBuilds = 0;
    for (let i = 0; i < 80; i++) {
      routes = [...routes, { ...base, id: `00000000-0000-4000-8000-${String(100 + i).padStart(12, '0')}`, created_at: 1 + i, paths: [`/a${String(i).padStart(2, '0')}`], service: { id: svc.id } }];
      const updated = drain(updateRoutes(router.prepared, routes, services, () => []))?.prepared;
      if (!updated) fullBuilds++;
      router = new Router(routes, services, () => [], updated ?? drain(prepareRoutes(routes, services, () => [])));
      router.commit();
      for (const p of ['/aaa', '/a00', `/a${String(i).padStart(2, '0')}/x`, '/zzz', '/c']) {
        const req = { method: 'GET', path: p, host: 'a.test', port: 8000, headers: {} };
        assert.deepEqual(actual(router, req), reference(routes, services, req), `after insert ${i}, ${p}`);
      }
    }
    assert.ok(fullBuilds >= 1, 'precision ran out at least once');
    assert.ok(fullBuilds < 10, `mostly incremental (${fullBuilds} full builds)`);
  });
});
