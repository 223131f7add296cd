// A data-plane node's observability: the ports the prometheus, opentelemetry, file-log and http-log
// plugins use, the per-request count at `finish`, and /metrics on the status listener.
//
// /metrics = Kong's per-route families, hand-written for the hot path (kong-metrics.ts), followed
// by prom-client's registry for everything read at scrape time (gauges with `collect`), where
// prom-client costs nothing per request: Kong's node families (kong_nginx_connections_total,
// kong_memory_*, kong_upstream_target_health, kong_data_plane_config_hash, kong_node_info) and
// Portico's own (portico_*).
import os from 'node:os';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { PORTICO_VERSION } from '@portico/shared';
import type { LogPhaseSink, ObservabilityPorts, ProxyContext, RequestSummary, TracePort } from '@portico/shared/plugins/handlers';
import type { PrometheusConfig } from '@portico/shared/plugins/handlers';
import type { FileLogConfig } from '@portico/shared/plugins/handlers';
import type { HttpLogConfig } from '@portico/shared/plugins/handlers';
import type { OpenTelemetryConfig } from '@portico/shared/plugins/handlers';
import type { RuntimeConfig } from '../proxy/forward.ts';
import { breakerTrips } from '../proxy/balancer.ts';
import { KONG_LATENCY_BUCKETS, KongMetrics } from './kong-metrics.ts';
import { FileLogSink, HttpLogSink } from './sinks.ts';
import { kongEntry } from './summary.ts';
import { rateLimitRemaining } from './access-log.ts';
import { Tracing } from './tracing.ts';
import { Claimed } from './claimed.ts';
import type { DropReason } from './log-queue.ts';

export { summarize, type FinishedExchange } from './summary.ts';
export { accessLine } from './access-log.ts';
export { traceAttemptStart, traceAttemptEnd } from './tracing.ts';

export interface NodeView {
  nodeId: string;
  current(): RuntimeConfig | null;
  config: { version: number; hash: string; lastError: string | null; lastApply: { decode_ms: number; compile_ms: number; loop_delay_max_ms: number } | null };
  counters: { requests: number; connections: number; active: number };
  pluginCounters: Map<string, number>;
  /** Redis connections of rate-limiting stores. */
  redis(): { connected: boolean; errors: number; breakerOpen: boolean }[];
  nats: { connected: boolean; events: Map<string, number> } | null;
}

/** Kong's config_hash_to_number: the hash's leading hex digits as a number (13 digits fit a double exactly). */
export const hashNumber = (hash: string): number => (hash ? parseInt(hash.slice(0, 13), 16) : 0);

const EMPTY_SECRETS: ReadonlySet<string> = new Set();

export class Observability implements ObservabilityPorts {
  readonly kong = new KongMetrics();
  readonly tracing: Tracing;
  readonly registry = new Registry();
  private readonly sinks = new Claimed<FileLogSink | HttpLogSink>();
  /** Plugin instances with upstream_health_metrics on (Kong: on for all if any instance asks). */
  private readonly healthInstances = new Claimed<boolean>();
  private readonly drops: Counter<'sink' | 'reason'>;
  private readonly legs: Counter<'route' | 'leg' | 'outcome'>;
  private readonly legDurations: Histogram<'route' | 'leg'>;
  /** Leg series per route id (leg → outcomes seen), so a deleted route's series go with it. */
  private readonly legSeries = new Map<string, Map<string, Set<string>>>();
  private finishedCount = 0;
  private retries = 0;
  private readonly rateLimit = { allowed: 0, limited: 0 };

  constructor(private readonly node: NodeView) {
    this.tracing = new Tracing(node.nodeId);
    const r = this.registry;
    const self = this;
    const id = node.nodeId;
    const hostname = os.hostname();
    this.legs = new Counter({ name: 'portico_aggregate_leg_total', help: 'Aggregator legs by route, leg and outcome (ok, timeout, circuit_open, upstream_5xx, …)', labelNames: ['route', 'leg', 'outcome'], registers: [r] });
    this.legDurations = new Histogram({ name: 'portico_aggregate_leg_duration_ms', help: 'Time of aggregator legs, ms', labelNames: ['route', 'leg'], buckets: KONG_LATENCY_BUCKETS, registers: [r] });
    this.drops = new Counter({ name: 'portico_log_queue_dropped_total', help: 'Log entries dropped by a log plugin (queue full, retries exhausted)', labelNames: ['sink', 'reason'], registers: [r] });
    new Gauge({
      name: 'kong_nginx_connections_total', help: 'Number of connections by subsystem', labelNames: ['node_id', 'subsystem', 'state'], registers: [r],
      collect() {
        const c = node.counters;
        const set = (state: string, v: number) => this.set({ node_id: id, subsystem: 'http', state }, v);
        set('accepted', c.connections); set('handled', c.connections); set('total', c.requests);
        set('active', c.active); set('reading', 0); const inFlight = Math.max(0, c.requests - self.finishedCount);
        set('writing', inFlight); set('waiting', Math.max(0, c.active - inFlight));
      },
    });
    new Gauge({ name: 'kong_nginx_requests_total', help: 'Number of requests total', labelNames: ['node_id', 'subsystem'], registers: [r], collect() { this.set({ node_id: id, subsystem: 'http' }, node.counters.requests); } });
    new Gauge({ name: 'kong_node_info', help: 'Kong Node metadata information', labelNames: ['node_id', 'version'], registers: [r], collect() { this.set({ node_id: id, version: PORTICO_VERSION }, 1); } });
    new Gauge({
      name: 'kong_memory_workers_lua_vms_bytes', help: 'Allocated bytes in worker Lua VM (here: the worker\'s V8 heap in use)', labelNames: ['node_id', 'pid', 'kong_subsystem'], registers: [r],
      collect() { this.set({ node_id: id, pid: String(process.pid), kong_subsystem: 'http' }, process.memoryUsage().heapUsed); },
    });
    new Gauge({
      name: 'kong_memory_lua_shared_dict_bytes', help: 'Allocated slabs in bytes in a shared_dict (here: the V8 heap in use)', labelNames: ['node_id', 'shared_dict', 'kong_subsystem'], registers: [r],
      collect() { this.set({ node_id: id, shared_dict: 'v8_heap', kong_subsystem: 'http' }, process.memoryUsage().heapUsed); },
    });
    new Gauge({
      name: 'kong_memory_lua_shared_dict_total_bytes', help: 'Total capacity in bytes of a shared_dict (here: the V8 heap size)', labelNames: ['node_id', 'shared_dict', 'kong_subsystem'], registers: [r],
      collect() { this.set({ node_id: id, shared_dict: 'v8_heap', kong_subsystem: 'http' }, process.memoryUsage().heapTotal); },
    });
    new Gauge({
      name: 'kong_data_plane_config_hash', help: 'Config hash numeric value of the data plane', labelNames: ['node_id', 'hostname', 'ip'], registers: [r],
      collect() { this.set({ node_id: id, hostname, ip: '' }, hashNumber(node.config.hash)); },
    });
    new Gauge({
      name: 'kong_upstream_target_health', help: 'Health status of targets of upstream. States = healthchecks_off|healthy|unhealthy|dns_error, value is 1 when state is populated.',
      labelNames: ['upstream', 'target', 'address', 'state', 'subsystem'], registers: [r],
      collect() {
        this.reset();
        const cfg = node.current();
        if (!cfg || ![...self.healthInstances.values()].some(Boolean)) return;
        for (const b of cfg.upstreams.values()) {
          const checks = b.checksEnabled();
          for (const t of b.targets) {
            const state = t.weight === 0 || (!checks && !b.upstream.circuit_breaker && t.healthy) ? 'healthchecks_off' : t.healthy ? 'healthy' : 'unhealthy';
            for (const s of ['healthchecks_off', 'healthy', 'unhealthy', 'dns_error']) {
              this.set({ upstream: b.upstream.name, target: t.target, address: `${t.host}:${t.port}`, state: s, subsystem: 'http' }, s === state ? 1 : 0);
            }
          }
        }
      },
    });
    new Gauge({
      name: 'portico_circuit_breaker_state', help: 'Circuit breaker of each target: 1 for its current state (closed, open, half_open)', labelNames: ['upstream', 'target', 'state'], registers: [r],
      collect() {
        this.reset();
        for (const b of node.current()?.upstreams.values() ?? []) {
          if (!b.upstream.circuit_breaker) continue;
          for (const t of b.targets) for (const s of ['closed', 'open', 'half_open']) this.set({ upstream: b.upstream.name, target: t.target, state: s }, t.breaker === s ? 1 : 0);
        }
      },
    });
    new Gauge({
      name: 'portico_certificate_expiry_seconds', help: 'Seconds until each certificate of the applied config expires (its first pair to expire; negative once expired)',
      labelNames: ['certificate_id'], registers: [r],
      collect() {
        this.reset();
        const now = Date.now() / 1000;
        for (const [certificateId, c] of node.current()?.sni?.certificates ?? []) if (c.notAfter !== null) this.set({ certificate_id: certificateId }, Math.round(c.notAfter - now));
      },
    });
    new Counter({ name: 'portico_circuit_breaker_trips_total', help: 'Times a circuit breaker opened', registers: [r], collect() { this.reset(); this.inc(breakerTrips.count); } });
    new Counter({ name: 'portico_upstream_retries_total', help: 'Upstream attempts beyond the first', registers: [r], collect() { this.reset(); this.inc(self.retries); } });
    new Counter({
      name: 'portico_rate_limit_decisions_total', help: 'Rate-limiting decisions by outcome (allowed, limited)', labelNames: ['outcome'], registers: [r],
      collect() { this.reset(); this.inc({ outcome: 'allowed' }, self.rateLimit.allowed); this.inc({ outcome: 'limited' }, self.rateLimit.limited); },
    });
    new Gauge({
      name: 'portico_redis_connections', help: 'Redis connections of rate-limit stores by state (connected, down, breaker_open)', labelNames: ['state'], registers: [r],
      collect() {
        const c = node.redis();
        this.set({ state: 'connected' }, c.filter((x) => x.connected).length);
        this.set({ state: 'down' }, c.filter((x) => !x.connected).length);
        this.set({ state: 'breaker_open' }, c.filter((x) => x.breakerOpen).length);
      },
    });
    new Counter({ name: 'portico_redis_errors_total', help: 'Redis connection errors', registers: [r], collect() { this.reset(); this.inc(node.redis().reduce((a, x) => a + x.errors, 0)); } });
    if (node.nats) {
      const nats = node.nats;
      new Gauge({ name: 'kong_control_plane_connected', help: 'Kong connected to control plane (here: NATS), 0 is unconnected', registers: [r], collect() { this.set(nats.connected ? 1 : 0); } });
      new Counter({
        name: 'portico_nats_events_total', help: 'NATS connection events (disconnect, reconnect, error, …)', labelNames: ['type'], registers: [r],
        collect() { this.reset(); for (const [type, n] of nats.events) this.inc({ type }, n); },
      });
    }
    new Gauge({ name: 'portico_config_version', help: 'Version of the config this node runs', registers: [r], collect() { this.set(node.config.version); } });
    new Gauge({ name: 'portico_config_apply_errors', help: 'Whether the last snapshot received failed to apply (1) or not (0)', registers: [r], collect() { this.set(node.config.lastError ? 1 : 0); } });
    new Gauge({
      name: 'portico_config_apply_duration_ms', help: 'Decode and compile time of the last applied snapshot', labelNames: ['step'], registers: [r],
      collect() { const a = node.config.lastApply; if (a) { this.set({ step: 'decode' }, a.decode_ms); this.set({ step: 'compile' }, a.compile_ms); } },
    });
    new Gauge({
      name: 'portico_config_apply_event_loop_delay_max_ms', help: 'Longest the event loop was held while the last snapshot applied (what a request could have waited)', registers: [r],
      collect() { const a = node.config.lastApply; if (a) this.set(a.loop_delay_max_ms); },
    });
    new Counter({ name: 'portico_http_requests_total', help: 'Requests received by the proxy listener', registers: [r], collect() { this.reset(); this.inc(node.counters.requests); } });
    new Gauge({ name: 'portico_process_resident_memory_bytes', help: 'Resident memory', registers: [r], collect() { this.set(process.memoryUsage.rss()); } });
    new Counter({
      name: 'portico_spans_dropped_total', help: 'Sampled spans not exported', labelNames: ['reason'], registers: [r],
      collect() { this.reset(); for (const [reason, n] of Object.entries(self.tracing.stats.dropped)) this.inc({ reason }, n); },
    });
  }

  private secretNames(): ReadonlySet<string> { return this.node.current()?.plugins.secretQueryNames ?? EMPTY_SECRETS; }

  private dropped = (sink: string, count: number, reason: DropReason): void => { this.drops.inc({ sink, reason }, count); };

  // ── Ports for the plugins (ObservabilityPorts) ───────────────────────────────────────────

  prometheus(config: Record<string, unknown>, instanceId: string): LogPhaseSink {
    const flags = config as PrometheusConfig;
    this.healthInstances.get(`${instanceId}:${flags.upstream_health_metrics}`, () => flags.upstream_health_metrics);
    const kong = this.kong;
    return { log: function prometheusRecord(ctx: ProxyContext) { if (ctx.summary) kong.record(ctx, ctx.summary, flags); } };
  }

  fileLog(config: Record<string, unknown>, instanceId: string): LogPhaseSink {
    return this.entrySink(config as FileLogConfig, instanceId, () => new FileLogSink(config as FileLogConfig, this.dropped));
  }

  httpLog(config: Record<string, unknown>, instanceId: string): LogPhaseSink {
    return this.entrySink(config as HttpLogConfig, instanceId, () => new HttpLogSink(config as HttpLogConfig, this.dropped));
  }

  /** Kong's log entry, built once per request, into a sink kept across snapshots while its config is unchanged. */
  private entrySink(config: FileLogConfig | HttpLogConfig, instanceId: string, make: () => FileLogSink | HttpLogSink): LogPhaseSink {
    const key = `${instanceId}:${JSON.stringify(config)}`;
    const s = this.sinks.get(key, make);
    return { log: (ctx) => { if (ctx.summary) s.write(kongEntry(ctx, ctx.summary, this.secretNames(), config.custom_fields_by_lua)); } };
  }

  tracer(config: Record<string, unknown>): TracePort {
    return this.tracing.tracer(config as OpenTelemetryConfig);
  }

  /** One aggregator leg is over (shared/src/plugins/aggregator, through ServiceCalls). */
  recordLeg(routeId: string, leg: string, outcome: string, ms: number): void {
    this.legs.inc({ route: routeId, leg, outcome });
    this.legDurations.observe({ route: routeId, leg }, ms);
    let byLeg = this.legSeries.get(routeId);
    if (!byLeg) this.legSeries.set(routeId, (byLeg = new Map()));
    let outcomes = byLeg.get(leg);
    if (!outcomes) byLeg.set(leg, (outcomes = new Set()));
    outcomes.add(outcome);
  }

  private pruneLegs(routeIds: ReadonlySet<string>): void {
    for (const [route, byLeg] of this.legSeries) {
      if (routeIds.has(route)) continue;
      for (const [leg, outcomes] of byLeg) {
        for (const outcome of outcomes) this.legs.remove({ route, leg, outcome });
        this.legDurations.remove({ route, leg });
      }
      this.legSeries.delete(route);
    }
  }

  // ── Hooks ───────────────────────────────────────────────────────────────────────────────

  /** A request is over (the exchange's finish): node-wide counts. */
  finished(s: RequestSummary, ctx: ProxyContext | null): void {
    this.finishedCount++;
    if (s.tries > 1) this.retries += s.tries - 1;
    if (ctx !== null) {
      const remaining = rateLimitRemaining(ctx);
      if (remaining !== null) {
        if (s.status === 429 && s.source === 'kong') this.rateLimit.limited++; else this.rateLimit.allowed++;
      }
    }
  }

  /** After a new config is running: series of deleted routes go, and what its plugins no longer use. */
  applied(routeIds: ReadonlySet<string>): void {
    this.kong.prune(routeIds);
    this.pruneLegs(routeIds);
    // Sinks and exporters of removed or changed plugins: send what they hold, then close.
    this.sinks.sweep((s) => { void s.close(); });
    this.healthInstances.sweep(() => {});
    this.tracing.sweep();
  }

  /** A compiled config was rejected: sinks and exporters made for it go; the running config's stay. */
  rolledBack(): void {
    this.sinks.rollback((s) => { void s.close(); });
    this.healthInstances.rollback(() => {});
    this.tracing.rollback();
  }

  /** The whole exposition text. */
  async metrics(): Promise<string> {
    return this.kong.render() + await this.registry.metrics() + this.pluginEvents();
  }

  /**
   * Plugin counters (env.counters: rate_limiting_store_failures, basic_auth_busy, …) as
   * `portico_<name>_total`, the names they had before this registry: hand-written because their
   * names are only known when a plugin first counts.
   */
  private pluginEvents(): string {
    let out = '';
    for (const [name, n] of this.node.pluginCounters) out += `# TYPE portico_${name}_total counter\nportico_${name}_total ${n}\n`;
    return out;
  }

  get contentType(): string { return this.registry.contentType; }

  async close(): Promise<void> {
    await Promise.all([...this.sinks.values()].map((s) => s.close()));
    await this.tracing.close();
  }
}
