// request-size-limiting with in-memory ports: units, Content-Length, 417 on Expect, 411.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { requestSizeLimitingConfig } from './schema.ts';
import { requestSizeLimitingHandler } from './handler.ts';
import { instantiate, testCtx } from '../test-ports.ts';

const post = (headers: Record<string, string>) => testCtx({ method: 'POST', headers });

describe('request-size-limiting handler', () => {
  it('allows up to allowed_payload_size in size_unit (1024-based) and answers 413 beyond', () => {
    const kb = instantiate(requestSizeLimitingHandler, requestSizeLimitingConfig, { allowed_payload_size: 2, size_unit: 'kilobytes' });
    assert.equal(kb.access(post({ 'content-length': '2048' })), undefined);
    assert.deepEqual(kb.access(post({ 'content-length': '2049' })), { status: 413, message: 'Request size limit exceeded' });
    const bytes = instantiate(requestSizeLimitingHandler, requestSizeLimitingConfig, { allowed_payload_size: 10, size_unit: 'bytes' });
    assert.equal(bytes.access(post({ 'content-length': '11' }))?.status, 413);
    const mb = instantiate(requestSizeLimitingHandler, requestSizeLimitingConfig, {});
    assert.equal(mb.access(post({ 'content-length': String(128 * 2 ** 20) })), undefined);
    assert.equal(mb.access(post({ 'content-length': String(128 * 2 ** 20 + 1) }))?.status, 413);
  });

  it('answers 417 instead when the client waits for 100 Continue', () => {
    const p = instantiate(requestSizeLimitingHandler, requestSizeLimitingConfig, { allowed_payload_size: 1, size_unit: 'bytes' });
    assert.deepEqual(p.access(post({ 'content-length': '2', expect: ' 100-Continue ' })), { status: 417, message: 'Request size limit exceeded' });
  });

  it('requires a Content-Length when configured, unless the body is chunked', () => {
    const p = instantiate(requestSizeLimitingHandler, requestSizeLimitingConfig, { require_content_length: true });
    assert.deepEqual(p.access(post({})), { status: 411, message: 'A valid Content-Length header is required' });
    assert.equal(p.access(post({ 'transfer-encoding': 'chunked' })), undefined);
    assert.equal(p.access(post({ 'transfer-encoding': 'gzip, chunked' })), undefined);
    assert.equal(p.access(post({ 'content-length': '0' })), undefined);
    const lax = instantiate(requestSizeLimitingHandler, requestSizeLimitingConfig, {});
    assert.equal(lax.access(post({})), undefined);
  });

  it('exposes the limit in bytes for the DP to count chunked bodies against', () => {
    const c = requestSizeLimitingConfig.parse({ allowed_payload_size: 3, size_unit: 'kilobytes' });
    const state = requestSizeLimitingHandler.init!(c, undefined as never, 'p');
    assert.equal(requestSizeLimitingHandler.requestBodyLimit(c, state), 3072);
  });

  it("fills Kong's defaults and refuses bad sizes and units", () => {
    assert.deepEqual(requestSizeLimitingConfig.parse({}), { allowed_payload_size: 128, size_unit: 'megabytes', require_content_length: false });
    const r = requestSizeLimitingConfig.safeParse({ allowed_payload_size: -1, size_unit: 'gigabytes' });
    assert.deepEqual(r.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`), [
      'allowed_payload_size: value should be at least 0', 'size_unit: expected one of: megabytes, kilobytes, bytes',
    ]);
    assert.equal(requestSizeLimitingConfig.safeParse({ allowed_payload_size: 1.5 }).error!.issues[0].message, 'expected an integer');
    assert.match(requestSizeLimitingConfig.safeParse({ allowed_payload_size: 2 ** 50 }).error!.issues[0].message, /^value should be at most \d+ megabytes$/);
  });
});
