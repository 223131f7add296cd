import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { trace } from '@opentelemetry/api';
import { parentContext, validTraceparent } from './config-trace.ts';

const RUNS = Number(process.env.PORTICO_FUZZ_RUNS ?? 200);
const GOOD = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

describe('config trace context', () => {
  it('accepts a W3C traceparent and parents on it', () => {
    assert.equal(validTraceparent(GOOD), GOOD);
    const c = trace.getSpanContext(parentContext(GOOD))!;
    assert.deepEqual([c.traceId, c.spanId, c.traceFlags, c.isRemote], ['4bf92f3577b34da6a3ce929d0e0e4736', '00f067aa0ba902b7', 1, true]);
  });

  it('rejects malformed, zero-id, other-version and non-string values', () => {
    for (const bad of [undefined, null, 42, {}, '', GOOD.toUpperCase(), GOOD + ' ', `01${GOOD.slice(2)}`,
      `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`, `00-4bf92f3577b34da6a3ce929d0e0e4736-${'0'.repeat(16)}-01`, GOOD.replace('-01', '-zz')]) {
      assert.equal(validTraceparent(bad), null, String(bad));
      assert.equal(trace.getSpanContext(parentContext(bad)), undefined);
    }
  });

  it('never throws on arbitrary input', () => {
    fc.assert(fc.property(fc.anything(), fc.string(), (a, s) => {
      parentContext(a); parentContext(s);
      const v = validTraceparent(s);
      assert.ok(v === null || v === s);
    }), { numRuns: RUNS });
  });
});
