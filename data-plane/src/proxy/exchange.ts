// The proxy's request lifecycle. One request is one `ProxyExchange` (undici's handler classes are
// the model: state in fields, behaviour in prototype methods, no closures per request), shared by
// plain HTTP and by upgrades (websocket.ts):
//
//   prepare ─► (buffer body) ─► access phase ─► seal headers ─► dispatch / connect ─► … ─► finish
//
// `prepare` does what both need (version and Host checks, match, https check, target, upstream
// headers, plugin context); every answer the gateway gives itself goes through `answer`; and the
// request ends in exactly one `finish`, run by the response's (or the upgraded socket's) `close`,
// aborted requests included: there the balancer slot is given back, the log phase runs and the
// access log is written.
//
// Bytes move between Node's raw request/response and undici's dispatcher API: forwarding through
// Web fetch/Response measured 4× slower here (ARCHITECTURE.md invariant 7).
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { randomBytes } from 'node:crypto';
import type { Dispatcher } from 'undici';
import {
  addressFromHeader, escapePath, hostOf, normalizePath, peerAddress, redactQuery, SECRET_QUERY_NAMES, type Route, type Service, type Upstream,
} from '@portico/shared';
import { BODY_SKIPPED_HEADER, type AccessResult, type BodySkipReason, type Exit, type JsonBody, type ResponseCapture } from '@portico/shared/plugins/handlers';
import { UpstreamBalancer, type TargetState } from './balancer.ts';
import { authorityOf, bracket, hostPort, splitUrl, type ServiceTarget } from './target.ts';
import type { Match } from '../router/router.ts';
import { upstreamPath } from '../router/upstream-path.ts';
import { MESSAGES, errorBody, reasonPhrase } from './errors.ts';
import { bodyLimit, bodyPlan, isMessageExit, runAccess, runLog, runRequestBody, runResponse, runResponseBody, type BodyPlan } from '../plugins/run.ts';
import { DECODABLE, decodeBody, isJsonType, mediaType, parseRequestBody, serializeRequestBody } from '../plugins/body.ts';
import { RequestContext, countRequest } from '../plugins/context.ts';
import { REQUEST_ID_HEADER, downstreamHeaders, responseHead, sealUpstreamHeaders, upstreamRequestHeaders } from './headers.ts';
import { connectUpgrade } from './websocket.ts';
import { safely } from './guard.ts';
import { IDEMPOTENT, LINGERING_TIME_MS, MAX_BUFFERED_BODY, TIMEOUT_ERRORS, mayRetry, nextRequestId } from './policy.ts';
import type { ProxyCore, RuntimeConfig } from './forward.ts';
import { summarize, traceAttemptEnd, traceAttemptStart } from '../observability/index.ts';

const kExchange = Symbol('portico.exchange');
interface Carrier { [kExchange]?: ProxyExchange }
const exchangeOf = (o: object): ProxyExchange => (o as Carrier)[kExchange]!;
const EMPTY_TRIED: ReadonlySet<string> = new Set();
const clientGone = (): Error => Object.assign(new Error('client closed the connection'), { code: 'CLIENT_GONE' });

// Listeners and timer callbacks are module functions that find their exchange on the emitter
// (or get it as the timer argument): no closure is allocated per request.
function onClientClose(this: ServerResponse | Duplex): void { exchangeOf(this).finish(); }
function onResponseDrain(this: ServerResponse): void { exchangeOf(this).resumeUpstream?.(); }
function onSocketError(this: Duplex): void { this.destroy(); }
function onBodyData(this: IncomingMessage, chunk: Buffer): void { const x = exchangeOf(this); safely(x, x.bodyChunk, chunk); }
function onBodyEnd(this: IncomingMessage): void { const x = exchangeOf(this); safely(x, x.bodyEnd); }
function onBodyError(this: IncomingMessage): void { exchangeOf(this).bodyFailed(); }
function onBodyTimeout(x: ProxyExchange): void { safely(x, x.bodyTimedOut); }
function onDroppedBodyEnd(this: IncomingMessage): void { const x = exchangeOf(this); safely(x, x.answerTooLarge); }
function onLingerTimeout(x: ProxyExchange): void { x.timer = null; safely(x, x.answerTooLarge); }
function onWriteTimeout(x: ProxyExchange): void { x.writeTimedOut(); }
/** The error code of a streamed body that passed a plugin's limit. */
const BODY_TOO_LARGE = 'BODY_TOO_LARGE';
function onRetryTimer(x: ProxyExchange): void { x.timer = null; safely(x, x.dispatch); }

/**
 * The client's streamed body, as undici pulls it: undici asks for the next chunk only when the
 * upstream took the previous one, so the time between two pulls is the time between two writes
 * (service.write_timeout, as nginx's proxy_send_timeout). The iterator does not destroy the
 * request when undici stops pulling, so an error answer can still be written.
 */
async function* pullBody(x: ProxyExchange): AsyncGenerator<Buffer> {
  x.continueBody();
  x.timer = setTimeout(onWriteTimeout, x.service!.write_timeout, x);
  // What the body phase read before the body went over its cap goes first, then the rest.
  if (x.bodyPrefix !== null) for (const chunk of x.bodyPrefix) { x.bodySize += chunk.length; yield chunk; }
  for await (const chunk of x.req.iterator({ destroyOnReturn: false })) {
    x.timer?.refresh();
    x.bodySize += (chunk as Buffer).length;
    // A plugin's limit (request-size-limiting) on a body sent without a length: stop here; undici
    // aborts the upstream request and the exchange answers 413 (upstreamFailed).
    if (x.bodySize > x.bodyLimit) throw Object.assign(new Error('request body over the route\'s size limit'), { code: BODY_TOO_LARGE });
    yield chunk as Buffer;
  }
  x.clearTimer();
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function hasHeaderTwice(raw: string[], lowerName: string): boolean {
  let seen = false;
  for (let k = 0; k < raw.length; k += 2) {
    const name = raw[k];
    if (name.length === lowerName.length && name.toLowerCase() === lowerName) {
      if (seen) return true;
      seen = true;
    }
  }
  return false;
}

export class ProxyExchange implements Dispatcher.DispatchHandler {
  readonly requestId = nextRequestId();
  readonly started = performance.now();
  readonly method: string;
  /** The method sent upstream (a plugin's ctx.methodOverride, else the client's); retries judge it. */
  upstreamMethod: string;
  readonly clientIp: string;
  /** The TCP peer is a trusted proxy (PORTICO_TRUSTED_IPS): its X-Forwarded-* are kept. */
  readonly peerTrusted: boolean;
  cfg: RuntimeConfig | null = null;
  match: Match | null = null;
  route: Route | null = null;
  service: Service | null = null;
  target: ServiceTarget | null = null;
  headers: Record<string, string | string[]> = {};
  ctx: RequestContext | null = null;
  path = '';
  query = '';
  /** The Host the client addressed: the absolute-form authority, else the Host header. */
  clientHost = '';
  upstreamPathname = '';
  upstreamQuery = '';
  /** The body to send when it is not streamed: buffered for a plugin, or rewritten by one. */
  body: Buffer | null = null;
  readonly hasBody: boolean;
  bodyParts: Buffer[] | null = null;
  bodySize = 0;
  /** The smallest request-body limit of this request's plugins, for a body streamed without a length. */
  bodyLimit = Infinity;
  /** The body-phase plugins that apply to this request (null: none, the body streams). */
  bodyPlan: BodyPlan | null = null;
  /** Most bytes buffered: a plugin that must read the body (413 past it), or the body phase's cap (streams past it). */
  bufferCap = MAX_BUFFERED_BODY;
  /** Buffering for the body phase: past the cap the body streams untouched instead of a 413. */
  bufferForPhase = false;
  /** What the body phase read before the body went over its cap: sent ahead of the rest. */
  bodyPrefix: Buffer[] | null = null;
  /** The Host prepare chose; a plugin that set another (request-transformer) keeps its own past balancing. */
  preparedHost = '';
  hostFromPlugin = false;
  /** 100 Continue was sent (or is not owed). */
  continued = false;
  /** A response held for the body phase until complete: status, headers and the chunks so far. */
  held: { status: number; headers: Record<string, string | string[]>; parts: Buffer[]; size: number } | null = null;
  /** A copy of the response body kept for a plugin (proxy-cache's capture) while it streams to the client. */
  capture: { sink: ResponseCapture; parts: Buffer[]; size: number; status: number; headers: Record<string, string | string[]> } | null = null;
  /** A plugin's answer in place of an upstream failure (stale_if_error), once asked for. */
  fallbackExit: Exit | null = null;
  /** The body-read, write or retry-backoff timer; at most one runs at a time. */
  timer: NodeJS.Timeout | null = null;

  // One attempt upstream.
  attempt = 0;
  tried: Set<string> | null = null;
  peer: TargetState | null = null;
  probeEpoch = -1;
  hashKey: string | null | undefined = undefined;
  stickyCookie: string | null = null;
  origin = '';
  dialHost = '';
  dialPort = 0;
  sent = false;
  responded = false;
  discarding = false;
  retryDelay = 0;
  writeTimeout = false;
  abortUpstream: ((err: Error) => void) | null = null;
  resumeUpstream: (() => void) | null = null;
  upstreamSocket: Socket | null = null;
  upstreamStarted = 0;
  proxyStarted = 0;
  upstreamLatency = -1;
  proxyLatency = -1;

  /** The status given to the client (upgrades; HTTP reads res.statusCode). */
  status = 0;
  error: string | undefined = undefined;
  finished = false;

  constructor(
    readonly core: ProxyCore,
    readonly req: IncomingMessage,
    /** Null on the upgrade path. */
    readonly res: ServerResponse | null,
    /** The client's socket on the upgrade path. */
    readonly socket: Duplex | null,
    readonly head: Buffer | null,
  ) {
    this.method = req.method ?? 'GET';
    this.upstreamMethod = this.method;
    countRequest(req.socket);
    // Every listener on the request (body reads, a dropped body's end) finds its exchange here.
    (req as Carrier)[kExchange] = this;
    const peer = peerAddress(req.socket?.remoteAddress ?? '');
    const realIp = core.deps.realIp;
    this.peerTrusted = realIp !== undefined && !realIp.trustedIps.isEmpty && realIp.trustedIps.contains(peer);
    this.clientIp = this.peerTrusted ? addressFromHeader(peer, req.headers, realIp!) : peer;
    const te = req.headers['transfer-encoding'];
    const cl = req.headers['content-length'];
    this.hasBody = te !== undefined || (cl !== undefined && cl !== '0');
  }

  /** Entry point: everything up to the first asynchronous step, under one catch. */
  start(): void {
    try {
      if (!this.prepare()) return;
      const ctx = this.ctx;
      if (ctx === null) { this.forward(); return; }
      if (this.res !== null && this.hasBody && this.match!.compiled.pluginFlags.needsBody) {
        // A plugin reads the body before the access phase (key-auth key_in_body, echo): a size limit
        // (request-size-limiting) on a body without a length holds while it is buffered. Before auth
        // only the route's and global configs are known; a consumer's own limit applies after it.
        if (this.match!.compiled.pluginFlags.limitsBody && this.req.headers['content-length'] === undefined) this.bodyLimit = bodyLimit(this.match!.compiled.plugins, ctx);
        this.readBody();
        return;
      }
      this.runAccessPhase();
    } catch (err) {
      this.fail(err);
    }
  }

  /**
   * What HTTP and upgrades share: refuses what must not be proxied, routes, and builds the
   * upstream request. False when it answered the request itself.
   */
  prepare(): boolean {
    const req = this.req;
    // A CORS preflight never upgrades; letting one through would skip auth plugins that let
    // preflights pass (`run_on_preflight=false`, probe 3.9).
    if (this.res === null && this.method === 'OPTIONS') return this.answerError(400, MESSAGES.preflightUpgrade);
    // HTTP/0.9-style and HTTP/2.0 request lines reach here as versions 0.9 and 2.0 (probe 1.8);
    // real HTTP/2 comes only through the TLS listener, negotiated by ALPN, or the h2c one (tls/listener.ts).
    const tls = this.core.deps.tls === true;
    const http2 = tls || this.core.deps.h2c === true;
    if (req.httpVersionMajor !== 1 && !(http2 && req.httpVersionMajor === 2)) return this.answerError(400, MESSAGES.badVersion);
    // RFC 9112 §3.2: a request with more than one Host is invalid (probe 1.6); Node keeps the first.
    if (hasHeaderTwice(req.rawHeaders, 'host')) return this.answerError(400, MESSAGES.twoHosts);
    const cfg = this.core.deps.current();
    if (!cfg) return this.answerError(503, MESSAGES.noConfig);
    this.cfg = cfg;
    const url = req.url ?? '/';
    this.clientHost = authorityOf(url) ?? req.headers.host ?? '';
    const { path: rawPath, query } = splitUrl(url);
    this.query = query;
    this.path = normalizePath(rawPath);
    const sni = tls ? (req.socket as TLSSocket).servername || '' : undefined;
    const match = cfg.router.match({ method: this.method, path: this.path, host: hostOf(this.clientHost), port: this.core.deps.listenPort, headers: req.headers, query, sni });
    if (!match) return this.answerError(404, MESSAGES.noRoute);
    this.match = match;
    const route = match.route;
    this.route = route;
    // Kong's router matches the protocol too: an http-only route is not there for a TLS request.
    if (tls && !route.protocols.includes('https')) return this.answerError(404, MESSAGES.noRoute);
    // An https-only route reached over plain http (reference/kong-compat.md §3.6).
    if (!tls && !route.protocols.includes('http')) {
      const code = route.https_redirect_status_code;
      if (code === 426) return this.answerError(426, MESSAGES.https, { connection: 'Upgrade', upgrade: 'TLS/1.2, HTTP/1.1' });
      return this.answer(code, { location: `https://${this.clientHost}${rawPath}${query}`, 'content-length': 0, [REQUEST_ID_HEADER]: this.requestId }, undefined);
    }
    // A route without a service still runs its plugins (request-termination, a canary that picks
    // the service): only if none answers or chooses a service is it Kong's 503 (accessDone).
    if (!match.service && match.compiled.plugins.length === 0) return this.answerError(503, MESSAGES.noService);
    const target = match.service ? cfg.targets.get(match.service.id)! : null;
    this.target = target;
    this.service = target?.service ?? null;
    if (target !== null) this.upstreamPathname = this.pathFor(target.service);
    this.upstreamQuery = query;
    this.headers = upstreamRequestHeaders({
      req, requestId: this.requestId, host: route.preserve_host && this.clientHost ? this.clientHost : target?.hostHeader ?? this.clientHost,
      clientHost: this.clientHost, clientIp: this.clientIp, listenPort: this.core.deps.listenPort, originalPath: rawPath, proto: tls ? 'https' : 'http',
      strippedPrefix: route.strip_path ? match.matchedPath : '', underscores: this.core.underscores, trustedPeer: this.peerTrusted,
    });
    this.preparedHost = this.headers.host as string;
    if (match.compiled.plugins.length > 0) {
      this.ctx = new RequestContext(this.requestId, req, this.path, this.clientIp, route, this.service, this.headers, query, match.captures);
    }
    return true;
  }

  pathFor(service: Service): string {
    const route = this.route!;
    return escapePath(upstreamPath(service.path, route.strip_path ? this.match!.matchedPath : '', this.path, route.strip_path));
  }

  // ── Buffered body (plugins that read it) ──────────────────────────────────────────────────

  readBody(): void {
    const req = this.req;
    // A declared length over the limit is answered (or, for the body phase, streamed) before reading any of it.
    if (Number(req.headers['content-length']) > this.bufferCap) {
      if (this.bufferForPhase) this.bodyPhaseSkip('too-large'); else this.bodyTooLarge();
      return;
    }
    this.continueBody();
    this.bodyParts = [];
    this.timer = setTimeout(onBodyTimeout, this.core.clientBodyTimeoutMs, this);
    req.on('data', onBodyData);
    req.on('end', onBodyEnd);
    req.on('error', onBodyError);
  }

  /** A client waiting on `Expect: 100-continue` is told to send its body now that it is read (once). */
  continueBody(): void {
    const res = this.res;
    if (res === null || this.continued) return;
    this.continued = true;
    const expect = this.req.headers.expect;
    if (expect !== undefined && expect.trim().toLowerCase() === '100-continue' && !res.headersSent) res.writeContinue();
  }

  private stopReadingBody(): void {
    const req = this.req;
    req.off('data', onBodyData);
    req.off('end', onBodyEnd);
    req.off('error', onBodyError);
    this.clearTimer();
    this.bodyParts = null;
  }

  bodyChunk(chunk: Buffer): void {
    this.bodySize += chunk.length;
    if (this.bodySize > this.bodyLimit) { this.bodyTooLarge(this.bodyLimit); return; }
    if (this.bodySize > this.bufferCap) {
      if (this.bufferForPhase && !this.bodyPlan!.requestStrict) this.bodyOverCap(chunk); else this.bodyTooLarge(this.bufferCap);
      return;
    }
    this.bodyParts!.push(chunk);
    this.timer?.refresh();
  }

  /**
   * Over the limit: stop keeping the body, read and drop the rest, and answer 413 once it has all
   * arrived. Answering earlier and closing with unread data resets the connection (Node closes
   * after the answer when the client asked for `Connection: close`), and a client still sending
   * would never read the answer (review C5, probe 5.3). A body still arriving after
   * LINGERING_TIME_MS (nginx's lingering_time) is answered then, and its connection closed.
   */
  bodyTooLarge(limit = MAX_BUFFERED_BODY): void {
    this.stopReadingBody();
    this.core.deps.log.warn({ request_id: this.requestId, path: this.logPath(), limit_bytes: limit }, limit === MAX_BUFFERED_BODY ? 'request body over the buffering limit' : 'request body over the route\'s size limit');
    this.error = 'body too large';
    if (this.req.complete) { this.answerError(413, MESSAGES.tooLarge); return; }
    this.req.on('end', onDroppedBodyEnd);
    this.timer = setTimeout(onLingerTimeout, LINGERING_TIME_MS, this);
    this.req.resume();
  }

  /** The dropped body ended, or lingering ran out: answer the 413 now. */
  answerTooLarge(): void {
    this.req.off('end', onDroppedBodyEnd);
    this.clearTimer();
    if (!this.finished) this.answerError(413, MESSAGES.tooLarge);
  }

  /**
   * The body phase's cap is passed: stop buffering, and stream what was read and the rest
   * untouched (marked), rather than answer 413 or hold more.
   */
  bodyOverCap(chunk: Buffer): void {
    const parts = this.bodyParts!;
    parts.push(chunk);
    this.req.pause();
    this.stopReadingBody();
    this.bodyPrefix = parts;
    this.bodySize = 0;
    this.skipRequestBody('too-large');
    this.proceed();
  }

  bodyEnd(): void {
    const parts = this.bodyParts!;
    this.stopReadingBody();
    if (this.finished) return;
    try {
      this.body = parts.length === 1 ? parts[0] : Buffer.concat(parts);
      if (this.bufferForPhase) { this.requestBodyPhase(); return; }
      this.ctx!.setBody(this.body);
      this.runAccessPhase();
    } catch (err) {
      this.fail(err);
    }
  }

  bodyFailed(): void {
    this.stopReadingBody();
    this.error = 'client body error';
    this.req.destroy();
  }

  /** Kong's client_body_timeout: 408 and close (probe 5.2). */
  bodyTimedOut(): void {
    this.timer = null;
    this.stopReadingBody();
    this.error = 'client body timeout';
    this.answerError(408, MESSAGES.bodyTimeout, { connection: 'close' });
  }

  clearTimer(): void {
    if (this.timer !== null) { clearTimeout(this.timer); this.timer = null; }
  }

  // ── Access phase ──────────────────────────────────────────────────────────────────────────

  runAccessPhase(): void {
    const r = runAccess(this.match!.compiled.plugins, this.ctx!, this.cfg!.plugins.env);
    if (r instanceof Promise) r.then((exit) => this.accessDone(exit), (err) => this.fail(err));
    else this.accessDone(r);
  }

  accessDone(exit: AccessResult): void {
    if (this.finished) return;
    try {
      if (exit) { this.answerExit(exit); return; }
      const ctx = this.ctx!;
      if (this.body !== null && ctx.bodyChanged()) this.body = ctx.serializeBody(this.headers);
      if (this.res !== null && this.match!.compiled.pluginFlags.bodyPhase) {
        const plan = bodyPlan(this.match!.compiled.plugins, ctx);
        this.bodyPlan = plan;
        if (plan !== null && plan.request.length > 0) { this.startRequestBodyPhase(plan); return; }
      }
      this.proceed();
    } catch (err) {
      this.fail(err);
    }
  }

  // ── Body phase, request side ──────────────────────────────────────────────────────────────

  /** Buffers the request body for the body phase (unless a plugin's access already did), then runs it. */
  startRequestBodyPhase(plan: BodyPlan): void {
    const media = mediaType(this.req.headers['content-type']);
    const parseable = isJsonType(media) || (plan.requestKinds === 'form' && (media === 'application/x-www-form-urlencoded' || media === 'multipart/form-data'));
    // A body that would be streamed untouched anyway is not read at all.
    if (!parseable) { if (this.hasBody) this.bodyPhaseSkip('not-json'); else this.proceed(); return; }
    if (this.req.headers['content-encoding'] !== undefined) { this.bodyPhaseSkip('encoded'); return; }
    this.bufferCap = plan.requestCap;
    this.bufferForPhase = true;
    // A size limit (request-size-limiting) on a body without a length holds while it is buffered too.
    if (this.match!.compiled.pluginFlags.limitsBody && this.req.headers['content-length'] === undefined) {
      this.bodyLimit = bodyLimit(this.match!.compiled.plugins, this.ctx!);
    }
    if (this.body !== null) {
      if (this.body.length > plan.requestCap) { this.bodyPhaseSkip('too-large'); return; }
      this.requestBodyPhase();
      return;
    }
    if (this.hasBody) { this.readBody(); return; }
    this.requestBodyPhase();
  }

  /**
   * Runs the request body phase on the buffered body. A JSON body that does not parse is the
   * client's error: 400, the upstream not called (Kong passes it on untouched, so the service gets
   * a request the gateway was told to rewrite and did not; a clear answer is safer).
   */
  requestBodyPhase(): void {
    const parsed = parseRequestBody(this.body, this.req.headers['content-type'], this.bodyPlan!.requestKinds);
    if (parsed === 'invalid-json') { this.error = 'invalid JSON body'; this.answerError(400, MESSAGES.badJson); return; }
    if (typeof parsed === 'string') { this.bodyPhaseSkip(parsed); return; }
    const r = runRequestBody(this.bodyPlan!, this.ctx!, this.cfg!.plugins.env, parsed);
    if (typeof r === 'object') { this.answerExit(r); return; }
    if (r) {
      this.body = serializeRequestBody(parsed);
      this.headers['content-length'] = String(this.body.length);
      delete this.headers['transfer-encoding'];
    }
    this.proceed();
  }

  /**
   * A request body the phase cannot read streams untouched (marked), unless a plugin must read it
   * (BodyNeeds.strict, the request validator): then it is refused, and the upstream never sees it.
   */
  bodyPhaseSkip(reason: BodySkipReason): void {
    if (!this.bodyPlan!.requestStrict) { this.skipRequestBody(reason); this.proceed(); return; }
    this.error = `request body refused: ${reason}`;
    if (reason === 'too-large') this.bodyTooLarge(this.bufferCap);
    else this.answerError(415, reason === 'encoded' ? MESSAGES.encodedBody : MESSAGES.notJsonBody);
  }

  /** A body a plugin wanted streams untouched: say so to the client, and count it. */
  skipRequestBody(reason: BodySkipReason): void {
    this.ctx!.responseHeaders[BODY_SKIPPED_HEADER] = reason;
    this.countSkip('request', reason);
  }

  /** `portico_body_skipped_<side>_<reason>_total` on /metrics. */
  countSkip(side: 'request' | 'response', reason: BodySkipReason): void {
    this.cfg!.plugins.env.counters.increment(`body_skipped_${side}_${reason.replace('-', '_')}`);
  }

  /** The rest of the access phase's work once bodies are settled: overrides, header checks, forward. */
  proceed(): void {
    if (this.finished) return;
    try {
      const ctx = this.ctx!;
      this.hostFromPlugin = this.headers.host !== this.preparedHost;
      if (ctx.serviceOverride && ctx.serviceOverride !== this.service?.id) {
        const next = this.cfg!.targets.get(ctx.serviceOverride);
        if (next) this.retarget(next);
      }
      if (this.service === null) { this.answerError(503, MESSAGES.noService); return; }
      if (ctx.methodOverride !== null) this.upstreamMethod = ctx.methodOverride;
      if (ctx.pathOverride !== null) this.upstreamPathname = escapePath(ctx.pathOverride);
      this.upstreamQuery = ctx.finalQuery();
      // A response-body plugin reads the body: ask for it unencoded (compressed answers are decoded anyway).
      if (this.bodyPlan !== null && this.bodyPlan.response.length > 0) this.headers['accept-encoding'] = 'identity';
      const refused = sealUpstreamHeaders(this.headers, this.req.headers);
      if (refused) {
        this.core.deps.log.warn({ request_id: this.requestId, path: this.logPath(), header: refused.name, reason: refused.reason }, 'refused: a header set for the upstream is invalid');
        this.error = 'invalid upstream header';
        this.answerError(400, MESSAGES.badHeader);
        return;
      }
      if (this.match!.compiled.pluginFlags.limitsBody && this.hasBody && this.body === null && this.req.headers['content-length'] === undefined) {
        this.bodyLimit = bodyLimit(this.match!.compiled.plugins, ctx);
      }
      this.forward();
    } catch (err) {
      this.fail(err);
    }
  }

  /** A plugin (canary) sent the request to another service. */
  retarget(next: ServiceTarget): void {
    this.target = next;
    this.service = next.service;
    this.upstreamPathname = this.pathFor(next.service);
    if (!this.route!.preserve_host && !this.hostFromPlugin) this.headers.host = next.hostHeader;
  }

  forward(): void {
    this.proxyStarted = performance.now();
    this.send();
  }

  /** One attempt: an HTTP request through undici, or a socket for an upgrade. */
  send(): void {
    if (this.res !== null) this.dispatch(); else connectUpgrade(this);
  }

  /**
   * Picks the target for this attempt (when the service balances), sets the dial address and the
   * Host header. False when no target is usable (answered).
   */
  pickPeer(): boolean {
    const t = this.target!;
    const b = t.balancer;
    if (b === null) {
      this.origin = t.origin;
      this.dialHost = t.service.host;
      this.dialPort = t.service.port;
      return true;
    }
    if (this.hashKey === undefined) this.hashKey = this.computeHashKey(b.upstream);
    let peer = b.pick(this.hashKey, this.tried ?? EMPTY_TRIED);
    if (peer === null && this.tried !== null) peer = b.pick(this.hashKey, EMPTY_TRIED);
    if (peer === null) { this.noPeer(b.upstream); return false; }
    (this.tried ??= new Set()).add(peer.target);
    this.peer = peer;
    this.probeEpoch = UpstreamBalancer.probeEpoch(peer);
    this.dialHost = peer.host;
    this.dialPort = peer.port;
    this.origin = `${t.scheme}://${bracket(peer.host)}:${peer.port}`;
    if (!this.route!.preserve_host && !this.hostFromPlugin) this.headers.host = b.upstream.host_header ?? hostPort(peer.host, peer.port, t.defaultPort);
    return true;
  }

  /** Reports one attempt's outcome to the balancer (health, breaker, latency). */
  report(outcome: Parameters<UpstreamBalancer['report']>[1]): void {
    if (this.peer !== null) this.target!.balancer!.report(this.peer, outcome);
  }

  /** Gives the balancer slot back; idempotent, so `finish` can always call it. */
  releasePeer(): void {
    const peer = this.peer;
    if (peer === null) return;
    this.peer = null;
    this.target!.balancer!.release(peer, this.probeEpoch);
  }

  noPeer(u: Upstream): void {
    this.error = 'no peer';
    if (this.fallsBack()) { this.answerExit(this.fallbackExit!); return; }
    const fb = u.fallback_response;
    if (fb) {
      this.answer(fb.status, {
        'content-type': fb.content_type, 'content-length': Buffer.byteLength(fb.body), [REQUEST_ID_HEADER]: this.requestId,
        'x-portico-response-latency': this.latency(),
      }, this.method === 'HEAD' ? undefined : fb.body);
      return;
    }
    this.answerError(503, MESSAGES.noPeer);
  }

  /** The consistent-hashing key (hash_on, then hash_fallback), once per request. */
  computeHashKey(u: Upstream): string | null {
    if (u.algorithm !== 'consistent-hashing') return null;
    return this.hashInput(u, u.hash_on, u.hash_on_header, u.hash_on_query_arg, u.hash_on_uri_capture)
      ?? this.hashInput(u, u.hash_fallback, u.hash_fallback_header, u.hash_fallback_query_arg, u.hash_fallback_uri_capture) ?? null;
  }

  private hashInput(u: Upstream, on: string, headerName: string | null, queryArg: string | null, capture: string | null): string | undefined {
    switch (on) {
      case 'consumer': return this.ctx?.consumer?.id ?? this.ctx?.credential?.id ?? undefined;
      case 'ip': return this.clientIp;
      case 'header': { const v = this.req.headers[(headerName ?? '').toLowerCase()]; return Array.isArray(v) ? v[0] : v; }
      case 'cookie': {
        // As Kong: a client without the cookie gets one, so its next requests stick.
        const v = cookieValue(this.req.headers.cookie, u.hash_on_cookie ?? '');
        if (v !== undefined) return v;
        const value = randomBytes(16).toString('hex');
        this.stickyCookie = `${u.hash_on_cookie}=${value}; Path=${u.hash_on_cookie_path}`;
        return value;
      }
      case 'path': return this.path;
      case 'query_arg': return new URLSearchParams(this.upstreamQuery.slice(1)).get(queryArg ?? '') ?? undefined;
      case 'uri_capture': return this.match!.captures?.named[capture ?? ''] ?? undefined;
      default: return undefined;
    }
  }

  // ── Upstream request (undici's dispatch handler) ──────────────────────────────────────────

  dispatch(): void {
    if (this.finished) return;
    if (!this.pickPeer()) return;
    const service = this.service!;
    this.sent = false;
    this.responded = false;
    this.discarding = false;
    this.writeTimeout = false;
    this.abortUpstream = null;
    this.resumeUpstream = null;
    this.upstreamStarted = performance.now();
    const streamed = this.hasBody && this.body === null;
    traceAttemptStart(this.ctx, this.upstreamMethod, this.origin, this.upstreamPathname);
    this.core.dispatcherFor(this.target!).dispatch({
      origin: this.origin, path: this.upstreamPathname + this.upstreamQuery, method: this.upstreamMethod as Dispatcher.HttpMethod,
      headers: this.headers,
      // undici sends async iterables as streamed bodies; its types list only Readable.
      body: this.body ?? (streamed ? (pullBody(this) as unknown as Dispatcher.DispatchOptions['body']) : null),
      headersTimeout: service.read_timeout, bodyTimeout: service.read_timeout,
    }, this);
  }

  /** undici: the request head is about to be written; from here on it counts as sent. */
  onConnect(abort: (err?: Error) => void): void {
    this.sent = true;
    this.abortUpstream = abort;
    if (this.finished) abort(clientGone());
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (this.finished) return false;
    this.responded = true;
    this.clearTimer();
    const now = performance.now();
    this.report({ kind: 'status', status: statusCode, latencyMs: now - this.upstreamStarted });
    traceAttemptEnd(this.ctx, statusCode);
    if (this.retriesStatus(statusCode, now)) { this.discarding = true; return true; }
    // An upstream 5xx a plugin answers for instead (stale_if_error): read and drop it, then answer.
    if (statusCode >= 500 && this.fallsBack()) { this.discarding = true; return true; }
    const res = this.res!;
    const out = downstreamHeaders(rawHeaders);
    this.upstreamLatency = Math.round(now - this.upstreamStarted);
    this.proxyLatency = Math.round(this.proxyStarted - this.started);
    out['x-portico-upstream-latency'] = String(this.upstreamLatency);
    out['x-portico-proxy-latency'] = String(this.proxyLatency);
    out[REQUEST_ID_HEADER] = this.requestId;
    if (this.stickyCookie !== null) {
      const prev = out['set-cookie'];
      out['set-cookie'] = prev === undefined ? this.stickyCookie : [...(Array.isArray(prev) ? prev : [prev]), this.stickyCookie];
    }
    this.resumeUpstream = resume;
    try {
      const ctx = this.ctx;
      if (ctx !== null) {
        runResponse(this.match!.compiled.plugins, ctx, this.cfg!.plugins.env, statusCode, out);
        Object.assign(out, ctx.responseHeaders);
        const sink = ctx.responseCapture;
        if (sink !== null) {
          ctx.responseCapture = null;
          // A body a JSON plugin rewrites is not the one streamed: nothing to keep.
          if (this.bodyPlan !== null && this.bodyPlan.response.length > 0) sink.abort();
          else this.capture = { sink, parts: [], size: 0, status: statusCode, headers: out };
        }
        if (this.bodyPlan !== null && this.bodyPlan.response.length > 0 && this.holdsResponse(statusCode, out)) {
          this.held = { status: statusCode, headers: out, parts: [], size: 0 };
          return true;
        }
      }
      res.writeHead(statusCode, out);
    } catch (err) {
      // A response-phase plugin bug, or a header it set that Node refuses: ours, not the upstream's.
      this.fail(err);
      return false;
    }
    return true;
  }

  /**
   * upstream.status_retries: an idempotent request answered with a listed status is retried after
   * a backoff with full jitter, unless that would overrun the budget (then this answer is passed on).
   */
  private retriesStatus(status: number, now: number): boolean {
    const policy = this.target!.balancer?.upstream.status_retries;
    if (!policy || !policy.statuses.includes(status) || !IDEMPOTENT.has(this.upstreamMethod)) return false;
    if ((this.hasBody && this.body === null) || this.attempt >= this.service!.retries) return false;
    const delay = Math.random() * Math.min(policy.max_delay_ms, policy.base_delay_ms * 2 ** this.attempt);
    if (now - this.proxyStarted + delay > policy.budget_ms) return false;
    this.retryDelay = delay;
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.finished) return false;
    if (this.discarding) return true;
    const capture = this.capture;
    if (capture !== null) {
      capture.size += chunk.length;
      if (capture.size > capture.sink.maxBytes) { this.capture = null; capture.sink.abort(); } else capture.parts.push(chunk);
    }
    const held = this.held;
    if (held !== null) {
      held.parts.push(chunk);
      held.size += chunk.length;
      return held.size > this.bodyPlan!.responseCap ? this.releaseHeld('too-large') : true;
    }
    const res = this.res!;
    if (res.write(chunk)) return true;
    res.once('drain', onResponseDrain);
    return false;
  }

  onComplete(): void {
    this.abortUpstream = null;
    this.releasePeer();
    if (this.finished) return;
    if (this.discarding) {
      if (this.fallbackExit !== null) { safely(this, this.answerExit, this.fallbackExit); return; }
      this.attempt++;
      this.timer = setTimeout(onRetryTimer, this.retryDelay, this);
      return;
    }
    if (this.held !== null) { safely(this, this.responseBodyPhase); return; }
    this.res!.end();
    if (this.capture !== null) safely(this, this.captured);
  }

  // ── Body phase, response side ─────────────────────────────────────────────────────────────

  /**
   * Whether to hold this response for the body phase: a JSON body, in an encoding node:zlib
   * decodes, not declared over the cap. Otherwise it streams, marked with why.
   */
  holdsResponse(status: number, out: Record<string, string | string[]>): boolean {
    if (this.method === 'HEAD' || status === 204 || status === 304 || status < 200) return false;
    const media = mediaType(out['content-type']);
    if (!isJsonType(media)) { if (media !== '' || out['content-length'] !== '0') this.markResponse(out, 'not-json'); return false; }
    const enc = String(out['content-encoding'] ?? '').trim().toLowerCase();
    if (!DECODABLE.has(enc)) { this.markResponse(out, 'encoded'); return false; }
    if (Number(out['content-length']) > this.bodyPlan!.responseCap) { this.markResponse(out, 'too-large'); return false; }
    return true;
  }

  markResponse(out: Record<string, string | string[]>, reason: BodySkipReason): void {
    out[BODY_SKIPPED_HEADER] = reason;
    this.countSkip('response', reason);
  }

  /** Sends the held head and chunks untouched (marked), and streams the rest; onData's return value. */
  releaseHeld(reason: BodySkipReason): boolean {
    const held = this.held!;
    this.held = null;
    const res = this.res!;
    this.markResponse(held.headers, reason);
    res.writeHead(held.status, held.headers);
    let ok = true;
    for (const part of held.parts) ok = res.write(part);
    if (!ok) res.once('drain', onResponseDrain);
    return ok;
  }

  /**
   * The whole response is in: decode, parse, run the plugins, and send it with its new length.
   * Unchanged, the upstream's bytes go out as they came (encoding and ETag kept).
   */
  responseBodyPhase(): void {
    const held = this.held!;
    this.held = null;
    const h = held.headers;
    let out = held.parts.length === 1 ? held.parts[0] : Buffer.concat(held.parts);
    const enc = String(h['content-encoding'] ?? '').trim().toLowerCase();
    let decoded: Buffer | null;
    try { decoded = decodeBody(out, enc, this.bodyPlan!.responseCap); } catch { decoded = null; this.markResponse(h, 'encoded'); }
    if (decoded === null) { if (h[BODY_SKIPPED_HEADER] === undefined) this.markResponse(h, 'too-large'); }
    else {
      let value: unknown;
      let parsed = true;
      try { value = JSON.parse(decoded.toString('utf8')); } catch { parsed = false; this.markResponse(h, 'invalid-json'); }
      const body: JsonBody = { kind: 'json', value };
      if (parsed && runResponseBody(this.bodyPlan!, this.ctx!, this.cfg!.plugins.env, held.status, h, body)) {
        out = Buffer.from(body.raw ?? JSON.stringify(body.value));
        // The bytes are new: the upstream's encoding and validators no longer describe them.
        delete h['content-encoding'];
        delete h.etag;
        delete h['content-md5'];
      }
    }
    h['content-length'] = String(out.length);
    delete h['transfer-encoding'];
    const res = this.res!;
    res.writeHead(held.status, h);
    res.end(out);
  }

  /** The whole body streamed: hand the copy to the plugin that asked for it. */
  captured(): void {
    const c = this.capture!;
    this.capture = null;
    c.sink.done(c.status, c.headers, c.parts.length === 1 ? c.parts[0] : Buffer.concat(c.parts, c.size));
  }

  /** Whether a plugin answers for a failed upstream (stale_if_error); its answer is kept in fallbackExit. */
  fallsBack(): boolean {
    const fb = this.ctx?.upstreamFallback?.() ?? null;
    if (fb === null) return false;
    this.fallbackExit = fb;
    return true;
  }

  onError(err: Error): void {
    this.abortUpstream = null;
    this.clearTimer();
    if (this.finished) { this.releasePeer(); return; }
    safely(this, this.upstreamFailed, this.writeTimeout ? 'WRITE_TIMEOUT' : (err as { code?: string }).code ?? '', err);
  }

  /** One attempt failed (HTTP or upgrade): report, then retry or answer 502/504. */
  upstreamFailed(code: string, err: Error): void {
    if (code === BODY_TOO_LARGE) {
      // The client's fault, not the upstream's: nothing is reported to the balancer.
      this.releasePeer();
      if (this.res !== null ? this.res.headersSent : this.responded) { this.error = 'body too large'; this.destroyClient(); return; }
      this.bodyTooLarge(this.bodyLimit);
      return;
    }
    const timeout = TIMEOUT_ERRORS.has(code);
    traceAttemptEnd(this.ctx, 0, code || err.message);
    if (!this.responded) this.report(timeout ? { kind: 'timeout' } : { kind: 'tcp' });
    this.releasePeer();
    if (!this.responded && this.attempt < this.service!.retries && mayRetry(this.upstreamMethod, !this.hasBody || this.body !== null, this.sent, code)) {
      this.attempt++;
      this.send();
      return;
    }
    this.error = code || err.message;
    if (this.res !== null ? this.res.headersSent : this.responded) { this.destroyClient(); return; }
    if (this.fallsBack()) { this.answerExit(this.fallbackExit!); return; }
    this.answerError(timeout ? 504 : 502, timeout ? MESSAGES.timeout : MESSAGES.badGateway, undefined, 'upstream');
  }

  writeTimedOut(): void {
    this.timer = null;
    this.writeTimeout = true;
    this.abortUpstream?.(Object.assign(new Error('upstream stopped taking the request body'), { code: 'WRITE_TIMEOUT' }));
  }

  // ── Answers the gateway gives itself ──────────────────────────────────────────────────────

  /** Writes a whole response; always returns false (so `prepare` can `return this.answer…`). */
  answer(status: number, headers: OutgoingHttpHeaders, body: string | Buffer | undefined): false {
    const res = this.res;
    if (res !== null) {
      if (res.headersSent) { res.destroy(); return false; }
      // A body still arriving that nobody will read: close after answering rather than let Node
      // drain it for as long as the client trickles it (requestTimeout is 0, see index.ts).
      if (this.hasBody && this.body === null && !this.req.complete) headers.connection = 'close';
      res.writeHead(status, headers);
      res.end(body);
      return false;
    }
    const socket = this.socket!;
    this.status = status;
    if (!socket.writable) { socket.destroy(); return false; }
    headers.connection ??= 'close';
    socket.end(responseHead(status, reasonPhrase(status), headers as Record<string, string | number | string[]>) + (body ?? ''));
    return false;
  }

  answerError(status: number, message: string, extra?: Record<string, string>, kind: 'gateway' | 'upstream' = 'gateway'): false {
    const { contentType, body } = errorBody(this.req.headers, kind, message, this.requestId, this.ctx?.errorFields ?? null);
    const head = this.method === 'HEAD';
    const headers: OutgoingHttpHeaders = {
      'content-type': contentType, 'content-length': head ? 0 : Buffer.byteLength(body),
      [REQUEST_ID_HEADER]: this.requestId, 'x-portico-response-latency': this.latency(),
      // Headers plugins queued for the client (an echoed correlation id, CORS) go on the gateway's errors too.
      ...this.ctx?.responseHeaders, ...extra,
    };
    return this.answer(status, headers, head ? undefined : body);
  }

  answerExit(exit: Exit): void {
    const extra = this.exitHeaders(exit.status, exit.headers);
    if (isMessageExit(exit)) { this.answerError(exit.status, exit.message, extra); return; }
    const raw = 'body' in exit;
    const body = raw ? exit.body : JSON.stringify(exit.json);
    const headers: OutgoingHttpHeaders = {
      'content-length': Buffer.byteLength(body), [REQUEST_ID_HEADER]: this.requestId, 'x-portico-response-latency': this.latency(), ...extra,
    };
    if (!raw) headers['content-type'] ??= 'application/json; charset=utf-8';
    this.answer(exit.status, headers, this.method === 'HEAD' ? undefined : body);
  }

  /**
   * A plugin's own answer goes through the response phase too, as Kong's header_filter: so a 401
   * from key-auth still carries cors' headers (a browser can read it) and the echoed correlation id.
   */
  private exitHeaders(status: number, given: Record<string, string> | undefined): Record<string, string> {
    const ctx = this.ctx;
    if (ctx === null) return given ?? {};
    const headers: Record<string, string | string[]> = { ...given };
    runResponse(this.match!.compiled.plugins, ctx, this.cfg!.plugins.env, status, headers);
    Object.assign(headers, ctx.responseHeaders);
    return headers as Record<string, string>;
  }

  latency(): string {
    return String(Math.round(performance.now() - this.started));
  }

  /** A bug in one request becomes that request's 500 (or a closed connection), logged with its stack. */
  fail(err: unknown): void {
    this.core.deps.log.error({ err, request_id: this.requestId, path: this.logPath() }, 'proxy request failed');
    this.error = 'internal error';
    if (this.finished) return;
    try {
      this.answerError(500, MESSAGES.internal);
    } catch {
      this.destroyClient();
    }
  }

  destroyClient(): void {
    if (this.res !== null) this.res.destroy(); else this.socket!.destroy();
  }

  // ── The one exit ──────────────────────────────────────────────────────────────────────────

  /**
   * Runs once, on the response's (or the upgraded socket's) `close`, however the request ended:
   * answered, cut by an upstream error, or abandoned by its client.
   */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    try {
      this.settle();
    } catch (err) {
      this.core.deps.log.error({ err, request_id: this.requestId }, 'finishing a request failed');
    }
  }

  /** finish's work: what every request owes once it is over. */
  private settle(): void {
    this.clearTimer();
    if (this.abortUpstream !== null) { this.abortUpstream(clientGone()); this.abortUpstream = null; }
    if (this.upstreamSocket !== null) this.upstreamSocket.destroy();
    this.releasePeer();
    this.ctx?.ended();
    const res = this.res;
    // nginx's 499: the client left before an answer was sent.
    const status = res !== null ? (res.headersSent ? res.statusCode : 499) : (this.status || 499);
    const ctx = this.ctx;
    // Observability: one summary for the log plugins, the node's counts and the access-log line.
    const summary = summarize(this, status);
    if (ctx !== null) ctx.summary = summary;
    this.core.deps.observability?.finished(summary, ctx);
    if (ctx !== null && this.match!.compiled.pluginFlags.hasLog) runLog(this.match!.compiled.plugins, ctx, this.cfg!.plugins.env, status);
    const accessLog = this.core.deps.accessLog;
    if (accessLog === null) return;
    accessLog.write({
      requestId: this.requestId, method: this.method, path: this.logPath(), clientIp: this.clientIp, route: this.route, service: this.service,
      ctx, error: this.error, aborted: res !== null ? !res.writableFinished : undefined,
    }, summary);
  }

  /** The request target with credential-carrying query arguments redacted (invariant 8). */
  logPath(): string {
    const url = this.req.url ?? '/';
    return url.includes('?') ? redactQuery(url, this.cfg?.plugins.secretQueryNames ?? DEFAULT_SECRET_NAMES) : url;
  }
}

const DEFAULT_SECRET_NAMES: ReadonlySet<string> = new Set(SECRET_QUERY_NAMES);

/**
 * Node's `request` listener (`res`) and `upgrade` listener (`socket`, `head`): one exchange, closed
 * by the response's or the socket's `close`. No throw escapes to the process (probe 4.2: one Upgrade
 * ended it): it becomes this request's 500, or a closed connection.
 */
export function serve(core: ProxyCore, req: IncomingMessage, res: ServerResponse | null, socket: Duplex | null = null, head: Buffer | null = null): void {
  const client = (res ?? socket)!;
  let x: ProxyExchange;
  try {
    if (socket !== null) socket.on('error', onSocketError);
    x = new ProxyExchange(core, req, res, socket, head);
    (client as Carrier)[kExchange] = x;
    client.on('close', onClientClose);
  } catch (err) {
    core.deps.log.error({ err }, res !== null ? 'proxy request failed' : 'upgrade request failed');
    client.destroy();
    return;
  }
  x.start();
}
