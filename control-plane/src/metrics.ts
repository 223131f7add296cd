// The control plane's /metrics (on its status listener, and on the admin API's GET /metrics): admin writes, snapshot build and publish
// times, and the data planes by sync state, with Kong's hybrid-mode families
// (kong_data_plane_config_hash, kong_data_plane_last_seen) beside Portico's own. All prom-client:
// nothing here is on a proxy's hot path.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { DataPlaneRegistry } from './cluster/registry.ts';
import type { SnapshotLoop } from './snapshot/builder.ts';

const TIME_BUCKETS_MS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];
const READS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Kong's config_hash_to_number: the hash's leading hex digits as a number (13 digits fit a double exactly). */
const hashNumber = (hash: string): number => (hash ? parseInt(hash.slice(0, 13), 16) || 0 : 0);

export class ControlPlaneMetrics {
  readonly registry = new Registry();
  private readonly adminRequests: Counter<'method' | 'code'>;
  readonly build: Histogram;
  readonly publish: Histogram;

  constructor(snapshots: SnapshotLoop, dataPlanes: DataPlaneRegistry) {
    const r = this.registry;
    this.adminRequests = new Counter({ name: 'portico_admin_writes_total', help: 'Admin API writes (POST, PUT, PATCH, DELETE) by method and status', labelNames: ['method', 'code'], registers: [r] });
    this.build = new Histogram({ name: 'portico_snapshot_build_ms', help: 'Time to read the config and build a snapshot', buckets: TIME_BUCKETS_MS, registers: [r] });
    this.publish = new Histogram({ name: 'portico_snapshot_publish_ms', help: 'Time to store, sign and publish a built snapshot', buckets: TIME_BUCKETS_MS, registers: [r] });
    new Gauge({ name: 'portico_config_version', help: 'Latest published config version', registers: [r], collect() { this.set(snapshots.latest?.version ?? 0); } });
    new Gauge({ name: 'portico_snapshot_size_bytes', help: 'Size of the latest snapshot, compressed', registers: [r], collect() { this.set(snapshots.latest?.size_bytes ?? 0); } });
    // One registry read feeds the three data-plane families.
    let listing: ReturnType<DataPlaneRegistry['list']> | null = null;
    const nodes = () => (listing ??= dataPlanes.list(snapshots.latest).finally(() => { setImmediate(() => { listing = null; }); }));
    new Gauge({
      name: 'portico_data_planes', help: 'Data planes by config status (in_sync, behind, apply_failed, unknown)', labelNames: ['config_status'], registers: [r],
      async collect() {
        this.reset();
        for (const s of ['in_sync', 'behind', 'apply_failed']) this.set({ config_status: s }, 0);
        for (const n of await nodes()) this.inc({ config_status: n.config_status });
      },
    });
    new Gauge({
      name: 'kong_data_plane_config_hash', help: 'Config hash numeric value of the data plane', labelNames: ['node_id', 'hostname', 'ip'], registers: [r],
      async collect() { this.reset(); for (const n of await nodes()) this.set({ node_id: n.id, hostname: n.hostname, ip: n.ip }, hashNumber(n.config_hash)); },
    });
    new Gauge({
      name: 'kong_data_plane_last_seen', help: 'Last time data plane contacted control plane', labelNames: ['node_id', 'hostname', 'ip'], registers: [r],
      async collect() { this.reset(); for (const n of await nodes()) this.set({ node_id: n.id, hostname: n.hostname, ip: n.ip }, n.last_seen); },
    });
    snapshots.observer = (t) => { this.build.observe(t.build_ms); this.publish.observe(t.publish_ms); };
  }

  /** Wraps the admin API's fetch: counts writes by method and status. */
  countAdmin<A extends unknown[]>(fetch: (req: Request, ...rest: A) => Response | Promise<Response>): (req: Request, ...rest: A) => Promise<Response> {
    return async (req, ...rest) => {
      const res = await fetch(req, ...rest);
      if (!READS.has(req.method)) this.adminRequests.inc({ method: req.method, code: String(res.status) });
      return res;
    };
  }

  async text(): Promise<string> { return this.registry.metrics(); }
}
