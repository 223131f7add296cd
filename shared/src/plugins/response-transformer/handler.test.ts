// response-transformer with in-memory ports: Kong's order on response headers, and write-time refusals.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { responseTransformerAdvancedConfig, responseTransformerConfig, type ResponseTransformerConfig } from './schema.ts';
import { responseTransformerAdvancedHandler, responseTransformerHandler } from './handler.ts';
import { instantiate, testCtx, testEnv } from '../test-ports.ts';
import type { JsonBody } from '../types.ts';

describe('response-transformer handler', () => {
  it("fills Kong's defaults", () => {
    assert.deepEqual(responseTransformerConfig.parse({}), {
      remove: { headers: [], json: [] }, rename: { headers: [], json: [] }, replace: { headers: [], json: [], json_types: [] },
      add: { headers: [], json: [], json_types: [] }, append: { headers: [], json: [], json_types: [] },
    });
  });

  it('applies remove → rename → replace → add → append to the response headers', () => {
    const p = instantiate(responseTransformerHandler, responseTransformerConfig, {
      remove: { headers: ['X-Powered-By', 'server'] },
      rename: { headers: ['x-upstream:X-Origin'] },
      replace: { headers: ['x-origin:hidden', 'x-absent:never'] },
      add: { headers: ['x-frame-options:DENY', 'cache-control:no-store'] },
      append: { headers: ['vary:Accept', 'x-new:1'] },
    });
    const ctx = testCtx({ responseHeaders: { server: 'queued-by-a-plugin' } });
    const out = p.response(ctx, {
      'x-powered-by': 'PHP', server: 'nginx', 'x-upstream': 'u1', 'cache-control': 'max-age=60', vary: 'Origin',
    });
    assert.deepEqual(out, {
      'x-origin': 'hidden', 'cache-control': 'max-age=60', vary: ['Origin', 'Accept'], 'x-frame-options': 'DENY', 'x-new': '1',
    });
    assert.deepEqual(ctx.responseHeaders, {}, 'a header another plugin queued is removed too');
  });

  it('refuses bad names, malformed pairs, hostile values and bad json entries', () => {
    const r = responseTransformerConfig.safeParse({
      remove: { headers: ['bad name'], json: ['__proto__'] },
      add: { headers: ['x-a:1\r\nSet-Cookie: s=1', 'novalue'] },
      rename: { headers: ['x-a:'] },
    });
    assert.deepEqual(r.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`), [
      "remove.headers.0: 'bad name' is not a valid header",
      "remove.json.0: '__proto__' is not allowed as a key",
      "rename.headers.0: '' is not a valid header",
      'add.headers.0: must not contain control characters (CR, LF, NUL…)',
      'add.headers.1: invalid value: novalue',
    ]);
  });
});

describe('response-transformer json lists (the body phase)', () => {
  const run = (handler: typeof responseTransformerHandler, schema: { parse(v: unknown): unknown }, config: Record<string, unknown>, value: unknown, status = 200) => {
    const p = instantiate(handler, schema as typeof responseTransformerConfig, config);
    const body: JsonBody = { kind: 'json', value };
    const changed = handler.body!.response!(testCtx(), status, {}, body, p.config as ResponseTransformerConfig, p.state, testEnv());
    return { changed, body };
  };

  it("applies Kong's order to top-level keys, json_types by position, a dotted key as one key", () => {
    const r = run(responseTransformerHandler, responseTransformerConfig, {
      remove: { json: ['a.b'] }, rename: { json: ['x:y'] }, replace: { json: ['n:7', 'absent:1'], json_types: ['number'] },
      add: { json: ['ok:true', 'n:0'], json_types: ['boolean'] }, append: { json: ['list:b'] },
    }, { 'a.b': 1, a: { b: 2 }, x: 'moved', n: '1', list: 'a' });
    assert.deepEqual(r, { changed: true, body: { kind: 'json', value: { a: { b: 2 }, n: 7, list: ['a', 'b'], y: 'moved', ok: true } } });
  });

  it('-advanced: if_status per section, and replace.body', () => {
    const cfg = { remove: { json: ['secret'], if_status: ['200-299'] }, replace: { body: '{"error":"hidden"}', if_status: ['500'] } };
    assert.deepEqual(run(responseTransformerAdvancedHandler, responseTransformerAdvancedConfig, cfg, { secret: 1, a: 2 }).body.value, { a: 2 });
    assert.deepEqual(run(responseTransformerAdvancedHandler, responseTransformerAdvancedConfig, cfg, { secret: 1 }, 404), { changed: false, body: { kind: 'json', value: { secret: 1 } } });
    assert.equal(run(responseTransformerAdvancedHandler, responseTransformerAdvancedConfig, cfg, { secret: 1 }, 500).body.raw, '{"error":"hidden"}');
  });
});
