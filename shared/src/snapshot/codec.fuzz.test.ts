// Property-based: whatever arrives on the bus, decodeSnapshot either returns a valid snapshot or
// throws a SnapshotError (which apply reports as a rejection); it never crashes otherwise and never
// touches Object.prototype. PORTICO_FUZZ_RUNS raises the number of cases (default: seconds in npm test).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { configHash } from './hash.ts';
import { decodeSnapshot, encodeSnapshot, SnapshotError } from './codec.ts';
import { emptyConfig, type Snapshot } from './schema.ts';
import { serviceSchema } from '../entities/service.ts';

const RUNS = Number(process.env.PORTICO_FUZZ_RUNS ?? 200);
const service = serviceSchema.parse({ id: '00000000-0000-4000-8000-000000000001', created_at: 1, updated_at: 1, host: 'x.test' });
const config = { ...emptyConfig(), services: [service] };
const valid: Snapshot = { version: 7, hash: configHash(config), built_at: 1, config };
const validBytes = encodeSnapshot(valid);

/** Decodes to exactly `valid` or throws a SnapshotError; nothing else. */
function decodesCleanly(bytes: Uint8Array, mayEqual?: Snapshot, maxBytes?: number): void {
  let out: Snapshot;
  try {
    out = decodeSnapshot(bytes, maxBytes);
  } catch (err) {
    assert.ok(err instanceof SnapshotError, `threw ${(err as Error)?.name}: ${(err as Error)?.message}`);
    return;
  } finally {
    assert.equal(Object.keys(Object.prototype).length, 0, 'Object.prototype untouched');
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  }
  assert.ok(mayEqual, 'decoded something that should have been rejected');
  assert.deepEqual(out, mayEqual);
}

/** JSON text nested `depth` levels deep. */
const deep = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);

describe('snapshot decoder fuzz', () => {
  it('rejects random bytes and random gzip-compressed text', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 512 }), (b) => decodesCleanly(b)), { numRuns: RUNS });
    fc.assert(fc.property(fc.string({ maxLength: 512 }), (s) => decodesCleanly(gzipSync(s))), { numRuns: RUNS });
  });

  it('rejects truncated and bit-flipped snapshots (or decodes the original when a flip hits a field gzip ignores)', () => {
    fc.assert(fc.property(fc.nat(validBytes.length - 1), (n) => decodesCleanly(validBytes.subarray(0, n))), { numRuns: RUNS });
    fc.assert(fc.property(fc.nat(validBytes.length - 1), fc.integer({ min: 1, max: 255 }), (at, x) => {
      const b = Buffer.from(validBytes);
      b[at] ^= x;
      decodesCleanly(b, valid);
    }), { numRuns: RUNS });
  });

  it('rejects any JSON value, and any JSON in place of each part of a snapshot', () => {
    fc.assert(fc.property(fc.jsonValue(), (v) => decodesCleanly(gzipSync(JSON.stringify(v) ?? 'null'))), { numRuns: RUNS });
    const parts = ['version', 'hash', 'built_at', 'config'] as const;
    fc.assert(fc.property(fc.constantFrom(...parts), fc.jsonValue(), (part, v) => {
      // A value that is valid for that part (any whole number for built_at) is a valid snapshot:
      // then it must decode to exactly what was sent.
      const text = JSON.stringify({ ...valid, [part]: v });
      decodesCleanly(gzipSync(text), JSON.parse(text) as Snapshot);
    }), { numRuns: RUNS });
  });

  it('rejects hostile shapes: __proto__ and constructor keys, deep nesting, wrong entity types', () => {
    const hostile = [
      `{"__proto__":{"polluted":1},"version":8,"hash":"${valid.hash}","built_at":1,"config":${JSON.stringify(config)}}`,
      `{"version":8,"hash":"${valid.hash}","built_at":1,"config":{"__proto__":{"polluted":1},"services":[]}}`,
      JSON.stringify({ ...valid, config: { ...config, services: [{ ...service, constructor: { prototype: { polluted: 1 } } }] } }),
      `{"version":8,"hash":"${valid.hash}","built_at":1,"config":${deep(100_000)}}`,
      deep(200_000),
    ];
    for (const text of hostile) decodesCleanly(gzipSync(text));
  });

  it('rejects a document whose hash is right but whose content is not a config', () => {
    fc.assert(fc.property(fc.constantFrom(...Object.keys(emptyConfig())), fc.array(fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 4 }), { minLength: 1, maxLength: 3 }), (list, rows) => {
      const bad = { ...emptyConfig(), [list]: rows.map((r, i) => ({ ...r, id: `id-${i}` })) };
      let hash: string;
      try { hash = configHash(bad as never); } catch { return; }
      decodesCleanly(gzipSync(JSON.stringify({ version: 9, hash, built_at: 1, config: bad })));
    }), { numRuns: RUNS });
  });

  it('stops at the size limit instead of inflating a gzip bomb', () => {
    assert.throws(() => decodeSnapshot(gzipSync(Buffer.alloc(2 * 1024 * 1024, 0x20)), 1024 * 1024), SnapshotError);
  });
});
