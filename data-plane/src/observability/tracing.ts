// The opentelemetry plugin's tracer (reference/edge-design.md §5c). No auto-instrumentation: the
// proxy calls in at three places (the plugin's access and log phases, and each upstream attempt).
//
//   access: extract the parent (propagation.extract) ─► decide sampling: a parent's decision wins,
//           else the ratio ─► sampled: one SERVER span; not sampled: no span object at all, only a
//           traceparent forwarded (the parent's, else a fresh one with the sampled flag off)
//   each upstream attempt: one CLIENT span, its id in the traceparent sent upstream
//   log:    the server span ends with the status; plugin phases are span events
//
// Spans go to @opentelemetry/sdk-node's BatchSpanProcessor and the OTLP/HTTP exporter, one provider
// per distinct exporter config, shared across snapshots. sdk-node takes ~1 s to import, so it is
// loaded on first use: until it is, sampled requests are propagated but their spans are counted as
// dropped (portico_spans_dropped_total{reason="loading"}).
import type { IncomingHttpHeaders } from 'node:http';
import type { ProxyContext, TracePort } from '@portico/shared/plugins/handlers';
import type { OpenTelemetryConfig } from '@portico/shared/plugins/handlers';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Span, type Tracer } from '@opentelemetry/api';
import { Claimed } from './claimed.ts';
import { extract, incomingTraceId, inject, randomId, type Format, type TraceParent } from './propagation.ts';

/** Kong's tracing_sampling_rate default, used when the plugin sets no sampling_rate. */
export const DEFAULT_SAMPLING_RATE = 0.01;
const TRACE = 'portico.trace';


/** One request's trace, kept in ctx.shared. */
interface RequestTrace {
  traceId: string;
  spanId: string;
  sampled: boolean;
  span: Span | null;
  attempt: Span | null;
  inject: Format[];
  tracer: OtelTracer;
}

export interface SpanStats { dropped: Record<string, number> }

/** Where spans of one exporter config are started; `tracer` is null until sdk-node has loaded. */
export interface SpanSource { tracer: Tracer | null }

/** A provider (exporter, batch processor, resource) per distinct export config. */
class Provider implements SpanSource {
  tracer: Tracer | null = null;
  shutdown: (() => Promise<void>) | null = null;
  constructor(config: OpenTelemetryConfig, nodeId: string, stats: SpanStats) {
    void load().then(async ({ sdk, exporter }) => {
      const q = config.queue;
      const maxQueueSize = q.max_entries;
      const provider = new sdk.tracing.BasicTracerProvider({
        resource: sdk.resources.resourceFromAttributes({ 'service.name': 'kong', 'service.instance.id': nodeId, ...config.resource_attributes }),
        spanProcessors: [new sdk.tracing.BatchSpanProcessor(
          new exporter.OTLPTraceExporter({ url: config.traces_endpoint, headers: config.headers ?? {}, timeoutMillis: config.send_timeout }),
          {
            maxQueueSize, maxExportBatchSize: Math.min(config.batch_span_count ?? q.max_batch_size, maxQueueSize),
            scheduledDelayMillis: (config.batch_flush_delay ?? q.max_coalescing_delay) * 1000, exportTimeoutMillis: config.send_timeout,
          },
        )],
      });
      this.tracer = provider.getTracer('portico');
      this.shutdown = () => provider.shutdown();
    }, (err) => { stats.dropped.load_failed = (stats.dropped.load_failed ?? 0) + 1; console.error('opentelemetry failed to load', err); });
  }
}

let loading: Promise<{ sdk: typeof import('@opentelemetry/sdk-node'); exporter: typeof import('@opentelemetry/exporter-trace-otlp-http') }> | null = null;
function load() {
  return (loading ??= Promise.all([import('@opentelemetry/sdk-node'), import('@opentelemetry/exporter-trace-otlp-http')])
    .then(([sdk, exporter]) => ({ sdk, exporter })));
}

export class Tracing {
  private readonly providers = new Claimed<Provider>();
  readonly stats: SpanStats = { dropped: {} };
  constructor(private readonly nodeId: string) {}

  tracer(config: OpenTelemetryConfig): OtelTracer {
    const key = JSON.stringify([config.traces_endpoint, config.headers, config.resource_attributes, config.queue, config.batch_span_count, config.batch_flush_delay, config.send_timeout]);
    return new OtelTracer(config, this.providers.get(key, () => new Provider(config, this.nodeId, this.stats)), this.stats);
  }

  /** A new config runs: exporters its plugins no longer use send what they hold and stop. */
  sweep(): void { this.providers.sweep((p) => { void p.shutdown?.(); }); }

  /** The config being compiled was rejected: exporters made for it stop. */
  rollback(): void { this.providers.rollback((p) => { void p.shutdown?.(); }); }

  /** Exports what is buffered (shutdown). */
  async close(): Promise<void> {
    await Promise.all([...this.providers.values()].map((p) => p.shutdown?.()));
  }
}

export class OtelTracer implements TracePort {
  private readonly ratio: number;
  private readonly extractFormats: Format[];
  private readonly injectFormats: Format[] | null;
  private readonly clear: string[];
  private readonly responseHeader: string | null;
  /** With `preserve`: the formats to write for a parent that came in each format (and for none: default_format), built once. */
  private readonly preserved: Record<Format | 'none', Format[]> | null;

  constructor(config: OpenTelemetryConfig, readonly provider: SpanSource, private readonly stats: SpanStats) {
    this.ratio = config.sampling_rate ?? DEFAULT_SAMPLING_RATE;
    const p = config.propagation;
    this.extractFormats = p.extract;
    // 'preserve' injects the format the parent came in (resolved per request), else default_format.
    this.injectFormats = p.inject.includes('preserve') ? null : (p.inject as Format[]);
    const others = p.inject.filter((f: string): f is Format => f !== 'preserve');
    const withFirst = (f: Format): Format[] => [f, ...others.filter((o) => o !== f)];
    this.preserved = this.injectFormats ? null : { w3c: withFirst('w3c'), b3: withFirst('b3'), 'b3-single': withFirst('b3-single'), none: withFirst(p.default_format) };
    this.clear = p.clear.map((h: string) => h.toLowerCase());
    this.responseHeader = config.http_response_header_for_traceid?.toLowerCase() ?? null;
  }

  /** Sampling before any span exists: the parent's decision, else the ratio (Kong's parent-based sampler). */
  private begin(ctx: ProxyContext, propagate: boolean): RequestTrace {
    const existing = ctx.shared[TRACE] as RequestTrace | undefined;
    if (existing) return existing;
    const parent = extract(ctx.headers, this.extractFormats);
    const sampled = parent?.sampled ?? (this.ratio >= 1 || (this.ratio > 0 && Math.random() < this.ratio));
    const formats = this.injectFormats ?? this.preserved![parent?.format ?? 'none'];
    const t: RequestTrace = { traceId: parent?.traceId ?? randomId(16), spanId: parent?.spanId ?? randomId(8), sampled, span: null, attempt: null, inject: formats, tracer: this };
    if (sampled) this.startServerSpan(ctx, t, parent);
    ctx.shared[TRACE] = t;
    if (propagate) {
      for (const h of this.clear) delete ctx.upstreamHeaders[h];
      inject(ctx.upstreamHeaders, formats, t.traceId, t.spanId, sampled);
    }
    if (this.responseHeader !== null) ctx.responseHeaders[this.responseHeader] = t.traceId;
    return t;
  }

  private startServerSpan(ctx: ProxyContext, t: RequestTrace, parent: TraceParent | null): void {
    const tracer = this.provider.tracer;
    if (tracer === null) { this.drop('loading'); return; }
    const parentCtx = parent
      ? trace.setSpanContext(ROOT_CONTEXT, { traceId: parent.traceId, spanId: parent.spanId, traceFlags: 1, isRemote: true })
      : ROOT_CONTEXT;
    const span = tracer.startSpan(`kong`, {
      kind: SpanKind.SERVER, startTime: ctx.startedAt ?? Date.now(),
      attributes: {
        'http.request.method': ctx.method, 'url.path': ctx.path, 'client.address': ctx.clientIp, 'http.route': ctx.route.name ?? ctx.route.id,
        'kong.request.id': ctx.requestId, 'kong.route.id': ctx.route.id, ...(ctx.service ? { 'kong.service.id': ctx.service.id, 'kong.service.name': ctx.service.name ?? '' } : {}),
      },
    }, parentCtx);
    t.span = span;
    const sc = span.spanContext();
    t.traceId = sc.traceId;
    t.spanId = sc.spanId;
  }

  private drop(reason: string): void { this.stats.dropped[reason] = (this.stats.dropped[reason] ?? 0) + 1; }

  access(ctx: ProxyContext): void {
    const t = this.begin(ctx, true);
    t.span?.addEvent('kong.access', Date.now());
  }

  log(ctx: ProxyContext): void {
    // An earlier plugin (auth, a limit) answered before access reached this one: trace it anyway.
    const t = this.begin(ctx, false);
    const span = t.span;
    if (span === null) return;
    const s = ctx.summary;
    if (s) {
      span.setAttribute('http.response.status_code', s.status);
      if (ctx.consumer) span.setAttribute('kong.consumer.id', ctx.consumer.id);
      if (s.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    }
    span.addEvent('kong.log');
    span.end(s ? s.startedAt + s.latencies.request : undefined);
    t.span = null;
  }
}

/** A CLIENT span for one upstream attempt; its id goes into the traceparent sent upstream. */
export function traceAttemptStart(ctx: ProxyContext | null, method: string, origin: string, path: string): void {
  const t = ctx?.shared[TRACE] as RequestTrace | undefined;
  if (!t?.span) return;
  const tracer = t.tracer.provider.tracer!;
  const span = tracer.startSpan('kong.upstream', {
    kind: SpanKind.CLIENT,
    attributes: { 'http.request.method': method, 'server.address': origin, 'url.path': path },
  }, trace.setSpan(ROOT_CONTEXT, t.span));
  t.attempt = span;
  inject(ctx!.upstreamHeaders, t.inject, t.traceId, span.spanContext().spanId, true);
}

/** Ends the attempt's span: the upstream's status, or the error that ended the attempt. */
export function traceAttemptEnd(ctx: ProxyContext | null, status: number, error?: string): void {
  const t = ctx?.shared[TRACE] as RequestTrace | undefined;
  const span = t?.attempt;
  if (!span) return;
  if (status > 0) span.setAttribute('http.response.status_code', status);
  if (error !== undefined || status >= 500) span.setStatus({ code: SpanStatusCode.ERROR, message: error });
  span.end();
  t!.attempt = null;
  t!.span?.addEvent('kong.upstream.response', { status });
}

/** The trace id of a request for the access log: its tracer's, else an incoming header's. */
export function traceIdOf(ctx: ProxyContext | null, headers: IncomingHttpHeaders): string | null {
  const t = ctx?.shared[TRACE] as RequestTrace | undefined;
  return t ? t.traceId : incomingTraceId(headers);
}

/**
 * A CLIENT span for a call a plugin makes (an aggregator leg), a child of the request's span; its
 * id goes into the traceparent sent with the call. Null when the request is not traced.
 */
export function traceCallStart(ctx: ProxyContext, label: string, method: string, origin: string, path: string, headers: Record<string, string | string[]>): Span | null {
  const t = ctx.shared[TRACE] as RequestTrace | undefined;
  if (!t?.span) return null;
  const span = t.tracer.provider.tracer!.startSpan(`kong.aggregate.${label}`, {
    kind: SpanKind.CLIENT,
    attributes: { 'portico.leg': label, 'http.request.method': method, 'server.address': origin, 'url.path': path },
  }, trace.setSpan(ROOT_CONTEXT, t.span));
  inject(headers, t.inject, t.traceId, span.spanContext().spanId, true);
  return span;
}

/** Ends a call's span with the service's status, or the error that ended it. */
export function traceCallEnd(span: Span | null, status: number, error?: string): void {
  if (span === null) return;
  if (status > 0) span.setAttribute('http.response.status_code', status);
  if (error !== undefined || status >= 500) span.setStatus({ code: SpanStatusCode.ERROR, message: error });
  span.end();
}
