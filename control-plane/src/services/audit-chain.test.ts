// The audit chain as pure functions: hashing is canonical (key order and a jsonb round trip do
// not matter), a whole chain verifies, and an edited, deleted or relinked entry is reported at
// the first sequence number that is wrong. PORTICO_FUZZ_RUNS raises the number of random cases.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { canonicalAroundSeq, canonicalJson, chainEntry, entryHash, GENESIS_HASH, verifyChain, type AuditEntry, type AuditFields } from './audit-chain.ts';

const RUNS = Number(process.env.PORTICO_FUZZ_RUNS ?? 200);

function fields(i: number, change: unknown = { id: `id-${i}`, name: `svc-${i}`, tags: ['a'] }): Omit<AuditFields, 'seq'> {
  return {
    created_at: 1_800_000_000 + i, request_id: `req-${i}`, admin_id: null, admin_username: null, token_prefix: null,
    method: 'POST', path: '/services', entity_type: 'services', entity_id: `id-${i}`, change, config_version: i + 1, client_ip: '127.0.0.1',
  };
}
function chain(n: number, change?: (i: number) => unknown): AuditEntry[] {
  const out: AuditEntry[] = [];
  for (let i = 0; i < n; i++) out.push(chainEntry(out[i - 1] ?? null, fields(i, change?.(i))));
  return out;
}

describe('audit chain', () => {
  it('serializes a value the same whatever the order its keys were built in, at every depth', () => {
    assert.equal(canonicalJson({ b: 1, a: { d: [{ y: 1, x: 2 }], c: null } }), canonicalJson({ a: { c: null, d: [{ x: 2, y: 1 }] }, b: 1 }));
    assert.equal(canonicalJson({ b: 1, a: undefined }), '{"b":1}', 'undefined is left out, as JSON.stringify and jsonb do');
  });

  it('links each entry to the one before, starting from the genesis hash', () => {
    const [a, b] = chain(2);
    assert.equal(a.seq, 1);
    assert.equal(a.prev_hash, GENESIS_HASH);
    assert.equal(b.seq, 2);
    assert.equal(b.prev_hash, a.hash);
    assert.equal(b.hash, entryHash(a.hash, b));
    assert.match(b.hash, /^[0-9a-f]{64}$/);
  });

  it('verifies an intact chain, an empty one, and one whose stored JSON came back with keys reordered', () => {
    assert.deepEqual(verifyChain([]), { valid: true, entries: 0 });
    const entries = chain(5);
    assert.deepEqual(verifyChain(entries), { valid: true, entries: 5 });
    const reversed = entries.map((e) => ({ ...e, change: Object.fromEntries(Object.entries(e.change as object).reverse()) }));
    assert.deepEqual(verifyChain(reversed), { valid: true, entries: 5 });
  });

  it('reports an edited entry at its own seq', () => {
    const entries = chain(5);
    entries[2] = { ...entries[2], change: { id: 'id-2', name: 'evil', tags: ['a'] } };
    assert.deepEqual(verifyChain(entries), { valid: false, entries: 5, first_invalid: 3, reason: 'entry 3 was modified: its content does not match its hash' });
  });

  it('reports an edited entry whose hash was recomputed at the next seq, whose link no longer holds', () => {
    const entries = chain(5);
    const forged = { ...entries[1], admin_username: 'someone-else' };
    entries[1] = { ...forged, hash: entryHash(forged.prev_hash, forged) };
    const v = verifyChain(entries);
    assert.equal(v.valid, false);
    assert.equal(!v.valid && v.first_invalid, 3);
    assert.match(!v.valid ? v.reason : '', /entry 3 does not link to entry 2/);
  });

  it('reports a deleted entry, the first one included, as the missing seq', () => {
    const entries = chain(5);
    const v = verifyChain([...entries.slice(0, 2), ...entries.slice(3)]);
    assert.deepEqual(v, { valid: false, entries: 4, first_invalid: 3, reason: 'entry 3 is missing (deleted): the next stored entry is 4' });
    const first = verifyChain(entries.slice(1));
    assert.equal(!first.valid && first.first_invalid, 1);
  });

  it('detects any change to any field of any entry', () => {
    const keys: (keyof AuditEntry)[] = ['seq', 'created_at', 'request_id', 'admin_id', 'admin_username', 'token_prefix', 'method', 'path',
      'entity_type', 'entity_id', 'change', 'config_version', 'client_ip', 'prev_hash', 'hash'];
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 8 }), fc.nat(), fc.constantFrom(...keys), fc.oneof(fc.string(), fc.integer(), fc.constant(null), fc.jsonValue()),
      (n, pick, key, value) => {
        const entries = chain(n, (i) => ({ id: `id-${i}`, nested: { list: [i, `x${i}`], flag: i % 2 === 0 } }));
        const at = pick % n;
        fc.pre(canonicalJson(entries[at][key]) !== canonicalJson(value));
        entries[at] = { ...entries[at], [key]: value } as AuditEntry;
        const v = verifyChain(entries);
        assert.equal(v.valid, false);
        assert.ok(!v.valid && v.first_invalid <= at + 1, `${key} edited at seq ${at + 1}, reported at ${!v.valid && v.first_invalid}`);
      },
    ), { numRuns: RUNS });
  });
});

describe('canonical text around seq', () => {
  it('splices to the canonical JSON of the fields whatever they hold', () => {
    fc.assert(fc.property(fc.nat({ max: 2 ** 40 }), fc.jsonValue(), fc.option(fc.string()), fc.string(), (seq, change, admin, path) => {
      const f = { ...fields(1, change), admin_username: admin, path };
      const { before, after } = canonicalAroundSeq(f);
      assert.equal(before + String(seq) + after, canonicalJson({ ...f, seq }));
    }), { numRuns: RUNS });
  });
});
