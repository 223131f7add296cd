// Builds config snapshots from Postgres and publishes them (ARCHITECTURE.md invariant 3): after
// commit, bursts coalesced into few snapshots within tens of milliseconds, failed publishes
// retried, the latest republished on start, and a slow poll that catches writes other CPs made.
import { lt, sql } from 'drizzle-orm';
import type { Logger } from 'pino';
import { configHash, encodeSnapshot, signSnapshot, type Config, type SigningKey, type Snapshot, type SnapshotPublisher } from '@portico/shared';
import type { Db } from '../db/index.ts';
import { configState, configVersions } from '../db/schema.ts';
import { ENTITIES } from '../services/entity.ts';
import { rowToEntity } from '../services/store.ts';

/** Wait this long after a write for more writes before building. */
const COALESCE_MS = 10;
/** Never hold a change back longer than this, however long a burst lasts. */
const MAX_DELAY_MS = 100;
/** How often to check whether another CP committed something nobody published. */
const POLL_MS = 2_000;
const RETRY_MIN_MS = 200;
const RETRY_MAX_MS = 5_000;
/** Snapshots kept in config_versions. */
const HISTORY = 20;

export interface BuiltSnapshot { snapshot: Snapshot; bytes: Uint8Array }

export async function buildSnapshot(db: Db): Promise<BuiltSnapshot> {
  return db.transaction(async (tx) => {
    const [{ version }] = await tx.select({ version: configState.version }).from(configState);
    const config: Record<string, unknown[]> = {};
    for (const def of ENTITIES) {
      const rows = await tx.select().from(def.table);
      config[def.name] = rows.map((r) => rowToEntity(def, r as Record<string, unknown>));
    }
    const snapshot: Snapshot = {
      version: Math.max(1, version),
      hash: configHash(config as Config),
      built_at: Date.now(),
      config: config as Config,
    };
    return { snapshot, bytes: encodeSnapshot(snapshot) };
  }, { isolationLevel: 'repeatable read', accessMode: 'read only' });
}

export class SnapshotLoop {
  private timer: NodeJS.Timeout | null = null;
  private firstPendingAt = 0;
  private running: Promise<void> | null = null;
  private again = false;
  private retryMs = RETRY_MIN_MS;
  private poller: NodeJS.Timeout | null = null;
  private stopped = false;
  latest: { version: number; hash: string; built_at: number; size_bytes: number } | null = null;
  /** Told each published snapshot's timings (the CP's /metrics). */
  observer: ((t: { build_ms: number; publish_ms: number }) => void) | null = null;

  constructor(private db: Db, private publisher: SnapshotPublisher, private log: Logger, private signing: SigningKey) {}

  /** Build and publish the current state now (at start), then keep watching. */
  async start(): Promise<void> {
    await this.run();
    this.poller = setInterval(() => { void this.pollForUnpublished(); }, POLL_MS);
    this.poller.unref();
  }

  /** A write committed: schedule a build, coalescing with other writes. */
  changed(): void {
    if (this.stopped) return;
    const now = Date.now();
    if (!this.timer) this.firstPendingAt = now;
    else clearTimeout(this.timer);
    const wait = Math.max(0, Math.min(COALESCE_MS, this.firstPendingAt + MAX_DELAY_MS - now));
    this.timer = setTimeout(() => { this.timer = null; void this.run(); }, wait);
  }

  private async pollForUnpublished(): Promise<void> {
    try {
      const [{ version }] = await this.db.select({ version: configState.version }).from(configState);
      if (!this.latest || version > this.latest.version) this.changed();
    } catch (err) {
      this.log.warn({ err }, 'config version poll failed');
    }
  }

  private run(): Promise<void> {
    if (this.running) { this.again = true; return this.running; }
    this.running = (async () => {
      do {
        this.again = false;
        await this.buildAndPublish();
      } while (this.again && !this.stopped);
    })().finally(() => { this.running = null; });
    return this.running;
  }

  private async buildAndPublish(): Promise<void> {
    const started = performance.now();
    try {
      const { snapshot, bytes } = await buildSnapshot(this.db);
      const built = performance.now();
      await this.db.insert(configVersions).values({
        version: snapshot.version, hash: snapshot.hash, built_at: snapshot.built_at,
        size_bytes: bytes.byteLength, snapshot: Buffer.from(bytes),
      }).onConflictDoNothing();
      await this.db.delete(configVersions).where(lt(configVersions.version, sql`(SELECT min(version) FROM (SELECT version FROM ${configVersions} ORDER BY version DESC LIMIT ${HISTORY}) AS keep)`));
      await this.publisher.publish(snapshot.version, snapshot.hash, signSnapshot(bytes, this.signing));
      this.latest = { version: snapshot.version, hash: snapshot.hash, built_at: snapshot.built_at, size_bytes: bytes.byteLength };
      this.retryMs = RETRY_MIN_MS;
      this.observer?.({ build_ms: built - started, publish_ms: performance.now() - built });
      this.log.info({
        version: snapshot.version, hash: snapshot.hash, bytes: bytes.byteLength,
        build_ms: Math.round(built - started), publish_ms: Math.round(performance.now() - built),
      }, 'config snapshot published');
    } catch (err) {
      this.log.error({ err, retry_ms: this.retryMs }, 'config snapshot publish failed; retrying');
      const wait = this.retryMs;
      this.retryMs = Math.min(RETRY_MAX_MS, this.retryMs * 2);
      setTimeout(() => this.changed(), wait).unref();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.poller) clearInterval(this.poller);
    await this.running;
  }
}
