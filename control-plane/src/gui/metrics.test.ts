import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { emptyTotals, p99Between, pointsBetween, readExposition } from './metrics.ts';

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
    assert.deepEqual(points.get('s1'), { t: 1000, rps: 10, error_rate: 0.1, p99_ms: 500 });
    assert.deepEqual(points.get('s2'), { t: 1000, rps: 0, error_rate: 0, p99_ms: null });
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
