import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { addGains, emptyTotals, p99Of, parseSamples, pointsOf, readExposition, SCRAPE_MAX_BYTES, TrafficHistory, type Totals } from './metrics.ts';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '@portico/shared';

const pointsBetween = (a: Totals, b: Totals, seconds: number, t: number) => pointsOf(addGains(a, b, emptyTotals()), seconds, t);

const kong = (requests: { s1: [number, number]; s2: number }, buckets: Record<string, number>) => `
# TYPE kong_http_requests_total counter
kong_http_requests_total{service="s1",route="r1",code="200"} ${requests.s1[0]}
kong_http_requests_total{service="s1",route="r1",code="502"} ${requests.s1[1]}
kong_http_requests_total{service="s2",route="r2",code="200"} ${requests.s2}
# TYPE kong_request_latency_ms histogram
${Object.entries(buckets).map(([le, n]) => `kong_request_latency_ms_bucket{service="s1",route="r1",le="${le}"} ${n}`).join('\n')}
kong_request_latency_ms_count{service="s1",route="r1"} ${buckets['+Inf']}
kong_request_latency_ms_sum{service="s1",route="r1"} 1
`;

describe('traffic from Prometheus scrapes', () => {
  it('gives requests per second, error rate and p99 per service between two scrapes', () => {
    const a = emptyTotals(); const b = emptyTotals();
    readExposition(kong({ s1: [100, 0], s2: 10 }, { 5: 90, 50: 100, 500: 100, '+Inf': 100 }), a);
    readExposition(kong({ s1: [190, 10], s2: 10 }, { 5: 180, 50: 180, 500: 200, '+Inf': 200 }), b);
    const points = pointsBetween(a, b, 10, 1000);
    assert.deepEqual(points.get('s1'), { t: 1000, requests: 100, rps: 10, error_rate: 0.1, p99_ms: 500 });
    assert.deepEqual(points.get('s2'), { t: 1000, requests: 0, rps: 0, error_rate: 0, p99_ms: null });
  });

  it('sums the nodes scraped, and counts from zero after a counter reset', () => {
    const a = emptyTotals(); const b = emptyTotals();
    readExposition(kong({ s1: [1000, 0], s2: 0 }, { '+Inf': 0 }), a);
    readExposition(kong({ s1: [3, 0], s2: 0 }, { '+Inf': 0 }), b);
    readExposition(kong({ s1: [2, 1], s2: 0 }, { '+Inf': 0 }), b);
    assert.equal(b.requests.get('s1'), 6);
    assert.equal(pointsBetween(a, b, 1, 1).get('s1')!.rps, 6);
  });

  it('falls back to the node total where per-service series are not exported', () => {
    const t = emptyTotals();
    readExposition('# TYPE portico_http_requests_total counter\nportico_http_requests_total 42\n', t);
    assert.deepEqual([...t.requests], [['*', 42]]);
  });

  it('answers no p99 without requests, and the last finite bound above it', () => {
    assert.equal(p99Of(undefined), null);
    const same = emptyTotals(); readExposition(kong({ s1: [1, 0], s2: 0 }, { 5: 1, '+Inf': 1 }), same);
    assert.equal(p99Of(addGains(same, same, emptyTotals()).latency.get('s1')), null);
    assert.equal(p99Of(new Map([[5, 0], [10, 0], [Infinity, 4]])), 10);
  });

  it('ignores garbage without throwing', () => {
    const t = emptyTotals();
    assert.doesNotThrow(() => readExposition('kong_http_requests_total{service="x"} not-a-number\n\0\n', t));
  });

  it('reads what a hostile source sends as data: CR, NUL, non-ASCII, a 10 MB label, lines made to backtrack', () => {
    const t = emptyTotals();
    const huge = 'v'.repeat(10 * 1024 * 1024);
    readExposition([
      'kong_http_requests_total{service="s\\r\\n\0",code="200"} 3\r',
      'kong_http_requests_total{service="ユーザー",code="200"} 4',
      `kong_http_requests_total{service="${huge}",code="200"} 5`,
      `kong_http_requests_total{${'{'.repeat(200_000)} 6`,
      `kong_http_requests_total{service="${'\\"'.repeat(200_000)}`,
      `kong_http_requests_total${' '.repeat(200_000)}`,
    ].join('\n'), t);
    assert.equal(t.requests.get('sr\n\0'), 3, 'the format\'s escapes decoded (\\n; \\r is just r), NUL kept as data, the CR ending the line no part of the value');
    assert.equal(t.requests.get('ユーザー'), 4);
    assert.equal(t.requests.get(huge), 5);
    assert.equal(t.requests.size, 3, 'the malformed lines are skipped');
    assert.equal(parseSamples('a{b="c"}\u0000 1\n').length, 0, 'NUL where the value goes: no sample');
  });
});

describe('TrafficHistory over real HTTP sources', () => {
  const quiet = { debug() {}, info() {}, warn() {}, error() {} } as unknown as Logger;
  const counters = [0, 0];
  const up = [true, true];
  const servers: Server[] = [];
  const urls: string[] = [];
  const exposition = (n: number) => `kong_http_requests_total{service="s",route="r",code="200"} ${n}\n`;

  it('compares each node with itself, so one node missing a round is no reset and its requests are not counted twice', async (t) => {
    for (let i = 0; i < 2; i++) {
      const s = createServer((_req, res) => {
        if (!up[i]) { res.statusCode = 503; res.end(); return; }
        res.end(exposition(counters[i]));
      });
      await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
      servers.push(s);
      urls.push(`http://127.0.0.1:${(s.address() as AddressInfo).port}/metrics`);
    }
    t.after(() => { for (const s of servers) s.close(); });
    const h = new TrafficHistory(urls, quiet);
    const sent = () => (h.view().services.s ?? []).reduce((n, p) => n + p.requests, 0);
    counters[0] = 1000; counters[1] = 500;
    await h.scrape(); // the baseline: counters from before this CP
    assert.equal(sent(), 0);
    counters[0] += 10; counters[1] += 10;
    await h.scrape();
    assert.equal(sent(), 20);
    up[1] = false; counters[0] += 5; counters[1] += 7;
    await h.scrape(); // node 2 does not answer: node 1's 5 now, node 2's 7 when it is back
    assert.equal(sent(), 25);
    up[1] = true;
    await h.scrape();
    assert.equal(sent(), 32);
    counters[0] = 3; // node 1 restarted and served 3
    await h.scrape();
    assert.equal(sent(), 35);
  });

  it('counts an answer over SCRAPE_MAX_BYTES as no answer', async (t) => {
    const s = createServer((_req, res) => { res.writeHead(200, { 'content-length': SCRAPE_MAX_BYTES + 1 }); res.write(exposition(1)); });
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    t.after(() => { s.closeAllConnections(); s.close(); });
    const h = new TrafficHistory([`http://127.0.0.1:${(s.address() as AddressInfo).port}/metrics`], quiet, true);
    await h.scrape();
    await h.scrape();
    assert.deepEqual(h.view().services, {});
  });
});
