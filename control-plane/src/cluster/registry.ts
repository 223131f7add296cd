// Data-plane registry: heartbeats from the bus upserted into Postgres, listed with Kong's fields
// (reference/kong-compat.md §6.3) plus ours: config version, last apply error, and status.
import { desc, lt } from 'drizzle-orm';
import type { Logger } from 'pino';
import { heartbeatSchema, type Heartbeat } from '@portico/shared';
import type { Db } from '../db/index.ts';
import { dataPlanes } from '../db/schema.ts';

/** Kong's cluster_data_plane_purge_delay: nodes unseen this long are forgotten. */
const PURGE_AFTER_S = 14 * 24 * 3600;

export class DataPlaneRegistry {
  /**
   * Each multi-worker node's workers as its last heartbeat reported them. Held in memory, not in
   * Postgres: every CP hears every heartbeat, and a node repeats it every few seconds.
   */
  private workers = new Map<string, NonNullable<Heartbeat['workers']>>();

  constructor(private db: Db, private log: Logger) {}

  async record(raw: unknown): Promise<void> {
    const parsed = heartbeatSchema.safeParse(raw);
    if (!parsed.success) {
      this.log.warn({ issues: parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.')}: ${i.message}`) }, 'invalid data-plane heartbeat ignored');
      return;
    }
    const hb = parsed.data;
    if (hb.workers) this.workers.set(hb.id, hb.workers); else this.workers.delete(hb.id);
    const now = Math.floor(Date.now() / 1000);
    const row = {
      id: hb.id, hostname: hb.hostname, ip: hb.ip, version: hb.version, config_version: hb.config_version,
      config_hash: hb.config_hash, last_error: hb.last_error, status: hb.status, started_at: hb.started_at,
      last_seen: now, updated_at: now,
    };
    try {
      await this.db.insert(dataPlanes).values(row).onConflictDoUpdate({ target: dataPlanes.id, set: row });
    } catch (err) {
      this.log.warn({ err }, 'could not record data-plane heartbeat');
    }
  }

  async list(latest: { version: number; hash: string } | null) {
    const now = Math.floor(Date.now() / 1000);
    await this.db.delete(dataPlanes).where(lt(dataPlanes.last_seen, now - PURGE_AFTER_S));
    const rows = await this.db.select().from(dataPlanes).orderBy(desc(dataPlanes.last_seen));
    return rows.map((r) => ({
      id: r.id,
      ip: r.ip,
      hostname: r.hostname,
      version: r.version,
      config_hash: r.config_hash,
      last_seen: r.last_seen,
      updated_at: r.updated_at,
      sync_status: 'normal',
      labels: {},
      cert_details: {},
      rpc_capabilities: [],
      ttl: PURGE_AFTER_S - (now - r.last_seen),
      // Portico's additions: what each node runs and whether it matches the CP's latest.
      config_version: r.config_version,
      config_status: r.last_error && (!latest || r.config_version < latest.version) ? 'apply_failed'
        : !latest ? 'unknown' : r.config_hash === latest.hash ? 'in_sync' : 'behind',
      last_error: r.last_error,
      status: r.status,
      started_at: r.started_at,
      // PORTICO_WORKERS > 1: each worker's applied config; the node's fields above are its least advanced one's.
      ...(this.workers.has(r.id) ? { workers: this.workers.get(r.id) } : {}),
    }));
  }
}
