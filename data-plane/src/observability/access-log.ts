// The access-log line (one JSON object per request, pino): everything needed to bill, debug and
// join with traces. Consumers appear by id and username, never by a key; the path has credential
// query arguments redacted (the caller passes it so).
import type { ProxyContext, RequestSummary } from '@portico/shared/plugins/handlers';

export interface AccessLogInput {
  requestId: string;
  method: string;
  path: string;
  clientIp: string;
  route: ProxyContext['route'] | null;
  service: ProxyContext['service'] | null;
  ctx: ProxyContext | null;
  error: string | undefined;
  aborted: boolean | undefined;
}

const header = (ctx: ProxyContext | null, name: string): string | null => ctx?.responseHeaders[name] ?? null;

/** Remaining requests of the most constraining rate limit, when the rate-limiting plugin ran. */
export function rateLimitRemaining(ctx: ProxyContext | null): number | null {
  const v = header(ctx, 'ratelimit-remaining');
  return v === null ? null : Number(v);
}

export function accessLine(x: AccessLogInput, s: RequestSummary): Record<string, unknown> {
  const ctx = x.ctx;
  const c = ctx?.consumer ?? null;
  return {
    timestamp: new Date(s.startedAt).toISOString(),
    request_id: x.requestId,
    trace_id: s.traceId,
    method: x.method,
    path: x.path,
    status: s.status,
    latency_ms: s.latencies.request,
    upstream_latency_ms: s.latencies.proxy,
    proxy_latency_ms: s.latencies.kong,
    client_ip: x.clientIp,
    consumer: c ? { id: c.id, username: c.username ?? null } : null,
    route: x.route ? { id: x.route.id, name: x.route.name ?? null } : null,
    service: x.service ? { id: x.service.id, name: x.service.name ?? null } : null,
    upstream: s.upstreamTarget,
    tries: s.tries,
    cache_status: header(ctx, 'x-cache-status'),
    ratelimit_remaining: rateLimitRemaining(ctx),
    bytes_in: s.bytesIn,
    bytes_out: s.bytesOut,
    source: s.source,
    error: x.error,
    aborted: x.aborted,
    ...ctx?.logFields,
  };
}
