// Trace-context parsing and writing (W3C trace-context §3.2, B3 single and multi).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { extract, inject, parseTraceparent, randomId } from './propagation.ts';

const T = '4bf92f3577b34da6a3ce929d0e0e4736', S = '00f067aa0ba902b7';

describe('trace-context propagation', () => {
  it('reads a W3C traceparent with its sampled flag, and refuses invalid ones', () => {
    assert.deepEqual(parseTraceparent(`00-${T}-${S}-01`), { traceId: T, spanId: S, sampled: true, format: 'w3c' });
    assert.equal(parseTraceparent(`00-${T}-${S}-00`)!.sampled, false);
    assert.equal(parseTraceparent(`ff-${T}-${S}-01`), null, 'version ff is invalid');
    assert.equal(parseTraceparent(`00-${'0'.repeat(32)}-${S}-01`), null, 'all-zero trace id');
    assert.equal(parseTraceparent(`00-${T}-${'0'.repeat(16)}-01`), null, 'all-zero span id');
    assert.equal(parseTraceparent(`00-${T}-${S}-01-extra`), null, 'version 00 has exactly four fields');
    assert.equal(parseTraceparent(`01-${T}-${S}-01-extra`)!.traceId, T, 'a later version may add fields');
    assert.equal(parseTraceparent(`00-${T.slice(1)}-${S}-01`), null);
  });

  it('reads B3 multi and single headers, 64-bit trace ids padded, and no decision as null', () => {
    assert.deepEqual(extract({ 'x-b3-traceid': T, 'x-b3-spanid': S, 'x-b3-sampled': '1' }, ['b3']), { traceId: T, spanId: S, sampled: true, format: 'b3' });
    assert.equal(extract({ 'x-b3-traceid': 'a3ce929d0e0e4736', 'x-b3-spanid': S }, ['b3'])!.traceId, `0000000000000000a3ce929d0e0e4736`);
    assert.equal(extract({ 'x-b3-traceid': T, 'x-b3-spanid': S }, ['b3'])!.sampled, null);
    assert.equal(extract({ 'x-b3-traceid': T, 'x-b3-spanid': S, 'x-b3-flags': '1' }, ['b3'])!.sampled, true, 'debug implies sampled');
    assert.deepEqual(extract({ b3: `${T}-${S}-0` }, ['b3-single']), { traceId: T, spanId: S, sampled: false, format: 'b3-single' });
    assert.equal(extract({ b3: `${T}-${S}-1` }, ['b3'])!.format, 'b3-single', "'b3' reads the single header too");
    assert.equal(extract({ b3: '0' }, ['b3-single']), null, 'a bare decision carries no ids');
  });

  it('takes the first format in order, and ignores those not asked for', () => {
    const h = { traceparent: `00-${T}-${S}-01`, 'x-b3-traceid': 'b'.repeat(32), 'x-b3-spanid': 'c'.repeat(16) };
    assert.equal(extract(h, ['b3', 'w3c'])!.format, 'b3');
    assert.equal(extract(h, ['w3c', 'b3'])!.format, 'w3c');
    assert.equal(extract({ traceparent: `00-${T}-${S}-01` }, ['b3']), null);
  });

  it('writes every asked format', () => {
    const out: Record<string, string | string[]> = {};
    inject(out, ['w3c', 'b3', 'b3-single'], T, S, false);
    assert.deepEqual(out, { traceparent: `00-${T}-${S}-00`, 'x-b3-traceid': T, 'x-b3-spanid': S, 'x-b3-sampled': '0', b3: `${T}-${S}-0` });
  });

  it('draws distinct hex ids of the asked length', () => {
    const ids = new Set(Array.from({ length: 1000 }, () => randomId(16)));
    assert.equal(ids.size, 1000);
    for (const id of ids) assert.match(id, /^[0-9a-f]{32}$/);
    assert.match(randomId(8), /^[0-9a-f]{16}$/);
  });
});
