// The config bus between the planes: names and message shapes, and the interfaces each plane's
// transport implements (NATS in data-plane/ and control-plane/, in-process below for all-in-one).
import { z } from 'zod';

/** JetStream object store holding the latest snapshot (chunked, so size is not bounded by max_payload). */
export const SNAPSHOT_BUCKET = 'portico_config';
export const SNAPSHOT_OBJECT = 'snapshot';
/**
 * Core NATS subject the CP also sends each snapshot on (signed, as stored), when it fits one
 * message under the server's max_payload: data planes apply it as it arrives, with no fetch from the
 * object store, which stays the record (cold starts, a node that missed the message, larger configs).
 */
export const SNAPSHOT_SUBJECT = 'portico.cp.snapshot';
/** Header of a SNAPSHOT_SUBJECT message: the snapshot's version, so a node skips one it runs without opening it. */
export const SNAPSHOT_VERSION_HEADER = 'Portico-Config-Version';
/** Core NATS subject data planes report on. */
export const HEARTBEAT_SUBJECT = 'portico.dp.heartbeat';
/** Core NATS subject the CP sends target health overrides on (signed, like snapshots). */
export const HEALTH_SUBJECT = 'portico.cp.health';
/**
 * Core NATS subject the CP sends cache commands on (signed, like health overrides); every DP
 * answers on the message's reply subject, so the admin API can say which nodes purged.
 */
export const CACHE_SUBJECT = 'portico.cp.cache';
/** How often a DP reports when nothing changes. */
export const HEARTBEAT_INTERVAL_MS = 5_000;

/** Longest `last_error` a DP reports: enough for the cause, short enough for every heartbeat. */
export const LAST_ERROR_MAX = 1_000;

/** `s` cut to at most `max` characters, marked with an ellipsis when cut. */
export function truncate(s: string, max: number): string {
  return s.length > max ? s.slice(0, max - 1) + '…' : s;
}

/** A text field the CP clips rather than refuses: a long value must never drop a node's heartbeat. */
const clipped = (max: number) => z.string().transform((s) => truncate(s, max));

export const heartbeatSchema = z.strictObject({
  id: z.string().uuid(),
  hostname: clipped(255),
  ip: clipped(64),
  version: clipped(32),
  config_version: z.int().nonnegative(),
  config_hash: z.string().max(64),
  last_error: clipped(LAST_ERROR_MAX).nullable(),
  status: z.enum(['ready', 'starting', 'draining']),
  started_at: z.int().nonnegative(),
  /**
   * A node with several worker processes (PORTICO_WORKERS): what each applied. The node's own
   * config_version and config_hash are its least advanced worker's, so it is in sync only when all are.
   */
  workers: z.array(z.strictObject({
    pid: z.int().positive(),
    config_version: z.int().nonnegative(),
    config_hash: z.string().max(64),
    last_error: clipped(LAST_ERROR_MAX).nullable(),
    status: z.enum(['ready', 'starting', 'draining']),
  })).max(1024).optional(),
});
export type Heartbeat = z.infer<typeof heartbeatSchema>;

/**
 * `PUT /upstreams/{u}/targets/{t}/healthy|unhealthy` on the admin API, for every DP (Kong's hybrid
 * mode cannot do this at all). `id` and `issued_at` let a DP refuse a replayed message.
 */
export const healthOverrideSchema = z.strictObject({
  id: z.string().uuid(),
  issued_at: z.int().nonnegative(),
  upstream: z.string().min(1).max(512),
  target: z.string().min(1).max(512),
  healthy: z.boolean(),
});
export type HealthOverride = z.infer<typeof healthOverrideSchema>;

const purgeText = (max: number) => z.string().min(1).max(max);

/**
 * A proxy-cache command: `purge` removes what the filter selects (none: everything) from every
 * store of the node; `get` looks one key up. `id` and `issued_at` let a DP refuse a replay.
 */
export const cacheCommandSchema = z.strictObject({
  id: z.string().uuid(),
  issued_at: z.int().nonnegative(),
  op: z.enum(['purge', 'get']),
  plugin: purgeText(64).optional(),
  key: purgeText(256).optional(),
  route: purgeText(64).optional(),
  service: purgeText(64).optional(),
  prefix: purgeText(2048).optional(),
  tag: purgeText(256).optional(),
});
export type CacheCommand = z.infer<typeof cacheCommandSchema>;

/** A DP's answer to a cache command. */
export interface CacheReply {
  node_id: string;
  /** purge: entries removed; get: the entry, or null. */
  purged?: number;
  entry?: unknown;
  errors?: string[];
}

/** What the CP needs from the bus. */
export interface SnapshotPublisher {
  /**
   * `bytes`: the signed envelope; `traceparent`: the publish span, so each DP's apply joins the
   * write's trace (config-trace.ts); `parts`: the payload's gzip members (parts.ts), so a transport
   * can send only those the last snapshot did not have.
   */
  publish(version: number, hash: string, bytes: Uint8Array, traceparent?: string, parts?: readonly Uint8Array[]): Promise<void>;
  onHeartbeat(handler: (hb: unknown) => void): void;
  /** Sends a signed health override to every connected DP. */
  sendHealth(bytes: Uint8Array): Promise<void>;
  /**
   * Sends a signed cache command to every DP and gathers their answers until `expected` nodes
   * answered or `timeoutMs` passed.
   */
  sendCache?(bytes: Uint8Array, expected: number, timeoutMs: number): Promise<CacheReply[]>;
  close(): Promise<void>;
}

/**
 * What a DP needs from the bus. `watch` delivers the latest snapshot first, then every update; the
 * handler answers false when it rejected the snapshot, which is then not delivered again.
 */
export interface SnapshotSubscriber {
  /** `traceparent` is as received (unvalidated, unsigned): parse it with validTraceparent. */
  watch(handler: SnapshotHandler): Promise<void>;
  heartbeat(hb: Heartbeat): void;
  /** Signed health overrides from the CP, as received (the DP verifies them). */
  onHealth(handler: (bytes: Uint8Array) => void): void;
  /** Signed cache commands from the CP, as received; the answer (null: none) goes back to the CP. */
  onCache?(handler: (bytes: Uint8Array) => Promise<CacheReply | null>): void;
  close(): Promise<void>;
}

/**
 * Answers (once the apply is done: it runs off the caller's turn) whether the snapshot was accepted.
 * `release`, when given, is called once the handler no longer needs `bytes` (applied and written to
 * the disk cache, or dropped): the caller may then reuse their memory. A handler that never calls
 * it only means the memory is not reused.
 */
export type SnapshotHandler = (bytes: Uint8Array, traceparent?: string, release?: () => void) => boolean | Promise<boolean>;

/** The in-process bus used when CP and DP share a process and no NATS_URL is set. */
export class MemoryBus {
  private latest: Uint8Array | null = null;
  private watchers = new Set<SnapshotHandler>();
  private heartbeatHandlers = new Set<(hb: unknown) => void>();
  private healthHandlers = new Set<(bytes: Uint8Array) => void>();
  private cacheHandlers = new Set<(bytes: Uint8Array) => Promise<CacheReply | null>>();

  readonly publisher: SnapshotPublisher = {
    publish: async (_version, _hash, bytes, traceparent) => {
      this.latest = bytes;
      for (const w of this.watchers) queueMicrotask(() => { void w(bytes, traceparent); });
    },
    onHeartbeat: (handler) => { this.heartbeatHandlers.add(handler); },
    sendHealth: async (bytes) => { for (const h of this.healthHandlers) h(bytes); },
    sendCache: async (bytes) => (await Promise.all([...this.cacheHandlers].map((h) => h(bytes)))).filter((r): r is CacheReply => r !== null),
    close: async () => { this.heartbeatHandlers.clear(); },
  };

  readonly subscriber: SnapshotSubscriber = {
    watch: async (handler) => {
      this.watchers.add(handler);
      if (this.latest) await handler(this.latest);
    },
    heartbeat: (hb) => { for (const h of this.heartbeatHandlers) h(hb); },
    onHealth: (handler) => { this.healthHandlers.add(handler); },
    onCache: (handler) => { this.cacheHandlers.add(handler); },
    close: async () => { this.watchers.clear(); this.healthHandlers.clear(); this.cacheHandlers.clear(); },
  };
}
