import { z } from 'zod';
import { bool, foreign, host, httpToken, int, isHostOrIp, multiline, oneOf, opt, str, tags, text, timestamp, uuid } from './fields.ts';

const HASH_ON = ['none', 'consumer', 'ip', 'header', 'cookie', 'path', 'query_arg', 'uri_capture'] as const;
const statuses = (d: number[]) => z.array(int(100, 999)).default(d);
const seconds = (d: number) => z.number({ error: 'expected a number' }).min(0, 'value should be between 0 and 65535').max(65535, 'value should be between 0 and 65535').default(d);
const counter = () => int(0, 255).default(0);

/** Kong's healthchecks record (reference/kong-compat.md §7.2), defaults included. */
export const healthchecksSchema = z.strictObject({
  active: z.strictObject({
    type: oneOf(['tcp', 'http', 'https']).default('http'),
    timeout: seconds(1),
    concurrency: int(1, 2 ** 31 - 1).default(10),
    http_path: text().startsWith('/', 'should start with: /').default('/'),
    https_sni: opt(text()),
    https_verify_certificate: bool().default(true),
    headers: opt(z.record(httpToken(), z.array(text()))),
    healthy: z.strictObject({ interval: seconds(0), http_statuses: statuses([200, 302]), successes: counter() }).prefault({}),
    unhealthy: z.strictObject({
      interval: seconds(0), http_statuses: statuses([429, 404, 500, 501, 502, 503, 504, 505]),
      tcp_failures: counter(), timeouts: counter(), http_failures: counter(),
    }).prefault({}),
  }).prefault({}),
  passive: z.strictObject({
    type: oneOf(['tcp', 'http', 'https']).default('http'),
    healthy: z.strictObject({
      http_statuses: statuses([200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 306, 307, 308]),
      successes: counter(),
    }).prefault({}),
    unhealthy: z.strictObject({ http_statuses: statuses([429, 500, 503]), tcp_failures: counter(), timeouts: counter(), http_failures: counter() }).prefault({}),
  }).prefault({}),
  threshold: z.number().min(0).max(100).default(0),
}).prefault({});

/** Beyond Kong: a per-target circuit breaker that recovers by itself through half-open probes. */
export const circuitBreakerSchema = z.strictObject({
  failures: int(1, 10_000).default(5).describe('Consecutive failures that open a target'),
  failure_codes: z.array(int(100, 599)).default([500, 502, 503, 504]).describe('Statuses that count as failures (connect errors and timeouts always do)'),
  open_timeout: z.number().min(0.01).max(3600).default(10).describe('Seconds a target stays open before half-open'),
  half_open_requests: int(1, 1000).default(1).describe('Probe requests let through while half-open'),
});

/** Beyond Kong: retry idempotent requests on these statuses, with backoff and a budget. */
export const statusRetriesSchema = z.strictObject({
  statuses: z.array(int(500, 599)).default([502, 503, 504]),
  base_delay_ms: int(0, 60_000).default(25),
  max_delay_ms: int(0, 60_000).default(1_000),
  budget_ms: int(1, 600_000).default(2_000).describe('Total time retries may add'),
});

export const fallbackResponseSchema = z.strictObject({
  status: int(100, 599).default(503),
  content_type: text().default('application/json; charset=utf-8'),
  body: multiline().default('{"message":"Service temporarily unavailable"}'),
});

export const upstreamSchema = z.strictObject({
  id: uuid(),
  created_at: timestamp(),
  updated_at: timestamp(),
  name: host().describe('A hostname; a service whose host is this name balances over the targets'),
  algorithm: oneOf(['round-robin', 'consistent-hashing', 'least-connections', 'latency']).default('round-robin'),
  hash_on: oneOf(HASH_ON).default('none'),
  hash_fallback: oneOf(HASH_ON).default('none'),
  hash_on_header: opt(str()),
  hash_fallback_header: opt(str()),
  hash_on_cookie: opt(str()),
  hash_on_cookie_path: text().default('/'),
  hash_on_query_arg: opt(str()),
  hash_fallback_query_arg: opt(str()),
  hash_on_uri_capture: opt(str()),
  hash_fallback_uri_capture: opt(str()),
  slots: int(10, 65536).default(10000),
  host_header: opt(host()),
  client_certificate: foreign(),
  use_srv_name: bool().default(false),
  healthchecks: healthchecksSchema,
  circuit_breaker: opt(circuitBreakerSchema).describe('Portico: per-target breaker (null: off)'),
  status_retries: opt(statusRetriesSchema).describe('Portico: retries on 5xx for idempotent requests (null: off)'),
  fallback_response: opt(fallbackResponseSchema).describe('Portico: answer this instead of 503 when no target is usable'),
  tags: tags(),
}).superRefine((u, ctx) => {
  if (/^[\d.]+$/.test(u.name) || u.name.includes(':')) ctx.addIssue({ code: 'custom', path: ['name'], message: 'Invalid name; no ip addresses allowed' });
  const need: Record<string, [string, string]> = {
    header: ['hash_on_header', 'hash_fallback_header'], cookie: ['hash_on_cookie', ''], query_arg: ['hash_on_query_arg', 'hash_fallback_query_arg'],
    uri_capture: ['hash_on_uri_capture', 'hash_fallback_uri_capture'],
  };
  if (need[u.hash_on] && (u as Record<string, unknown>)[need[u.hash_on][0]] == null) ctx.addIssue({ code: 'custom', path: [need[u.hash_on][0]], message: 'required field missing' });
  if (need[u.hash_fallback]?.[1] && (u as Record<string, unknown>)[need[u.hash_fallback][1]] == null) ctx.addIssue({ code: 'custom', path: [need[u.hash_fallback][1]], message: 'required field missing' });
  if (u.hash_fallback !== 'none' && (u.hash_on === 'none' || u.hash_on === 'cookie')) {
    ctx.addIssue({ code: 'custom', path: ['hash_fallback'], message: "must be 'none' when 'hash_on' is 'none' or 'cookie'" });
  }
  if (u.hash_fallback !== 'none' && u.hash_fallback === u.hash_on && !['header', 'query_arg', 'uri_capture'].includes(u.hash_on)) {
    ctx.addIssue({ code: 'custom', path: ['hash_fallback'], message: "cannot be the same as 'hash_on'" });
  }
  if (u.hash_on !== 'none' && u.algorithm !== 'consistent-hashing') {
    ctx.addIssue({ code: 'custom', path: ['algorithm'], message: "must be 'consistent-hashing' when 'hash_on' is set" });
  }
});
export type Upstream = z.infer<typeof upstreamSchema>;

/** `host[:port]`, normalized with Kong's default port 8000. */
export function normalizeTarget(t: string): string | null {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(t.trim());
  if (!m) return null;
  const port = m[2] === undefined ? 8000 : Number(m[2]);
  if (port > 65535 || !isHostOrIp(m[1])) return null;
  return `${m[1]}:${port}`;
}

export const targetSchema = z.strictObject({
  id: uuid(),
  created_at: timestamp(),
  updated_at: timestamp(),
  upstream: foreign(),
  target: text(512).superRefine((v, ctx) => {
    const n = normalizeTarget(v);
    if (!n) { ctx.addIssue({ code: 'custom', message: 'Invalid target; not a valid hostname or ip address' }); return; }
    if (n !== v) ctx.addIssue({ code: 'custom', message: `not normalized: use '${n}'` });
  }).describe('host:port (port defaults to 8000)'),
  weight: int(0, 65535).default(100).describe('Share of traffic; 0 disables the target'),
  tags: tags(),
});
export type Target = z.infer<typeof targetSchema>;
