import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { configHash } from './hash.ts';
import { decodeSnapshot, encodeSnapshot, SnapshotError } from './codec.ts';
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
});
