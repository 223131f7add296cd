import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { emptyTotals, p99Between, pointsBetween, readExposition, TrafficHistory } from './metrics.ts';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '@portico/shared';

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
    assert.equal(p99Between(undefined, undefined), null);
    assert.equal(p99Between(new Map([[5, 1], [Infinity, 1]]), new Map([[5, 1], [Infinity, 1]])), null);
    assert.equal(p99Between(undefined, new Map([[5, 0], [10, 0], [Infinity, 4]])), 10);
  });

  it('ignores garbage without throwing', () => {
    const t = emptyTotals();
    assert.doesNotThrow(() => readExposition('kong_http_requests_total{service="x"} not-a-number\n\0\n', t));
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
});
