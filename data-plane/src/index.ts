// A data-plane node as a library: disk cache first, then the bus; proxy, status and heartbeats.
import os from 'node:os';
import { mkdirSync } from 'node:fs';
import type { Socket } from 'node:net';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { serve } from '@hono/node-server';
import {
  closeServer, EnvError, getBytes, getJson, HEARTBEAT_INTERVAL_MS, loadNodeId, natsConnectOptions, parsePublicKeys, PORTICO_VERSION, type Env, type Heartbeat, type Logger,
  type SnapshotSubscriber, type TrustedKey,
  nodeTracer,
} from '@portico/shared';
import { tracedApply } from './sync/traced-apply.ts';
import { ConfigState } from './sync/config-state.ts';
import { HealthRegistry } from './proxy/balancer.ts';
import { probeTarget } from './proxy/probe.ts';
import { RateLimitStores } from './adapters/redis-rate-limit.ts';
import { ProxyCacheStores } from './adapters/proxy-cache.ts';
import { cacheCommandHandler } from './sync/cache-commands.ts';
import { MemoryRateLimitStore, type RateLimitStore } from '@portico/shared/plugins/handlers';
import { connectNatsSubscriber, natsState } from './sync/nats.ts';
import { createProxy, type RuntimeConfig } from './proxy/forward.ts';
import type { ServiceTarget } from './proxy/target.ts';
import type { Dispatcher } from 'undici';
import { createStatusApp, upstreamHealth, type UpstreamHealthApi } from './status/app.ts';
import { HealthOverrides } from './sync/health-overrides.ts';
import { defaultCertificate, startH2cListener, startTlsListener } from './tls/index.ts';
import { Observability } from './observability/index.ts';
import { openAccessLog } from './observability/access-log.ts';

/**
 * A worker process of a multi-worker node (cluster/): what is node-wide comes from the primary.
 * The bus is the IPC channel to it (snapshots it verified, health overrides; heartbeats go back
 * to it); it holds the disk cache, the status listener, active probes and the node's counters.
 */
export interface WorkerRole {
  bus: SnapshotSubscriber;
  /** The node's current config (signed bytes), applied before the proxy listens. */
  initial: Uint8Array | null;
  localRateLimitStore: RateLimitStore;
  /** Without probes; shares what it learns with the other workers. */
  health: HealthRegistry;
  /** The config state, once made: the worker reports each apply's outcome from it. */
  onState(state: ConfigState): void;
}

export interface DataPlane {
  state: ConfigState;
  health: UpstreamHealthApi;
  /** Requests and connections on this process's listeners. */
  counters: { requests: number; connections: number; active: number };
  /** This process's /metrics text. */
  metrics(): Promise<string>;
  stop(): Promise<void>;
}

export function primaryIp(): string {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

/** Resolves once `server` (already told where by serve()) is listening. */
function listening(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    if (server.listening) return resolve();
    server.once('listening', () => resolve());
    server.once('error', reject);
  });
}

/** The keys snapshots must be signed with: PORTICO_SIGNING_PUBLIC_KEYS, else the all-in-one's own. */
export function trustedKeys(env: Env, own?: TrustedKey[]): TrustedKey[] {
  if (env.PORTICO_SIGNING_PUBLIC_KEYS) {
    try { return parsePublicKeys(env.PORTICO_SIGNING_PUBLIC_KEYS); } catch (err) { throw new EnvError((err as Error).message); }
  }
  if (own) return own;
  throw new EnvError('PORTICO_SIGNING_PUBLIC_KEYS is required for a data plane: it applies only snapshots signed by the control plane\'s key (its public half, PEM text or file; several, comma-separated, while rotating)');
}

/** The read-only status listener (status/app.ts) on PORTICO_STATUS_LISTEN. */
export async function startStatusServer(env: Env, app: { fetch: (req: Request) => Response | Promise<Response> }): Promise<Server> {
  const server = serve({ fetch: app.fetch, hostname: env.PORTICO_STATUS_LISTEN.host, port: env.PORTICO_STATUS_LISTEN.port }) as Server;
  await listening(server);
  return server;
}

export async function startDataPlane(env: Env, log: Logger, bus?: SnapshotSubscriber, ownKeys?: TrustedKey[], worker?: WorkerRole): Promise<DataPlane> {
  bus ??= worker?.bus;
  const trusted = trustedKeys(env, ownKeys);
  // Read and checked before any socket opens: a bad credential file is an exit 2, not a retry loop.
  const natsOptions = bus ? null : natsConnectOptions(env, 'portico-data-plane');
  mkdirSync(env.PORTICO_DATA_DIR, { recursive: true });
  const nodeId = loadNodeId(env.PORTICO_DATA_DIR);
  const startedAt = Date.now();
  // Ports plugins use; they outlive snapshots, so counters and Redis connections survive config changes.
  const pluginCounters = new Map<string, number>();
  const memoryStore = worker ? null : new MemoryRateLimitStore();
  const localRateLimitStore = worker?.localRateLimitStore ?? memoryStore!;
  const sweep = setInterval(() => memoryStore?.sweep(), 60_000);
  sweep.unref();
  const rateLimitStores = new RateLimitStores(env.REDIS_URL, log);
  const counters = { requests: 0, connections: 0, active: 0 };
  // proxy-cache: stores outlive snapshots; stale entries are revalidated through this node's own proxy.
  const proxyHost = env.PORTICO_PROXY_LISTEN.host;
  const cacheStores = new ProxyCacheStores(env.REDIS_URL, `http://${['0.0.0.0', '::', ''].includes(proxyHost) ? '127.0.0.1' : proxyHost.includes(':') ? `[${proxyHost}]` : proxyHost}:${env.PORTICO_PROXY_LISTEN.port}`, log);
  // Outlives snapshots: series, log queues and span exporters survive config changes.
  let stateRef: ConfigState | null = null;
  const observability = new Observability({
    nodeId, pluginCounters, counters, current: () => stateRef?.current() ?? null,
    redis: () => rateLimitStores.connections(), nats: bus ? null : natsState,
    get config() { return { version: stateRef?.version ?? 0, hash: stateRef?.hash ?? '', lastError: stateRef?.lastError ?? null, lastApply: stateRef?.lastApply ?? null }; },
  });
  // Plugins' calls to services (aggregator legs) share the proxy's pooled agents, created below.
  let proxyDispatcher: ((t: ServiceTarget) => Dispatcher) | null = null;
  const state = new ConfigState(env.PORTICO_DATA_DIR, log, {
    now: Date.now, log, getJson, getBytes, localRateLimitStore, nodeId,
    serviceCalls: { dispatcherFor: (t) => proxyDispatcher!(t), recordLeg: (route, leg, outcome, ms) => observability.recordLeg(route, leg, outcome, ms) },
    rateLimitStore: (c) => rateLimitStores.get(c),
    proxyCache: cacheStores,
    counters: { increment: (name) => { pluginCounters.set(name, (pluginCounters.get(name) ?? 0) + 1); } },
    observability,
  }, worker?.health ?? new HealthRegistry(probeTarget), trusted, {
    // What a compile acquires (Redis stores, log sinks, span exporters) is released if its snapshot is rejected.
    commit: () => rateLimitStores.commit(),
    rollback: () => { rateLimitStores.rollback(); observability.rolledBack(); },
  });
  stateRef = state;
  worker?.onState(state);
  // onApplied also runs after a rejected snapshot: only a new running config releases anything.
  let observed: RuntimeConfig | null = null;
  state.onApplied(() => {
    const running = state.current();
    if (running === observed || !running?.routeIds) return;
    observed = running;
    observability.applied(running.routeIds);
  });
  if (!worker) await state.loadCache();
  else if (worker.initial) await state.apply(worker.initial, { persist: false });

  let draining = false;
  const accessLog = env.PORTICO_ACCESS_LOG === 'on' ? openAccessLog(log) : null;
  const proxyDeps = {
    current: state.current, accessLog, log, listenPort: env.PORTICO_PROXY_LISTEN.port, observability,
    underscoresInHeaders: env.PORTICO_UNDERSCORES_IN_HEADERS === 'on', clientBodyTimeoutMs: env.PORTICO_CLIENT_BODY_TIMEOUT_MS,
    realIp: { trustedIps: env.PORTICO_TRUSTED_IPS, realIpHeader: env.PORTICO_REAL_IP_HEADER, recursive: env.PORTICO_REAL_IP_RECURSIVE },
  };
  const proxy = createProxy(proxyDeps);
  proxyDispatcher = proxy.dispatcherFor;

  // The proxy listener is a plain node:http server: each request becomes one ProxyExchange
  // (proxy/exchange.ts) on Node's raw request/response, forwarded through undici's dispatcher.
  // Hono (through @hono/node-server's Web Request/Response) stays where it serves: the status API
  // and what plugins expose. On the proxy it was only per-request overhead: answering the same small
  // JSON document, Hono cost about 70 µs of CPU per request against about 20-27 µs for node:http
  // (2026-11-30, wrk -c50, /proc CPU time over requests, issue 16). Timeouts: 60 s for the
  // head (Kong's client_header_timeout) and between keep-alive requests; no bound on a whole
  // request (requestTimeout 0) because bodies stream for as long as they keep moving, bounded by
  // service.write_timeout upstream and by client_body_timeout when a plugin buffers them.
  // Connections opened and open now, on every listener (kong_nginx_connections_total).
  const trackConnection = (socket: Socket): void => {
    counters.connections++;
    counters.active++;
    socket.once('close', () => { counters.active--; });
  };
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    counters.requests++;
    proxy.handleRequest(req, res);
  };
  const proxyServer = createServer({ keepAliveTimeout: 60_000, requestTimeout: 0, headersTimeout: 60_000 }, onRequest);
  // `Expect: 100-continue`: the exchange sends 100 only once it reads the body, so a body refused on
  // its declared size gets its 417/413 without the client sending it (nginx; RFC 9110 §10.1.1).
  proxyServer.on('checkContinue', onRequest);
  proxyServer.on('connection', trackConnection);
  proxyServer.on('upgrade', proxy.handleUpgrade);
  proxyServer.listen(env.PORTICO_PROXY_LISTEN.port, env.PORTICO_PROXY_LISTEN.host);
  await listening(proxyServer);

  // The TLS listeners (tls/): the same proxy, each on its own port for X-Forwarded-Port and
  // `host:port` routes; the mTLS one also asks clients for a certificate (mtls-auth).
  const tlsListens = [
    { listen: env.PORTICO_PROXY_TLS_LISTEN, requestClientCertificate: false },
    { listen: env.PORTICO_PROXY_MTLS_LISTEN, requestClientCertificate: true },
  ].filter((l) => l.listen !== null);
  const defaultCert = tlsListens.length ? await defaultCertificate(env, log) : null;
  const tlsProxies = tlsListens.map((l) => createProxy({ ...proxyDeps, listenPort: l.listen!.port, tls: true }));
  const tlsListeners = await Promise.all(tlsListens.map((l, i) => startTlsListener({
    listen: l.listen!, requestClientCertificate: l.requestClientCertificate, defaultCertificate: defaultCert!,
    index: () => state.current()?.sni ?? null, proxy: tlsProxies[i], log,
    onRequest: () => { counters.requests++; }, onConnection: trackConnection,
  })));
  // Cleartext HTTP/2 (h2c), off by default: its own proxy for its port, as each TLS listener.
  const h2cListen = env.PORTICO_PROXY_H2C_LISTEN;
  const h2cProxy = h2cListen ? createProxy({ ...proxyDeps, listenPort: h2cListen.port, h2c: true }) : null;
  const h2cListener = h2cListen && h2cProxy
    ? await startH2cListener({ listen: h2cListen, proxy: h2cProxy, onRequest: () => { counters.requests++; }, onConnection: trackConnection })
    : null;

  // A worker's node answers on its primary's status listener (cluster/primary.ts).
  const statusServer = worker ? null : await startStatusServer(env, createStatusApp({ nodeId, state, draining: () => draining, counters, pluginCounters, observability }));
  log.info({ proxy: env.PORTICO_PROXY_LISTEN, proxy_tls: env.PORTICO_PROXY_TLS_LISTEN, proxy_mtls: env.PORTICO_PROXY_MTLS_LISTEN, proxy_h2c: h2cListen, status: worker ? undefined : env.PORTICO_STATUS_LISTEN, node_id: nodeId }, 'data plane listening');

  // Never waits for NATS (C11): the node serves its disk cache, drains on SIGTERM, and reports once NATS is reachable.
  const subscriber = bus ?? connectNatsSubscriber(natsOptions!, log, () => state.version, trusted, state.decoder.checkSignature);
  const hostname = os.hostname();
  const ip = primaryIp();
  const beat = () => {
    const hb: Heartbeat = {
      id: nodeId, hostname, ip, version: PORTICO_VERSION, config_version: state.version, config_hash: state.hash,
      last_error: state.lastError, status: draining ? 'draining' : state.current() ? 'ready' : 'starting', started_at: startedAt,
    };
    subscriber.heartbeat(hb);
  };
  state.onApplied(beat);
  const health = upstreamHealth(state, nodeId);
  const overrides = new HealthOverrides(trusted, health.set, log);
  subscriber.onHealth((bytes) => { overrides.receive(bytes); });
  subscriber.onCache?.(cacheCommandHandler(nodeId, trusted, cacheStores, log));
  const nodeTraces = await nodeTracer(env.PORTICO_OTEL_TRACES_ENDPOINT, 'portico-data-plane', nodeId);
  await subscriber.watch(tracedApply(state, nodeTraces));
  beat();
  const heartbeat = setInterval(beat, HEARTBEAT_INTERVAL_MS);
  heartbeat.unref();

  return {
    state,
    health,
    counters,
    metrics: () => observability.metrics(),
    async stop() {
      draining = true;
      beat();
      clearInterval(heartbeat);
      await Promise.all([closeServer(proxyServer, env.PORTICO_SHUTDOWN_TIMEOUT_MS), ...tlsListeners.map((l) => l.close(env.PORTICO_SHUTDOWN_TIMEOUT_MS)),
        h2cListener?.close(env.PORTICO_SHUTDOWN_TIMEOUT_MS)]);
      if (statusServer) await closeServer(statusServer, 1_000);
      // Every request is over: its access-log line is the last thing it owes.
      await accessLog?.close();
      await proxy.close();
      await Promise.all([...tlsProxies, ...(h2cProxy ? [h2cProxy] : [])].map((p) => p.close()));
      await observability.close();
      clearInterval(sweep);
      state.health.stop();
      rateLimitStores.close();
      cacheStores.close();
      await subscriber.close();
      await state.close();
      await nodeTraces?.shutdown();
    },
  };
}
