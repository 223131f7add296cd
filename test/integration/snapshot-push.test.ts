// Snapshots sent on core NATS besides the object store (SNAPSHOT_SUBJECT), against a real
// nats-server: the CP sends one that fits a message, with its version, and stores it; one over
// max_payload goes by the store alone; a DP hands a pushed snapshot to its handler with no object
// stored (and opens the bucket, never makes it: that is the CP's), skips one whose header says it
// runs it, and a push whose header lies (or that is rejected) does not stop it from fetching the
// stored snapshot. The CP sends each snapshot after
// the first as a delta against the last (parts.ts); a DP rebuilds it from the parts it holds, and
// fetches the stored snapshot when it lacks one or the delta is malformed.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { Objm } from '@nats-io/obj';
import { decodeDelta, encodeDelta, isDelta, partDigest, signedVersion, SNAPSHOT_BUCKET, SNAPSHOT_OBJECT, SNAPSHOT_SUBJECT, SNAPSHOT_VERSION_HEADER } from '@portico/shared';
import { snapshotSeries } from '../harness/snapshots.ts';
import { connectNatsPublisher } from '../../control-plane/src/snapshot/nats.ts';
import { connectNatsSubscriber, natsState } from '../../data-plane/src/sync/nats.ts';
import { startNats, waitFor } from '../harness/procs.ts';

const log = pino({ level: 'silent' });
const cleanups: (() => Promise<unknown>)[] = [];
after(async () => { for (const c of cleanups.reverse()) await c().catch(() => {}); });

async function natsWith(config?: string): Promise<{ url: string; raw: NatsConnection }> {
  const nats = await startNats(config);
  cleanups.push(() => nats.stop());
  const raw = await connect({ servers: nats.url });
  cleanups.push(() => raw.close());
  return { url: nats.url, raw };
}

type Got = { data: Buffer; version: string | undefined; traceparent: string | undefined };
/** Messages on SNAPSHOT_SUBJECT as they come; `nth(i)` waits for the i-th (from 0). */
async function collect(raw: NatsConnection): Promise<{ nth: (i: number) => Promise<Got> }> {
  const got: Got[] = [];
  raw.subscribe(SNAPSHOT_SUBJECT, { callback: (err, m) => { if (!err) got.push({ data: Buffer.from(m.data), version: m.headers?.get(SNAPSHOT_VERSION_HEADER), traceparent: m.headers?.get('traceparent') }); } });
  await raw.flush();
  return { nth: async (i) => { await waitFor(`message ${i}`, async () => got.length > i, 5_000, 5); return got[i]; } };
}

function cpOn(url: string) {
  const publisher = connectNatsPublisher({ servers: url }, log);
  cleanups.push(() => publisher.close());
  return publisher;
}

const stored = async (raw: NatsConnection) => Buffer.from((await (await new Objm(raw).open(SNAPSHOT_BUCKET)).getBlob(SNAPSHOT_OBJECT))!);

describe('CP: snapshots on core NATS', () => {
  it('sends one that fits a message, with its version and trace, and stores it', async () => {
    const { url, raw } = await natsWith();
    const sub = await collect(raw);
    const publisher = cpOn(url);
    const bytes = randomBytes(300_000);
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    await publisher.publish(7, 'hash-7', bytes, traceparent);
    const m = await sub.nth(0);
    assert.ok(m.data.equals(bytes));
    assert.equal(m.version, '7');
    assert.equal(m.traceparent, traceparent);
    assert.ok((await stored(raw)).equals(bytes));
  });

  it('sends one over max_payload by the object store alone', async () => {
    const { url, raw } = await natsWith('max_payload: 65536');
    const sub = await collect(raw);
    const publisher = cpOn(url);
    const bytes = randomBytes(100_000);
    await publisher.publish(8, 'hash-8', bytes);
    // The publish has returned (the store acknowledged): a marker sent now is the first message if the CP sent none.
    raw.publish(SNAPSHOT_SUBJECT, 'marker');
    assert.equal((await sub.nth(0)).data.toString(), 'marker');
    assert.ok((await stored(raw)).equals(bytes));
  });
});

describe('CP: deltas', () => {
  it('sends each snapshot after the first as the parts the last one lacked', async () => {
    const { url, raw } = await natsWith();
    const sub = await collect(raw);
    const publisher = cpOn(url);
    const series = snapshotSeries();
    const a = series(1);
    const b = series(2);
    await publisher.publish(1, 'h1', a.envelope, undefined, a.parts);
    await publisher.publish(2, 'h2', b.envelope, undefined, b.parts);
    const first = await sub.nth(0);
    const second = await sub.nth(1);
    assert.ok(first.data.equals(a.envelope), 'the first is whole');
    assert.ok(isDelta(second.data) && second.data.length < b.envelope.length / 5, `a delta of ${second.data.length} bytes for ${b.envelope.length}`);
    assert.equal(second.version, '2');
    assert.ok(decodeDelta(second.data, new Map(a.parts.map((p) => [partDigest(p), p])), 1 << 26)!.envelope.equals(b.envelope));
    assert.ok((await stored(raw)).equals(b.envelope), 'the store holds the whole snapshot');
  });
});

/** A DP's subscriber on `url` trusting `series`' key, its handler recording each snapshot's signed version. */
function dpOn(url: string, trusted: Parameters<typeof connectNatsSubscriber>[3], slowAt = 0) {
  const node = { current: 0, seen: [] as number[], release: null as (() => void) | null };
  const subscriber = connectNatsSubscriber({ servers: url }, log, () => node.current, trusted);
  cleanups.push(() => subscriber.close());
  const watching = subscriber.watch(async (bytes) => {
    const v = signedVersion(bytes) ?? 0;
    node.seen.push(v);
    // An apply that takes until the test releases it.
    if (v === slowAt) await new Promise<void>((r) => { node.release = r; });
    if (v > node.current) node.current = v;
    return true;
  });
  return { node, watching };
}

function pusher(raw: NatsConnection) {
  return (version: number | string, body: Uint8Array) => {
    const h = headers();
    h.set(SNAPSHOT_VERSION_HEADER, String(version));
    raw.publish(SNAPSHOT_SUBJECT, body, { headers: h });
  };
}

const refusals = () => natsState.events.get('snapshot_push_refused') ?? 0;

describe('DP: deltas', () => {
  it('rebuilds one from the parts it holds, fetches the stored snapshot for one it cannot, and refuses a malformed or amplifying one', async () => {
    const { url, raw } = await natsWith();
    const series = snapshotSeries();
    const snaps = [1, 2, 3, 4, 5, 6, 7].map((v) => series(v));
    const { node, watching } = dpOn(url, series.trusted);
    await watching;
    const push = pusher(raw);
    const delta = (v: number, against: number) => {
      const held = new Set(snaps[against - 1].parts.map(partDigest));
      return Buffer.from(encodeDelta(snaps[v - 1].envelope, snaps[v - 1].parts, held));
    };
    await waitFor('whole v1 applied', async () => { if (node.current < 1) push(1, snaps[0].envelope); return node.current === 1; }, 10_000, 100);
    push(2, delta(2, 1));
    await waitFor('delta v2 applied', async () => node.current === 2, 5_000, 10);

    // v4 against v3, which this node never had: not applied from the push; the stored v4 is.
    push(4, delta(4, 3));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(node.current, 2);
    const store = await new Objm(raw).create(SNAPSHOT_BUCKET, { storage: 'file' as never });
    await store.putBlob({ name: SNAPSHOT_OBJECT, metadata: { version: '4' } }, snaps[3].envelope);
    await waitFor('stored v4 fetched', async () => node.current === 4, 5_000, 10);

    // The fetched snapshot's parts are held: the next delta applies.
    push(5, delta(5, 4));
    await waitFor('delta v5 applied', async () => node.current === 5, 5_000, 10);

    // Malformed, and a 330 KB delta naming the largest held part 10,000 times (it would rebuild
    // to tens of MB): refused and counted, nothing applied; the node takes the next delta.
    const before = refusals();
    push(6, Buffer.concat([Buffer.from('PSD1'), Buffer.alloc(76), Buffer.from([9, 9, 9])]));
    const big = snaps[4].parts.reduce((x, y) => (y.byteLength > x.byteLength ? y : x));
    const ref = Buffer.concat([Buffer.from([1]), Buffer.from(partDigest(big), 'hex')]);
    push(6, Buffer.concat([Buffer.from('PSD1'), snaps[5].envelope.subarray(0, 76), ...Array.from({ length: 10_000 }, () => ref)]));
    push(6, delta(6, 5));
    await waitFor('delta v6 applied', async () => node.current === 6, 5_000, 10);
    assert.equal(refusals() - before, 2);

    // A whole snapshot signed by another key is refused before the handler, and leaves the held parts as they were.
    push(7, snapshotSeries(1_500)(7).envelope);
    push(7, delta(7, 6));
    await waitFor('delta v7 applied', async () => node.current === 7, 5_000, 10);
    assert.equal(refusals() - before, 3);
    assert.deepEqual(node.seen.filter((v) => v !== 1), [2, 4, 5, 6, 7], 'every snapshot handed over rebuilt exactly, none refused');
  });
});

describe('DP: delta memory', () => {
  it('rebuilds each delta in the memory the handler released, and hands over exactly the signed bytes', async () => {
    const { url, raw } = await natsWith();
    const series = snapshotSeries();
    const snaps = [1, 2, 3, 4, 5].map((v) => series(v));
    let current = 0;
    const buffers: ArrayBufferLike[] = [];
    const subscriber = connectNatsSubscriber({ servers: url }, log, () => current, series.trusted);
    cleanups.push(() => subscriber.close());
    await subscriber.watch(async (bytes, _trace, release) => {
      const v = signedVersion(bytes) ?? 0;
      assert.ok(Buffer.from(bytes).equals(Buffer.from(snaps[v - 1].envelope)), `v${v} as signed`);
      if (v > 1) buffers.push(bytes.buffer);
      current = Math.max(current, v);
      release?.();
      return true;
    });
    const push = pusher(raw);
    await waitFor('whole v1 applied', async () => { if (current < 1) push(1, snaps[0].envelope); return current === 1; }, 10_000, 100);
    for (let v = 2; v <= 5; v++) {
      push(v, Buffer.from(encodeDelta(snaps[v - 1].envelope, snaps[v - 1].parts, new Set(snaps[v - 2].parts.map(partDigest)))));
      await waitFor(`delta v${v} applied`, async () => current === v, 5_000, 10);
    }
    assert.equal(buffers.length, 4);
    assert.ok(buffers.slice(1).every((b) => b === buffers[0]), 'v3-v5 rebuilt in the memory v2 was rebuilt in');
  });
});

describe('DP: snapshots on core NATS', () => {
  it('applies a pushed one with nothing stored, skips one it runs or an old one replayed, and fetches no stored copy of one it is applying', async () => {
    const { url, raw } = await natsWith();
    const series = snapshotSeries();
    const snaps = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12].map((v) => series(v));
    const { node, watching } = dpOn(url, series.trusted, 7);
    await watching;
    const push = pusher(raw);
    // Connected and subscribed once a push gets through (the connection is made in the background).
    await waitFor('first push applied', async () => { if (node.current < 5) push(5, snaps[4].envelope); return node.current === 5; }, 10_000, 100);
    // The DP only opens the bucket (it kept trying meanwhile): making it is the CP's.
    await assert.rejects(new Objm(raw).open(SNAPSHOT_BUCKET), /not found/);
    const store = await new Objm(raw).create(SNAPSHOT_BUCKET, { storage: 'file' as never });
    assert.equal(await store.info(SNAPSHOT_OBJECT), null, 'nothing was stored');
    const fives = node.seen.length;
    push(5, snaps[4].envelope);
    // An old snapshot, genuinely signed, replayed with a header claiming a far version: its signed version decides.
    push(999, snaps[2].envelope);
    push(6, snaps[5].envelope);
    await waitFor('v6 applied', async () => node.current === 6, 5_000, 10);
    assert.deepEqual(node.seen.slice(fives), [6], 'neither the version it runs nor the replayed v3 was handed over');

    // Stored while the push of the same version applies: not fetched again once it is done.
    push(7, snaps[6].envelope);
    await waitFor('slow push under way', async () => node.release !== null, 5_000, 10);
    await store.putBlob({ name: SNAPSHOT_OBJECT, metadata: { version: '7' } }, snaps[6].envelope);
    await new Promise((r) => setTimeout(r, 300));
    node.release?.();
    await waitFor('v7 applied', async () => node.current === 7, 5_000, 10);
    // The next stored version is fetched: the watch works, and v7 came once.
    await store.putBlob({ name: SNAPSHOT_OBJECT, metadata: { version: '8' } }, snaps[7].envelope);
    await waitFor('stored v8 fetched', async () => node.current === 8, 5_000, 10);
    assert.deepEqual(node.seen.slice(fives), [6, 7, 8]);

    // Without a valid version header (none, not a number, negative, past any integer, non-ASCII)
    // a message is not the CP's push (stored chunks a JetStream consumer delivers here, say):
    // dropped unread and counted, even a genuinely signed snapshot.
    const before = refusals();
    raw.publish(SNAPSHOT_SUBJECT, snaps[8].envelope);
    for (const header of ['not-a-number', '-3', '1e400', 'é9']) push(header, snaps[8].envelope);
    await waitFor('five refused', async () => refusals() - before === 5, 5_000, 10);
    assert.equal(node.current, 8);
    push(9, snaps[8].envelope);
    await waitFor('v9 applied under its header', async () => node.current === 9, 5_000, 10);
    assert.deepEqual(node.seen.slice(fives), [6, 7, 8, 9]);
  });
});
