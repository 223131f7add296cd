// Kong's per-route families: cumulative buckets, label escaping, the consumer cap, pruning.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ProxyContext, RequestSummary } from '@portico/shared/plugins/handlers';
import { CONSUMER_LABEL_LIMIT, KongMetrics, labelValue } from './kong-metrics.ts';

/** The fields KongMetrics reads. */
const testCtx = (over: Partial<ProxyContext> = {}): ProxyContext =>
  ({ route: { id: 'route-1', name: 'r' }, service: { id: 'svc-1', name: 's' }, consumer: null, ...over }) as ProxyContext;

const ALL = { per_consumer: true, status_code_metrics: true, latency_metrics: true, bandwidth_metrics: true };
const summary = (over: Partial<RequestSummary> = {}): RequestSummary => ({
  status: 200, source: 'service', startedAt: 0, latencies: { kong: 3, proxy: 60, request: 63 }, bytesIn: 10, bytesOut: 100,
  upstreamTarget: null, upstreamUri: '/', tries: 1, traceId: null, responseHeaders: () => ({}), ...over,
});

describe('kong metrics', () => {
  it('renders cumulative histograms with Kong buckets and counts by code and source', () => {
    const k = new KongMetrics();
    const ctx = testCtx();
    k.record(ctx, summary(), ALL);
    k.record(ctx, summary({ latencies: { kong: 1, proxy: -1, request: 1 }, status: 401, source: 'kong' }), ALL);
    const text = k.render();
    assert.match(text, /kong_http_requests_total\{service="s",route="r",code="200",source="service",workspace="default",consumer=""\} 1/);
    assert.match(text, /kong_http_requests_total\{service="s",route="r",code="401",source="kong",workspace="default",consumer=""\} 1/);
    assert.match(text, /kong_kong_latency_ms_bucket\{service="s",route="r",workspace="default",le="1"\} 1\n/);
    assert.match(text, /kong_kong_latency_ms_bucket\{service="s",route="r",workspace="default",le="5"\} 2\n/);
    assert.match(text, /kong_upstream_latency_ms_count\{service="s",route="r",workspace="default"\} 1\n/, 'no upstream time, no observation');
    assert.match(text, /kong_bandwidth_bytes\{service="s",route="r",direction="egress",workspace="default",consumer=""\} 200/);
  });

  it('escapes label values', () => {
    assert.equal(labelValue('a"b\\c\nd'), 'a\\"b\\\\c\\nd');
  });

  it(`keeps at most ${CONSUMER_LABEL_LIMIT} consumer label values, the rest as _other`, () => {
    const k = new KongMetrics();
    for (let i = 0; i < CONSUMER_LABEL_LIMIT + 5; i++) {
      k.record(testCtx({ consumer: { id: `c${i}`, username: `u${i}` } as never }), summary(), ALL);
    }
    const text = k.render();
    assert.match(text, /consumer="_other"\} 5\n/);
    assert.equal((text.match(/^kong_http_requests_total/gm) ?? []).length, CONSUMER_LABEL_LIMIT + 1);
  });

  it('drops the series of routes a new config no longer has', () => {
    const k = new KongMetrics();
    k.record(testCtx(), summary(), ALL);
    k.record(testCtx({ route: { id: 'route-2', name: 'r2' } as never }), summary(), ALL);
    k.prune(new Set(['route-2']));
    assert.equal(k.routeCount, 1);
    assert.doesNotMatch(k.render(), /route="r"/);
  });
});
