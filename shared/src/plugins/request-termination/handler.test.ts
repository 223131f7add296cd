// request-termination with in-memory ports: defaults per status, message, body + content_type, echo, trigger.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { requestTerminationConfig } from './schema.ts';
import { requestTerminationHandler } from './handler.ts';
import { instantiate, testCtx } from '../test-ports.ts';

const run = (config: Record<string, unknown>, ctx = testCtx()) => instantiate(requestTerminationHandler, requestTerminationConfig, config).access(ctx);

describe('request-termination handler', () => {
  it("answers 503 {\"message\":\"Service unavailable\"} by default, and Kong's default message per status", () => {
    assert.deepEqual(run({}), { status: 503, json: { message: 'Service unavailable' } });
    assert.deepEqual(run({ status_code: 404 }), { status: 404, json: { message: 'Not found' } });
    assert.deepEqual(run({ status_code: 401 }), { status: 401, json: { message: 'Unauthorized' } });
  });

  it('answers with the configured message, or with no body for a status without a default', () => {
    assert.deepEqual(run({ status_code: 418, message: 'teapot' }), { status: 418, json: { message: 'teapot' } });
    assert.deepEqual(run({ status_code: 204 }), { status: 204, body: '', headers: {} });
  });

  it('answers a raw body with its content_type', () => {
    assert.deepEqual(run({ status_code: 200, body: '<h1>Maintenance</h1>', content_type: 'text/html; charset=utf-8' }),
      { status: 200, body: '<h1>Maintenance</h1>', headers: { 'content-type': 'text/html; charset=utf-8' } });
  });

  it('terminates only requests carrying the trigger, as a header or a query argument', () => {
    const p = instantiate(requestTerminationHandler, requestTerminationConfig, { trigger: 'X-Terminate' });
    assert.equal(p.access(testCtx()), undefined);
    assert.equal(p.access(testCtx({ url: '/p?other=1' })), undefined);
    assert.equal(p.access(testCtx({ headers: { 'x-terminate': '' } }))?.status, 503);
    assert.equal(p.access(testCtx({ url: '/p?X-Terminate' }))?.status, 503);
  });

  it('echoes the request as JSON', () => {
    const ctx = testCtx({
      method: 'POST', url: '/orders?a=1&a=2&b=x', headers: { host: 'API.test:8000', 'x-one': '1' }, shared: { body: { id: 7 } },
      rawBody: () => Buffer.from('{"id":7}'), uriCaptures: { unnamed: ['7'], named: { id: '7' } },
    });
    const exit = run({ echo: true, status_code: 200, message: 'echo' }, ctx) as { status: number; json: Record<string, unknown> };
    assert.equal(exit.status, 200);
    // Kong's nil values are left out of its JSON: compare what would be sent.
    assert.deepEqual(JSON.parse(JSON.stringify(exit.json)), JSON.parse(JSON.stringify({
      message: 'echo',
      kong: { worker_pid: process.pid, hostname: hostname() },
      request: {
        scheme: 'http', host: 'api.test', port: 8000, headers: { host: 'API.test:8000', 'x-one': '1' }, query: { a: ['1', '2'], b: 'x' }, body: { id: 7 },
        raw_body: '{"id":7}', method: 'POST', path: '/orders', uri_captures: { named: { id: '7' }, unnamed: ['7'] },
      },
      matched_route: ctx.route, matched_service: ctx.service,
    })));
    assert.equal(requestTerminationHandler.needsBody!(requestTerminationConfig.parse({ echo: true })), true);
    assert.equal(requestTerminationHandler.needsBody!(requestTerminationConfig.parse({})), false);
  });

  it('builds the answer once per snapshot and keeps it unchanged', () => {
    const p = instantiate(requestTerminationHandler, requestTerminationConfig, { status_code: 200, body: 'ok', content_type: 'text/plain' });
    const a = p.access(testCtx()), b = p.access(testCtx());
    assert.equal(a, b);
    assert.throws(() => { (a as { headers: Record<string, string> }).headers.x = 'y'; }, TypeError);
  });

  it("refuses Kong's invalid combinations, a bad status, a CR/LF content type and a bad trigger at write time", () => {
    const msg = (c: Record<string, unknown>) => requestTerminationConfig.safeParse(c).error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    assert.deepEqual(msg({ message: 'x', body: 'y' }), ['@entity: message cannot be used with content_type or body']);
    assert.deepEqual(msg({ content_type: 'text/plain' }), ['@entity: content_type requires a body']);
    assert.deepEqual(msg({ echo: true, body: 'y' }), ['@entity: echo cannot be used with content_type and body']);
    assert.deepEqual(msg({ status_code: 600 }), ['status_code: value should be between 100 and 599']);
    assert.deepEqual(msg({ body: 'x', content_type: 'text/plain\r\nSet-Cookie: a=b' }), ['content_type: must not contain control characters (CR, LF, NUL…)']);
    assert.deepEqual(msg({ trigger: 'x trigger' }), ["trigger: bad header name 'x trigger', allowed characters are A-Z, a-z, 0-9, '_', and '-'"]);
  });

  it("fills Kong's defaults", () => {
    assert.deepEqual(requestTerminationConfig.parse({}), { status_code: 503, message: null, content_type: null, body: null, echo: false, trigger: null });
  });
});
