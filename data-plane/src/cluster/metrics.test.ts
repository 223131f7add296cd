import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mergeMetrics } from './metrics.ts';

const worker = (n: number) => `# HELP kong_http_requests_total HTTP status codes
# TYPE kong_http_requests_total counter
kong_http_requests_total{service="s",code="200"} ${n}
# HELP portico_up Up
# TYPE portico_up gauge
portico_up ${n}
# TYPE lat histogram
lat_bucket{le="1"} ${n}
lat_sum ${n}
`;

describe('a multi-worker node\'s /metrics', () => {
  it('keeps each family together, once described, with every sample labelled by its worker', () => {
    assert.equal(mergeMetrics([{ worker: 1, text: worker(3) }, { worker: 2, text: worker(4) }]), `# HELP kong_http_requests_total HTTP status codes
# TYPE kong_http_requests_total counter
kong_http_requests_total{worker="1",service="s",code="200"} 3
kong_http_requests_total{worker="2",service="s",code="200"} 4
# HELP portico_up Up
# TYPE portico_up gauge
portico_up{worker="1"} 3
portico_up{worker="2"} 4
# TYPE lat histogram
lat_bucket{worker="1",le="1"} 3
lat_sum{worker="1"} 3
lat_bucket{worker="2",le="1"} 4
lat_sum{worker="2"} 4
`);
  });
});
