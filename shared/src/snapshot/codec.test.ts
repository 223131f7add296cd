import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { canonicalJson, configHash } from './hash.ts';
import { decodeAgainst, decodeSnapshot, encodeSnapshot, SnapshotError } from './codec.ts';
import { serviceSchema } from '../entities/service.ts';
import { emptyConfig } from './schema.ts';

const service = serviceSchema.parse({ id: '00000000-0000-4000-8000-000000000001', created_at: 1, updated_at: 1, host: 'x.test' });
const other = { ...service, id: '00000000-0000-4000-8000-000000000002' };

describe('snapshot codec', () => {
  it('hashes equal content equally, whatever the row order or key order', () => {
    const a = configHash({ ...emptyConfig(), services: [service, other] });
    const reordered = Object.fromEntries(Object.entries(service).reverse()) as typeof service;
    assert.equal(configHash({ ...emptyConfig(), services: [other, reordered] }), a);
    assert.notEqual(configHash({ ...emptyConfig(), services: [service] }), a);
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
    const keyOf = (t: string) => createHash('sha256').update(t).digest('base64');
    const third = { ...service, id: '00000000-0000-4000-8000-000000000003', host: 'third.test' };
    const config = { ...emptyConfig(), services: [other, service, third] };
    const snap = { version: 4, hash: configHash(config), built_at: 1, config };
    const bytes = encodeSnapshot(snap);
    // Nothing held: everything fresh, validated, equal to what decodeSnapshot gives.
    const all = decodeAgainst(bytes, {}, keyOf)!;
    assert.deepEqual(all.lists.services.fresh, decodeSnapshot(bytes).config.services);
    assert.equal(all.lists.services.held, null);
    assert.deepEqual(all.lists.services.keys, config.services.map((e) => keyOf(canonicalJson(e))));
    // `service` and `other` held (at 0 and 1 of the requester's list): only `third` is fresh.
    const held = { services: new Map([[keyOf(canonicalJson(service)), 0], [keyOf(canonicalJson(other)), 1]]) };
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
});
