// The proxy's hot path: match, build the upstream request, and stream bytes between Node's raw
// request/response and undici's pooled dispatcher. Web fetch/Response are avoided on purpose:
// forwarding through them measured 4× slower here (ARCHITECTURE.md invariant 7).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { Writable, type Readable } from 'node:stream';
import { Agent, type Dispatcher } from 'undici';
import type { Upstream } from '@portico/shared';
import type { TargetState, UpstreamBalancer } from './balancer.ts';
import { bracket, hostOf, hostPort, splitUrl, type ServiceTarget } from './target.ts';
import { escapePath, normalizePath, type Logger, type Service } from '@portico/shared';
import type { Router } from '../router/router.ts';
import { upstreamPath } from '../router/upstream-path.ts';
import { MESSAGES, sendError } from './errors.ts';
import type { AccessResult, Exit } from '@portico/shared/plugins/handlers';
import type { PluginChains } from '../plugins/compile.ts';
import { isMessageExit, runAccess, runLog, runResponse } from '../plugins/run.ts';
import { RequestContext } from '../plugins/context.ts';
import { REQUEST_ID_HEADER, downstreamHeaders, upstreamRequestHeaders } from './headers.ts';

export interface RuntimeConfig {
  version: number;
  hash: string;
  router: Router;
  plugins: PluginChains;
  /** Balancers by upstream name (lower-cased): a service whose host names one balances over it. */
  upstreams: Map<string, UpstreamBalancer>;
  /** Where each service's requests go, by service id and name (a plugin may switch services). */
  targets: Map<string, ServiceTarget>;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'TRACE']);
/** Swallows the body of an upstream answer that will be retried. */
const discard = () => new Writable({ write(_c, _e, cb) { cb(); } });

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** Requests whose body a plugin must read are buffered up to this size. */
const MAX_BUFFERED_BODY = 8 * 1024 * 1024;

function readBody(req: IncomingMessage, limit: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    req.on('data', (d: Buffer) => {
      size += d.length;
      if (size > limit) { resolve(null); req.destroy(); return; }
      parts.push(d);
    });
    req.on('end', () => resolve(Buffer.concat(parts)));
    req.on('error', reject);
  });
}

interface AccessRecord {
  route: string | null; service: string | null; upstream: string | null;
  upstream_latency_ms: number; proxy_latency_ms: number; error: string | undefined; client_ip: string;
  /** The plugin context, when the route has plugins (the consumer is read from it at log time). */
  ctx?: RequestContext;
}

export interface ProxyDeps {
  current(): RuntimeConfig | null;
  accessLog: Logger | null;
  listenPort: number;
}

const KEEPALIVE_TIMEOUT_MS = 60_000;
const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'UND_ERR_SOCKET']);
const TIMEOUT_ERRORS = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'WRITE_TIMEOUT']);

/**
 * service.write_timeout: the longest pause between two writes of the request body upstream (as
 * nginx's proxy_send_timeout). undici reads the client's body only as fast as the upstream takes
 * it, so a body that stops flowing for that long aborts the upstream request (answered 504).
 * Only requests with a body pay for the AbortController.
 */
interface WriteWatch { body: AsyncIterable<Buffer>; signal: AbortSignal; timedOut: boolean; stop(): void }

function watchWrites(req: IncomingMessage, timeoutMs: number): WriteWatch {
  const abort = new AbortController();
  let timer: NodeJS.Timeout | null = null;
  const state = { timedOut: false };
  const stop = () => { if (timer) clearTimeout(timer); timer = null; };
  // undici pulls the next chunk only when the upstream took the previous one: the time between
  // two pulls is the time between two writes.
  async function* pull(): AsyncGenerator<Buffer> {
    timer = setTimeout(() => { state.timedOut = true; timer = null; abort.abort(); }, timeoutMs);
    for await (const chunk of req) {
      timer?.refresh();
      yield chunk as Buffer;
    }
    stop();
  }
  return { body: pull(), signal: abort.signal, get timedOut() { return state.timedOut; }, stop };
}

/** One pooled agent per (connect timeout, TLS verification): undici sets both per connection. */
class Agents {
  private agents = new Map<string, Agent>();
  get(t: ServiceTarget): Agent {
    let a = this.agents.get(t.agentKey);
    if (!a) {
      a = new Agent({
        keepAliveTimeout: KEEPALIVE_TIMEOUT_MS,
        connect: { timeout: t.service.connect_timeout, rejectUnauthorized: t.service.tls_verify === true },
      });
      this.agents.set(t.agentKey, a);
    }
    return a;
  }
  async close(): Promise<void> { await Promise.all([...this.agents.values()].map((a) => a.close())); }
}

// Request ids: 32 hex chars, a random per-process prefix and a counter. Unique without paying for
// a random UUID per request; not a secret, so unpredictability is not needed.
const ID_PREFIX = randomBytes(8).toString('hex');
let idCounter = 0;
export function nextRequestId(): string {
  idCounter = (idCounter + 1) % 0x1_0000_0000;
  return ID_PREFIX + '00000000' + idCounter.toString(16).padStart(8, '0');
}

function clientIpOf(req: IncomingMessage): string {
  const a = req.socket?.remoteAddress ?? '';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

export function createProxy(deps: ProxyDeps) {
  const agents = new Agents();

  /** Never lets a bug in one request take the node down: it becomes that request's 500. */
  function handleProxy(req: IncomingMessage, res: ServerResponse): void {
    try {
      proxyRequest(req, res);
    } catch (err) {
      deps.accessLog?.error({ err }, 'proxy request failed');
      sendError(req, res, 500, MESSAGES.internal, nextRequestId(), 'gateway');
    }
  }

  function proxyRequest(req: IncomingMessage, res: ServerResponse): void {
    const started = performance.now();
    const requestId = nextRequestId();
    const log: AccessRecord = { route: null, service: null, upstream: null, upstream_latency_ms: -1, proxy_latency_ms: -1, error: undefined, client_ip: clientIpOf(req) };
    if (deps.accessLog) res.once('finish', () => writeAccessLog(req, res, requestId, started, log));
    const cfg = deps.current();
    if (!cfg) {
      sendError(req, res, 503, 'no configuration available yet', requestId, 'gateway');
      return;
    }
    const { path: rawPath, query } = splitUrl(req.url ?? '/');
    let path: string;
    try {
      path = normalizePath(rawPath);
    } catch {
      sendError(req, res, 400, MESSAGES.badRequest, requestId, 'gateway');
      return;
    }
    const hostHeader = req.headers.host ?? '';
    const match = cfg.router.match({ method: req.method ?? 'GET', path, host: hostOf(hostHeader), port: deps.listenPort, headers: req.headers, query });
    if (!match) {
      sendError(req, res, 404, MESSAGES.noRoute, requestId, 'gateway', latencyHeader(started));
      return;
    }
    // An https-only route reached over plain http (reference/kong-compat.md §3.6).
    if (!match.route.protocols.includes('http')) {
      log.route = match.route.id;
      const code = match.route.https_redirect_status_code;
      if (code === 426) {
        sendError(req, res, 426, 'Please use HTTPS protocol', requestId, 'gateway', { connection: 'Upgrade', upgrade: 'TLS/1.2, HTTP/1.1', ...latencyHeader(started) });
      } else {
        res.writeHead(code, { location: `https://${hostHeader}${req.url ?? '/'}`, 'content-length': 0, [REQUEST_ID_HEADER]: requestId });
        res.end();
      }
      return;
    }
    const matchedService = match.service;
    if (!matchedService) {
      log.route = match.route.id;
      sendError(req, res, 503, MESSAGES.noService, requestId, 'gateway', latencyHeader(started));
      return;
    }
    let target = cfg.targets.get(matchedService.id)!;
    let service: Service = target.service;
    const route = match.route;
    log.route = route.id; log.service = service.id;
    let upstreamPathname = escapePath(upstreamPath(service.path, route.strip_path ? match.matchedPath : '', path, route.strip_path));
    let origin = target.origin;
    const clientIp = log.client_ip;
    log.upstream = origin;
    const headers = upstreamRequestHeaders({
      req, requestId, host: route.preserve_host && req.headers.host ? req.headers.host : target.hostHeader, clientIp, listenPort: deps.listenPort,
      originalPath: rawPath, strippedPrefix: route.strip_path ? match.matchedPath : '',
    });
    const hasBody = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
    let agent = agents.get(target);
    const slots = match.compiled.plugins;
    let ctx: RequestContext | null = null;
    let upstreamQuery = query;
    let bodyOverride: Buffer | null = null;
    // No AbortSignal: creating one per request cost a quarter of the throughput here. A client that
    // leaves destroys `res`, which undici's stream() notices and aborts on; before the upstream
    // answers, the wait is bounded by read_timeout.
    const proxyStarted = performance.now();
    let upstreamStarted = proxyStarted;
    let attempt = 0;

    let balancer = target.balancer;
    const tried = new Set<string>();
    const method = req.method ?? 'GET';
    const replayable = !hasBody;
    let statusRetries = balancer?.upstream.status_retries ?? null;
    let stickyCookie: string | null = null;

    /** A plugin (canary) sent the request to another service. */
    const retarget = (next: ServiceTarget) => {
      target = next;
      service = next.service;
      log.service = service.id;
      upstreamPathname = escapePath(upstreamPath(service.path, route.strip_path ? match.matchedPath : '', path, route.strip_path));
      origin = next.origin;
      log.upstream = origin;
      if (!route.preserve_host) headers.host = next.hostHeader;
      agent = agents.get(next);
      balancer = next.balancer;
      statusRetries = balancer?.upstream.status_retries ?? null;
    };

    const noPeer = () => {
      log.error = 'no peer';
      const fb = balancer?.upstream.fallback_response;
      if (fb) {
        res.writeHead(fb.status, { 'content-type': fb.content_type, 'content-length': Buffer.byteLength(fb.body), [REQUEST_ID_HEADER]: requestId, ...latencyHeader(started) });
        res.end(method === 'HEAD' ? undefined : fb.body);
        return;
      }
      sendError(req, res, 503, MESSAGES.noPeer, requestId, 'gateway', latencyHeader(started));
    };

    const dispatch = () => {
      let peer: TargetState | null = null;
      let attemptOrigin = origin;
      if (balancer) {
        const key = hashKey(balancer.upstream);
        peer = balancer.pick(key, tried) ?? (tried.size ? balancer.pick(key, new Set()) : null);
        if (!peer) { noPeer(); return; }
        tried.add(peer.target);
        peer.active++;
        attemptOrigin = `${target.scheme}://${bracket(peer.host)}:${peer.port}`;
        if (!route.preserve_host) headers.host = balancer.upstream.host_header ?? hostPort(peer.host, peer.port, target.defaultPort);
        log.upstream = attemptOrigin;
      }
      let responded = false;
      /** ≥ 0 when this answer is discarded and the request retried after that many ms. */
      let retryDelay = -1;
      const writeWatch = hasBody && !bodyOverride ? watchWrites(req, service.write_timeout) : null;
      agent.stream({
        origin: attemptOrigin, path: upstreamPathname + upstreamQuery, method: method as Dispatcher.HttpMethod, headers,
        // undici sends async iterables as streamed bodies; its types list only Readable.
        body: bodyOverride ?? (writeWatch?.body as unknown as Readable | undefined) ?? null,
        headersTimeout: service.read_timeout, bodyTimeout: service.read_timeout,
        signal: writeWatch?.signal,
      }, ({ statusCode, headers: upHeaders }) => {
        responded = true;
        writeWatch?.stop();
        if (peer) balancer!.report(peer, { kind: 'status', status: statusCode, latencyMs: performance.now() - upstreamStarted });
        if (statusRetries && statusRetries.statuses.includes(statusCode) && IDEMPOTENT.has(method) && (replayable || bodyOverride)
          && attempt < service.retries) {
          // Exponential backoff with full jitter; a retry that would overrun the budget is not
          // made, and this answer goes to the client.
          const delay = Math.random() * Math.min(statusRetries.max_delay_ms, statusRetries.base_delay_ms * 2 ** attempt);
          if (performance.now() - proxyStarted + delay <= statusRetries.budget_ms) {
            retryDelay = delay;
            return discard();
          }
        }
        const now = performance.now();
        const out = downstreamHeaders(upHeaders as Record<string, string | string[] | undefined>);
        log.upstream_latency_ms = Math.round(now - upstreamStarted);
        log.proxy_latency_ms = Math.round(proxyStarted - started);
        out['x-portico-upstream-latency'] = String(log.upstream_latency_ms);
        out['x-portico-proxy-latency'] = String(log.proxy_latency_ms);
        out[REQUEST_ID_HEADER] = requestId;
        if (stickyCookie) {
          const prev = out['set-cookie'];
          out['set-cookie'] = prev === undefined ? stickyCookie : [...(Array.isArray(prev) ? prev : [prev]), stickyCookie];
        }
        if (ctx) {
          runResponse(slots, ctx, cfg.plugins.env, statusCode, out);
          Object.assign(out, ctx.responseHeaders);
        }
        res.writeHead(statusCode, out);
        return res;
      }, (err) => {
        writeWatch?.stop();
        if (peer) peer.active--;
        if (!err && retryDelay >= 0) {
          attempt++;
          setTimeout(() => { upstreamStarted = performance.now(); dispatch(); }, retryDelay);
          return;
        }
        if (!err) return;
        if (res.destroyed && !res.headersSent) return;
        const code = writeWatch?.timedOut ? 'WRITE_TIMEOUT' : (err as { code?: string }).code ?? '';
        const timeout = TIMEOUT_ERRORS.has(code);
        if (peer && !responded) balancer!.report(peer, timeout ? { kind: 'timeout' } : { kind: 'tcp' });
        if (!responded && (replayable || bodyOverride) && (CONNECT_ERRORS.has(code) || timeout) && attempt < service.retries && code !== 'UND_ERR_SOCKET') {
          attempt++;
          upstreamStarted = performance.now();
          dispatch();
          return;
        }
        log.error = code || (err as Error).message;
        if (res.headersSent) { res.destroy(err); return; }
        sendError(req, res, timeout ? 504 : 502, timeout ? MESSAGES.timeout : MESSAGES.badGateway, requestId, 'upstream', latencyHeader(started));
      });
    };

    /** The consistent-hashing key (hash_on, then hash_fallback), once the consumer is known. */
    function hashKey(u: Upstream): string | null {
      if (u.algorithm !== 'consistent-hashing') return null;
      const of = (on: string, header: string | null, query: string | null, capture: string | null): string | undefined => {
        switch (on) {
          case 'consumer': return ctx?.consumer?.id ?? ctx?.credential?.id ?? undefined;
          case 'ip': return clientIp;
          case 'header': { const v = req.headers[(header ?? '').toLowerCase()]; return Array.isArray(v) ? v[0] : v; }
          case 'cookie': {
            // As Kong: a client without the cookie gets one, so its next requests stick.
            const v = cookieValue(req.headers.cookie, u.hash_on_cookie ?? '');
            if (v !== undefined) return v;
            stickyCookie ??= `${u.hash_on_cookie}=${randomBytes(16).toString('hex')}; Path=${u.hash_on_cookie_path}`;
            return stickyCookie.slice(stickyCookie.indexOf('=') + 1, stickyCookie.indexOf(';'));
          }
          case 'path': return path;
          case 'query_arg': return new URLSearchParams(query === null ? '' : upstreamQuery.slice(1)).get(query ?? '') ?? undefined;
          case 'uri_capture': return match!.captures?.named[capture ?? ''] ?? undefined;
          default: return undefined;
        }
      };
      return of(u.hash_on, u.hash_on_header, u.hash_on_query_arg, u.hash_on_uri_capture)
        ?? of(u.hash_fallback, u.hash_fallback_header, u.hash_fallback_query_arg, u.hash_fallback_uri_capture) ?? null;
    }

    if (slots.length === 0) { dispatch(); return; }

    // Plugins: build the context, run the access phase, then forward or answer.
    const c = new RequestContext(requestId, req, path, clientIp, route, service, headers, query);
    ctx = c;
    log.ctx = c;
    const flags = match.compiled.pluginFlags;
    if (flags.hasLog) res.once('finish', () => runLog(slots, c, cfg.plugins.env, res.statusCode));
    const afterAccess = (exit: AccessResult) => {
      if (exit) { sendExit(req, res, exit, requestId, started); return; }
      if (c.serviceOverride && c.serviceOverride !== service.id) {
        const next = cfg.targets.get(c.serviceOverride);
        if (next) retarget(next);
      }
      upstreamQuery = c.finalQuery();
      if (c.bodyChanged()) bodyOverride = c.serializeBody(headers);
      dispatch();
    };
    const failed = (err: unknown) => {
      deps.accessLog?.error({ err, request_id: requestId }, 'plugin failed');
      sendError(req, res, 500, MESSAGES.internal, requestId, 'gateway', latencyHeader(started));
    };
    const run = () => {
      try {
        const r = runAccess(slots, c, cfg.plugins.env);
        if (r instanceof Promise) r.then(afterAccess, failed); else afterAccess(r);
      } catch (err) { failed(err); }
    };
    if (hasBody && flags.needsBody) {
      readBody(req, MAX_BUFFERED_BODY).then((buf) => {
        if (!buf) { sendError(req, res, 413, 'Request size limit exceeded', requestId, 'gateway'); return; }
        bodyOverride = buf;
        c.setBody(buf);
        run();
      }, failed);
      return;
    }
    run();
  }

  function sendExit(req: IncomingMessage, res: ServerResponse, exit: Exit, requestId: string, started: number): void {
    if (isMessageExit(exit)) {
      sendError(req, res, exit.status, exit.message, requestId, 'gateway', { ...latencyHeader(started), ...exit.headers });
      return;
    }
    const body = JSON.stringify(exit.json);
    res.writeHead(exit.status, {
      'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body),
      [REQUEST_ID_HEADER]: requestId, ...latencyHeader(started), ...exit.headers,
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  function latencyHeader(started: number): Record<string, string> {
    return { 'x-portico-response-latency': String(Math.round(performance.now() - started)) };
  }

  function writeAccessLog(req: IncomingMessage, res: ServerResponse, requestId: string, started: number, r: AccessRecord): void {
    deps.accessLog!.info({
      request_id: requestId, method: req.method, path: req.url, status: res.statusCode,
      latency_ms: Math.round(performance.now() - started), upstream_latency_ms: r.upstream_latency_ms,
      proxy_latency_ms: r.proxy_latency_ms, route: r.route, service: r.service, consumer: r.ctx?.consumer?.id, client_ip: r.client_ip,
      upstream: r.upstream, error: r.error,
    });
  }

  return { handleProxy, close: () => agents.close() };
}
