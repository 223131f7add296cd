// Publishes snapshots to a JetStream object store (chunked, so 10k-route configs pass NATS's 1 MB
// max_payload), and first on core NATS when they fit one message (SNAPSHOT_SUBJECT: every DP has
// it without a fetch; as a delta against the last one sent, parts.ts), and listens for data-plane
// heartbeats on core NATS. The connection is made in the background, so the admin API serves while
// NATS is down (review C11): a publish waits briefly for the first connection, then fails, and the
// snapshot loop retries it.
import { connect, createInbox, headers, type NatsConnection } from '@nats-io/transport-node';
import { Objm, setSha256Backend, type ObjectStore } from '@nats-io/obj';
import type { Logger } from 'pino';
import { CACHE_SUBJECT, HEALTH_SUBJECT, HEARTBEAT_SUBJECT, SNAPSHOT_BUCKET, SNAPSHOT_OBJECT, SNAPSHOT_SUBJECT, SNAPSHOT_VERSION_HEADER, encodeDelta, partDigest, type CacheReply, type NatsOptions, type SnapshotPublisher } from '@portico/shared';

// The object store checks each object's SHA-256 on put and get; its default is a pure-JS hash
// (~4 ms of the event loop per 10,000-route snapshot). Node's is native.
setSha256Backend('native');

/** Room left in a SNAPSHOT_SUBJECT message for its subject and headers. */
const PUSH_HEADROOM = 4 * 1024;

/** How long a publish waits for the first connection (a normal start connects in milliseconds). */
const CONNECT_WAIT_MS = 1_000;

export function connectNatsPublisher(options: NatsOptions, log: Logger): SnapshotPublisher {
  let nc: NatsConnection | null = null;
  let closed = false;
  const heartbeatHandlers: ((hb: unknown) => void)[] = [];
  /** Digests of the parts of the last snapshot published: the next is sent as a delta against them. */
  let sentParts: Set<string> | null = null;
  let store: ObjectStore | null = null;
  const openStore = async (c: NatsConnection) => (store ??= await new Objm(c).create(SNAPSHOT_BUCKET, { storage: 'file' as never, description: 'Portico config snapshots' }));

  const subscribe = (c: NatsConnection, handler: (hb: unknown) => void) => {
    c.subscribe(HEARTBEAT_SUBJECT, {
      callback: (err, msg) => {
        if (err) return;
        try { handler(msg.json()); } catch { log.warn({ subject: msg.subject }, 'heartbeat is not JSON; ignored'); }
      },
    });
  };

  // Retries forever (natsConnectOptions): resolves when NATS is first reachable.
  let connected: () => void;
  const firstConnect = new Promise<void>((resolve) => { connected = resolve; });
  void connect(options).then((c) => {
    if (closed) { void c.close(); return; }
    connected();
    nc = c;
    log.info('NATS connected');
    for (const h of heartbeatHandlers) subscribe(c, h);
    void (async () => {
      for await (const s of c.status()) {
        if (s.type === 'disconnect' || s.type === 'reconnect') log.warn({ nats: s.type }, 'NATS connection status');
      }
    })();
  }, (err) => { log.error({ err: (err as Error).message }, 'NATS connection failed'); });

  /** The connection, waiting briefly for the first one. */
  const connection = async (): Promise<NatsConnection> => {
    if (!nc) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([firstConnect, new Promise((r) => { timer = setTimeout(r, CONNECT_WAIT_MS); })]);
      clearTimeout(timer);
      if (!nc) throw new Error('NATS is not connected yet');
    }
    return nc;
  };

  return {
    async publish(version, hash, bytes, traceparent, parts) {
      const c = await connection();
      // Sent first, so DPs apply while the object store writes (a core message is not kept: a DP
      // that misses it, or lacks a part the delta refers to, fetches the stored object). A larger
      // message goes by the store alone.
      const body = parts && sentParts ? encodeDelta(bytes, parts, sentParts) : bytes;
      sentParts = parts ? new Set(parts.map(partDigest)) : null;
      if (body.byteLength + PUSH_HEADROOM <= (c.info?.max_payload ?? 0)) {
        const h = headers();
        h.set(SNAPSHOT_VERSION_HEADER, String(version));
        if (traceparent) h.set('traceparent', traceparent);
        c.publish(SNAPSHOT_SUBJECT, body, { headers: h });
      }
      const os = await openStore(c);
      await os.putBlob({ name: SNAPSHOT_OBJECT, metadata: { version: String(version), hash, ...(traceparent ? { traceparent } : {}) } }, bytes);
    },
    async sendHealth(bytes) {
      const c = await connection();
      c.publish(HEALTH_SUBJECT, bytes);
      await c.flush();
    },
    async sendCache(bytes, expected, timeoutMs) {
      const c = await connection();
      const replies: CacheReply[] = [];
      // Every DP answers on one inbox; gathered until all expected nodes did, or the time is up.
      // (A subscription's own `timeout` only covers the wait for the first message.)
      const inbox = c.subscribe(createInbox());
      const timer = setTimeout(() => inbox.unsubscribe(), timeoutMs);
      const done = (async () => {
        for await (const m of inbox) {
          try { replies.push(m.json<CacheReply>()); } catch { log.warn('cache reply is not JSON; ignored'); }
          if (replies.length >= expected) break;
        }
      })();
      c.publish(CACHE_SUBJECT, bytes, { reply: inbox.getSubject() });
      await done;
      clearTimeout(timer);
      inbox.unsubscribe();
      return replies;
    },
    onHeartbeat(handler) {
      heartbeatHandlers.push(handler);
      if (nc) subscribe(nc, handler);
    },
    async close() {
      closed = true;
      if (nc) await nc.drain().catch(() => nc!.close());
    },
  };
}
