// request-validator with in-memory ports: drafts, coercion of parameters, the Content-Type rule,
// verbose answers, and schemas refused at write time with the pointer of their problem.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { requestValidatorConfig } from './schema.ts';
import { BODY_INVALID, CONTENT_TYPE_INVALID, PARAM_INVALID, requestValidatorHandler } from './handler.ts';
import { MAX_SCHEMA_DEPTH } from './compile.ts';
import { instantiate, testCtx, testEnv } from '../test-ports.ts';
import type { Exit, ProxyContext } from '../types.ts';

const JSON_CT = { 'content-type': 'application/json' };

function validator(config: Record<string, unknown>) {
  const v = instantiate(requestValidatorHandler, requestValidatorConfig, config);
  return {
    ...v,
    body: (value: unknown, ctx: ProxyContext = testCtx({ headers: JSON_CT })): Exit | false =>
      requestValidatorHandler.body!.request!(ctx, { kind: 'json', value }, v.config, v.state!, testEnv()) as Exit | false,
  };
}

/** The `fields` message zod gives for a config, at `path`. */
function refusal(config: Record<string, unknown>, path: string): string {
  const r = requestValidatorConfig.safeParse(config);
  assert.equal(r.success, false, 'expected the config to be refused');
  const issue = r.error!.issues.find((i) => i.path.join('.') === path);
  assert.ok(issue, `no issue at ${path}: ${JSON.stringify(r.error!.issues)}`);
  return issue.message;
}

describe('request-validator', () => {
  const person = JSON.stringify({ type: 'object', required: ['name'], properties: { name: { type: 'string' }, age: { type: 'integer', minimum: 0 } } });

  it('passes a conforming body and refuses another with Kong\'s message', () => {
    const v = validator({ body_schema: person });
    assert.equal(v.body({ name: 'a', age: 3 }), false);
    assert.deepEqual(v.body({ age: -1 }), { status: 400, message: BODY_INVALID });
  });

  it('verbose answers list the errors with their pointers; status_code applies', () => {
    const v = validator({ body_schema: person, verbose_response: true, status_code: 422 });
    const r = v.body({ name: 1, age: -1 }) as Extract<Exit, { json: unknown }>;
    assert.equal(r.status, 422);
    const json = r.json as { message: string; errors: { pointer: string; keyword: string }[] };
    assert.equal(json.message, BODY_INVALID);
    assert.deepEqual(json.errors.map((e) => [e.pointer, e.keyword]).sort(), [['/age', 'minimum'], ['/name', 'type']]);
  });

  it('draft 4 reads exclusiveMaximum as a boolean, 2020-12 as a number', () => {
    const d4 = validator({ body_schema: JSON.stringify({ properties: { n: { maximum: 5, exclusiveMaximum: true } } }) });
    assert.notEqual(d4.body({ n: 5 }), false);
    assert.equal(d4.body({ n: 4 }), false);
    const d2020 = validator({ version: 'draft2020-12', body_schema: JSON.stringify({ properties: { n: { exclusiveMaximum: 5 } } }) });
    assert.notEqual(d2020.body({ n: 5 }), false);
    // A boolean exclusiveMaximum is a draft 4 schema: refused under 2020-12.
    assert.match(refusal({ version: 'draft2020-12', body_schema: JSON.stringify({ properties: { n: { maximum: 5, exclusiveMaximum: true } } }) }, 'body_schema'), /'\/properties\/n\/exclusiveMaximum'/);
  });

  it('parameters are coerced to their types, in every location', () => {
    const v = validator({
      parameter_schema: [
        { name: 'limit', in: 'query', required: true, schema: '{"type":"integer","maximum":100}' },
        { name: 'ids', in: 'query', required: false, style: 'form', explode: false, schema: '{"type":"array","items":{"type":"integer"}}' },
        { name: 'X-Version', in: 'header', required: true, schema: '{"enum":["1","2"]}' },
        { name: 'id', in: 'path', required: true, schema: '{"type":"string","pattern":"^[0-9a-f]{4}$"}' },
      ],
    });
    const ctx = (url: string, headers: Record<string, string> = { 'x-version': '2' }, id = 'beef') =>
      testCtx({ url, headers, uriCaptures: { unnamed: [id], named: Object.assign(Object.create(null), { id }) } });
    assert.equal(v.access(ctx('/p?limit=10&ids=1,2,3')), undefined);
    assert.deepEqual(v.access(ctx('/p?limit=101')), { status: 400, message: PARAM_INVALID });
    assert.deepEqual(v.access(ctx('/p?limit=10&ids=1,x')), { status: 400, message: PARAM_INVALID });
    assert.deepEqual(v.access(ctx('/p')), { status: 400, message: PARAM_INVALID });
    assert.deepEqual(v.access(ctx('/p?limit=1', {})), { status: 400, message: PARAM_INVALID });
    assert.deepEqual(v.access(ctx('/p?limit=1', { 'x-version': '3' })), { status: 400, message: PARAM_INVALID });
    assert.deepEqual(v.access(ctx('/p?limit=1', undefined, 'BEEF')), { status: 400, message: PARAM_INVALID });
  });

  it('a verbose parameter refusal names the parameter', () => {
    const v = validator({ verbose_response: true, parameter_schema: [{ name: 'limit', in: 'query', required: true, schema: '{"type":"integer"}' }] });
    const r = v.access(testCtx({ url: '/p?limit=abc' })) as Extract<Exit, { json: unknown }>;
    assert.deepEqual((r.json as { errors: unknown[] }).errors, [{ in: 'query', name: 'limit', pointer: '', keyword: 'type', message: 'must be integer' }]);
  });

  it('the Content-Type must be an allowed one, parameters included unless told otherwise', () => {
    const strict = validator({ body_schema: person, allowed_content_types: ['application/json', 'application/merge-patch+json; charset=utf-8'] });
    const ct = (v: string | undefined) => testCtx({ headers: v === undefined ? {} : { 'content-type': v } });
    assert.equal(strict.access(ct('application/json')), undefined);
    assert.equal(strict.access(ct('Application/JSON')), undefined);
    assert.equal(strict.access(ct('application/merge-patch+json; charset=UTF-8')), undefined);
    for (const bad of [undefined, 'text/plain', 'application/json; charset=utf-8', 'application/merge-patch+json', 'application/xml', 'nonsense']) {
      assert.deepEqual(strict.access(ct(bad)), { status: 400, message: CONTENT_TYPE_INVALID }, String(bad));
    }
    const lax = validator({ body_schema: person, content_type_parameter_validation: false });
    assert.equal(lax.access(ct('application/json; charset=utf-8')), undefined);
  });

  it('refuses bad and hostile schemas at write time, with the pointer of the problem', () => {
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ body_schema: '{"type":"strin"}' }, 'body_schema', /'\/type'/],
      [{ body_schema: '{"properties":{"a":{"minLenght":1}}}' }, 'body_schema', /'\/properties\/a\/minLenght'.*unknown keyword/],
      [{ body_schema: '{"properties":{"a":{"format":"colour"}}}' }, 'body_schema', /'\/properties\/a\/format'.*unknown format/],
      [{ body_schema: '{"properties":{"a":{"$ref":"#/definitions/nope"}}}' }, 'body_schema', /'\/properties\/a\/\$ref'/],
      [{ body_schema: '{"properties":{"a":{"$ref":"https://evil.example/s.json"}}}' }, 'body_schema', /'\/properties\/a\/\$ref'.*remote schemas are never fetched/],
      [{ body_schema: '{"properties":{"a":{"maximum":{"$data":"1/b"}}}}' }, 'body_schema', /'\/properties\/a\/maximum\/\$data'.*\$data/],
      [{ body_schema: '{"properties":{"a":{"pattern":"(a)\\\\1"}}}' }, 'body_schema', /'\/properties\/a\/pattern'.*RE2/],
      [{ body_schema: '{"type":' }, 'body_schema', /not valid JSON/],
      [{ body_schema: '"string"' }, 'body_schema', /a schema is a JSON object/],
      [{ body_schema: `${'{"items":'.repeat(MAX_SCHEMA_DEPTH + 1)}{}${'}'.repeat(MAX_SCHEMA_DEPTH + 1)}` }, 'body_schema', /nested deeper than 64/],
      [{ body_schema: JSON.stringify({ description: 'x'.repeat(300_000) }) }, 'body_schema', /length must be at most 262144/],
      [{ parameter_schema: [{ name: 'a', in: 'query', required: true, schema: '{"type":"integr"}' }] }, 'parameter_schema.0.schema', /'\/type'/],
      [{ parameter_schema: [{ name: 'a', in: 'header', required: true, style: 'form' }] }, 'parameter_schema.0.style', /simple \(for a header parameter\)/],
      [{ body_schema: person, allowed_content_types: ['text/plain'] }, 'allowed_content_types.0', /JSON media type/],
      [{ body_schema: person, version: 'kong' }, 'version', /expected one of: draft4/],
      [{}, '', /at least one of these fields must be non-empty/],
    ];
    for (const [config, path, message] of cases) assert.match(refusal(config, path), message, JSON.stringify(config).slice(0, 80));
  });

  it('recursive schemas compile; a body nested past the stack is refused, not thrown', () => {
    const v = validator({ version: 'draft7', verbose_response: true, body_schema: '{"type":"array","items":{"$ref":"#"}}' });
    assert.equal(v.body([[[]], []]), false);
    assert.notEqual(v.body([[1]]), false);
    const deep = JSON.parse(`${'['.repeat(200_000)}${']'.repeat(200_000)}`);
    const r = v.body(deep) as Extract<Exit, { json: unknown }>;
    assert.equal(r.status, 400);
    assert.deepEqual((r.json as { errors: unknown[] }).errors, [{ in: 'body', pointer: '', keyword: 'depth', message: 'nested too deeply to validate' }]);
  });

  it('schemas with the same $id compile side by side', () => {
    const a = validator({ body_schema: '{"id":"http://x/s","properties":{"a":{"id":"http://x/a","type":"string"}}}' });
    const b = validator({ body_schema: '{"id":"http://x/s","properties":{"a":{"id":"http://x/a","type":"number"}}}' });
    assert.equal(a.body({ a: 'x' }), false);
    assert.equal(b.body({ a: 1 }), false);
  });

  it('compiles each distinct schema once: the same text gives the same validator', () => {
    const a = validator({ body_schema: person });
    const b = validator({ body_schema: person });
    assert.equal(a.state!.body, b.state!.body);
    assert.notEqual(validator({ body_schema: person, verbose_response: true }).state!.body, a.state!.body);
  });

  it('declares a strict JSON body need only when it has a body schema', () => {
    assert.deepEqual(validator({ body_schema: person, max_body_bytes: 2048 }).state!.needs, { request: 'json', response: false, maxBytes: 2048, strict: true });
    assert.equal(validator({ parameter_schema: [{ name: 'a', in: 'query', required: true }] }).state!.needs.request, null);
  });
});
