// correlation-id with in-memory ports: the three generators, an incoming id kept, echo_downstream.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { correlationIdConfig } from './schema.ts';
import { CORRELATION_ID, correlationIdHandler } from './handler.ts';
import { instantiate, testCtx, testEnv } from '../test-ports.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('correlation-id handler', () => {
  it('generates uuid#counter ids by default under Kong-Request-ID, sent upstream and kept for the log', () => {
    const p = instantiate(correlationIdHandler, correlationIdConfig, {});
    const a = testCtx(), b = testCtx();
    p.access(a); p.access(b);
    const idA = a.upstreamHeaders['kong-request-id'] as string, idB = b.upstreamHeaders['kong-request-id'] as string;
    const [uuidA, nA] = idA.split('#'), [uuidB, nB] = idB.split('#');
    assert.match(uuidA, UUID);
    assert.equal(uuidA, uuidB);
    assert.equal(Number(nB), Number(nA) + 1);
    assert.equal(a.shared[CORRELATION_ID], idA);
    assert.deepEqual(a.responseHeaders, {});
  });

  it('generates a random UUID per request with generator uuid', () => {
    const p = instantiate(correlationIdHandler, correlationIdConfig, { generator: 'uuid', header_name: 'X-Correlation-ID' });
    const a = testCtx(), b = testCtx();
    p.access(a); p.access(b);
    assert.match(a.upstreamHeaders['x-correlation-id'] as string, UUID);
    assert.notEqual(a.upstreamHeaders['x-correlation-id'], b.upstreamHeaders['x-correlation-id']);
  });

  it("builds tracker ids from the connection (Kong's nginx variables) and the time", () => {
    const env = testEnv({ nowMs: 1_800_000_000_123 });
    const p = instantiate(correlationIdHandler, correlationIdConfig, { generator: 'tracker' }, env);
    const ctx = testCtx({ connection: () => ({ localAddress: '10.0.0.5', localPort: 8000, id: 42, requests: 3 }) });
    p.access(ctx);
    assert.equal(ctx.upstreamHeaders['kong-request-id'], `10.0.0.5-8000-${process.pid}-42-3-1800000000.123`);
  });

  it('keeps an id the client sent, and echoes it downstream when asked', () => {
    const p = instantiate(correlationIdHandler, correlationIdConfig, { echo_downstream: true });
    const ctx = testCtx({ headers: { 'kong-request-id': 'client-id-1' } });
    p.access(ctx);
    assert.deepEqual(ctx.upstreamHeaders, {});
    assert.equal(ctx.shared[CORRELATION_ID], 'client-id-1');
    assert.deepEqual(ctx.logFields, { correlation_id: 'client-id-1' }, 'the id goes into the access-log line');
    assert.deepEqual(ctx.responseHeaders, { 'kong-request-id': 'client-id-1' });
  });

  it('replaces an empty incoming id and echoes the generated one', () => {
    const p = instantiate(correlationIdHandler, correlationIdConfig, { echo_downstream: true, generator: 'uuid' });
    const ctx = testCtx({ headers: { 'kong-request-id': '' } });
    p.access(ctx);
    assert.match(ctx.upstreamHeaders['kong-request-id'] as string, UUID);
    assert.equal(ctx.responseHeaders['kong-request-id'], ctx.upstreamHeaders['kong-request-id']);
  });

  it("fills Kong's defaults and refuses a bad header name or generator", () => {
    assert.deepEqual(correlationIdConfig.parse({}), { header_name: 'Kong-Request-ID', generator: 'uuid#counter', echo_downstream: false });
    const r = correlationIdConfig.safeParse({ header_name: 'X-Id\r\nX-Evil: 1', generator: 'snowflake' });
    assert.deepEqual(r.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`), [
      "header_name: bad header name 'X-Id\r\nX-Evil: 1', allowed characters are A-Z, a-z, 0-9, '_', and '-'",
      'generator: expected one of: uuid, uuid#counter, tracker',
    ]);
  });
});
