// response-transformer with in-memory ports: Kong's order on response headers, and write-time refusals.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { responseTransformerConfig } from './schema.ts';
import { responseTransformerHandler } from './handler.ts';
import { instantiate, testCtx } from '../test-ports.ts';

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
