// What a finished request leaves behind: the summary every log-phase plugin reads, Kong's log entry
// (kong/pdk/log.lua serialize) for file-log and http-log, and the access-log line. Built once per
// request in the exchange's `finish` (one call), only as far as something reads it.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { ProxyContext, RequestSummary } from '@portico/shared/plugins/handlers';
import { traceIdOf } from './tracing.ts';

/** The exchange fields the summary reads (exchange.ts ProxyExchange), so this module does not import the proxy. */
export interface FinishedExchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse | null;
  readonly started: number;
  readonly ctx: ProxyContext | null;
  readonly responded: boolean;
  readonly attempt: number;
  readonly sent: boolean;
  readonly proxyStarted: number;
  readonly upstreamLatency: number;
  readonly proxyLatency: number;
  readonly origin: string;
  readonly upstreamPathname: string;
  readonly upstreamQuery: string;
}

const kBytes = Symbol('portico.socketBytes');
interface CountedSocket extends Socket { [kBytes]?: { read: number; written: number } }

/**
 * Bytes this request read and wrote on its connection: the growth of the socket's counters since
 * the previous request on it ended (Node answers a connection's requests one after the other).
 * The last counts live on the socket, one object per connection.
 */
function bytesSinceLast(socket: CountedSocket | null | undefined, out: { bytesIn: number; bytesOut: number }): void {
  if (!socket) return;
  const last = (socket[kBytes] ??= { read: 0, written: 0 });
  const read = socket.bytesRead, written = socket.bytesWritten;
  out.bytesIn = read - last.read;
  out.bytesOut = written - last.written;
  last.read = read;
  last.written = written;
}

export function summarize(x: FinishedExchange, status: number): RequestSummary {
  const now = performance.now();
  const request = Math.round(now - x.started);
  const proxy = x.upstreamLatency;
  const s: RequestSummary = {
    status,
    source: x.responded && x.res !== null ? 'service' : 'kong',
    startedAt: Math.round(performance.timeOrigin + x.started),
    // Kong's latencies.kong: the gateway's own time before the upstream answered (the whole request when it never went upstream).
    latencies: { kong: x.proxyLatency >= 0 ? x.proxyLatency : proxy >= 0 ? Math.max(0, request - proxy) : request, proxy, request },
    bytesIn: 0,
    bytesOut: 0,
    upstreamTarget: x.origin || null,
    upstreamUri: x.upstreamPathname + x.upstreamQuery,
    tries: x.attempt + (x.sent || x.responded ? 1 : 0),
    traceId: traceIdOf(x.ctx, x.req.headers),
    responseHeaders: () => parseHead(x.res),
  };
  bytesSinceLast(x.req.socket as CountedSocket, s);
  return s;
}

/**
 * The response head as written. Node keeps the rendered head (`_header`) and not the object given
 * to writeHead, so it is parsed back here, only for the log entries that carry it.
 */
function parseHead(res: ServerResponse | null): Record<string, string | string[]> {
  const head = (res as { _header?: string | null } | null)?._header;
  const out: Record<string, string | string[]> = {};
  if (!head) return out;
  const lines = head.split('\r\n');
  for (let i = 1; i < lines.length; i++) {
    const colon = lines[i].indexOf(':');
    if (colon <= 0) continue;
    const name = lines[i].slice(0, colon).toLowerCase(), value = lines[i].slice(colon + 1).trim();
    const prev = out[name];
    out[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  return out;
}

/** Headers whose values are credentials in every config (Kong redacts Authorization and Proxy-Authorization). */
const SECRET_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie', 'apikey']);
export const REDACTED = 'REDACTED';

function redactHeaders(headers: Record<string, unknown>, secretNames: ReadonlySet<string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k in headers) out[k] = SECRET_HEADERS.has(k) || secretNames.has(k) ? REDACTED : headers[k];
  return out;
}

/** Sets `a.b.c = value` on `entry` (custom_fields_by_lua's dotted names). */
function setPath(entry: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let o = entry;
  for (let i = 0; i < parts.length - 1; i++) {
    const next = o[parts[i]];
    o = (o[parts[i]] = next !== null && typeof next === 'object' ? next : {}) as Record<string, unknown>;
  }
  o[parts[parts.length - 1]] = value;
}

/**
 * Kong's log entry (reference/kong-compat.md §4.16) with credentials redacted: Authorization-like
 * headers, the config's key names in headers and query (ARCHITECTURE.md invariant 8). Consumers
 * carry id, username and custom_id, never a key.
 */
export function kongEntry(ctx: ProxyContext, s: RequestSummary, secretNames: ReadonlySet<string>, custom: Record<string, unknown> | null): Record<string, unknown> {
  const querystring: Record<string, string | string[]> = {};
  if (ctx.hasQuery()) {
    for (const [k, v] of ctx.query()) {
      const value = secretNames.has(k.toLowerCase()) ? REDACTED : v;
      const prev = querystring[k];
      querystring[k] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
    }
  }
  const host = String(ctx.headers.host ?? '');
  const c = ctx.consumer;
  const entry: Record<string, unknown> = {
    request: {
      id: ctx.requestId, method: ctx.method, uri: ctx.path, url: `http://${host}${ctx.path}`, querystring,
      headers: redactHeaders(ctx.headers as Record<string, unknown>, secretNames), size: s.bytesIn,
    },
    upstream_uri: s.upstreamUri,
    upstream_status: s.source === 'service' ? String(s.status) : '',
    response: { status: s.status, headers: redactHeaders(s.responseHeaders(), secretNames), size: s.bytesOut },
    latencies: { kong: s.latencies.kong, proxy: s.latencies.proxy, request: s.latencies.request, receive: 0 },
    tries: s.upstreamTarget ? [{ target: s.upstreamTarget, attempts: s.tries }] : [],
    authenticated_entity: ctx.credential ? { id: ctx.credential.id, consumer_id: c?.id ?? null } : undefined,
    route: ctx.route,
    service: ctx.service ?? undefined,
    consumer: c ? { id: c.id, username: c.username, custom_id: c.custom_id } : undefined,
    client_ip: ctx.clientIp,
    started_at: s.startedAt,
    source: s.source === 'service' ? 'upstream' : 'kong',
    workspace: 'default',
    workspace_name: 'default',
    trace_id: s.traceId ?? undefined,
    ...ctx.logFields,
  };
  if (custom) for (const k in custom) setPath(entry, k, custom[k]);
  return entry;
}
