// Status listener of a data-plane node: /status, /status/ready, /metrics and upstream health. It is
// read-only (probes may reach it from anywhere): health overrides come from the admin API, signed, over
// the bus (sync/health-overrides.ts).
import os from 'node:os';
import { Hono } from 'hono';
import { PORTICO_VERSION } from '@portico/shared';
import type { ConfigState } from '../sync/config-state.ts';
import type { Observability } from '../observability/index.ts';
import type { UpstreamBalancer } from '../proxy/balancer.ts';

/** What the status listener reads of a node's config: its ConfigState, or a multi-worker node's view (cluster/primary.ts). */
export type ConfigView = Pick<ConfigState, 'version' | 'hash' | 'appliedAt' | 'lastError' | 'lastApply' | 'cacheVersion'> & {
  current(): { upstreams: Map<string, UpstreamBalancer> } | null;
};

/** One worker process of a node (PORTICO_WORKERS > 1), as its primary last heard from it. */
export interface WorkerStatus {
  id: number;
  pid: number;
  config_version: number;
  config_hash: string;
  last_error: string | null;
  status: 'ready' | 'starting' | 'draining';
  total_requests: number;
  connections_accepted: number;
}

export interface StatusDeps {
  nodeId: string;
  state: ConfigView;
  draining: () => boolean;
  counters: { requests: number; connections: number };
  pluginCounters: Map<string, number>;
  observability: Pick<Observability, 'metrics' | 'contentType'>;
  /** A multi-worker node's workers, listed by /status. */
  workers?: () => Promise<WorkerStatus[]>;
}

export function createStatusApp(d: StatusDeps): Hono {
  const app = new Hono({ strict: false });
  app.get('/status', async (c) => {
    const workers = d.workers ? await d.workers() : null;
    const sum = (k: 'total_requests' | 'connections_accepted') => workers!.reduce((a, w) => a + w[k], 0);
    return c.json({
      server: workers ? { total_requests: sum('total_requests'), connections_accepted: sum('connections_accepted') } : { total_requests: d.counters.requests, connections_accepted: d.counters.connections },
      configuration_hash: d.state.hash,
      configuration: {
        version: d.state.version, hash: d.state.hash, applied_at: d.state.appliedAt || null,
        last_error: d.state.lastError, last_apply: d.state.lastApply, cache_version: d.state.cacheVersion,
      },
      node: { id: d.nodeId, hostname: os.hostname(), version: PORTICO_VERSION, role: 'data_plane' },
      memory: (({ rss, heapUsed }) => ({ rss_bytes: rss, heap_used_bytes: heapUsed }))(process.memoryUsage()),
      ...(workers ? { workers } : {}),
    });
  });
  app.get('/status/ready', (c) => {
    if (d.draining()) return c.json({ message: 'draining' }, 503);
    if (!d.state.current()) return c.json({ message: 'no configuration available (empty configuration present)' }, 503);
    return c.json({ message: 'ready' });
  });
  // Kong's metric families and Portico's own (observability/index.ts); never on the proxy port.
  app.get('/metrics', async (c) => c.text(await d.observability.metrics(), 200, { 'content-type': d.observability.contentType }));
  // Upstream health is per node (as Kong's): each DP answers for what it has seen.
  app.get('/upstreams/:name/health', (c) => {
    const h = upstreamHealth(d.state, d.nodeId).get(c.req.param('name'));
    return h ? c.json(h) : c.json({ message: 'Not found' }, 404);
  });
  app.notFound((c) => c.json({ message: 'Not found' }, 404));
  return app;
}

export interface UpstreamHealthApi {
  get(upstream: string): unknown | null;
  set(upstream: string, target: string, healthy: boolean): boolean;
}

/** Health of the running config's balancers, by upstream name or id. */
export function upstreamHealth(state: Pick<ConfigView, 'current'>, nodeId: string): UpstreamHealthApi {
  const find = (key: string) => {
    const cfg = state.current();
    if (!cfg) return undefined;
    return cfg.upstreams.get(key.toLowerCase()) ?? [...cfg.upstreams.values()].find((b) => b.upstream.id === key);
  };
  return {
    get: (key) => find(key)?.health(nodeId) ?? null,
    set: (key, target, healthy) => {
      const b = find(key);
      const norm = /:\d+$/.test(target) ? target : `${target}:8000`;
      const t = b?.targets.find((x) => x.target === norm || b.upstream.id === target);
      if (!b || !t) return false;
      b.setHealthy(t, healthy);
      return true;
    },
  };
}
