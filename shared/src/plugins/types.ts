// The plugin contract. A plugin is a folder: `schema.ts` (its config, read by the CP) and
// `handler.ts` (what runs in the DP). Handlers reach time, logs, HTTP and credentials only through
// `PluginEnv`, so each can be unit-tested with in-memory ports.
//
// Request lifecycle in a data plane (one request):
//
//   match route ─► build upstream headers ─► access phase, by priority (high first)
//                                              │  any handler may answer: 401/403/429/… (Exit)
//                                              │  auth handlers set ctx.consumer; consumer-scoped
//                                              │  configs of later plugins are picked after that
//                                              ▼
//                  upstream request ─► response phase (status, headers; before they are sent)
//                                              ▼
//                  body streamed to the client ─► log phase (after the response; never delays it)
//
// Body phase (only for plugins that declare `body`, see BodyPhase): after the access phase the
// request body is buffered and parsed (JSON, form, multipart) up to the plugins' cap and handed to
// `body.request`; the response body (JSON) is held until complete, decoded, and handed to
// `body.response` before the head goes out. Anything larger, of another type, or encoded otherwise
// streams through untouched, marked with BODY_SKIPPED_HEADER. Routes without body plugins stream.
import type { IncomingHttpHeaders } from 'node:http';
import type { X509Certificate } from 'node:crypto';
import type { CaCertificate } from '../entities/certificate.ts';
import type { z } from 'zod';
import type { Consumer } from '../entities/consumer.ts';
import type { Route } from '../entities/route.ts';
import type { Service } from '../entities/service.ts';
import type { BasicAuthCredential, JwtSecret, KeyAuthCredential } from '../entities/credentials.ts';
import type { RateLimitStore } from './rate-limiting/store.ts';
import type { ProxyCachePort } from './proxy-cache/store.ts';

export interface ConnectionInfo { localAddress: string; localPort: number; id: number; requests: number }

export interface AuthenticatedCredential {
  id: string | null;
  /** What X-Credential-Identifier carries (key-auth: credential id; jwt: key; basic-auth: username). */
  identifier: string;
}

export interface ProxyContext {
  readonly requestId: string;
  readonly method: string;
  /** Normalized request path, no query. */
  readonly path: string;
  /** Request headers as the client sent them. */
  readonly headers: IncomingHttpHeaders;
  readonly clientIp: string;
  /** The scheme the client used to reach the gateway. */
  readonly scheme: 'http' | 'https';
  /** The proxy listener's port the request came in on. */
  readonly listenPort: number;
  /** The client connection (Kong's tracker: server address and port, a serial id, this request's ordinal on it). */
  connection(): ConnectionInfo;
  /** The request body as received, when a plugin that reads it (needsBody) had it buffered; else null. */
  rawBody(): Buffer | null;
  readonly route: Route;
  readonly service: Service | null;
  /** Query arguments; changes here reach the upstream. */
  query(): URLSearchParams;
  /** Whether the request has a query string at all (cheaper than parsing an empty one). */
  hasQuery(): boolean;
  /** Headers sent upstream; set or delete here. */
  upstreamHeaders: Record<string, string | string[]>;
  /** Headers added to the response. */
  responseHeaders: Record<string, string>;
  consumer: Consumer | null;
  credential: AuthenticatedCredential | null;
  /** The claims of a JWT the jwt plugin verified for this request (templates read `$(jwt.claim.x)`); null otherwise. */
  jwtClaims: Record<string, unknown> | null;
  authenticatedGroups: string[] | null;
  /** Scratch space shared by the plugins of one request. */
  shared: Record<string, unknown>;
  /**
   * Fields added to this request's access-log line (Kong's kong.log.set_serialize_value), e.g. a
   * correlation id; null until a plugin sets one, so requests without pay nothing.
   */
  logFields: Record<string, unknown> | null;
  /**
   * Fields added to the gateway's own error bodies for this request (a 502, a 504, a 400 of the
   * body phase), beside `message` and `request_id`: a correlation id. Null until a plugin sets one.
   */
  errorFields: Record<string, string> | null;
  /** Send the request to this service (id or name) instead of the route's. */
  serviceOverride: string | null;
  /** The matched route's regex path captures (numbered and named), null for a prefix match. */
  readonly uriCaptures: { unnamed: string[]; named: Record<string, string> } | null;
  /** Send the request upstream with this method instead of the client's (retries judge this one). */
  methodOverride: string | null;
  /** Send the request upstream to this path (unescaped, starts with `/`) instead of the one built for the service. */
  pathOverride: string | null;
  /**
   * The TLS client certificate chain as the client presented it (leaf first); null when it sent
   * none or the listener did not ask (only the mTLS listener does). Parsed once per request.
   */
  clientCertificate?(): X509Certificate[] | null;
  /** Milliseconds since the epoch when the request arrived (span start times). */
  readonly startedAt?: number;
  /**
   * Aborted once the request is over, answered or abandoned by its client (the exchange's
   * finish), so work a plugin still does for it (the aggregator's legs) stops. Made on first use.
   */
  clientSignal?(): AbortSignal;
  /** Set by the DP just before the log phase (observability). */
  summary?: RequestSummary | null;
  /**
   * Set in the response phase by a plugin that wants a copy of the response body as it streams to
   * the client (proxy-cache): the body phase's capture, see ResponseCapture.
   */
  responseCapture?: ResponseCapture | null;
  /**
   * Set in the access phase (proxy-cache's stale_if_error): asked for an answer in place of the
   * gateway's 502/503/504 or an upstream 5xx; null lets the failure through.
   */
  upstreamFallback?: (() => Exit | null) | null;
}

/**
 * A handler's answer in place of the upstream's. `message` is Kong's kong.response.error
 * (`{"message","request_id"}`, format negotiated); `json` is kong.response.exit with a table (sent
 * as JSON); `body` is kong.response.exit with a string: sent byte for byte with its Content-Length
 * and no Content-Type of the gateway's own (put one in `headers`); no body for HEAD.
 */
export type Exit =
  | { status: number; message: string; headers?: Record<string, string> }
  | { status: number; json: unknown; headers?: Record<string, string> }
  | { status: number; body: string | Buffer; headers?: Record<string, string> };

export type AccessResult = Exit | undefined | void;

export interface CredentialIndex {
  consumersById: Map<string, Consumer>;
  consumersByUsername: Map<string, Consumer>;
  keyAuthByHash: Map<string, KeyAuthCredential>;
  jwtByKey: Map<string, JwtSecret>;
  basicAuthByUsername: Map<string, BasicAuthCredential>;
  aclGroupsByConsumer: Map<string, string[]>;
  /** CA certificates by id (mtls-auth's `ca_certificates`). */
  caCertificatesById?: Map<string, CaCertificate>;
}

export interface PluginLogger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface RedisConnectionConfig {
  host: string | null;
  port: number;
  timeout: number;
  username: string | null;
  password: string | null;
  database: number;
  ssl: boolean;
  ssl_verify: boolean;
  server_name: string | null;
}

/** The ports a handler may use. One per snapshot. */
export interface PluginEnv {
  /** Node-local rate-limit counters. */
  localRateLimitStore: RateLimitStore;
  /** Cluster-wide counters in Redis (the config's, or the node's REDIS_URL when it names no host). */
  rateLimitStore(redis: RedisConnectionConfig): RateLimitStore;
  /** Counters exported on /metrics. */
  counters: { increment(name: string): void };
  /** Milliseconds since the epoch. */
  now(): number;
  log: PluginLogger;
  /** GET a JSON document (JWKS, OIDC discovery). */
  getJson(url: string, timeoutMs: number): Promise<unknown>;
  /**
   * GET a binary document (mtls-auth's CRLs): rejects on a status other than 200, a timeout, or a
   * body longer than `maxBytes`. Unset where the DP gives none (unit tests).
   */
  getBytes?(url: string, timeoutMs: number, maxBytes: number): Promise<Buffer>;
  index: CredentialIndex;
  /** This node's id (request-termination's echo); unset in unit tests. */
  nodeId?: string;
  /** Metrics, log queues and tracers for the observability plugins (the DP's data-plane/src/observability). */
  observability?: ObservabilityPorts;
  /** Response cache stores and background revalidation (proxy-cache); unset in unit tests that need none. */
  proxyCache?: ProxyCachePort;
  /** Requests to this snapshot's services (the aggregator's legs); unset where the DP gives none (unit tests). */
  services?: ServicePort;
}

/**
 * Why a service call failed before an answer came back. A caller that aborts its own call (a
 * deadline, a cancellation) knows why; the DP reports only a deadline to passive health checks.
 */
export type ServiceFailure = 'timeout' | 'cancelled' | 'circuit_open' | 'no_target' | 'connect_error' | 'too_large' | 'bad_header' | 'unknown_service';

/** The abort reason a caller gives for a deadline (health checks count it as a timeout). */
export const DEADLINE_CODE = 'PORTICO_DEADLINE';

/** One request a plugin sends to a service of the running config. */
export interface ServiceRequest {
  /** Service id or name. */
  service: string;
  method: string;
  /** Path and query, encoded, starting with `/`. */
  target: string;
  /** Headers as sent (Host is the target's; Content-Length is set from the body). */
  headers: Record<string, string | string[]>;
  body: Buffer | null;
  /** Aborting closes the upstream request at once; a reason with code DEADLINE_CODE is a timeout. */
  signal: AbortSignal;
  /** Most response-body bytes read; a longer answer fails with 'too_large'. */
  maxBodyBytes: number;
  /** What the call is, for its span and metric (the aggregator: the leg's name). */
  label: string;
}

export type ServiceResponse =
  | { ok: true; status: number; headers: Record<string, string | string[]>; body: Buffer }
  | { ok: false; failure: ServiceFailure; message: string };

/**
 * The DP's upstream machinery (balancer, health checks, circuit breaker, retries of connect
 * failures, pooled connections, upstream TLS) offered to plugins, bound to one snapshot's services.
 */
export interface ServicePort {
  /** Whether the running config has this service (id or name). */
  has(service: string): boolean;
  /** Sends one request (a span when the request is traced); never throws. */
  call(ctx: ProxyContext, req: ServiceRequest): Promise<ServiceResponse>;
  /** Counts a finished leg of a composition (per route, leg and outcome) on /metrics. */
  record(ctx: ProxyContext, label: string, outcome: string, ms: number): void;
}

/** Form fields (urlencoded, or a multipart body's text parts): a repeated name holds a list. */
export type FormFields = Record<string, string | string[]>;

/** A multipart part the body phase keeps as bytes (a file, or a part with a content type). */
export interface RawPart { name: string; head: string; data: Buffer }

/**
 * A parsed body handed to the body phase. Plugins edit it in place (or replace `value`) and say
 * whether they changed it; the DP serializes it back only then.
 */
export type RequestBody =
  | { kind: 'json'; value: unknown }
  | { kind: 'form'; fields: FormFields }
  | { kind: 'multipart'; fields: FormFields; files: RawPart[]; boundary: string };
/** A JSON response body; a plugin may set `raw` to send that text instead (replace.body). */
export interface JsonBody { kind: 'json'; value: unknown; raw?: string }

/** Default cap on a body buffered for the body phase (per plugin config, `max_body_bytes` style). */
export const DEFAULT_BODY_CAP_BYTES = 1024 * 1024;
/** Set on the client's response when a body a plugin wanted was streamed untouched, with why. */
export const BODY_SKIPPED_HEADER = 'x-portico-body-skipped';
export type BodySkipReason = 'too-large' | 'not-json' | 'invalid-json' | 'encoded';

/** What one config needs of the body phase. */
export interface BodyNeeds {
  /** The request body: 'json', or 'form' for JSON, urlencoded and multipart; null for none. */
  request: 'json' | 'form' | null;
  response: boolean;
  /** Most bytes buffered for this plugin (the DP takes the smallest of a request's plugins). */
  maxBytes: number;
  /**
   * Refuse a request body the phase cannot hand over instead of streaming it untouched: over the
   * cap → 413, not JSON → 415, compressed → 415 (a validator must never let an unread body through).
   */
  strict?: boolean;
}

/**
 * The body phase's capture (proxy-cache): the response streams to the client untouched (no hold,
 * no decoding) while the DP keeps a copy, up to `maxBytes`. `done` gets the whole body once the
 * upstream's response completed; `abort` says there is none (over the cap, cut, or held and
 * rewritten by a JSON body plugin). Exactly one of them is called.
 */
export interface ResponseCapture {
  maxBytes: number;
  done(status: number, headers: Record<string, string | string[]>, body: Buffer): void;
  abort(): void;
}

export interface BodyPhase<C, S> {
  /** What this config needs; read per request on the config that applies, so keep it a field read. */
  needs(config: C, state: S): BodyNeeds;
  /** The parsed request body, after the access phase. True when changed; an Exit answers instead. */
  request?(ctx: ProxyContext, body: RequestBody, config: C, state: S, env: PluginEnv): boolean | Exit;
  /** The upstream's JSON response body, before the head is sent. True when changed. */
  response?(ctx: ProxyContext, status: number, headers: Record<string, string | string[]>, body: JsonBody, config: C, state: S, env: PluginEnv): boolean;
}

export interface PluginDefinition {
  name: string;
  /** Kong's PRIORITY: higher runs first. */
  priority: number;
  configSchema: z.ZodObject;
  /** Auth plugins identify the consumer, so they cannot be scoped to one. */
  noConsumerScope?: boolean;
  /**
   * The services (id or name) a config names, with where: the CP refuses one that does not exist
   * (and a service delete or rename that would leave one dangling), the DP refuses the snapshot.
   */
  serviceRefs?(config: any): Array<{ path: Array<string | number>; ref: string }>;
}

export interface PluginHandler<C = any, S = any> {
  name: string;
  priority: number;
  /** Per-instance state built once per snapshot (compiled maps, key objects, a JWKS cache). */
  init?(config: C, env: PluginEnv, instanceId: string): S;
  /**
   * Most bytes a request body may have on this route, or null for no limit. The DP takes the
   * smallest limit of a request's plugins and counts a body sent without Content-Length while it
   * streams it upstream (no buffering); past the limit the upstream request is aborted and the
   * client answered 413 (Kong's request-size-limiting; a declared length is the plugin's to judge).
   */
  requestBodyLimit?(config: C, state: S): number | null;
  /** Whether this config needs the request body parsed (buffered) before the access phase. */
  needsBody?(config: C | undefined): boolean;
  access?(ctx: ProxyContext, config: C, state: S, env: PluginEnv): AccessResult | Promise<AccessResult>;
  /** Before the response head is sent: may change status-independent headers. */
  response?(ctx: ProxyContext, status: number, headers: Record<string, string | string[]>, config: C, state: S, env: PluginEnv): void;
  /** Body phase: declared by plugins that read or rewrite bodies (nothing else pays for it). */
  body?: BodyPhase<C, S>;
  /** After the response is sent. */
  log?(ctx: ProxyContext, status: number, config: C, state: S, env: PluginEnv): void;
}

/**
 * What the DP knows about a request once it is over (Kong's `kong.log.serialize` inputs). The DP
 * sets it on the context just before the log phase, so log-phase plugins (prometheus, file-log,
 * http-log, opentelemetry) read one object instead of reaching into the proxy.
 */
export interface RequestSummary {
  status: number;
  /** 'service' when the upstream answered, 'kong' when the gateway or a plugin did (Kong's response source). */
  source: 'service' | 'kong';
  /** Milliseconds since the epoch when the request arrived. */
  startedAt: number;
  /** Kong's latencies, ms: kong (the gateway's own time), proxy (upstream time to first byte, -1 when never sent), request (total). */
  latencies: { kong: number; proxy: number; request: number };
  /** Request bytes received (head estimate + body) and response bytes written (head + body). */
  bytesIn: number;
  bytesOut: number;
  /** `scheme://host:port` of the last upstream attempt, or null. */
  upstreamTarget: string | null;
  /** Path and query sent upstream. */
  upstreamUri: string;
  /** Upstream attempts made (retries = tries - 1). */
  tries: number;
  /** W3C trace id of this request (traced or only propagated), or null. */
  traceId: string | null;
  /** The response head as sent (lower-case names), parsed only when asked. */
  responseHeaders(): Record<string, string | string[]>;
}

/** A log-phase sink built once per plugin instance (a queue, a file, a span exporter). */
export interface LogPhaseSink {
  log(ctx: ProxyContext): void;
}

/** A tracer bound to one `opentelemetry` plugin instance: access starts (or only propagates), log ends. */
export interface TracePort extends LogPhaseSink {
  access(ctx: ProxyContext): void;
}

/**
 * The observability ports (metrics registry, log queues, span exporters) the DP gives log plugins;
 * the configs are the plugins' parsed configs. Optional so that handler unit tests and other ports
 * need not build them; a plugin that needs them fails at init without.
 */
export interface ObservabilityPorts {
  prometheus(config: Record<string, unknown>, instanceId: string): LogPhaseSink;
  fileLog(config: Record<string, unknown>, instanceId: string): LogPhaseSink;
  httpLog(config: Record<string, unknown>, instanceId: string): LogPhaseSink;
  tracer(config: Record<string, unknown>, instanceId: string): TracePort;
}
