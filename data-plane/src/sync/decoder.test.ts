// The snapshot decoder: decoding runs on its worker thread while this thread's event loop keeps
// turning; what comes back equals the snapshot decoded here, and entities unchanged since the last
// snapshot come back as the same objects (so their compiled parts are reused).
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { generateKeyPairSync, sign } from 'node:crypto';
import { configHash, decodeSnapshot, emptyConfig, encodeSnapshot, openSnapshot, signSnapshot, routeSchema, serviceSchema, SnapshotError, type Config, type Route } from '@portico/shared';
import { readdirSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import { DECODER_IDLE_MS, INLINE_MAX_BYTES, SnapshotDecoder } from './decoder.ts';
import { DECODER_NICE, decodeRequest, KEY_CHARS } from './decode-protocol.ts';

const service = serviceSchema.parse({ id: '00000000-0000-4000-8000-000000000001', created_at: 1, updated_at: 1, host: 'x.test' });
const route = (i: number, updated = 1): Route => routeSchema.parse({
  id: `10000000-0000-4000-8000-${String(i).padStart(12, '0')}`, created_at: 1, updated_at: updated, name: `r-${i}`,
  paths: [`/r${i}`], headers: { 'x-b': ['1'], 'x-a': ['2'] }, service: { id: service.id },
});
const routes = Array.from({ length: 2_000 }, (_, i) => route(i));
const encode = (version: number, config: Config) => encodeSnapshot({ version, hash: configHash(config), built_at: 7, config });

const decoder = new SnapshotDecoder();
after(() => decoder.close());

describe('SnapshotDecoder', () => {
  it('decodes on its own thread while this event loop keeps turning, to what decodeSnapshot gives', async () => {
    const bytes = encode(1, { ...emptyConfig(), services: [service], routes });
    let turns = 0;
    let decoding = true;
    const spin = () => { if (!decoding) return; turns++; setImmediate(spin); };
    setImmediate(spin);
    const r = await decoder.decode(bytes, 0);
    decoding = false;
    assert.ok(turns > 0, 'setImmediate callbacks ran while the snapshot was being decoded');
    assert.notEqual(decoder.threadId, 0);
    assert.equal(r.status, 'decoded');
    assert.deepEqual(r.status === 'decoded' && r.snapshot, decodeSnapshot(bytes));
  });

  it('gives back unchanged entities as the objects it gave before, and changed ones anew', async () => {
    const first = await decoder.decode(encode(2, { ...emptyConfig(), services: [service], routes }), 0);
    const changed = routes.map((r, i) => (i === 5 ? route(5, 2) : r));
    const bytes = encode(3, { ...emptyConfig(), services: [service], routes: changed });
    const second = await decoder.decode(bytes, 2);
    assert.ok(first.status === 'decoded' && second.status === 'decoded');
    const [a, b] = [first.snapshot.config, second.snapshot.config];
    assert.equal(b.routes[4], a.routes[4]);
    assert.equal(b.services[0], a.services[0]);
    assert.notEqual(b.routes[5], a.routes[5]);
    assert.equal(b.routes[5].updated_at, 2);
    assert.equal(b.services, a.services, 'an unchanged list is the very array it gave before (compile/ reuses by identity)');
    assert.deepEqual(second.snapshot, decodeSnapshot(bytes));
    // What changed, told against the list it gave before: compile/ looks at these, not at 2,000 routes.
    assert.deepEqual(Object.keys(second.changes), ['routes']);
    assert.equal(second.changes.routes.base, a.routes);
    assert.equal(second.changes.routes.added.length, 1);
    assert.equal(second.changes.routes.added[0], b.routes[5]);
    assert.deepEqual(second.changes.routes.removed, [a.routes[5]]);
    assert.equal(second.changes.routes.removed[0], a.routes[5]);

    // Reordered, one removed, one added: every kept entity is still its old object, at its new place.
    const moved = [route(9_999), ...changed.slice(1).reverse()];
    const bytes3 = encode(4, { ...emptyConfig(), services: [service], routes: moved });
    const third = await decoder.decode(bytes3, 3);
    assert.ok(third.status === 'decoded');
    const c = third.snapshot.config;
    assert.deepEqual(third.snapshot, decodeSnapshot(bytes3));
    assert.equal(c.routes[1], b.routes[b.routes.length - 1]);
    assert.equal(c.routes[c.routes.length - 1], b.routes[1]);
    assert.equal(c.services, a.services);
    assert.equal(third.changes.routes.base, b.routes);
    assert.deepEqual(third.changes.routes.added, [c.routes[0]]);
    assert.equal(third.changes.routes.removed.length, 1);
    assert.equal(third.changes.routes.removed[0], b.routes[0], 'the one left out');
  });

  it('runs its thread below the proxy\'s priority (Linux: a nice value per thread), the process\'s own thread untouched', async () => {
    await decoder.decode(encode(20, { ...emptyConfig(), services: [service], routes }), 0);
    const nice = (task: string) => { const st = readFileSync(`/proc/self/task/${task}/stat`, 'utf8'); return Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[16]); };
    const tasks = readdirSync('/proc/self/task');
    assert.ok(decoder.threadId !== 0, 'the thread is up');
    assert.ok(tasks.some((t) => nice(t) === DECODER_NICE), 'a thread runs at the decoder\'s nice value');
    assert.equal(nice(String(process.pid)), 0, 'the main thread keeps its priority');
  });

  it('answers ignored for a version that is not newer, and rejects what does not validate', async () => {
    assert.deepEqual(await decoder.decode(encode(3, { ...emptyConfig(), services: [service] }), 3), { status: 'ignored', version: 3 });
    await assert.rejects(decoder.decode(Buffer.from('not gzip'), 0), (e) => e instanceof SnapshotError && /not gzip-compressed JSON/.test(e.message));
    await assert.rejects(decoder.decode(gzipSync('{"version":1}'), 0), /failed validation/);
    const config = { ...emptyConfig(), services: [service] };
    await assert.rejects(decoder.decode(encodeSnapshot({ version: 9, hash: configHash(emptyConfig()), built_at: 0, config }), 0), /hash mismatch/);
    // Still decodes after rejections, from what it held before them.
    const r = await decoder.decode(encode(10, { ...emptyConfig(), services: [service], routes: routes.slice(0, 3) }), 3);
    assert.equal(r.status === 'decoded' && r.snapshot.config.routes.length, 3);
  });

  it('decodes a small snapshot inline, without starting the thread', async () => {
    const small = new SnapshotDecoder();
    const bytes = encode(1, { ...emptyConfig(), services: [service], routes: routes.slice(0, 2) });
    const r = await small.decode(bytes, 0);
    assert.deepEqual(r.status === 'decoded' && r.snapshot, decodeSnapshot(bytes));
    assert.equal(small.started, 0);
  });

  it('starts a new thread after the last one stopped, and decodes from nothing held', async () => {
    const idle = new SnapshotDecoder(1, 0);
    try {
      const bytes = encode(1, { ...emptyConfig(), services: [service], routes: routes.slice(0, 10) });
      await idle.decode(bytes, 0);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(idle.threadId, 0, 'the idle thread stopped');
      const r = await idle.decode(encode(2, { ...emptyConfig(), services: [service], routes: routes.slice(0, 11) }), 1);
      assert.equal(idle.started, 2);
      assert.equal(r.status === 'decoded' && r.snapshot.config.routes.length, 11);
    } finally {
      await idle.close();
    }
  });

  it('tells, through any chain of edits, which entities came and went against the list it gave before', async () => {
    const inline = new SnapshotDecoder(DECODER_IDLE_MS, Infinity);
    const edit = fc.record({ drop: fc.array(fc.nat(), { maxLength: 4 }), modify: fc.array(fc.nat({ max: 25 }), { maxLength: 3 }), add: fc.nat({ max: 4 }) });
    let version = 100;
    await fc.assert(fc.asyncProperty(fc.array(edit, { minLength: 1, maxLength: 6 }), async (edits) => {
      let list = routes.slice(0, 20);
      let nextId = 5_000;
      let last = await inline.decode(encode(++version, { ...emptyConfig(), services: [service], routes: list }), 0);
      for (const e of edits) {
        const dropped = new Set(e.drop.map((i) => list[i % list.length]?.id));
        // A modified entity toggles between two texts: a key dropped by one write comes back in a later one.
        list = list.filter((r) => !dropped.has(r.id)).map((r, i) => (e.modify.includes(i) ? { ...r, updated_at: r.updated_at % 2 ? r.updated_at + 1 : r.updated_at - 1 } : r));
        for (let k = 0; k < e.add; k++) list = [...list, route(nextId++)].sort((x, y) => (x.id < y.id ? -1 : 1));
        const bytes = encode(++version, { ...emptyConfig(), services: [service], routes: list });
        const next = await inline.decode(bytes, 0);
        assert.ok(last.status === 'decoded' && next.status === 'decoded');
        assert.deepEqual(next.snapshot, decodeSnapshot(bytes));
        const [was, now] = [last.snapshot.config.routes, next.snapshot.config.routes];
        const change = next.changes.routes;
        if (was === now) assert.equal(change, undefined, 'an unchanged list is not a change');
        else {
          assert.equal(change?.base, was);
          assert.deepEqual(new Set(change.added), new Set(now.filter((r) => !was.includes(r))));
          assert.deepEqual(new Set(change.removed), new Set(was.filter((r) => !now.includes(r))));
          for (const r of now) if (!change.added.includes(r)) assert.ok(was.includes(r), 'every other entity is one it gave before');
        }
        last = next;
      }
    }), { numRuns: 60 });
    await inline.close();
  });
});

describe('SnapshotDecoder: held keys', () => {
  it('sends the held keys to a thread only when it is not in step with this one', async () => {
    const d = new SnapshotDecoder();
    try {
      const write = (v: number) => encode(v, { ...emptyConfig(), services: [service], routes: routes.map((r, i) => (i === v ? route(v, v) : r)) });
      assert.equal((await d.decode(write(1), 0)).status, 'decoded');
      assert.equal(d.keysSent, 0, 'nothing held yet');
      for (let v = 2; v <= 4; v++) {
        const r = await d.decode(write(v), v - 1);
        assert.ok(r.status === 'decoded' && r.snapshot.config.routes[v].updated_at === v);
        assert.deepEqual(r.status === 'decoded' && r.snapshot, decodeSnapshot(write(v)));
      }
      assert.equal(d.keysSent, 0, 'in step: three writes sent no keys');
      assert.equal((await d.decode(write(3), 4)).status, 'ignored');
      // An ignored snapshot changes nothing on either side: still in step.
      const five = await d.decode(write(5), 4);
      assert.ok(five.status === 'decoded' && five.changes.routes.added.length === 2);
      assert.equal(d.keysSent, 0, 'in step after an ignored snapshot');
      // A new thread holds nothing: the keys go once, and the result is the same.
      await d.close();
      const r = await d.decode(write(6), 5);
      assert.equal(d.keysSent, 1);
      assert.ok(r.status === 'decoded' && r.changes.routes.added.length === 2, 'still only the two routes that differ from v5');
      assert.equal((await d.decode(write(7), 6)).status, 'decoded');
      assert.equal(d.keysSent, 1);
    } finally {
      await d.close();
    }
  });

  it('moves keys as bytes, and reuses memory write after write: the payload copy in what the thread gave back, the document in what it used last', async () => {
    const d = new SnapshotDecoder();
    try {
      const write = (v: number) => encode(v, { ...emptyConfig(), services: [service], routes: routes.map((r, i) => (i === v ? route(v, v) : r)) });
      for (let v = 1; v <= 4; v++) assert.equal((await d.decode(write(v), v - 1)).status, 'decoded');
      assert.equal(d.memoryReused, 3, 'every write after the first copied the snapshot into memory given back');
      // A small snapshot is decoded here, in a copy of its own: the memory the thread gave back waits for the next large one.
      const small = encode(5, emptyConfig());
      assert.ok(small.byteLength <= INLINE_MAX_BYTES);
      assert.equal((await d.decode(small, 4)).status, 'decoded');
      assert.equal(d.memoryReused, 3, 'the inline decode took none of it');
      assert.equal((await d.decode(write(6), 5)).status, 'decoded');
      assert.equal(d.memoryReused, 4, 'the next large one did');
      // What the thread replies with, decoded here as the thread does: keys as bytes in a buffer of their own.
      const first = decodeRequest({ id: 1, payload: new Uint8Array(write(10)), held: null, newerThan: 0 });
      assert.ok(first.status === 'decoded');
      const keys = first.lists.routes.keys!;
      assert.ok(keys instanceof Uint8Array && keys.byteOffset === 0 && keys.byteLength === keys.buffer.byteLength, 'transferable on its own');
      assert.equal(keys.byteLength, routes.length * KEY_CHARS);
      const second = decodeRequest({ id: 2, payload: new Uint8Array(write(11)), held: 1, newerThan: 10 });
      assert.ok(second.status === 'decoded' && second.lists.routes.keys !== null && second.lists.services.keys === null, 'an unchanged list sends no keys');
    } finally {
      await d.close();
    }
  });

  it('checks a snapshot signature on its thread (copied into memory the thread gives back), small ones here, and on the thread pool if the thread fails', async () => {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const key = { privateKey, keyId: Buffer.alloc(8, 1) };
    const trusted = [{ publicKey, keyId: key.keyId }];
    const big = encode(1, { ...emptyConfig(), services: [service], routes });
    const d = new SnapshotDecoder();
    try {
      const signed = Buffer.from(signSnapshot(big, key));
      assert.deepEqual(Buffer.from(await openSnapshot(signed, trusted, d.checkSignature)), Buffer.from(big));
      assert.notEqual(d.threadId, 0, 'checked on the thread');
      const tampered = Buffer.from(signed);
      tampered[tampered.length - 9] ^= 1;
      await assert.rejects(() => openSnapshot(tampered, trusted, d.checkSignature), /signature is invalid/);
      assert.equal(d.memoryReused, 1, 'the second check copied into the memory the first gave back');
      // A small one, without the thread.
      const small = Buffer.from(signSnapshot(Buffer.from('{}'), key));
      await d.close();
      assert.ok(await openSnapshot(small, trusted, d.checkSignature));
      assert.equal(d.threadId, 0);
      // The thread gone mid-check: the thread pool answers instead.
      const pending = d.checkSignature(big, publicKey, sign(null, big, privateKey));
      await d.close();
      assert.equal(await pending, true);
    } finally {
      await d.close();
    }
  });

  it('asks for the keys when a request names a reply it did not give last', () => {
    assert.deepEqual(decodeRequest({ id: 99, payload: new Uint8Array(encode(1, emptyConfig())), held: 12345, newerThan: 0 }), { id: 99, status: 'resend' });
  });
});
