// Status listener of a data-plane node: /status, /status/ready, /metrics and upstream health. It is
// read-only (probes may reach it from anywhere): health overrides come from the admin API, signed, over
// the bus (sync/health-overrides.ts).
import os from 'node:os';
import { Hono } from 'hono';
import { PORTICO_VERSION } from '@portico/shared';
import type { ConfigState } from '../sync/config-state.ts';

export interface StatusDeps {
  nodeId: string;
  state: ConfigState;
  draining: () => boolean;
  counters: { requests: number; connections: number };
  pluginCounters: Map<string, number>;
}

export function createStatusApp(d: StatusDeps): Hono {
  const app = new Hono({ strict: false });
  app.get('/status', (c) => c.json({
    server: { total_requests: d.counters.requests, connections_accepted: d.counters.connections },
    configuration_hash: d.state.hash,
    configuration: {
      version: d.state.version, hash: d.state.hash, applied_at: d.state.appliedAt || null,
      last_error: d.state.lastError, last_apply: d.state.lastApply,
    },
    node: { id: d.nodeId, hostname: os.hostname(), version: PORTICO_VERSION, role: 'data_plane' },
    memory: { rss_bytes: process.memoryUsage().rss, heap_used_bytes: process.memoryUsage().heapUsed },
  }));
  app.get('/status/ready', (c) => {
    if (d.draining()) return c.json({ message: 'draining' }, 503);
    if (!d.state.current()) return c.json({ message: 'no configuration available (empty configuration present)' }, 503);
    return c.json({ message: 'ready' });
  });
  app.get('/metrics', (c) => {
    const mem = process.memoryUsage();
    const lines = [
      '# HELP portico_http_requests_total Requests received by the proxy listener.',
      '# TYPE portico_http_requests_total counter',
      `portico_http_requests_total ${d.counters.requests}`,
      '# HELP portico_config_version Version of the config this node runs.',
      '# TYPE portico_config_version gauge',
      `portico_config_version ${d.state.version}`,
      '# HELP portico_config_apply_errors Whether the last snapshot received failed to apply (1) or not (0).',
      '# TYPE portico_config_apply_errors gauge',
      `portico_config_apply_errors ${d.state.lastError ? 1 : 0}`,
      '# HELP portico_process_resident_memory_bytes Resident memory.',
      '# TYPE portico_process_resident_memory_bytes gauge',
      `portico_process_resident_memory_bytes ${mem.rss}`,
      ...[...d.pluginCounters].flatMap(([name, value]) => [`# TYPE portico_${name}_total counter`, `portico_${name}_total ${value}`]),
      '',
    ];
    return c.text(lines.join('\n'), 200, { 'content-type': 'text/plain; version=0.0.4' });
  });
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
export function upstreamHealth(state: ConfigState, nodeId: string): UpstreamHealthApi {
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
