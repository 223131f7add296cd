import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SnapshotError } from './codec.ts';
import { snapshotSeries } from '../../../test/harness/snapshots.ts';
import { decodeDelta, encodeDelta, isDelta, partDigest, partsOf, signedVersion } from './parts.ts';

const byDigest = (parts: readonly Uint8Array[]) => new Map(parts.map((p) => [partDigest(p), p]));

describe('snapshot parts and deltas', () => {
  const next = snapshotSeries();
  const a = next(1);
  const b = next(2);

  it('splits an envelope into the parts it was written from', () => {
    assert.deepEqual(partsOf(a.envelope)!.map(partDigest), a.parts.map(partDigest));
    assert.equal(partsOf(Buffer.from('PSN1')), null);
    assert.equal(signedVersion(b.envelope), 2, 'the version its tail says');
    assert.equal(signedVersion(Buffer.from('PSN1 not a snapshot')), null);
  });

  it('sends only the parts the last snapshot lacked, and rebuilds the very envelope from those held', () => {
    const delta = encodeDelta(b.envelope, b.parts, new Set(a.parts.map(partDigest)));
    assert.ok(isDelta(delta) && !isDelta(b.envelope));
    assert.ok(delta.length < b.envelope.length / 5, `${delta.length} of ${b.envelope.length} bytes`);
    const rebuilt = decodeDelta(delta, byDigest(a.parts), 64 << 20)!;
    assert.ok(rebuilt.envelope.equals(b.envelope));
    assert.deepEqual([...rebuilt.parts.keys()].sort(), b.parts.map(partDigest).sort());
  });

  it('answers null when a part is not held', () => {
    const c = next(3);
    const delta = encodeDelta(c.envelope, c.parts, new Set(b.parts.map(partDigest)));
    assert.equal(decodeDelta(delta, byDigest(a.parts), 64 << 20), null);
  });

  it('refuses a malformed delta with the reason, and one that would rebuild past the limit', () => {
    const delta = encodeDelta(b.envelope, b.parts, new Set(a.parts.map(partDigest)));
    const held = byDigest(a.parts);
    const head = delta.subarray(0, 4 + 76);
    const cases: [Buffer, RegExp][] = [
      [delta.subarray(0, 40), /truncated before its parts/],
      [Buffer.concat([head, Buffer.from([1, 2, 3])]), /truncated in a part digest/],
      [Buffer.concat([head, Buffer.from([2, 0, 0])]), /truncated in a part length/],
      [Buffer.concat([head, Buffer.from([2, 0, 0, 1, 0, 9])]), /says 256 bytes; 1 are left/],
      [Buffer.concat([head, Buffer.from([7])]), /unknown part tag 7/],
    ];
    for (const [body, why] of cases) assert.throws(() => decodeDelta(body, held, 64 << 20), (e: Error) => e instanceof SnapshotError && why.test(e.message));
    // Many references to one held part: bounded by what a whole snapshot may be.
    const big = a.parts.reduce((x, y) => (y.byteLength > x.byteLength ? y : x));
    const refs = Buffer.concat(Array.from({ length: 1_000 }, () => Buffer.concat([Buffer.from([1]), Buffer.from(partDigest(big), 'hex')])));
    assert.throws(() => decodeDelta(Buffer.concat([head, refs]), held, 100_000), /rebuilds to more than 100000 bytes/);
  });
});
