// Builds config snapshots from Postgres and publishes them (ARCHITECTURE.md invariant 3): after
// commit, bursts coalesced into few snapshots within tens of milliseconds, failed publishes
// retried, the latest republished on start, and a slow poll that catches writes other CPs made.
import { and, asc, eq, getTableColumns, gt, lt, lte, max, sql } from 'drizzle-orm';
import { PgDialect } from 'drizzle-orm/pg-core';
import type { Logger } from 'pino';
import { ROOT_CONTEXT, type Context } from '@opentelemetry/api';
import { canonicalJson, signSnapshot, SnapshotWriter, traceparentOf, type Config, type SealedSnapshot, type SigningKey, type SnapshotPublisher } from '@portico/shared';
import { rowsOf, type Db } from '../db/index.ts';
import { auditLog, configState, configVersions } from '../db/schema.ts';
import { storeVersion } from './history.ts';
import { ENTITIES } from '../services/entity.ts';
import { rowToEntity } from '../services/store.ts';
import type { ControlPlaneTracing } from '../tracing.ts';

/** Wait this long after a write for more writes before building. */
const COALESCE_MS = 10;
/** Never hold a change back longer than this, however long a burst lasts. */
const MAX_DELAY_MS = 100;
/** How often to check whether another CP committed something nobody published. */
const POLL_MS = 2_000;
const RETRY_MIN_MS = 200;
const RETRY_MAX_MS = 5_000;
/** Snapshots kept in config_versions by default (PORTICO_CONFIG_HISTORY). */
export const DEFAULT_CONFIG_HISTORY = 100;
/** Audit entries read to describe one version (a burst larger than this is summarized by its first ones). */
const DESCRIBE_ENTRIES = 500;

/**
 * How many of `next`'s items at its start (`head`) and at its end (`tail`) are those of `prev` in
 * the same places, the two not overlapping: whatever changed between two lists lies between them.
 */
export function unchangedEnds(prev: readonly string[], next: readonly string[]): { head: number; tail: number } {
  const max = Math.min(prev.length, next.length);
  let head = 0;
  while (head < max && prev[head] === next[head]) head++;
  let tail = 0;
  while (tail < max - head && prev[prev.length - 1 - tail] === next[next.length - 1 - tail]) tail++;
  return { head, tail };
}

export type BuiltSnapshot = SealedSnapshot;

/** An entity as a build last read it: the row version it came from (xmin) and its canonical text. */
interface CachedRow { xmin: string; entity: unknown; text: string }

/**
 * The build's first statement: the version, the server and every table's "id:xmin" list. Its text
 * is fixed, so it is rendered once: drizzle rendering it from its 14 parts took ~1 ms of each build.
 */
const LISTS = (() => {
  const q = new PgDialect().sqlToQuery(sql`SELECT
    (SELECT ${configState.version} FROM ${configState}) AS version, pg_postmaster_start_time()::text AS server,
    ${sql.join(ENTITIES.map((def, i) => sql`(SELECT string_agg(id::text || ':' || xmin::text, ',' ORDER BY id) FROM ${def.table}) AS ${sql.identifier(`list${i}`)}`), sql`, `)}`);
  // Raw text carries no parameters: one added above would be lost, so it fails here, at load.
  if (q.params.length > 0) throw new Error('the build\'s list statement has parameters; it cannot be rendered once');
  return sql.raw(q.sql);
})();

/**
 * Builds snapshots, reading again only the rows that changed since its last build. Each build
 * lists every table's (id, xmin) in one repeatable-read transaction; a row whose xmin (the
 * transaction that wrote this version of it) is the one cached keeps its entity and canonical
 * text, the rest are read in full. At 10,000 routes a one-route write costs a list of ids rather
 * than parsing, converting and serializing every row again, and compresses the one block of ~128
 * entities it touched rather than the whole document (SnapshotWriter). CP CPU per write, everything
 * included (test/bench/apply.ts): ~270 ms with no cache, ~100–150 with the row cache, ~80–100 with
 * the block writer. xmin values are unique per committed row version within one cluster; a
 * different Postgres server (a restore, a failover: its start time changes) empties the cache.
 * Lists are written in id order: the order the config hash takes them in, so a DP hashes the
 * snapshot's bytes in place (codec.ts, decodeAgainst), and a row keeps its place when written.
 */
export class SnapshotBuilder {
  private cache = new Map<string, Map<string, CachedRow>>();
  /** Each table's list as the last build read it ("id:xmin" pairs in id order), with the entities and texts it gave. */
  private lists = new Map<string, { pairs: string[]; entities: unknown[]; texts: string[] }>();
  private server: string | null = null;
  /** Keeps the last snapshot's compressed blocks: a block whose rows did not change is not compressed again. */
  private writer = new SnapshotWriter();

  async build(db: Db): Promise<BuiltSnapshot> {
    return db.transaction(async (tx) => {
      // The version, the server and every table's list in one statement: a round trip per table
      // cost the CP a socket write and Postgres a statement each (~14 per build).
      const [listed] = rowsOf<Record<string, string | null> & { version: string | number; server: string }>(await tx.execute(LISTS));
      const version = Number(listed.version);
      const server = listed.server;
      // The cache is kept up to date in place (its entries are facts about row versions, true
      // whether or not this build completes), so a build does not make and promote 10,000-entry maps.
      if (server !== this.server) { this.cache = new Map<string, Map<string, CachedRow>>(); this.lists.clear(); }
      this.server = server;
      const config: Record<string, unknown[]> = {};
      const texts: Record<string, string[]> = {};
      for (const [i, def] of ENTITIES.entries()) {
        // Every row's id and version as one string ("id:xmin,…" in id order): one value for the
        // driver to parse rather than 10,000 rows of two.
        const list = listed[`list${i}`];
        const pairs = list ? list.split(',') : [];
        const last = this.lists.get(def.name);
        const rows = this.cache.get(def.name) ?? new Map<string, CachedRow>();
        // Only the pairs between an unchanged head and tail are looked at (all of them in a first
        // build): a one-route write at 10,000 routes is one pair, not 10,000 ids to slice and look up.
        const { head, tail } = last ? unchangedEnds(last.pairs, pairs) : { head: 0, tail: 0 };
        const ids = new Array<string>(pairs.length - tail - head);
        const xmins = new Array<string>(ids.length);
        for (let i = 0; i < ids.length; i++) { const pair = pairs[head + i]; const c = pair.indexOf(':'); ids[i] = pair.slice(0, c); xmins[i] = pair.slice(c + 1); }
        const stale = ids.filter((id, i) => rows.get(id)?.xmin !== xmins[i]);
        if (stale.length > 0) {
          const columns = { ...getTableColumns(def.table), xmin: sql<string>`xmin::text` };
          // Many stale rows (a first build, a bulk load): one scan beats a long id list.
          const read = stale.length > pairs.length / 2
            ? await tx.select(columns).from(def.table)
            : await tx.select(columns).from(def.table).where(sql`${def.table.id} = ANY(${sql.param(stale)}::uuid[])`);
          for (const row of read as Record<string, unknown>[]) {
            const entity = rowToEntity(def, row);
            rows.set(row.id as string, { xmin: row.xmin as string, entity, text: canonicalJson(entity) });
          }
        }
        // Rows no longer listed: a pair the last build had and this one has not lies between the head and tail.
        if (last) {
          const live = new Set(ids);
          for (let i = head; i < last.pairs.length - tail; i++) { const id = last.pairs[i].slice(0, last.pairs[i].indexOf(':')); if (!live.has(id)) rows.delete(id); }
        }
        // Rows read by a build that then failed, for ids since gone, are in neither list: a full sweep.
        if (rows.size !== pairs.length) {
          const live = new Set(pairs.map((pair) => pair.slice(0, pair.indexOf(':'))));
          for (const id of rows.keys()) if (!live.has(id)) rows.delete(id);
        }
        this.cache.set(def.name, rows);
        const changed: unknown[] = new Array(ids.length);
        const changedTexts: string[] = new Array(ids.length);
        for (let i = 0; i < ids.length; i++) {
          const row = rows.get(ids[i]);
          // A row listed but not read: it changed between the two statements' snapshots, which one
          // repeatable-read transaction rules out; refuse rather than publish a partial config.
          if (!row || row.xmin !== xmins[i]) throw new Error(`snapshot build: ${def.name} ${ids[i]} changed during the build`);
          changed[i] = row.entity;
          changedTexts[i] = row.text;
        }
        // The head and tail are the last build's entities: the same (id, xmin), so the same row versions.
        const entities = last ? last.entities.slice(0, head).concat(changed, last.entities.slice(last.entities.length - tail)) : changed;
        const own = last ? last.texts.slice(0, head).concat(changedTexts, last.texts.slice(last.texts.length - tail)) : changedTexts;
        config[def.name] = entities;
        texts[def.name] = own;
        this.lists.set(def.name, { pairs, entities, texts: own });
      }
      const built = this.writer.seal({ version: Math.max(1, version), built_at: Date.now() }, config as unknown as Config, texts);
      return built;
    }, { isolationLevel: 'repeatable read', accessMode: 'read only' });
  }
}

/** One build from scratch (no cache): what a snapshot of the store is now. */
export function buildSnapshot(db: Db): Promise<BuiltSnapshot> {
  return new SnapshotBuilder().build(db);
}

export class SnapshotLoop {
  private timer: NodeJS.Timeout | null = null;
  private firstPendingAt = 0;
  private running: Promise<void> | null = null;
  private again = false;
  private retryMs = RETRY_MIN_MS;
  private poller: NodeJS.Timeout | null = null;
  private stopped = false;
  /** The snapshot last built, stored and handed to the publisher (its publish may still be under way, or retried). */
  latest: { version: number; hash: string; built_at: number; size_bytes: number } | null = null;
  /** Told each published snapshot's timings (the CP's /metrics). */
  observer: ((t: { build_ms: number; publish_ms: number }) => void) | null = null;
  /** Node-level spans (PORTICO_OTEL_TRACES_ENDPOINT); null: none. */
  tracing: ControlPlaneTracing | null = null;
  /** The trace of the first write waiting for the next build (a burst's snapshot joins it). */
  private pendingTrace: Context | null = null;
  private builder = new SnapshotBuilder();

  constructor(private db: Db, private publisher: SnapshotPublisher, private log: Logger, private signing: SigningKey,
    private history = DEFAULT_CONFIG_HISTORY) {}

  /**
   * Who made a version and one line on what changed, from the audit entries of the writes it
   * holds (every write since the previous kept version: bursts coalesce into one version).
   */
  private async describe(version: number): Promise<{ changed_by: string[]; summary: string | null }> {
    const [{ prev }] = await this.db.select({ prev: max(configVersions.version) }).from(configVersions).where(lt(configVersions.version, version));
    const entries = await this.db.select({
      admin: auditLog.admin_username, method: auditLog.method, type: auditLog.entity_type,
      reason: sql<string | null>`${auditLog.change}->>'reason'`, summary: sql<string | null>`${auditLog.change}->>'summary'`,
    }).from(auditLog).where(and(gt(auditLog.config_version, prev ?? 0), lte(auditLog.config_version, version)))
      .orderBy(asc(auditLog.seq)).limit(DESCRIBE_ENTRIES);
    const counts = new Map<string, number>();
    for (const e of entries) {
      const what = e.type === 'config' ? `${e.reason}: ${e.summary}` : `${e.method} ${e.type}`;
      counts.set(what, (counts.get(what) ?? 0) + 1);
    }
    const summary = [...counts].map(([what, n]) => (n > 1 ? `${what} ×${n}` : what)).join('; ');
    const changedBy = [...new Set(entries.map((e) => e.admin).filter((a): a is string => !!a))];
    return { changed_by: changedBy, summary: summary || (prev === null ? 'start' : null) };
  }

  /** Build and publish the current state now (at start), then keep watching. */
  async start(): Promise<void> {
    // Snapshot versions start at 1, so an empty store is version 1 too: were it left at 0, the
    // first write would also be version 1, and data planes, which ignore a version they already
    // run, would keep the empty config until the second write.
    await this.db.update(configState).set({ version: 1 }).where(and(eq(configState.id, 1), eq(configState.version, 0)));
    await this.run();
    this.poller = setInterval(() => { void this.pollForUnpublished(); }, POLL_MS);
    this.poller.unref();
  }

  /** A write committed: schedule a build, coalescing with other writes. */
  changed(): void {
    if (this.stopped) return;
    const now = Date.now();
    this.pendingTrace ??= this.tracing?.currentWrite() ?? null;
    if (!this.timer) this.firstPendingAt = now;
    else clearTimeout(this.timer);
    const wait = Math.max(0, Math.min(COALESCE_MS, this.firstPendingAt + MAX_DELAY_MS - now));
    this.timer = setTimeout(() => { this.timer = null; void this.run(); }, wait);
  }

  private async pollForUnpublished(): Promise<void> {
    // A build under way or scheduled publishes the latest anyway; a second one of the same version
    // (a 10,000-route build outlasting the poll interval) would only cost a build and a publish.
    if (this.running || this.timer) return;
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
    const parent = this.pendingTrace ?? ROOT_CONTEXT;
    this.pendingTrace = null;
    const tracing = this.tracing;
    const started = performance.now();
    try {
      const { snapshot, bytes, parts } = tracing
        ? await tracing.span('snapshot build', parent, async (span) => {
          const built = await this.builder.build(this.db);
          span.setAttributes({ 'portico.config.version': built.snapshot.version, 'portico.config.hash': built.snapshot.hash });
          return built;
        })
        : await this.builder.build(this.db);
      const built = performance.now();
      await storeVersion(this.db, {
        version: snapshot.version, hash: snapshot.hash, built_at: snapshot.built_at,
        size_bytes: bytes.byteLength, ...await this.describe(snapshot.version),
      }, parts, this.history);
      const signed = signSnapshot(bytes, this.signing);
      // Known as the latest before the publish returns: DPs apply a pushed snapshot while the object
      // store still writes it, and the CP must not report itself behind the nodes. A failed publish
      // is retried until this version (or a later one) is out.
      this.latest = { version: snapshot.version, hash: snapshot.hash, built_at: snapshot.built_at, size_bytes: bytes.byteLength };
      if (tracing) {
        await tracing.span('snapshot publish', parent, async (span) => {
          span.setAttribute('portico.config.version', snapshot.version);
          await this.publisher.publish(snapshot.version, snapshot.hash, signed, traceparentOf(span), parts);
        });
      } else await this.publisher.publish(snapshot.version, snapshot.hash, signed, undefined, parts);
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
