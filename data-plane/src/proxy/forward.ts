// The proxy: what its requests share (pooled upstream agents, settings) and Node's two entry
// points, `request` and `upgrade`. Each request is one ProxyExchange (exchange.ts).
import type { Config, RealIpOptions } from '@portico/shared';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { Agent, buildConnector, type Dispatcher } from 'undici';
import type { Logger } from '@portico/shared';
import type { UpstreamBalancer } from './balancer.ts';
import type { ServiceTarget } from './target.ts';
import type { Router } from '../router/router.ts';
import type { SniIndex } from '../tls/sni-index.ts';
import type { PluginChains } from '../plugins/compile.ts';
import { serve } from './exchange.ts';
import { DEFAULT_CLIENT_BODY_TIMEOUT_MS } from './policy.ts';
import type { Observability } from '../observability/index.ts';
import type { AccessLogWriter } from '../observability/access-log.ts';

export interface RuntimeConfig {
  version: number;
  hash: string;
  router: Router;
  plugins: PluginChains;
  /** Balancers by upstream name (lower-cased): a service whose host names one balances over it. */
  upstreams: Map<string, UpstreamBalancer>;
  /** Where each service's requests go, by service id and name (a plugin may switch services). */
  targets: Map<string, ServiceTarget>;
  /** Certificates by SNI for the TLS listener (tls/sni-index.ts). */
  sni?: SniIndex;
  /** Ids of the config's routes (observability drops the series of the others). */
  routeIds?: ReadonlySet<string>;
  /** The snapshot's entities this was compiled from: the next snapshot reuses what they share (compile/). */
  source?: Config;
}

export interface ProxyDeps {
  current(): RuntimeConfig | null;
  /** One line per request; null when PORTICO_ACCESS_LOG=off. */
  accessLog: AccessLogWriter | null;
  /** The node's logger: internal errors and refusals are logged whatever the access-log setting. */
  log: Logger;
  listenPort: number;
  /** This proxy serves the TLS listener: HTTP/2 allowed, `https` routes, SNI, X-Forwarded-Proto https. */
  tls?: boolean;
  /** Cleartext HTTP/2 with prior knowledge (the h2c listener): HTTP/2 requests without TLS. */
  h2c?: boolean;
  /**
   * Kong's trusted_ips / real_ip_header / real_ip_recursive (PORTICO_TRUSTED_IPS, …): which client
   * address rate limiting, hashing, ip-restriction and the logs see. Unset: the TCP peer.
   */
  realIp?: RealIpOptions;
  /** nginx's `underscores_in_headers` (PORTICO_UNDERSCORES_IN_HEADERS); default off. */
  underscoresInHeaders?: boolean;
  /** Kong's `client_body_timeout` (PORTICO_CLIENT_BODY_TIMEOUT_MS). */
  clientBodyTimeoutMs?: number;
  /** The dispatcher for a target; unit tests pass a fake. Default: pooled undici Agents. */
  dispatcherFor?: (t: ServiceTarget) => Dispatcher;
  /** Metrics, traces and log plugins' sinks (data-plane/src/observability); unit tests may leave it out. */
  observability?: Observability;
}

const KEEPALIVE_TIMEOUT_MS = 60_000;

/** One pooled agent per (connect timeout, upstream TLS settings): undici sets both per connection. */
class Agents {
  private agents = new Map<string, Agent>();
  constructor(private readonly log: Logger) {}
  get(t: ServiceTarget): Agent {
    let a = this.agents.get(t.agentKey);
    if (!a) {
      const connect = buildConnector({ timeout: t.service.connect_timeout, rejectUnauthorized: t.service.tls_verify === true, ...t.tls?.connect });
      const log = this.log;
      const service = t.service.name ?? t.service.id;
      a = new Agent({
        keepAliveTimeout: KEEPALIVE_TIMEOUT_MS,
        // A refused upstream certificate is a 502 for the client; the reason is logged here, once per connection attempt.
        connect: (opts, cb) => connect(opts, (err, socket) => {
          if (err && isTlsError(err)) log.warn({ service, upstream: `${opts.hostname}:${opts.port}`, servername: opts.servername, code: (err as { code?: string }).code, reason: err.message }, 'upstream TLS verification failed');
          if (err) cb(err, null); else cb(null, socket!);
        }),
      });
      this.agents.set(t.agentKey, a);
    }
    return a;
  }
  async close(): Promise<void> { await Promise.all([...this.agents.values()].map((a) => a.close())); }
}

const isTlsError = (err: Error): boolean => /CERT|SSL|TLS|SELF_SIGNED|ISSUER|VERIFY|DEPTH|ALTNAME|CHAIN/.test((err as { code?: string }).code ?? '');

/** What every exchange of one proxy shares. */
export class ProxyCore {
  readonly agents: Agents;
  readonly underscores: boolean;
  readonly clientBodyTimeoutMs: number;
  readonly dispatcherFor: (t: ServiceTarget) => Dispatcher;

  constructor(readonly deps: ProxyDeps) {
    this.agents = new Agents(deps.log);
    this.underscores = deps.underscoresInHeaders === true;
    this.clientBodyTimeoutMs = deps.clientBodyTimeoutMs ?? DEFAULT_CLIENT_BODY_TIMEOUT_MS;
    this.dispatcherFor = deps.dispatcherFor ?? ((t) => this.agents.get(t));
  }
}

export function createProxy(deps: ProxyDeps) {
  const core = new ProxyCore(deps);
  return {
    handleRequest: (req: IncomingMessage, res: ServerResponse): void => serve(core, req, res),
    handleUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer): void => serve(core, req, null, socket, head),
    /** The pooled agents, for requests plugins send to services (service-calls.ts). */
    dispatcherFor: core.dispatcherFor,
    close: () => core.agents.close(),
  };
}
