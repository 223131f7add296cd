// Kong's per-route metrics (kong/plugins/prometheus/exporter.lua): kong_http_requests_total,
// kong_kong_latency_ms, kong_upstream_latency_ms, kong_request_latency_ms and kong_bandwidth_bytes,
// with Kong's names, labels and buckets, so Kong's Grafana dashboard (grafana.com 7424) works as is.
//
// Hand-written rather than prom-client, for the hot path (reference/edge-design.md §5): prom-client's
// `inc(labels)` hashes a label object per call (~0.4 µs); here a route's label text is built once, the
// first time the route counts after a snapshot, and a request is a Map lookup by route id, then
// array increments (bucket counts) and one small Map hit for the status code. Exposition text is
// rendered from those arrays at scrape time. The rest of /metrics is prom-client (registry.ts).
import type { ProxyContext, RequestSummary } from '@portico/shared/plugins/handlers';

export const KONG_LATENCY_BUCKETS = [1, 2, 5, 7, 10, 15, 20, 30, 50, 75, 100, 200, 500, 750, 1000, 3000, 6000];
export const UPSTREAM_LATENCY_BUCKETS = [25, 50, 80, 100, 250, 400, 700, 1000, 2000, 5000, 10000, 30000, 60000];
/** Distinct consumer label values kept per node (kong-plugin-prometheus#36); later ones count as `_other`. */
export const CONSUMER_LABEL_LIMIT = 500;
export const OTHER_CONSUMER = '_other';
/** Portico has one workspace; Kong's label carries its name. */
const WORKSPACE = 'default';

export interface PrometheusFlags {
  per_consumer: boolean;
  status_code_metrics: boolean;
  latency_metrics: boolean;
  bandwidth_metrics: boolean;
}

/** A Prometheus label value, escaped (text format 0.0.4: backslash, double quote, newline). */
export function labelValue(v: string): string {
  return /[\\"\n]/.test(v) ? v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') : v;
}

class Histogram {
  /** counts[i]: observations in (buckets[i-1], buckets[i]]; the last slot is +Inf. */
  readonly counts: Float64Array;
  sum = 0;
  constructor(readonly buckets: number[]) { this.counts = new Float64Array(buckets.length + 1); }
  observe(v: number): void {
    const b = this.buckets;
    let i = 0;
    while (i < b.length && v > b[i]) i++;
    this.counts[i]++;
    this.sum += v;
  }
  /** Each bucket line's text up to the value, and the sum and count lines', built at the first scrape (labels never change). */
  private prefixes: string[] | null = null;
  render(out: string[], name: string, labels: string): void {
    const b = this.buckets;
    const p = (this.prefixes ??= [
      ...b.map((le) => `${name}_bucket{${labels},le="${le}"} `), `${name}_bucket{${labels},le="+Inf"} `, `${name}_sum{${labels}} `, `${name}_count{${labels}} `,
    ]);
    let cumulative = 0;
    for (let i = 0; i <= b.length; i++) {
      cumulative += this.counts[i];
      out.push(p[i] + cumulative);
    }
    out.push(p[b.length + 1] + this.sum, p[b.length + 2] + cumulative);
  }
}

/** Counts by (code, source) for one consumer label value. */
class StatusCounts {
  /** key: code * 2 + (source === 'service' ? 1 : 0). */
  readonly byKey = new Map<number, number>();
  ingress = 0;
  egress = 0;
}

/** Everything counted for one route, with its label text prepared once. */
class RouteSeries {
  /** `service="…",route="…"`: the prefix every family of this route shares. */
  readonly labels: string;
  readonly byConsumer = new Map<string, StatusCounts>();
  readonly kongLatency = new Histogram(KONG_LATENCY_BUCKETS);
  readonly upstreamLatency = new Histogram(UPSTREAM_LATENCY_BUCKETS);
  readonly requestLatency = new Histogram(UPSTREAM_LATENCY_BUCKETS);
  latencyObserved = false;
  constructor(readonly route: ProxyContext['route'], service: ProxyContext['service']) {
    this.labels = `service="${labelValue(service ? service.name ?? service.host : '')}",route="${labelValue(route.name ?? route.id)}"`;
  }
}

export class KongMetrics {
  private readonly series = new Map<string, RouteSeries>();
  private readonly consumers = new Set<string>();

  /** Series of one route, (re)built when its snapshot object changed and its labels with it. */
  private seriesFor(ctx: ProxyContext): RouteSeries {
    const route = ctx.route;
    let s = this.series.get(route.id);
    if (s === undefined || s.route !== route) {
      const next = new RouteSeries(route, ctx.service);
      // A new snapshot with the same names keeps counting on the same series.
      if (s === undefined || s.labels !== next.labels) { s = next; this.series.set(route.id, s); }
    }
    return s;
  }

  private consumerLabel(ctx: ProxyContext): string {
    const c = ctx.consumer;
    if (c === null) return '';
    const name = c.username ?? c.custom_id ?? c.id;
    if (this.consumers.has(name)) return name;
    if (this.consumers.size >= CONSUMER_LABEL_LIMIT) return OTHER_CONSUMER;
    this.consumers.add(name);
    return name;
  }

  /** One finished request on a route whose prometheus plugin has `flags` (Kong's exporter.log). */
  record(ctx: ProxyContext, s: RequestSummary, flags: PrometheusFlags): void {
    const series = this.seriesFor(ctx);
    if (flags.status_code_metrics || flags.bandwidth_metrics) {
      const consumer = flags.per_consumer ? this.consumerLabel(ctx) : '';
      let counts = series.byConsumer.get(consumer);
      if (counts === undefined) series.byConsumer.set(consumer, (counts = new StatusCounts()));
      if (flags.status_code_metrics) {
        const key = s.status * 2 + (s.source === 'service' ? 1 : 0);
        counts.byKey.set(key, (counts.byKey.get(key) ?? 0) + 1);
      }
      if (flags.bandwidth_metrics) { counts.ingress += s.bytesIn; counts.egress += s.bytesOut; }
    }
    if (flags.latency_metrics) {
      series.latencyObserved = true;
      const l = s.latencies;
      if (l.request >= 0) series.requestLatency.observe(l.request);
      if (l.proxy >= 0) series.upstreamLatency.observe(l.proxy);
      if (l.kong >= 0) series.kongLatency.observe(l.kong);
    }
  }

  /** After a snapshot is applied: drop the series of routes it no longer has (APISIX#11948). */
  prune(routeIds: ReadonlySet<string>): void {
    for (const id of this.series.keys()) if (!routeIds.has(id)) this.series.delete(id);
  }

  get routeCount(): number { return this.series.size; }

  /** The text exposition of these families. */
  render(): string {
    const requests: string[] = [];
    const bandwidth: string[] = [];
    const kong: string[] = [];
    const upstream: string[] = [];
    const request: string[] = [];
    const ws = `workspace="${WORKSPACE}"`;
    for (const s of this.series.values()) {
      for (const [consumer, c] of s.byConsumer) {
        const cl = `consumer="${labelValue(consumer)}"`;
        for (const [key, n] of c.byKey) {
          requests.push(`kong_http_requests_total{${s.labels},code="${key >> 1}",source="${key & 1 ? 'service' : 'kong'}",${ws},${cl}} ${n}`);
        }
        if (c.ingress > 0) bandwidth.push(`kong_bandwidth_bytes{${s.labels},direction="ingress",${ws},${cl}} ${c.ingress}`);
        if (c.egress > 0) bandwidth.push(`kong_bandwidth_bytes{${s.labels},direction="egress",${ws},${cl}} ${c.egress}`);
      }
      if (s.latencyObserved) {
        const labels = `${s.labels},${ws}`;
        s.kongLatency.render(kong, 'kong_kong_latency_ms', labels);
        s.upstreamLatency.render(upstream, 'kong_upstream_latency_ms', labels);
        s.requestLatency.render(request, 'kong_request_latency_ms', labels);
      }
    }
    const out: string[] = [];
    const family = (name: string, type: string, help: string, lines: string[]) => {
      if (lines.length === 0) return;
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const l of lines) out.push(l);
    };
    family('kong_http_requests_total', 'counter', 'HTTP status codes per consumer/service/route in Kong', requests);
    family('kong_kong_latency_ms', 'histogram', 'Latency added by Kong and enabled plugins for each service/route in Kong', kong);
    family('kong_upstream_latency_ms', 'histogram', 'Latency added by upstream response for each service/route in Kong', upstream);
    family('kong_request_latency_ms', 'histogram', 'Total latency incurred during requests for each service/route in Kong', request);
    family('kong_bandwidth_bytes', 'counter', 'Total bandwidth (ingress/egress) throughput in bytes', bandwidth);
    return out.length ? `${out.join('\n')}\n` : '';
  }
}
