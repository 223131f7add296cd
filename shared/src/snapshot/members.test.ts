import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { consumerSchema, type Consumer } from '../entities/consumer.ts';
import { canonicalConfig, configHash } from './hash.ts';
import { decodeAgainst, decodeSnapshot, KEY_CHARS, SnapshotError, SnapshotWriter, type BlockCache, type HeldKeys } from './codec.ts';
import { gzipMember, MEMBER_ENTITIES, MEMBER_OTHER, walkMembers } from './members.ts';
import { emptyConfig, type Config } from './schema.ts';

const keyOf = (t: string | Uint8Array) => createHash('sha256').update(t).digest('base64').slice(0, KEY_CHARS);
/** What a requester holds, from its keys concatenated in order (as decodeAgainst gives them). */
const heldOf = (keys: Uint8Array): HeldKeys => {
  const text = Buffer.from(keys).toString('latin1');
  const index = new Map<string, number>();
  for (let i = 0; i < text.length; i += KEY_CHARS) index.set(text.slice(i, i + KEY_CHARS), i / KEY_CHARS);
  return { keys, index };
};
const consumer = (n: number, name = `user-${n}`): Consumer => consumerSchema.parse({ id: `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`, created_at: 1, updated_at: 1, username: name });
const configOf = (consumers: Consumer[]): Config => ({ ...emptyConfig(), consumers: [...consumers].sort((a, b) => (a.id < b.id ? -1 : 1)) });
const seal = (w: SnapshotWriter, version: number, config: Config) => w.seal({ version, built_at: version }, config, canonicalConfig(config).texts);
/** The compressed members of `bytes`, as buffers. */
const membersOf = (bytes: Uint8Array) => walkMembers(bytes)!.map((m) => ({ kind: m.kind, bytes: Buffer.from(bytes.subarray(m.start, m.end)) }));

describe('snapshot members', () => {
  it('members decompress as one stream with any gunzip; walkMembers finds each and refuses anything else', () => {
    const parts = ['{"a":', '[1,2,3]', '}'].map((t, i) => gzipMember(Buffer.from(t), i === 1 ? MEMBER_ENTITIES : MEMBER_OTHER));
    const bytes = Buffer.concat(parts);
    assert.equal(gunzipSync(bytes).toString(), '{"a":[1,2,3]}');
    assert.deepEqual(walkMembers(bytes)!.map((m) => [m.end - m.start, m.kind]), parts.map((p, i) => [p.length, i === 1 ? 1 : 0]));
    assert.equal(walkMembers(gzipSync('{"a":1}')), null, 'a member of another writer');
    assert.equal(walkMembers(bytes.subarray(0, bytes.length - 1)), null, 'truncated');
    const longer = Buffer.from(bytes);
    longer.writeUInt32LE(parts[0].length + 1, 16);
    assert.equal(walkMembers(longer), null, 'a length that does not land on the next member');
    const kind = Buffer.from(bytes);
    kind[20] = 7;
    assert.equal(walkMembers(kind), null, 'an unknown kind');
  });

  it('SnapshotWriter: a one-entity change writes one new block, the others are the same bytes; the document is the config', () => {
    const list = Array.from({ length: 1500 }, (_, i) => consumer(i + 1));
    const w = new SnapshotWriter();
    const a = seal(w, 1, configOf(list));
    const before = membersOf(a.bytes).filter((m) => m.kind === MEMBER_ENTITIES);
    assert.ok(before.length >= 5 && before.length <= 12, `${before.length} blocks for 1,500 consumers`);
    list[700] = consumer(701, 'renamed');
    const config = configOf(list);
    const b = seal(w, 2, config);
    const after = membersOf(b.bytes).filter((m) => m.kind === MEMBER_ENTITIES);
    const known = new Set(before.map((m) => m.bytes.toString('base64')));
    assert.equal(after.length, before.length);
    assert.equal(after.filter((m) => !known.has(m.bytes.toString('base64'))).length, 1, 'only the changed block is new');
    assert.equal(b.snapshot.hash, configHash(config));
    assert.deepEqual(decodeSnapshot(b.bytes), b.snapshot);
    // Ids that never end a block by content: blocks stop at 512 entities.
    const dense = configOf(Array.from({ length: 1200 }, (_, i) => consumer(0x1000 + 4 * i + 2)));
    const c = seal(new SnapshotWriter(), 3, dense);
    assert.equal(membersOf(c.bytes).filter((m) => m.kind === MEMBER_ENTITIES).length, 3);
    assert.deepEqual(decodeSnapshot(c.bytes).config, dense);
  });

  // A chain of edits through one writer (the CP) and one block cache (a DP's decoder thread).
  const edits = fc.array(fc.record({ op: fc.constantFrom('add', 'remove', 'rename'), n: fc.integer({ min: 1, max: 3000 }), name: fc.stringMatching(/^[a-z,{}"\\\]]{1,8}$/) }), { minLength: 1, maxLength: 12 });

  it('decodeAgainst with a block cache gives exactly what it gives without one, write after write (property)', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 900 }), edits, (size, steps) => {
      const byN = new Map(Array.from({ length: size }, (_, i) => [i * 3 + 1, consumer(i * 3 + 1)]));
      const w = new SnapshotWriter();
      const cache: BlockCache = { blocks: new Map() };
      let heldKeys: Uint8Array = new Uint8Array(0);
      steps.forEach((s, version) => {
        if (s.op === 'add' || s.op === 'rename') byN.set(s.n, consumer(s.n, s.op === 'rename' ? `${s.name}-${s.n}` : `user-${s.n}`));
        else byN.delete(s.n);
        const config = configOf([...byN.values()]);
        const { snapshot, bytes } = seal(w, version + 1, config);
        assert.equal(snapshot.hash, configHash(config));
        const held = { consumers: heldOf(heldKeys) };
        const plain = decodeAgainst(bytes, held, keyOf)!;
        const cached = decodeAgainst(bytes, held, keyOf, undefined, cache)!;
        assert.deepEqual(cached, plain);
        assert.ok(cache.blocks.size <= walkMembers(bytes)!.filter((m) => m.kind === MEMBER_ENTITIES).length, 'one snapshot of blocks at most');
        heldKeys = plain.lists.consumers.keys;
      });
    }), { numRuns: Number(process.env.PORTICO_FUZZ_RUNS ?? 60) });
  });

  it('decodeAgainst with a warm cache on tampered members: a SnapshotError, null, or exactly what a full decode gives (property)', () => {
    const list = Array.from({ length: 600 }, (_, i) => consumer(i * 5 + 1));
    const w = new SnapshotWriter();
    const first = seal(w, 1, configOf(list));
    list[10] = consumer(51, 'changed');
    const second = seal(w, 2, configOf(list)).bytes;
    fc.assert(fc.property(fc.nat(), fc.integer({ min: 1, max: 255 }), (where, xor) => {
      const cache: BlockCache = { blocks: new Map() };
      decodeAgainst(first.bytes, {}, keyOf, undefined, cache);
      const bytes = Buffer.from(second);
      bytes[where % bytes.length] ^= xor;
      let got: ReturnType<typeof decodeAgainst>;
      try { got = decodeAgainst(bytes, {}, keyOf, undefined, cache); } catch (err) { assert.ok(err instanceof SnapshotError, String(err)); return; }
      if (got === null) return;
      const full = decodeSnapshot(bytes); // it accepted: a full decode must accept too, and agree
      assert.deepEqual(got.lists.consumers.fresh, full.config.consumers);
      assert.equal(got.hash, full.hash);
    }), { numRuns: Number(process.env.PORTICO_FUZZ_RUNS ?? 300) });
  });

  it('a write that changed one entity: the decoder reuses every other block as it was, and decompresses one', () => {
    const list = Array.from({ length: 1500 }, (_, i) => consumer(i + 1));
    const w = new SnapshotWriter();
    const cache: BlockCache = { blocks: new Map() };
    const a = decodeAgainst(seal(w, 1, configOf(list)).bytes, {}, keyOf, undefined, cache)!;
    const before = new Set(cache.blocks.values());
    assert.ok(before.size >= 5);
    list[700] = consumer(701, 'renamed');
    const held = { consumers: heldOf(a.lists.consumers.keys) };
    let keyed = 0;
    const b = decodeAgainst(seal(w, 2, configOf(list)).bytes, held, (t) => { keyed++; return keyOf(t); }, undefined, cache)!;
    assert.ok(keyed > 0 && keyed <= 512, `${keyed} entities scanned and keyed again, of 1,500`);
    const after = [...cache.blocks.values()];
    assert.equal(after.length, before.size);
    assert.equal(after.filter((blk) => !before.has(blk)).length, 1, 'one block learned anew, the rest reused');
    assert.deepEqual(b.lists.consumers.fresh, [list[700]]);
    // The held blocks were matched whole: every kept entity at its old place.
    const ref = [...b.lists.consumers.held!];
    assert.deepEqual(ref.filter((at, i) => at !== i), [-1]);
    assert.equal(ref.indexOf(-1), 700);
  });

  it('a block cache assembles each document in the memory it used last, and nothing decoded is a view into it', () => {
    const list = Array.from({ length: 1500 }, (_, i) => consumer(i + 1));
    const w = new SnapshotWriter();
    const cache: BlockCache = { blocks: new Map() };
    const a = decodeAgainst(seal(w, 1, configOf(list)).bytes, {}, keyOf, undefined, cache)!;
    const memory = cache.scratch;
    assert.ok(memory);
    const blocks = [...cache.blocks.values()].map((b) => [Buffer.from(b.plain), b.ids.slice()] as const);
    list[3] = consumer(4, 'renamed');
    decodeAgainst(seal(w, 2, configOf(list)).bytes, { consumers: heldOf(a.lists.consumers.keys) }, keyOf, undefined, cache);
    assert.equal(cache.scratch, memory, 'the same memory');
    memory!.fill(0);
    // Scribbled over: what was decoded and what the cache keeps are unaffected.
    assert.equal(a.lists.consumers.fresh.length, 1500);
    assert.deepEqual(a.lists.consumers.fresh[0], list[0]);
    const kept = blocks.filter(([, ids]) => !ids.includes(list[3].id));
    assert.equal(kept.length, blocks.length - 1);
    for (const [plain, ids] of kept) assert.ok([...cache.blocks.values()].some((b) => b.plain.equals(plain) && b.ids.join() === ids.join()));
  });

  it('hostile entities in members, with a block cache: a 10 MB string, 100,000-deep nesting, NUL/CR/LF and non-ASCII give a SnapshotError, null or the full decode, never another error', () => {
    const id = '00000000-0000-4000-8000-000000000009';
    for (const entity of [
      `{"created_at":1,"id":"${id}","username":"${'x'.repeat(10 * 1024 * 1024)}"}`,
      `{"created_at":1,"id":"${id}","tags":${'['.repeat(100_000)}${']'.repeat(100_000)}}`,
      `{"created_at":1,"id":"${id}","tags":${'['.repeat(100_000)}}`,
      `{"created_at":1,"id":"${id}","username":"a\u0000b\r\nc\u00e9\ud83d\ude00"}`,
    ]) {
      const names = Object.keys(emptyConfig()).sort();
      const at = names.indexOf('consumers');
      const head = `{"built_at":1,"config":{${names.slice(0, at + 1).map((k, i) => `${i ? ',' : ''}"${k}":[${k === 'consumers' ? '' : ']'}`).join('')}`;
      const tail = `]${names.slice(at + 1).map((k) => `,"${k}":[]`).join('')}},"hash":"${'a'.repeat(64)}","version":2}`;
      const bytes = Buffer.concat([gzipMember(Buffer.from(head), MEMBER_OTHER), gzipMember(Buffer.from(entity), MEMBER_ENTITIES), gzipMember(Buffer.from(tail), MEMBER_OTHER)]);
      const cache: BlockCache = { blocks: new Map() };
      for (let round = 0; round < 2; round++) { // cold, then with whatever the first round cached
        try {
          const got = decodeAgainst(bytes, {}, keyOf, undefined, cache);
          if (got) assert.equal(got.hash, decodeSnapshot(bytes).hash);
        } catch (err) {
          assert.ok(err instanceof SnapshotError, String(err));
        }
      }
      assert.throws(() => decodeSnapshot(bytes), SnapshotError, 'the hash is wrong whatever the content');
    }
  });

  it('a member that says it holds entities but does not (or holds them wrongly framed) is decoded, not cached', () => {
    const config = configOf([consumer(1), consumer(2)]);
    const { snapshot, bytes } = seal(new SnapshotWriter(), 1, config);
    const text = gunzipSync(bytes).toString();
    // The whole document as one "entity block": valid gzip members, nothing an entity block can be.
    const odd = gzipMember(Buffer.from(text), MEMBER_ENTITIES);
    const cache: BlockCache = { blocks: new Map() };
    const got = decodeAgainst(odd, {}, keyOf, undefined, cache)!;
    assert.equal(got.hash, snapshot.hash);
    assert.deepEqual(got.lists.consumers.fresh, config.consumers);
    assert.equal(cache.blocks.size, 0);
  });
});
