// Receives snapshots from the JetStream object store: the current one at start, every update
// after, and a periodic check so a watch lost across a NATS outage cannot leave a node behind.
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Objm, type ObjectStore } from '@nats-io/obj';
import type { Logger } from 'pino';
import { HEARTBEAT_SUBJECT, natsConnectOptions, SNAPSHOT_BUCKET, SNAPSHOT_OBJECT, type Env, type Heartbeat, type SnapshotSubscriber } from '@portico/shared';

const RECHECK_MS = 3_000;
const FETCH_TIMEOUT_MS = 5_000;

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms); })])
    .finally(() => clearTimeout(timer));
}

export async function connectNatsSubscriber(env: Env, log: Logger, currentVersion: () => number): Promise<SnapshotSubscriber> {
  const nc: NatsConnection = await connect(natsConnectOptions(env, 'portico-data-plane'));
  let store: ObjectStore | null = null;
  let handler: ((bytes: Uint8Array) => void) | null = null;
  let closed = false;
  let fetching = false;
  let again = false;

  const openStore = async () => (store ??= await new Objm(nc).create(SNAPSHOT_BUCKET, { storage: 'file' as never }));

  /**
   * Fetch the stored snapshot if its version is newer than the one applied. Calls during a fetch
   * are folded into one more fetch after it, so the newest version is always read last.
   */
  async function fetchIfNewer(): Promise<void> {
    if (!handler) return;
    if (fetching) { again = true; return; }
    fetching = true;
    try {
      do {
        again = false;
        try {
          await withTimeout(fetchOnce(), FETCH_TIMEOUT_MS);
        } catch (err) {
          // A put that replaced the object mid-read purges the chunks being read; the next read gets the new one.
          log.debug({ err: (err as Error).message }, 'snapshot fetch failed; retrying');
          again = !closed;
          await new Promise((r) => setTimeout(r, 100));
        }
      } while (again && !closed);
    } finally {
      fetching = false;
    }
  }

  async function fetchOnce(): Promise<void> {
    const os = await openStore();
    const info = await os.info(SNAPSHOT_OBJECT);
    if (!info || info.deleted) return;
    const version = Number(info.metadata?.version ?? 0);
    if (version && version <= currentVersion()) return;
    const bytes = await os.getBlob(SNAPSHOT_OBJECT);
    if (bytes && handler) handler(bytes);
  }

  async function watchLoop(): Promise<void> {
    while (!closed) {
      try {
        const os = await openStore();
        const watcher = await os.watch({ includeHistory: false });
        for await (const info of watcher) {
          if (closed) break;
          if (info.name === SNAPSHOT_OBJECT && !info.deleted) void fetchIfNewer();
        }
      } catch (err) {
        if (!closed) log.warn({ err: (err as Error).message }, 'snapshot watch ended; restarting');
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  const recheck = setInterval(() => { void fetchIfNewer(); }, RECHECK_MS);
  recheck.unref();
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'reconnect') { log.info('NATS reconnected'); void fetchIfNewer(); }
      else if (s.type === 'disconnect') log.warn('NATS disconnected; serving the last applied config');
    }
  })();

  return {
    async watch(h) {
      handler = h;
      void watchLoop();
      await fetchIfNewer();
    },
    heartbeat(hb: Heartbeat) {
      if (nc.isClosed()) return;
      try { nc.publish(HEARTBEAT_SUBJECT, JSON.stringify(hb)); } catch { /* reported again next beat */ }
    },
    async close() {
      closed = true;
      clearInterval(recheck);
      await nc.drain().catch(() => nc.close());
    },
  };
}
