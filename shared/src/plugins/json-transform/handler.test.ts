// json-transform with in-memory ports: each operation, key case round trips (property), excluded
// maps, and configs refused at write time.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { jsonTransformConfig } from './schema.ts';
import { jsonTransformHandler } from './handler.ts';
import { KeyCaser } from './keycase.ts';
import { testCtx, testEnv } from '../test-ports.ts';
import type { JsonBody } from '../types.ts';

function run(config: Record<string, unknown>, value: unknown, side: 'request' | 'response' = 'response', status = 200): { value: unknown; changed: boolean } {
  const c = jsonTransformConfig.parse(config);
  const env = testEnv();
  const state = jsonTransformHandler.init!(c, env, 'p');
  const body: JsonBody = { kind: 'json', value };
  const changed = side === 'response'
    ? jsonTransformHandler.body!.response!(testCtx({ upstreamHeaders: { 'x-n': '5' } }), status, {}, body, c, state, env)
    : jsonTransformHandler.body!.request!(testCtx({ upstreamHeaders: { 'x-n': '5' } }), body, c, state, env) as boolean;
  return { value: body.value, changed };
}

describe('json-transform', () => {
  it('converts keys between the four cases', () => {
    const keys = ['user_id', 'firstName', 'created-at', 'HTTPStatus', 'PascalKey', 'v2_name'];
    const to = (c: 'camelCase' | 'snake_case' | 'kebab-case' | 'PascalCase') => keys.map((k) => new KeyCaser(c, []).key(k));
    assert.deepEqual(to('camelCase'), ['userId', 'firstName', 'createdAt', 'httpStatus', 'pascalKey', 'v2Name']);
    assert.deepEqual(to('snake_case'), ['user_id', 'first_name', 'created_at', 'http_status', 'pascal_key', 'v2_name']);
    assert.deepEqual(to('kebab-case'), ['user-id', 'first-name', 'created-at', 'http-status', 'pascal-key', 'v2-name']);
    assert.deepEqual(to('PascalCase'), ['UserId', 'FirstName', 'CreatedAt', 'HttpStatus', 'PascalKey', 'V2Name']);
  });

  it('round-trips snake_case keys through camelCase (property)', () => {
    // Words of two letters or more: consecutive one-letter words are ambiguous in camelCase (a_b_c →
    // aBC, read back as a + BC, an acronym), as in every case converter.
    const word = fc.stringMatching(/^[a-z][a-z0-9]{1,5}$/);
    const key = fc.array(word, { minLength: 1, maxLength: 4 }).map((w) => w.join('_'));
    const toCamel = new KeyCaser('camelCase', []), toSnake = new KeyCaser('snake_case', []);
    fc.assert(fc.property(fc.dictionary(key, fc.integer()), (obj) => {
      assert.equal(JSON.stringify(toSnake.apply(toCamel.apply(obj))), JSON.stringify(obj));
    }), { numRuns: Number(process.env.PORTICO_FUZZ_RUNS ?? 200) });
  });

  it('leaves excluded maps (keys that are data) alone, and never writes a prototype from a body\'s __proto__ key', () => {
    const out = new KeyCaser('camelCase', []).apply(JSON.parse('{"a_b":{"__proto__":{"c_d":1}}}')) as Record<string, Record<string, unknown>>;
    assert.deepEqual(out, { aB: { proto: { cD: 1 } } });
    assert.equal(Object.getPrototypeOf(out.aB), Object.prototype);
    const r = run({ response: { ops: [{ op: 'case', keys: 'camelCase', exclude: ['$.labels', '$.items[*].tags'] }] } },
      { labels: { team_id: 1 }, items: [{ item_id: 1, tags: { tag_id: 2 } }] });
    assert.deepEqual(r.value, { labels: { team_id: 1 }, items: [{ itemId: 1, tags: { tag_id: 2 } }] });
  });

  it('runs unwrap, allow, deny, rename, set and wrap in order', () => {
    const r = run({
      response: {
        ops: [
          { op: 'unwrap', path: '$.result' }, { op: 'allow', paths: ['$.id', '$.name', '$.extra'] }, { op: 'deny', paths: ['$.extra'] },
          { op: 'rename', from: '$.name', to: '$.profile.name' }, { op: 'set', path: '$.n', template: '$(headers.x-n)', type: 'number' },
          { op: 'set', path: '$.tags', value: ['a'] }, { op: 'wrap', key: 'data', meta: { v: 1 } },
        ],
      },
    }, { result: { id: 1, name: 'a', secret: 's', extra: 1 } });
    assert.deepEqual(r.value, { v: 1, data: { id: 1, profile: { name: 'a' }, n: 5, tags: ['a'] } });
  });

  it('leaves the body alone when unwrap finds nothing, and skips statuses not listed', () => {
    assert.deepEqual(run({ response: { ops: [{ op: 'unwrap', path: '$.data' }] } }, { x: 1 }), { value: { x: 1 }, changed: false });
    assert.equal(run({ response: { if_status: [200], ops: [{ op: 'wrap', key: 'd' }] } }, { x: 1 }, 'response', 500).changed, false);
  });

  it('refuses bad paths, unknown ops, missing and stray fields, set without exactly one of value and template', () => {
    const r = jsonTransformConfig.safeParse({
      request: {
        ops: [{ op: 'deny', paths: ['$..a'] }, { op: 'explode' }, { op: 'set', path: '$.a' }, { op: 'set', path: '$.a', value: 1, template: 'x' },
          { op: 'rename', from: '$.a' }, { op: 'wrap', key: 'd', keys: 'camelCase' }, { op: 'deny', paths: ['$'] }],
      },
    });
    assert.deepEqual(r.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`), [
      "request.ops.0.paths.0: '$..a': expected a key at 2",
      'request.ops.1.op: expected one of: unwrap, allow, deny, rename, set, case, wrap',
      'request.ops.2: exactly one of value and template is required',
      'request.ops.3: exactly one of value and template is required',
      "request.ops.4.to: required for op 'rename'",
      "request.ops.5.keys: not used by op 'wrap'",
      'request.ops.6.paths.0: must name a key, not the root ($)',
    ]);
  });
});
