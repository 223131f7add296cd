// Receives snapshots: as the CP sends them on core NATS (SNAPSHOT_SUBJECT, when one fits a
// message), and from the JetStream object store: the current one at start, every update the push
// did not bring, and a periodic check so a watch lost across a NATS outage cannot leave a node behind.
// The connection is made in the background: a node cold-started from its disk cache while NATS is
// down serves, drains on SIGTERM, and starts heartbeats and fetches once NATS is reachable.
import { connect, type MsgHdrs, type NatsConnection } from '@nats-io/transport-node';
import { Objm, setSha256Backend, type ObjectStore } from '@nats-io/obj';
import type { Logger } from 'pino';
import { CACHE_SUBJECT, HEALTH_SUBJECT, HEARTBEAT_SUBJECT, SNAPSHOT_BUCKET, SNAPSHOT_OBJECT, SNAPSHOT_SUBJECT, SNAPSHOT_VERSION_HEADER, decodeDelta, forgetOpened, isDelta, openSnapshot, partDigest, partsOf, signedVersion, threadPoolCheck, type CacheReply, type SignatureCheck, type TrustedKey, type NatsOptions, type Heartbeat, type SnapshotHandler, type SnapshotSubscriber } from '@portico/shared';

// The object store checks each object's SHA-256 on put and get; its default is a pure-JS hash
// (~4 ms of the event loop per 10,000-route snapshot). Node's is native.
setSha256Backend('native');

const RECHECK_MS = 3_000;
const FETCH_TIMEOUT_MS = 5_000;
/** Longest wait between attempts to read or watch the stored snapshot while they keep failing. */
const RETRY_MAX_MS = 2_000;
/** A compressed snapshot larger than this is not downloaded (10,000 routes are about 300 KB). */
const MAX_WIRE_BYTES = 64 * 1024 * 1024;

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms); })])
    .finally(() => clearTimeout(timer));
}

/**
 * `currentVersion`: the version the node runs; `trusted`: the keys snapshots are checked against
 * (the handler's own, so the check made here for a push is not made twice, sign.ts); `check`: where
 * a signature is checked (a single-process DP's decoder thread, sign.ts SignatureCheck).
 */
export function connectNatsSubscriber(options: NatsOptions, log: Logger, currentVersion: () => number, trusted: readonly TrustedKey[], check: SignatureCheck = threadPoolCheck): SnapshotSubscriber {
  let nc: NatsConnection | null = null;
  let store: ObjectStore | null = null;
  let handler: SnapshotHandler | null = null;
  let closed = false;
  let fetching = false;
  let again = false;
  /** Digest of the last object the handler rejected: not fetched again until the object changes (C9). */
  let rejectedDigest: string | null = null;
  /** The signed version of a pushed snapshot being applied (0: none): the stored object of that version is not fetched meanwhile. */
  let pushing = 0;
  /**
   * The newest signed version a push handed over and the handler accepted: with several workers
   * the node's version moves when they report, and the stored copy is not fetched meanwhile.
   */
  let delivered = 0;
  /** The next fetch check ignores `delivered` (fetchIfNewer(true)). */
  let fullCheck = false;
  const ahead = () => Math.max(currentVersion(), pushing, delivered);
  /**
   * The parts (by digest) of the last snapshot the handler accepted (its signature checked): what a
   * pushed delta is rebuilt from. `pendingParts`: those of a pushed one being applied, so the next
   * delta (against it) can be rebuilt meanwhile; a push that is refused leaves `heldParts` as it was.
   */
  let heldParts = new Map<string, Uint8Array>();
  let pendingParts: Map<string, Uint8Array> | null = null;
  const partsByDigest = (envelope: Uint8Array) => new Map((partsOf(envelope) ?? []).map((p) => [partDigest(p), p]));
  const eitherParts = { get: (d: string) => pendingParts?.get(d) ?? heldParts.get(d) };
  const bytesOf = (parts: Map<string, Uint8Array> | null) => { let n = 0; for (const p of parts?.values() ?? []) n += p.byteLength; return n; };

  // Opened, never created: the bucket is the CP's to make (deploy/nats.conf denies data planes
  // STREAM.CREATE). Until a CP has made it, opening fails and the callers below retry, backing off.
  const openStore = async (c: NatsConnection) => (store ??= await new Objm(c).open(SNAPSHOT_BUCKET));

  /**
   * Fetch the stored snapshot if its version is newer than the one applied. Calls during a fetch
   * are folded into one more fetch after it, so the newest version is always read last.
   */
  async function fetchIfNewer(full = false): Promise<void> {
    if (full) fullCheck = true;
    if (!handler || !nc) return;
    if (fetching) { again = true; return; }
    fetching = true;
    try {
      let failures = 0;
      do {
        again = false;
        try {
          await withTimeout(fetchOnce(nc), FETCH_TIMEOUT_MS);
          failures = 0;
        } catch (err) {
          // A put that replaced the object mid-read purges the chunks being read; the next read gets
          // the new one at once. No bucket yet (no CP has run): asked again less and less often.
          log.debug({ err: (err as Error).message }, 'snapshot fetch failed; retrying');
          again = !closed;
          await new Promise((r) => setTimeout(r, Math.min(RETRY_MAX_MS, 100 * 2 ** failures++)));
        }
      } while (again && !closed);
    } finally {
      fetching = false;
    }
  }

  async function fetchOnce(c: NatsConnection): Promise<void> {
    const os = await openStore(c);
    const info = await os.info(SNAPSHOT_OBJECT);
    if (!info || info.deleted || info.digest === rejectedDigest) return;
    const version = Number(info.metadata?.version ?? 0);
    // A full check (at start, on reconnect, every RECHECK_MS) trusts only what the node runs: a
    // version handed to workers that were not up yet is fetched and handed over again.
    const floor = fullCheck ? Math.max(currentVersion(), pushing) : ahead();
    fullCheck = false;
    if (version && version <= floor) return;
    // Anyone who can write the bucket could otherwise make every DP download (and hold) an object
    // of any size before its signature is checked.
    if (info.size > MAX_WIRE_BYTES) {
      rejectedDigest = info.digest;
      log.error({ version, bytes: info.size, limit: MAX_WIRE_BYTES }, 'snapshot object too large; not fetched');
      return;
    }
    const bytes = await os.getBlob(SNAPSHOT_OBJECT);
    if (!bytes || !handler) return;
    if (await handler(bytes, info.metadata?.traceparent)) {
      // Accepted: its signature checked, so the version in it (not the object's metadata) counts.
      heldParts = partsByDigest(bytes);
      delivered = Math.max(delivered, signedVersion(bytes) ?? 0);
      return;
    }
    rejectedDigest = info.digest;
    log.warn({ version, digest: info.digest }, 'rejected snapshot remembered; waiting for a different one');
  }

  /** Pushes being opened, one after another in arrival order (see applyPushed). */
  let opening: Promise<unknown> = Promise.resolve();

  /**
   * Memory a rebuilt envelope was written in, given back by the handler once it no longer needs it
   * (applied and on disk): the next delta is rebuilt there. New memory a snapshot's size (340 KB at
   * 10,000 routes) took ~1.3 ms of the event loop per write in page faults on a 2-core VM.
   */
  let spareEnvelope: Buffer | null = null;
  const envelopeMemory = (size: number): Buffer => {
    const memory = spareEnvelope !== null && spareEnvelope.length >= size ? spareEnvelope : Buffer.allocUnsafeSlow(Math.ceil(size * 1.25));
    spareEnvelope = null;
    return memory.subarray(0, size);
  };

  /**
   * A snapshot the CP sent on SNAPSHOT_SUBJECT (whole, or a delta rebuilt from the parts held),
   * opened here before it changes anything: one not signed by a trusted key is dropped and counted;
   * one whose signed version the node has, or is applying, is dropped too (a replay). The version
   * header is unsigned: the CP sets it on every push, so a message without a valid one is not a
   * push (stored chunks a JetStream consumer was pointed here to deliver, say) and is dropped
   * unread; a valid one only spares rebuilding and opening a snapshot the node already has.
   * Pushes are opened one at a time in arrival order, so a delta sent right after its base is
   * rebuilt from the base's parts even while the base's signature is being checked. While a push
   * applies, the store's copy of its version is not fetched; one that fails, or whose version
   * cannot be read, is followed by a fetch check, so the node cannot be left behind.
   */
  async function applyPushed(data: Uint8Array, h: MsgHdrs | undefined): Promise<void> {
    if (!handler || closed) return;
    const claimed = Number(h?.get(SNAPSHOT_VERSION_HEADER));
    if (!Number.isSafeInteger(claimed) || claimed <= 0) return refused(`no valid ${SNAPSHOT_VERSION_HEADER} header`);
    if (claimed <= ahead()) return;
    // Copied at once: the message is a view into the client's read buffers, which it reuses; what
    // is checked below (and remembered as checked, sign.ts) must be bytes nothing else can change.
    const own = Buffer.from(data);
    const opened = opening.then(() => openPushed(own));
    opening = opened.catch(() => {});
    const push = await opened;
    if (!push) return;
    const { envelope, parts, version, rebuilt } = push;
    // A rebuilt envelope's memory is no part's (decodeDelta): once released, the next delta reuses it.
    const release = rebuilt ? () => { forgetOpened(envelope); spareEnvelope = Buffer.from(envelope.buffer); } : undefined;
    let accepted = false;
    try {
      accepted = await handler(envelope, h?.get('traceparent') || undefined, release);
      if (accepted) { heldParts = parts; delivered = Math.max(delivered, version); }
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'pushed snapshot could not be applied');
    } finally {
      if (pendingParts === parts) pendingParts = null;
      if (pushing === version) pushing = 0;
      // Applied, or handed to the workers: the store's copy of it is not fetched (the watch skips it).
      if (!accepted || !version) void fetchIfNewer();
    }
  }

  /** A push rebuilt and its signature checked, and marked as applying; null when it is dropped. */
  async function openPushed(own: Buffer): Promise<{ envelope: Uint8Array; parts: Map<string, Uint8Array>; version: number; rebuilt: boolean } | null> {
    if (!handler || closed) return null;
    let envelope: Uint8Array = own;
    let parts: Map<string, Uint8Array> | null = null;
    if (isDelta(own)) {
      let rebuilt: ReturnType<typeof decodeDelta>;
      // A delta rebuilds to at most the parts it may refer to and its own bytes: a small one
      // naming one held part many times is refused before anything that size is made.
      const limit = Math.min(MAX_WIRE_BYTES, bytesOf(heldParts) + bytesOf(pendingParts) + own.byteLength);
      try { rebuilt = decodeDelta(own, eitherParts, limit, envelopeMemory); } catch (err) {
        refused(`delta refused: ${(err as Error).message}`);
        return null;
      }
      // A part this node does not hold (it missed the last snapshot): the stored one instead.
      if (!rebuilt) { void fetchIfNewer(); return null; }
      envelope = rebuilt.envelope;
      parts = rebuilt.parts;
    }
    // Checked here, before it changes anything of this node's: what the bus carries unsigned
    // (forged, or from anyone who can publish) is dropped and counted, without an error on the node.
    try { await openSnapshot(envelope, trusted, check); } catch (err) {
      refused((err as Error).message);
      return null;
    }
    // A whole push's parts are views into its copy (hashed only now that it checked out); a
    // delta's inline ones, into the delta's.
    parts ??= partsByDigest(envelope);
    const version = signedVersion(envelope) ?? 0;
    if (version && version <= ahead()) return null;
    pushing = version;
    pendingParts = parts;
    return { envelope, parts, version, rebuilt: envelope !== own };
  }

  /** A push dropped before the handler: counted (portico_nats_events_total{type="snapshot_push_refused"}) and logged at debug. */
  function refused(why: string): void {
    natsState.observe('snapshot_push_refused');
    log.debug({ error: why }, 'pushed snapshot refused');
  }

  async function watchLoop(c: NatsConnection): Promise<void> {
    let failures = 0;
    while (!closed) {
      try {
        const os = await openStore(c);
        const watcher = await os.watch({ includeHistory: false });
        failures = 0;
        for await (const info of watcher) {
          if (closed) break;
          if (info.name !== SNAPSHOT_OBJECT || info.deleted) continue;
          // The watch says which version was stored: one this node runs, or is applying from a
          // push, is not asked for again (a push that fails fetches once it is done).
          const version = Number(info.metadata?.version ?? 0);
          if (!version || version > ahead()) void fetchIfNewer();
        }
      } catch (err) {
        // Warned once; while it keeps failing (no bucket until a CP has run), at debug.
        if (!closed) log[failures++ ? 'debug' : 'warn']({ err: (err as Error).message }, 'snapshot watch ended; restarting');
      }
      await new Promise((r) => setTimeout(r, Math.min(RETRY_MAX_MS, 500 * 2 ** failures)));
    }
  }

  async function statusLoop(c: NatsConnection): Promise<void> {
    for await (const s of c.status()) {
      natsState.observe(s.type);
      if (s.type === 'reconnect') { log.info('NATS reconnected'); void fetchIfNewer(true); }
      else if (s.type === 'disconnect') log.warn('NATS disconnected; serving the last applied config');
    }
  }

  /** Everything that needs the connection starts once it exists and a handler is set. */
  function start(): Promise<void> {
    if (!nc || !handler) return Promise.resolve();
    void watchLoop(nc);
    return fetchIfNewer(true);
  }

  const healthHandlers: ((bytes: Uint8Array) => void)[] = [];
  let cacheHandler: ((bytes: Uint8Array) => Promise<CacheReply | null>) | null = null;
  const recheck = setInterval(() => { void fetchIfNewer(true); }, RECHECK_MS);
  recheck.unref();
  // Retries forever (natsConnectOptions): resolves when NATS is first reachable.
  void connect(options).then((c) => {
    if (closed) { void c.close(); return; }
    nc = c;
    natsState.connected = true;
    log.info('NATS connected');
    c.subscribe(SNAPSHOT_SUBJECT, { callback: (err, msg) => { if (!err) void applyPushed(msg.data, msg.headers); } });
    c.subscribe(HEALTH_SUBJECT, { callback: (err, msg) => { if (!err) for (const h of healthHandlers) h(msg.data); } });
    c.subscribe(CACHE_SUBJECT, {
      callback: (err, msg) => {
        if (err || !cacheHandler) return;
        void cacheHandler(msg.data).then((reply) => { if (reply !== null && msg.reply) msg.respond(JSON.stringify(reply)); }, () => { /* logged by the handler */ });
      },
    });
    void statusLoop(c);
    void start();
  }, (err) => { log.error({ err: (err as Error).message }, 'NATS connection failed; serving the last applied config'); });

  return {
    async watch(h) {
      handler = h;
      await start();
    },
    onHealth(h) { healthHandlers.push(h); },
    onCache(h) { cacheHandler = h; },
    heartbeat(hb: Heartbeat) {
      if (!nc || nc.isClosed()) return;
      try { nc.publish(HEARTBEAT_SUBJECT, JSON.stringify(hb)); } catch { /* reported again next beat */ }
    },
    async close() {
      closed = true;
      clearInterval(recheck);
      // A connection still being made closes itself when it arrives (see above).
      if (nc) await nc.drain().catch(() => nc!.close());
    },
  };
}

/** This node's NATS connection, for /metrics (portico_nats_connected, portico_nats_events_total). */
export const natsState = {
  connected: false,
  /** Status events by type: disconnect, reconnect, error, … */
  events: new Map<string, number>(),
  observe(type: string): void {
    this.events.set(type, (this.events.get(type) ?? 0) + 1);
    if (type === 'disconnect') this.connected = false;
    else if (type === 'reconnect') this.connected = true;
  },
};
