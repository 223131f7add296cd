import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { canonicalJson, configHash } from './hash.ts';
import { decodeAgainst, decodeSnapshot, encodeSnapshot, KEY_CHARS, sealSnapshot, SnapshotError, SnapshotWriter, type HeldKeys } from './codec.ts';

/** What a requester holds, from its keys in order. */
const heldOf = (keys: string[]): HeldKeys => ({ keys: Buffer.from(keys.join(''), 'latin1'), index: new Map(keys.map((k, i) => [k, i])) });
/** Keys as decodeAgainst gives them (bytes), as text. */
const text = (keys: Uint8Array) => Buffer.from(keys).toString('latin1');
import { canonicalConfig } from './hash.ts';
import { serviceSchema } from '../entities/service.ts';
import { emptyConfig, type Config } from './schema.ts';
import { consumerSchema } from '../entities/consumer.ts';
import { gunzipSync } from 'node:zlib';

const service = serviceSchema.parse({ id: '00000000-0000-4000-8000-000000000001', created_at: 1, updated_at: 1, host: 'x.test' });
const other = { ...service, id: '00000000-0000-4000-8000-000000000002' };

describe('snapshot codec', () => {
  it('hashes equal content equally, whatever the row order or key order', () => {
    const a = configHash({ ...emptyConfig(), services: [service, other] });
    const reordered = Object.fromEntries(Object.entries(service).reverse()) as typeof service;
    assert.equal(configHash({ ...emptyConfig(), services: [other, reordered] }), a);
    assert.notEqual(configHash({ ...emptyConfig(), services: [service] }), a);
  });
  it('the config hash is taken over block hashes: lists cut where an id ends in 00 or 01, each block hashed once', () => {
    // Ids 0x0ff, 0x100 (ends a block), 0x101 (ends a block), 0x102: blocks [0ff, 100], [101], [102].
    const ids = [0xff, 0x100, 0x101, 0x102].map((n) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`);
    const consumers = ids.map((id, i) => consumerSchema.parse({ id, created_at: 1, updated_at: 1, username: `u${i}` }));
    const config = { ...emptyConfig(), consumers };
    const texts = consumers.map(canonicalJson);
    const b64 = (s: string) => createHash('sha256').update(s).digest('base64');
    const blocks = [b64(`${texts[0]},${texts[1]}`), b64(texts[2]), b64(texts[3])].join(',');
    const lists = Object.keys(config).sort().map((k) => `${JSON.stringify(k)}:[${k === 'consumers' ? blocks : ''}]`).join(',');
    const want = createHash('sha256').update(`{${lists}}`).digest('hex');
    assert.equal(configHash(config), want);
    // The writer and the decoder agree with it (the writer hashes blocks as it writes them).
    const sealed = sealSnapshot({ version: 1, built_at: 1 }, config, canonicalConfig(config).texts);
    assert.equal(sealed.snapshot.hash, want);
    assert.equal(decodeSnapshot(sealed.bytes).hash, want);
    // A snapshot written before block hashes (a DP's disk cache from an older release) still decodes, by its own hash.
    const legacy = createHash('sha256').update(`{${Object.keys(config).sort().map((k) => `${JSON.stringify(k)}:[${k === 'consumers' ? texts.join(',') : ''}]`).join(',')}}`).digest('hex');
    assert.equal(decodeSnapshot(encodeSnapshot({ version: 2, built_at: 2, hash: legacy, config })).hash, legacy);
    assert.throws(() => decodeSnapshot(encodeSnapshot({ version: 3, built_at: 3, hash: legacy.replace(/^./, (c) => (c === '0' ? '1' : '0')), config })), SnapshotError);
  });
  it('round-trips a snapshot', () => {
    const config = { ...emptyConfig(), services: [service] };
    const snap = { version: 3, hash: configHash(config), built_at: 1, config };
    assert.deepEqual(decodeSnapshot(encodeSnapshot(snap)), snap);
  });
  it('rejects garbage, schema violations and hash mismatches with a SnapshotError', () => {
    assert.throws(() => decodeSnapshot(Buffer.from('nope')), SnapshotError);
    assert.throws(() => decodeSnapshot(gzipSync('{"version":-1}')), /failed validation/);
    const config = { ...emptyConfig(), services: [service] };
    assert.throws(() => decodeSnapshot(encodeSnapshot({ version: 1, hash: 'a'.repeat(64), built_at: 0, config })), /hash mismatch/);
  });

  it('decodeAgainst: held entities by index, only new ones validated; null for a snapshot not written canonically', () => {
    const keyOf = (t: string | Uint8Array) => createHash('sha256').update(t).digest('base64').slice(0, KEY_CHARS);
    const third = { ...service, id: '00000000-0000-4000-8000-000000000003', host: 'third.test' };
    const config = { ...emptyConfig(), services: [other, service, third] };
    const snap = { version: 4, hash: configHash(config), built_at: 1, config };
    const bytes = encodeSnapshot(snap);
    // Nothing held: everything fresh, validated, equal to what decodeSnapshot gives.
    const all = decodeAgainst(bytes, {}, keyOf)!;
    assert.deepEqual(all.lists.services.fresh, decodeSnapshot(bytes).config.services);
    assert.equal(all.lists.services.held, null);
    assert.equal(text(all.lists.services.keys), config.services.map((e) => keyOf(canonicalJson(e))).join(''));
    // `service` and `other` held (at 0 and 1 of the requester's list): only `third` is fresh.
    const held = { services: heldOf([keyOf(canonicalJson(service)), keyOf(canonicalJson(other))]) };
    const some = decodeAgainst(bytes, held, keyOf)!;
    assert.deepEqual([...some.lists.services.held!], [1, 0, -1]);
    assert.deepEqual(some.lists.services.fresh, [third]);
    // A new entity that does not validate is refused, naming it.
    const bad = { ...config, services: [...config.services, { ...third, id: '00000000-0000-4000-8000-000000000004', port: 70_000 }] };
    assert.throws(() => decodeAgainst(encodeSnapshot({ ...snap, hash: configHash(bad), config: bad }), held, keyOf), /config\.services\.3\.port/);
    // The JSON an older CP wrote (keys in schema order): not canonical text, so null (decoded in full instead).
    assert.equal(decodeAgainst(gzipSync(JSON.stringify(snap)), held, keyOf), null);
    assert.deepEqual(decodeSnapshot(gzipSync(JSON.stringify(snap))), snap);
  });

  it('canonicalJson is JSON with keys sorted at every level and undefined members left out (property)', () => {
    // The plain definition, as a model: the fast one skips sorting keys already in order.
    const model = (value: unknown): string => {
      if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
      if (Array.isArray(value)) return '[' + value.map(model).join(',') + ']';
      const obj = value as Record<string, unknown>;
      return '{' + Object.keys(obj).filter((k) => obj[k] !== undefined).sort().map((k) => JSON.stringify(k) + ':' + model(obj[k])).join(',') + '}';
    };
    fc.assert(fc.property(fc.anything({ withUndefined: true, withNullPrototype: true, withObjectString: true } as never), (v) => canonicalJson(v) === model(v)),
      { numRuns: Number(process.env.PORTICO_FUZZ_RUNS ?? 1000) });
  });

  // Names full of what a scanner could trip on: braces, brackets, quotes, backslashes, `"id":"`.
  const awkward = fc.stringMatching(/^[a-z{}[\]"\\:,\u00e9\u{1F600}]{1,24}$/u);
  const consumers = fc.uniqueArray(fc.record({ n: fc.integer({ min: 1, max: 0xffffff }), username: awkward, custom_id: fc.option(awkward, { nil: undefined }) }), { selector: (c) => c.n, maxLength: 12 })
    .map((cs) => cs.map((c) => consumerSchema.parse({ id: `00000000-0000-4000-8000-${c.n.toString(16).padStart(12, '0')}`, created_at: 1, updated_at: 1, username: `${c.username}"id":"x${c.n}`, custom_id: c.custom_id })))
    // In id order (as the CP writes lists: each block's bytes are hashed where they lie) or not (put in order first).
    .chain((cs) => fc.constantFrom(cs, [...cs].sort((a, b) => (a.id < b.id ? -1 : 1))));
  const keyOf = (t: string | Uint8Array) => createHash('sha256').update(t).digest('base64').slice(0, KEY_CHARS);

  it('decodeAgainst slices each entity out of the text as written: equal to a full decode whatever the strings hold (property)', () => {
    fc.assert(fc.property(consumers, fc.array(fc.boolean(), { maxLength: 12 }), (list, holds) => {
      const config: Config = { ...emptyConfig(), consumers: list, services: [service] };
      const bytes = encodeSnapshot({ version: 2, hash: configHash(config), built_at: 5, config });
      const heldList = list.filter((_, i) => holds[i]);
      const held = { consumers: heldOf(heldList.map((c) => keyOf(canonicalJson(c)))) };
      const got = decodeAgainst(bytes, held, keyOf)!;
      assert.ok(got, 'a canonical snapshot decodes against');
      assert.equal(text(got.lists.consumers.keys), list.map((c) => keyOf(canonicalJson(c))).join(''));
      assert.deepEqual(got.lists.consumers.fresh, list.filter((_, i) => !holds[i]));
      if (heldList.length) assert.deepEqual([...got.lists.consumers.held!], list.map((c) => heldList.indexOf(c)));
      assert.deepEqual(got.lists.services.fresh, [service]);
    }), { numRuns: Number(process.env.PORTICO_FUZZ_RUNS ?? 300) });
  });

  it('decodeAgainst on tampered text: a SnapshotError, null (decoded in full instead), or exactly what a full decode gives (property)', () => {
    const chars = fc.constantFrom('{', '}', '[', ']', '"', '\\', ',', ':', 'a', '1', ' ', 'é', '\r', '\n', '\u0000', '\u{1F600}');
    fc.assert(fc.property(consumers, fc.nat(), fc.constantFrom('replace', 'insert', 'delete'), chars, (list, where, how, ch) => {
      const config: Config = { ...emptyConfig(), consumers: list };
      const text = gunzipSync(encodeSnapshot({ version: 2, hash: configHash(config), built_at: 5, config })).toString();
      const at = where % text.length;
      const tampered = how === 'insert' ? text.slice(0, at) + ch + text.slice(at) : text.slice(0, at) + (how === 'replace' ? ch : '') + text.slice(at + 1);
      const bytes = gzipSync(tampered);
      let got: ReturnType<typeof decodeAgainst>;
      try { got = decodeAgainst(bytes, {}, keyOf); } catch (err) { assert.ok(err instanceof SnapshotError, String(err)); return; }
      if (got === null) return;
      const full = decodeSnapshot(bytes); // it accepted: a full decode must accept too, and agree
      assert.deepEqual(got.lists.consumers.fresh, full.config.consumers);
      assert.equal(got.hash, full.hash);
      assert.equal(got.version, full.version);
    }), { numRuns: Number(process.env.PORTICO_FUZZ_RUNS ?? 1000) });
  });

  it('sealSnapshot: the hash of the config whether its lists are in id order (hashed as written) or not, and bytes that decode to it (property)', () => {
    fc.assert(fc.property(consumers, (list) => {
      const config: Config = { ...emptyConfig(), consumers: list, services: [service, other] };
      const { snapshot, bytes } = sealSnapshot({ version: 7, built_at: 9 }, config, canonicalConfig(config).texts);
      assert.equal(snapshot.hash, configHash(config));
      assert.deepEqual(decodeSnapshot(bytes), snapshot);
      assert.ok(decodeAgainst(bytes, {}, keyOf));
    }), { numRuns: Number(process.env.PORTICO_FUZZ_RUNS ?? 300) });
  });

  it('SnapshotWriter.write: null for a list out of id order anywhere, first pair, last pair or between', () => {
    const ids = Array.from({ length: 300 }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`);
    const at = (order: string[]) => { const config = { ...emptyConfig(), consumers: order.map((id) => ({ id, username: id, created_at: 1 })) } as unknown as Config; return new SnapshotWriter().write({ version: 1, built_at: 1, config }, canonicalConfig(config).texts); };
    const swap = (i: number) => { const o = [...ids]; [o[i], o[i + 1]] = [o[i + 1], o[i]]; return o; };
    assert.ok(at(ids));
    for (const i of [0, 150, ids.length - 2]) assert.equal(at(swap(i)), null, `swapped at ${i}`);
    assert.equal(at([ids[0], ids[0]]), null, 'a repeated id');
  });

  it('decodeAgainst on hostile entities: a 10 MB string and 100,000-deep nesting give a SnapshotError or null, never another error', () => {
    const wrap = (entity: string) => gzipSync(`{"built_at":1,"config":{${Object.keys(emptyConfig()).sort().map((k) => `"${k}":[${k === 'consumers' ? entity : ''}]`).join(',')}},"hash":"${'a'.repeat(64)}","version":2}`);
    const id = '00000000-0000-4000-8000-000000000009';
    for (const entity of [
      `{"created_at":1,"id":"${id}","username":"${'x'.repeat(10 * 1024 * 1024)}"}`,
      `{"created_at":1,"id":"${id}","tags":${'['.repeat(100_000)}${']'.repeat(100_000)}}`,
      `{"created_at":1,"id":"${id}","tags":${'['.repeat(100_000)}}`,
    ]) {
      try {
        assert.equal(decodeAgainst(wrap(entity), {}, keyOf), null);
      } catch (err) {
        assert.ok(err instanceof SnapshotError, String(err));
      }
      assert.throws(() => decodeSnapshot(wrap(entity)), SnapshotError);
    }
  });
});
