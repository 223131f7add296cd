// aggregator with an in-memory ServicePort: graph order, fail-fast cancellation, concurrency
// bound, merge and field operations, and the schema's write-time refusals.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { aggregatorConfig } from './schema.ts';
import { aggregatorHandler } from './handler.ts';
import { testCtx, testEnv } from '../test-ports.ts';
import type { Exit, ServicePort, ServiceRequest, ServiceResponse } from '../types.ts';

/** A port whose services answer `answers[service](req)`; records calls and aborts. */
function port(answers: Record<string, (req: ServiceRequest) => ServiceResponse | Promise<ServiceResponse>>) {
  const calls: string[] = [];
  const aborted: string[] = [];
  let inFlight = 0, maxInFlight = 0;
  const p: ServicePort = {
    has: (s) => s in answers,
    record: () => {},
    async call(_ctx, req) {
      calls.push(`${req.service} ${req.method} ${req.target}`);
      req.signal.addEventListener('abort', () => aborted.push(req.service));
      inFlight++; maxInFlight = Math.max(maxInFlight, inFlight);
      try { return await answers[req.service](req); } finally { inFlight--; }
    },
  };
  return { p, calls, aborted, get maxInFlight() { return maxInFlight; } };
}
const json = (v: unknown, status = 200): ServiceResponse => ({ ok: true, status, headers: {}, body: Buffer.from(JSON.stringify(v)) });
const later = (ms: number, r: ServiceResponse) => new Promise<ServiceResponse>((res) => setTimeout(() => res(r), ms));
/** Never answers; resolves as cancelled once aborted (as the DP does). */
const hang = (req: ServiceRequest) => new Promise<ServiceResponse>((res) => req.signal.addEventListener('abort', () => res({ ok: false, failure: 'cancelled', message: 'x' })));

async function run(config: Record<string, unknown>, services: ServicePort): Promise<Exit & { json: any }> {
  const env = { ...testEnv(), now: Date.now, services };
  const c = aggregatorConfig.parse(config);
  const state = aggregatorHandler.init!(c, env, 'p1');
  return (await aggregatorHandler.access!(testCtx(), c, state, env)) as Exit & { json: any };
}

describe('aggregator handler', () => {
  it('merges in declared order whatever order legs finish in, after allow/deny/rename', async () => {
    const s = port({ slow: () => later(20, json({ a: 1, b: { c: 2, d: 3 } })), fast: () => json([1]) });
    const r = await run({ legs: [
      { name: 'first', service: 'slow', allow: ['b'], deny: ['b.d'], rename: { 'b.c': 'b.see' } },
      { name: 'second', service: 'fast', into: 'list' },
    ] }, s.p);
    assert.equal(r.status, 200);
    assert.deepEqual(Object.keys(r.json), ['first', 'list']);
    assert.deepEqual(r.json.first, { b: { see: 2 } });
  });

  it('aborts every call in flight as soon as a required leg fails', async () => {
    const s = port({ bad: () => json({}, 500), hang });
    const r = await run({ legs: [{ name: 'h', service: 'hang', required: false }, { name: 'b', service: 'bad' }] }, s.p);
    assert.equal(r.status, 502);
    assert.deepEqual(s.aborted, ['hang']);
  });

  it('maps a required leg\'s failure to 504, 503 or 502', async () => {
    for (const [failure, status] of [['timeout', 504], ['circuit_open', 503], ['connect_error', 502], ['no_target', 502]] as const) {
      const r = await run({ legs: [{ name: 'x', service: 's' }] }, port({ s: () => ({ ok: false, failure, message: failure }) }).p);
      assert.equal(r.status, status, failure);
      assert.equal(r.json.legs[0].reason, failure);
    }
  });

  it('skips the dependents of a failed optional leg, listing them', async () => {
    const s = port({ a: () => json({}, 404), b: () => json({}) });
    const r = await run({ legs: [{ name: 'a', service: 'a', required: false }, { name: 'b', service: 'b', required: false, depends_on: ['a'] }] }, s.p);
    assert.equal(r.status, 200);
    assert.deepEqual(r.json._errors.map((e: { leg: string; reason: string }) => [e.leg, e.reason]), [['a', 'upstream_status'], ['b', 'dependency_failed']]);
    assert.deepEqual(s.calls, ['a GET /']);
    assert.equal(r.headers!['x-aggregate-completed'], 'false');
  });

  it('keeps at most max_concurrency calls in flight, fan-out calls included', async () => {
    const s = port({ list: () => json({ ids: [1, 2, 3, 4] }), item: () => later(5, json({})) });
    const r = await run({ max_concurrency: 2, legs: [
      { name: 'list', service: 'list' },
      { name: 'each', service: 'item', path: '/i/$(item)', depends_on: ['list'], for_each: 'list.ids' },
    ] }, s.p);
    assert.equal(r.status, 200);
    assert.equal(r.json.each.length, 4);
    assert.equal(s.maxInFlight, 2);
  });
});

describe('aggregator schema', () => {
  const problems = (config: Record<string, unknown>) => aggregatorConfig.safeParse(config).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`);

  it('fills defaults', () => {
    const c = aggregatorConfig.parse({ legs: [{ name: 'a', service: 's' }] });
    assert.equal(c.timeout_ms, 3000);
    assert.deepEqual({ ...c.legs[0], name: undefined, service: undefined }, {
      name: undefined, service: undefined, method: 'GET', path: '/', query: {}, headers: {}, forward_query: [], forward_headers: [], body: 'none', required: true,
      timeout_ms: null, into: null, allow: [], deny: [], rename: {}, depends_on: [], for_each: null, max_fan_out: 20,
    });
  });

  it('refuses what would break at run time, with the field\'s path', () => {
    assert.deepEqual(problems({ timeout_ms: 100, legs: [{ name: 'a', service: 's', timeout_ms: 200 }] }), ['legs.0.timeout_ms: must be at most timeout_ms (100)']);
    assert.deepEqual(problems({ legs: [{ name: 'a', service: 's', required: false }, { name: 'b', service: 's', depends_on: ['a'] }] }),
      ["legs.1.depends_on.0: a required leg cannot depend on the optional leg 'a'"]);
    assert.deepEqual(problems({ legs: [{ name: 'a', service: 's' }, { name: 'b', service: 's', into: 'a' }] }), ["legs.1.into: 'a' is already where leg 'a' goes"]);
    assert.deepEqual(problems({ legs: [{ name: 'a', service: 's', path: '/$(item)' }] }), ['legs.0: $(item) is only available with for_each']);
    assert.deepEqual(problems({ legs: [{ name: 'a', service: 's', path: '/$(legs.b.x[*])' }] }), ["legs.0.path: 'legs.b.x[*]': [*] is not allowed in a template (use for_each)"]);
    assert.deepEqual(problems({ legs: [{ name: 'a', service: 's', path: '/$(nope.x)' }] }),
      ["legs.0.path: unknown template variable 'nope' in 'nope.x' (known: headers, query_params, uri_captures, shared, consumer, jwt, request_id, legs, item)"]);
    assert.deepEqual(problems({ legs: [{ name: 'a', service: 's', depends_on: ['a'] }] }), ['legs.0.depends_on: dependency cycle: a → a']);
    assert.deepEqual(problems({ legs: [] }), ['legs: at least one leg is required']);
  });
});
