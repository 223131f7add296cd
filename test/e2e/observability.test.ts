// Observability through real CP and DP processes (issue 13): Kong's Prometheus families checked
// against Kong's official Grafana dashboard after known traffic, traces received by a real
// OTLP/HTTP receiver, the access-log line, file-log lines, and http-log through a collector that
// turns slow, goes down and comes back.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { startStack, type Stack } from '../harness/stack.ts';
import { startGateway } from '../harness/gateway.ts';
import { waitFor, tmpRoot } from '../harness/procs.ts';
import { startLogCollector, startOtlpReceiver } from '../harness/otlp.ts';

let s: Stack;

interface Sample { name: string; labels: Record<string, string>; value: number }

/** Prometheus text format 0.0.4 → samples (comments skipped). */
function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2].replace(/\\"/g, '"').replace(/\\n/g, '\n').replace(/\\\\/g, '\\');
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

async function scrape(): Promise<Sample[]> {
  const r = await fetch(`${s.dps[0].status}/metrics`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type') ?? '', /^text\/plain/);
  return parseMetrics(await r.text());
}

const find = (samples: Sample[], name: string, labels: Record<string, string>) =>
  samples.filter((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
const value = (samples: Sample[], name: string, labels: Record<string, string>) => find(samples, name, labels).reduce((a, x) => a + x.value, 0);

async function call(p: string, headers: Record<string, string> = {}): Promise<Response> {
  const r = await fetch(s.dps[0].proxy + p, { headers });
  await r.arrayBuffer();
  return r;
}

/**
 * Every metric and label the panels and variables of Kong's official dashboard
 * (kong/plugins/prometheus/grafana/kong-official.json, grafana.com 7424) query, besides
 * Prometheus's own `instance` and the histograms' `le`, with label values the queries select on.
 */
const DASHBOARD: { metric: string; labels: string[]; values?: Record<string, string[]> }[] = [
  { metric: 'kong_http_requests_total', labels: ['service', 'route', 'code'] },
  { metric: 'kong_kong_latency_ms_bucket', labels: ['service', 'route', 'le'] },
  { metric: 'kong_upstream_latency_ms_bucket', labels: ['service', 'route', 'le'] },
  { metric: 'kong_request_latency_ms_bucket', labels: ['service', 'route', 'le'] },
  { metric: 'kong_bandwidth_bytes', labels: ['service', 'route', 'direction'], values: { direction: ['ingress', 'egress'] } },
  { metric: 'kong_upstream_target_health', labels: ['upstream', 'target', 'address', 'state'], values: { state: ['healthy', 'healthchecks_off', 'unhealthy', 'dns_error'] } },
  { metric: 'kong_nginx_connections_total', labels: ['state'], values: { state: ['accepted', 'handled', 'total', 'active', 'reading', 'writing', 'waiting'] } },
  { metric: 'kong_memory_workers_lua_vms_bytes', labels: [] },
  { metric: 'kong_memory_lua_shared_dict_bytes', labels: [] },
  { metric: 'kong_memory_lua_shared_dict_total_bytes', labels: [] },
];

const KONG_BUCKETS = ['1', '2', '5', '7', '10', '15', '20', '30', '50', '75', '100', '200', '500', '750', '1000', '3000', '6000', '+Inf'];
const UPSTREAM_BUCKETS = ['25', '50', '80', '100', '250', '400', '700', '1000', '2000', '5000', '10000', '30000', '60000', '+Inf'];

before(async () => {
  s = await startStack({ dps: 1, dpEnv: { PORTICO_ACCESS_LOG: 'on' } });
  await s.A('POST', '/upstreams', { name: 'obs-up' });
  await s.A('POST', '/upstreams/obs-up/targets', { target: `127.0.0.1:${s.upstream.port}` });
  await s.A('POST', '/services', { name: 'obs', host: 'obs-up', port: 80, protocol: 'http' });
  await s.A('POST', '/services/obs/routes', { name: 'metered', paths: ['/metered'] });
  await s.A('POST', '/services/obs/routes', { name: 'doomed', paths: ['/doomed'] });
  await s.A('POST', '/routes/metered/plugins', {
    name: 'prometheus', config: { per_consumer: true, status_code_metrics: true, latency_metrics: true, bandwidth_metrics: true, upstream_health_metrics: true },
  });
  await s.A('POST', '/routes/doomed/plugins', { name: 'prometheus', config: { status_code_metrics: true } });
  await s.A('POST', '/consumers', { username: 'alice' });
  await s.A('POST', '/consumers/alice/key-auth', { key: 'alice-secret-key' });
  await s.A('POST', '/services/obs/routes', { name: 'keyed', paths: ['/keyed'] });
  await s.A('POST', '/routes/keyed/plugins', { name: 'key-auth' });
  await s.write('POST', '/routes/keyed/plugins', { name: 'prometheus', config: { per_consumer: true, status_code_metrics: true, bandwidth_metrics: true } });
});
after(async () => { await s?.stop(); });

describe('prometheus', () => {
  it("counts known traffic under Kong's names, labels and buckets", async () => {
    for (let i = 0; i < 5; i++) assert.equal((await call('/metered/a')).status, 200);
    for (let i = 0; i < 3; i++) assert.equal((await call('/metered/b?status=404')).status, 404);
    for (let i = 0; i < 2; i++) assert.equal((await call('/keyed/x', { apikey: 'alice-secret-key' })).status, 200);
    assert.equal((await call('/keyed/x')).status, 401);
    const m = await scrape();
    const base = { service: 'obs', route: 'metered', workspace: 'default', consumer: '' };
    assert.equal(value(m, 'kong_http_requests_total', { ...base, code: '200', source: 'service' }), 5);
    assert.equal(value(m, 'kong_http_requests_total', { ...base, code: '404', source: 'service' }), 3);
    assert.equal(value(m, 'kong_http_requests_total', { route: 'keyed', code: '200', consumer: 'alice' }), 2, 'per_consumer fills the consumer label');
    assert.equal(value(m, 'kong_http_requests_total', { route: 'keyed', code: '401', source: 'kong', consumer: '' }), 1);
    for (const [name, buckets] of [['kong_kong_latency_ms', KONG_BUCKETS], ['kong_upstream_latency_ms', UPSTREAM_BUCKETS], ['kong_request_latency_ms', UPSTREAM_BUCKETS]] as const) {
      const series = find(m, `${name}_bucket`, { service: 'obs', route: 'metered', workspace: 'default' });
      assert.deepEqual(series.map((x) => x.labels.le), buckets, `${name} has Kong's buckets`);
      assert.equal(series.at(-1)!.value, 8, `${name} observed every request`);
      assert.equal(value(m, `${name}_count`, { route: 'metered' }), 8);
      assert.ok(series.every((x, i) => i === 0 || x.value >= series[i - 1].value), 'buckets are cumulative');
    }
    assert.ok(value(m, 'kong_bandwidth_bytes', { route: 'metered', direction: 'ingress' }) > 8 * 30, 'request heads counted');
    assert.ok(value(m, 'kong_bandwidth_bytes', { route: 'metered', direction: 'egress' }) > 8 * 100, 'responses counted');
    assert.equal(find(m, 'kong_kong_latency_ms_bucket', { route: 'keyed' }).length, 0, 'latency_metrics off on that route');
    assert.equal(value(m, 'kong_upstream_target_health', { upstream: 'obs-up', target: `127.0.0.1:${s.upstream.port}`, address: `127.0.0.1:${s.upstream.port}`, state: 'healthchecks_off' }), 1);
    assert.ok(value(m, 'kong_nginx_connections_total', { state: 'total' }) >= 11);
    assert.ok(value(m, 'kong_memory_workers_lua_vms_bytes', {}) > 1_000_000);
  });

  it("serves every metric and label Kong's official Grafana dashboard queries", async () => {
    const m = await scrape();
    for (const d of DASHBOARD) {
      const series = find(m, d.metric, {});
      assert.ok(series.length > 0, `${d.metric} is exported`);
      for (const l of d.labels) assert.ok(series.every((x) => l in x.labels), `${d.metric} carries ${l}`);
      for (const [l, vs] of Object.entries(d.values ?? {})) for (const v of vs) assert.ok(series.some((x) => x.labels[l] === v), `${d.metric}{${l}="${v}"}`);
    }
  });

  it("exports Portico's own families beside Kong's", async () => {
    const m = await scrape();
    assert.ok(value(m, 'portico_config_version', {}) > 0);
    assert.equal(value(m, 'kong_control_plane_connected', {}), 1, 'NATS is up');
    assert.equal(find(m, 'portico_redis_connections', {}).length, 3);
    for (const name of ['portico_config_apply_duration_ms', 'portico_config_apply_event_loop_delay_max_ms', 'portico_circuit_breaker_trips_total', 'portico_upstream_retries_total', 'portico_rate_limit_decisions_total', 'portico_http_requests_total', 'kong_data_plane_config_hash', 'kong_node_info']) {
      assert.ok(find(m, name, {}).length > 0, `${name} is exported`);
    }
  });

  it('counts rate-limit decisions by outcome', async () => {
    await s.A('POST', '/services/obs/routes', { name: 'limited', paths: ['/limited'] });
    await s.write('POST', '/routes/limited/plugins', { name: 'rate-limiting', config: { minute: 2 } });
    const before = await scrape();
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await call('/limited')).status);
    assert.deepEqual(statuses, [200, 200, 429, 429]);
    const m = await scrape();
    assert.equal(value(m, 'portico_rate_limit_decisions_total', { outcome: 'allowed' }) - value(before, 'portico_rate_limit_decisions_total', { outcome: 'allowed' }), 2);
    assert.equal(value(m, 'portico_rate_limit_decisions_total', { outcome: 'limited' }) - value(before, 'portico_rate_limit_decisions_total', { outcome: 'limited' }), 2);
  });

  it('drops the series of a deleted route at the next apply', async () => {
    assert.equal((await call('/doomed/x')).status, 200);
    assert.equal(value(await scrape(), 'kong_http_requests_total', { route: 'doomed' }), 1);
    await s.write('DELETE', '/routes/doomed');
    const m = await scrape();
    assert.equal(find(m, 'kong_http_requests_total', { route: 'doomed' }).length, 0);
    assert.equal(value(m, 'kong_http_requests_total', { route: 'metered', code: '200' }), 5, 'other routes keep counting');
  });

  it('is not on the proxy port', async () => {
    const r = await call('/metrics');
    assert.equal(r.status, 404);
  });

  it('refuses a bad flag with a field error, changing nothing', async () => {
    const r = await s.A('POST', '/plugins', { name: 'prometheus', config: { per_consumer: 'yes', bogus: 1 } });
    assert.equal(r.status, 400);
    assert.deepEqual(Object.keys(r.body.fields.config).sort(), ['bogus', 'per_consumer']);
  });
});

describe('control-plane metrics', () => {
  it('counts admin writes, snapshot build and publish times, and data planes in sync', async () => {
    const r = await fetch(`${s.cp.status}/metrics`);
    assert.equal(r.status, 200);
    const m = parseMetrics(await r.text());
    assert.ok(value(m, 'portico_admin_writes_total', { method: 'POST', code: '201' }) >= 8);
    assert.ok(value(m, 'portico_snapshot_build_ms_count', {}) > 0);
    assert.ok(value(m, 'portico_snapshot_publish_ms_count', {}) > 0);
    const dpStatus = await (await fetch(`${s.dps[0].status}/status`)).json() as { node: { id: string } };
    await waitFor('the DP reported in sync', async () => {
      const now = parseMetrics(await (await fetch(`${s.cp.status}/metrics`)).text());
      return value(now, 'portico_data_planes', { config_status: 'in_sync' }) === 1 && value(now, 'portico_data_planes', { config_status: 'behind' }) === 0;
    });
    const dpHash = value(await scrape(), 'kong_data_plane_config_hash', {});
    await waitFor('the CP to see the DP\'s hash', async () => {
      const now = parseMetrics(await (await fetch(`${s.cp.status}/metrics`)).text());
      return value(now, 'kong_data_plane_config_hash', { node_id: dpStatus.node.id }) === dpHash;
    });
  });
});

describe('access log', () => {
  it('writes one JSON line with ids, timings, consumer, route, service, target, limits and bytes — never the key', async () => {
    await s.A('POST', '/services/obs/routes', { name: 'logged', paths: ['/logged'] });
    await s.A('POST', '/routes/logged/plugins', { name: 'key-auth', config: { key_names: ['apikey'] } });
    await s.write('POST', '/routes/logged/plugins', { name: 'rate-limiting', config: { minute: 100 } });
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const r = await call('/logged/x?apikey=alice-secret-key', { traceparent: `00-${traceId}-00f067aa0ba902b7-01` });
    assert.equal(r.status, 200);
    const id = r.headers.get('x-portico-request-id')!;
    const line = await waitFor('access log line', async () => s.dps[0].logs().split('\n').find((l) => l.includes(id) && l.includes('"access"')));
    const e = JSON.parse(line);
    assert.equal(e.request_id, id);
    assert.equal(e.trace_id, traceId, 'an incoming trace id is logged even without a tracer');
    assert.match(e.timestamp, /^\d{4}-\d\d-\d\dT/);
    assert.equal(e.method, 'GET');
    assert.equal(e.path, '/logged/x?apikey=[REDACTED]');
    assert.equal(e.status, 200);
    assert.equal(typeof e.latency_ms, 'number');
    assert.equal(typeof e.upstream_latency_ms, 'number');
    assert.ok(e.upstream_latency_ms >= 0);
    assert.equal(e.client_ip, '127.0.0.1');
    assert.equal(e.consumer.username, 'alice');
    assert.match(e.consumer.id, /^[0-9a-f-]{36}$/);
    assert.equal(e.route.name, 'logged');
    assert.equal(e.service.name, 'obs');
    assert.equal(e.upstream, `http://127.0.0.1:${s.upstream.port}`);
    assert.equal(e.cache_status, null);
    assert.equal(e.ratelimit_remaining, 99);
    assert.ok(e.bytes_in > 50 && e.bytes_out > 100);
    assert.ok(!line.includes('alice-secret-key'));
  });

  it('has a line for every request answered before SIGTERM, each whole (buffered lines are flushed on drain)', async () => {
    await s.write('POST', '/services/obs/routes', { name: 'burst', paths: ['/burst'] });
    const dp = await startGateway('data-plane', { env: { NATS_URL: s.nats.url, PORTICO_ACCESS_LOG: 'on' } });
    try {
      await waitFor('the DP has the route', async () => (await fetch(`${dp.proxy}/burst/0`)).status === 200);
      const ids: string[] = [];
      for (let round = 0; round < 30; round++) {
        await Promise.all(Array.from({ length: 10 }, async (_, i) => {
          const r = await fetch(`${dp.proxy}/burst/${round}-${i}`);
          await r.arrayBuffer();
          assert.equal(r.status, 200);
          ids.push(r.headers.get('x-portico-request-id')!);
        }));
      }
      assert.equal(await dp.stop(), 0);
      const logged = new Set(dp.logs().split('\n').filter((l) => l.includes('"access":true')).map((l) => JSON.parse(l).request_id));
      assert.deepEqual(ids.filter((id) => !logged.has(id)), [], 'requests without an access-log line');
    } finally {
      await dp.kill();
      dp.cleanup();
    }
  });
});

describe('file-log', () => {
  it("appends Kong's log entry per request with custom fields and credentials redacted", async () => {
    const file = path.join(tmpRoot(), 'access.jsonl');
    await s.A('POST', '/services/obs/routes', { name: 'filed', paths: ['/filed'] });
    await s.A('POST', '/routes/filed/plugins', { name: 'key-auth' });
    await s.write('POST', '/routes/filed/plugins', { name: 'file-log', config: { path: file, custom_fields_by_lua: { 'team.name': 'payments', env: 'test' } } });
    for (let i = 0; i < 3; i++) assert.equal((await call(`/filed/n${i}`, { apikey: 'alice-secret-key', authorization: 'Bearer t0ken' })).status, 200);
    const lines = await waitFor('three file-log lines', async () => {
      if (!existsSync(file)) return undefined;
      const l = readFileSync(file, 'utf8').trim().split('\n');
      return l.length === 3 ? l : undefined;
    });
    const entries = lines.map((l) => JSON.parse(l));
    assert.deepEqual(entries.map((e) => e.request.uri), ['/filed/n0', '/filed/n1', '/filed/n2']);
    const e = entries[0];
    assert.equal(e.request.headers.apikey, 'REDACTED');
    assert.equal(e.request.headers.authorization, 'REDACTED');
    assert.equal(e.response.status, 200);
    assert.equal(e.upstream_status, '200');
    assert.equal(e.source, 'upstream');
    assert.equal(e.route.name, 'filed');
    assert.equal(e.service.name, 'obs');
    assert.equal(e.consumer.username, 'alice');
    assert.deepEqual(Object.keys(e.latencies).sort(), ['kong', 'proxy', 'receive', 'request']);
    assert.deepEqual(e.team, { name: 'payments' });
    assert.equal(e.env, 'test');
    assert.equal(e.workspace_name, 'default');
    assert.ok(!lines.join('').includes('alice-secret-key') && !lines.join('').includes('t0ken'));
  });

  it('refuses a path with odd characters', async () => {
    const r = await s.A('POST', '/plugins', { name: 'file-log', config: { path: '/tmp/x;rm -rf' } });
    assert.equal(r.status, 400);
    assert.ok(r.body.fields.config.path);
  });
});

describe('http-log', () => {
  it('never slows or fails requests while its collector is slow, down, then back; entries are delivered or counted dropped', async () => {
    const collector = await startLogCollector();
    try {
      await s.A('POST', '/services/obs/routes', { name: 'shipped', paths: ['/shipped'] });
      await s.write('POST', '/routes/shipped/plugins', {
        name: 'http-log',
        config: {
          http_endpoint: `${collector.url.replace('http://', 'http://user:pa%20ss@')}/logs`, headers: { 'x-tenant': 't1' },
          queue: { max_batch_size: 5, max_coalescing_delay: 0.05, max_entries: 20, max_retry_time: 1, initial_retry_delay: 0.05, max_retry_delay: 0.2 },
        },
      });
      const statuses: number[] = [];
      collector.mode.delayMs = 500; // slow: each batch waits, requests do not
      for (let i = 0; i < 10; i++) statuses.push((await call(`/shipped/slow${i}`)).status);
      await waitFor('the slow collector to get its entries', async () => collector.received.length === 10, 20_000, 100);
      await collector.down(); // connections refused
      for (let i = 0; i < 40; i++) statuses.push((await call(`/shipped/down${i}`)).status);
      const dropped = async () => value(await scrape(), 'portico_log_queue_dropped_total', { sink: 'http-log' });
      // The outage outlasts max_retry_time: what was queued is dropped, counted, and the queue empties.
      await waitFor('every entry so far delivered or counted dropped', async () => collector.received.length + await dropped() === 50, 20_000, 100);
      assert.ok(await dropped() > 0, 'the outage cost entries, counted');
      await collector.up();
      collector.mode.delayMs = 0;
      for (let i = 0; i < 5; i++) statuses.push((await call(`/shipped/back${i}`)).status);
      assert.ok(statuses.every((x) => x === 200), 'every request answered by the upstream');
      await waitFor('the entries after the outage', async () => collector.received.filter((e) => e.request.uri.startsWith('/shipped/back')).length === 5, 20_000, 100);
      assert.equal(collector.received.length + await dropped(), 55, 'nothing lost uncounted');
      const uris = collector.received.map((e) => e.request.uri);
      assert.ok(uris.some((u) => u.startsWith('/shipped/slow')), 'a slow collector still gets its entries');
      const req = collector.requests.at(-1)!;
      assert.equal(req.headers.authorization, `Basic ${Buffer.from('user:pa ss').toString('base64')}`);
      assert.equal(req.headers['x-tenant'], 't1');
      assert.ok(collector.requests.some((r) => r.body.startsWith('[')), 'batches are JSON arrays');
    } finally {
      await collector.close();
    }
  });

  it('refuses a non-http endpoint and a Host header', async () => {
    const r = await s.A('POST', '/plugins', { name: 'http-log', config: { http_endpoint: 'ftp://x', headers: { Host: 'y' } } });
    assert.equal(r.status, 400);
    assert.deepEqual(Object.keys(r.body.fields.config).sort(), ['headers', 'http_endpoint']);
  });
});

describe('opentelemetry', () => {
  let otlp: Awaited<ReturnType<typeof startOtlpReceiver>>;
  before(async () => {
    otlp = await startOtlpReceiver();
    await s.A('POST', '/services/obs/routes', { name: 'traced', paths: ['/traced'] });
    await s.A('POST', '/routes/traced/plugins', {
      name: 'opentelemetry',
      config: {
        traces_endpoint: `${otlp.url}/v1/traces`, sampling_rate: 1, headers: { 'x-otlp-token': 'tok' }, resource_attributes: { 'deployment.environment': 'test' },
        http_response_header_for_traceid: 'X-Trace-Id', queue: { max_coalescing_delay: 0.05 },
      },
    });
    await s.A('POST', '/services/obs/routes', { name: 'untraced', paths: ['/untraced'] });
    await s.write('POST', '/routes/untraced/plugins', { name: 'opentelemetry', config: { traces_endpoint: `${otlp.url}/v1/traces`, sampling_rate: 0, queue: { max_coalescing_delay: 0.05 } } });
    // sdk-node loads on first use: wait until a span arrives.
    await waitFor('the exporter to run', async () => { await call('/traced/warmup'); return otlp.received.length > 0; }, 20_000, 200);
  });
  after(async () => { await otlp?.close(); });

  it('continues an incoming W3C trace: one server span, one client span per attempt, the client span id upstream', async () => {
    const traceId = '0af7651916cd43dd8448eb211c80319c', parent = 'b7ad6b7169203331';
    const r = await call('/traced/w3c', { traceparent: `00-${traceId}-${parent}-01` });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-trace-id'), traceId);
    const spans = await waitFor('two spans', async () => { const x = otlp.received.filter((sp) => sp.traceId === traceId); return x.length >= 2 ? x : undefined; });
    const server = spans.find((sp) => sp.kind === 2)!, client = spans.find((sp) => sp.kind === 3)!;
    assert.equal(server.parentSpanId, parent);
    assert.equal(client.parentSpanId, server.spanId);
    assert.equal(server.attributes['http.response.status_code'], 200);
    assert.ok(server.events.includes('kong.access') && server.events.includes('kong.log'), 'plugin phases are span events');
    assert.equal(server.resource['deployment.environment'], 'test');
    const seen = s.upstream.seen.find((x) => x.url === '/w3c')!;
    assert.equal(seen.headers.traceparent, `00-${traceId}-${client.spanId}-01`);
    assert.equal(otlp.requests.at(-1)!.headers['x-otlp-token'], 'tok');
  });

  it('extracts B3 and injects it back (propagation preserve)', async () => {
    const traceId = '463ac35c9f6413ad48485a3953bb6124', parent = '0020000000000001';
    const r = await call('/traced/b3', { 'x-b3-traceid': traceId, 'x-b3-spanid': parent, 'x-b3-sampled': '1' });
    assert.equal(r.status, 200);
    const server = await waitFor('the server span', async () => otlp.received.find((sp) => sp.traceId === traceId && sp.kind === 2));
    assert.equal(server.parentSpanId, parent);
    const seen = s.upstream.seen.find((x) => x.url === '/b3')!;
    assert.equal(seen.headers['x-b3-traceid'], traceId);
    assert.equal(seen.headers['x-b3-sampled'], '1');
    assert.notEqual(seen.headers['x-b3-spanid'], parent);
  });

  it('an unsampled request exports nothing and only forwards a traceparent; a parent that did not sample wins over the rate', async () => {
    const r = await call('/untraced/plain');
    assert.equal(r.status, 200);
    const tp = s.upstream.seen.find((x) => x.url === '/plain')!.headers.traceparent as string;
    assert.match(tp, /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    const unsampledTrace = '11111111111111111111111111111111';
    await call('/traced/declined', { traceparent: `00-${unsampledTrace}-2222222222222222-00` });
    assert.equal(s.upstream.seen.find((x) => x.url === '/declined')!.headers.traceparent, `00-${unsampledTrace}-2222222222222222-00`);
    // A sampled request after them: once its spans arrive, the batches before it have been sent.
    const marker = 'abcdefabcdefabcdefabcdefabcdef01';
    await call('/traced/marker', { traceparent: `00-${marker}-1234567812345678-01` });
    await waitFor('the marker span', async () => otlp.received.some((sp) => sp.traceId === marker));
    assert.ok(!otlp.received.some((sp) => sp.traceId === tp.split('-')[1] || sp.traceId === unsampledTrace));
  });

  it('traces a request another plugin answered before the tracer ran', async () => {
    await s.write('POST', '/routes/traced/plugins', { name: 'request-termination', config: { status_code: 418, message: 'teapot' } });
    const traceId = 'fedcba9876543210fedcba9876543210';
    const r = await call('/traced/teapot', { traceparent: `00-${traceId}-1234567812345678-01` });
    assert.equal(r.status, 418);
    const server = await waitFor('the server span', async () => otlp.received.find((sp) => sp.traceId === traceId && sp.kind === 2));
    assert.equal(server.attributes['http.response.status_code'], 418);
  });

  it('refuses a bad sampling rate and an unknown propagation format', async () => {
    const r = await s.A('POST', '/plugins', { name: 'opentelemetry', config: { traces_endpoint: 'http://x/v1/traces', sampling_rate: 2, propagation: { extract: ['carrier-pigeon'] } } });
    assert.equal(r.status, 400);
    assert.ok(r.body.fields.config.sampling_rate);
    assert.ok(r.body.fields.config.propagation);
  });
});
