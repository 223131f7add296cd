// Per-match cost of the router: prefix routes, a regex route, and the probe's ReDoS route (4.3).
//   node --import tsx data-plane/src/router/router.bench.ts
// Figures from it are quoted in comments (shared/src/regex/index.ts) and in the issue 9 report.
import { routeSchema, serviceSchema, type Route } from '@portico/shared';
import { Router, type MatchInput } from './router.ts';

const svc = serviceSchema.parse({ id: '00000000-0000-4000-8000-000000000001', created_at: 0, updated_at: 0, host: 'up.test' });
let n = 0;
const route = (fields: Record<string, unknown>): Route =>
  routeSchema.parse({ id: `00000000-0000-4000-8000-${String(++n).padStart(12, '0')}`, created_at: n, updated_at: n, service: { id: svc.id }, ...fields });
const input = (path: string, extra: Partial<MatchInput> = {}): MatchInput => ({ method: 'GET', path, host: 'api.test', port: 8000, headers: {}, ...extra });

/**
 * Microseconds per `match`: the best of 5 rounds of about 100 ms each, after a warm-up, so that a
 * busy machine or a GC pause shows less in the figure.
 */
function perMatch(router: Router, req: MatchInput, ms = 100): number {
  for (let i = 0; i < 500; i++) router.match(req);
  let best = Infinity;
  for (let round = 0; round < 5; round++) {
    let calls = 0;
    const start = performance.now();
    let now = start;
    while (now - start < ms) {
      for (let i = 0; i < 50; i++) router.match(req);
      calls += 50;
      now = performance.now();
    }
    best = Math.min(best, ((now - start) * 1000) / calls);
  }
  return best;
}

const prefixes = Array.from({ length: 1000 }, (_, i) => route({ paths: [`/svc${i}/items`] }));
const mixed = new Router([
  ...prefixes,
  route({ name: 'users', paths: ['~/users/(?<id>\\d+)$'] }),
  route({ name: 'redos', paths: ['~/(a+)+$'] }),
  route({ name: 'hdr', paths: ['/h'], headers: { 'x-version': ['~*^v(\\d+)$'] } }),
  route({ name: 'ctor', paths: ['/c'], headers: { constructor: ['x'] } }),
  route({ name: 'root', paths: ['/'] }),
], [svc]);

const prefixOnly = new Router(prefixes, [svc]);

const rows: [string, MatchInput, Router][] = [
  ['prefix route among 1,000 prefix routes', input('/svc500/items/1'), prefixOnly],
  ['no route among 1,000 prefix routes', input('/nowhere/at/all'), prefixOnly],
  // Regex routes outrank prefix routes (Kong §3.3), so each is tried before a prefix answers.
  ['prefix route, 2 regex routes in the set', input('/svc500/items/1'), mixed],
  ['regex route ~/users/(?<id>\\d+)$', input('/users/42'), mixed],
  ['~/(a+)+$, 33 a + "!" (probe 4.3)', input('/' + 'a'.repeat(33) + '!'), mixed],
  ['~/(a+)+$, 10,000 a + "!"', input('/' + 'a'.repeat(10_000) + '!'), mixed],
  ['~/(a+)+$, 10,000 a (a hit: captures)', input('/' + 'a'.repeat(10_000)), mixed],
  ['~* header regex', input('/h', { headers: { 'x-version': 'V2' } }), mixed],
  ['header rule "constructor", no such header', input('/c'), mixed],
];
for (const [label, req, router] of rows) {
  const us = perMatch(router, req);
  const m = router.match(req);
  console.log(`${label.padEnd(44)} ${us < 10 ? us.toFixed(2) : us.toFixed(0).padStart(4)} µs/match  → ${m ? m.route.name ?? m.route.paths?.[0] : 'none'}`);
}
