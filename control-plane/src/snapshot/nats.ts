// Publishes snapshots to a JetStream object store (chunked, so 10k-route configs pass NATS's 1 MB
// max_payload) and listens for data-plane heartbeats on core NATS.
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Objm, type ObjectStore } from '@nats-io/obj';
import type { Logger } from 'pino';
import { HEARTBEAT_SUBJECT, natsConnectOptions, SNAPSHOT_BUCKET, SNAPSHOT_OBJECT, type Env, type SnapshotPublisher } from '@portico/shared';

export async function connectNatsPublisher(env: Env, log: Logger): Promise<SnapshotPublisher> {
  const nc: NatsConnection = await connect(natsConnectOptions(env, 'portico-control-plane'));
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect' || s.type === 'reconnect') log.warn({ nats: s.type }, 'NATS connection status');
    }
  })();
  let store: ObjectStore | null = null;
  const openStore = async () => (store ??= await new Objm(nc).create(SNAPSHOT_BUCKET, { storage: 'file' as never, description: 'Portico config snapshots' }));

  return {
    async publish(version, hash, bytes) {
      const os = await openStore();
      await os.putBlob({ name: SNAPSHOT_OBJECT, metadata: { version: String(version), hash } }, bytes);
    },
    onHeartbeat(handler) {
      nc.subscribe(HEARTBEAT_SUBJECT, {
        callback: (err, msg) => {
          if (err) return;
          try { handler(msg.json()); } catch { log.warn({ subject: msg.subject }, 'heartbeat is not JSON; ignored'); }
        },
      });
    },
    async close() { await nc.drain().catch(() => nc.close()); },
  };
}
