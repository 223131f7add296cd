// The jwt handler with in-memory ports: hostile tokens get a 401, never a crash or a pass, and the
// verified-token cache stays within its bounds.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { jwtConfig } from './schema.ts';
import { jwtHandler, MAX_VERIFIED_BYTES } from './handler.ts';
import { testCtx, testEnv } from '../test-ports.ts';
import type { Consumer } from '../../entities/consumer.ts';
import type { JwtSecret } from '../../entities/credentials.ts';
import type { Exit } from '../types.ts';

const consumer = { id: '00000000-0000-4000-8000-0000000000c1', username: 'alice', custom_id: null, created_at: 0, updated_at: 0, tags: null } as Consumer;
const secret = { id: '00000000-0000-4000-8000-0000000000d1', key: 'k1', secret: 's3cret', algorithm: 'HS256', rsa_public_key: null, consumer: { id: consumer.id }, created_at: 0, tags: null } as unknown as JwtSecret;

const b64 = (s: string) => Buffer.from(s).toString('base64url');
/** Signs raw JSON text, so tests can send what JSON.stringify never writes (`1e309`). */
function sign(headerJson: string, payloadJson: string): string {
  const input = `${b64(headerJson)}.${b64(payloadJson)}`;
  return `${input}.${createHmac('sha256', 's3cret').update(input).digest('base64url')}`;
}
const token = (payload: Record<string, unknown> = {}) => sign('{"alg":"HS256","typ":"JWT"}', JSON.stringify({ iss: 'k1', ...payload }));

async function run(config: Record<string, unknown>, headers: Record<string, string>, e = testEnv({ consumers: [consumer], jwtSecrets: [secret] })) {
  const c = jwtConfig.parse(config);
  const state = jwtHandler.init!(c, e, 'jwt-1');
  const ctx = testCtx({ headers, upstreamHeaders: { ...headers } });
  const exit = await jwtHandler.access!(ctx, c, state, e) as Exit | undefined;
  return { exit, ctx, state };
}
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

describe('jwt handler', () => {
  it('accepts a valid token and identifies the consumer', async () => {
    const r = await run({}, bearer(token()));
    assert.equal(r.exit, undefined);
    assert.equal(r.ctx.consumer?.id, consumer.id);
  });

  it('never forwards a client\'s own value for a claims_to_headers header: anonymous, preflight or verified', async () => {
    const anon = await run({ anonymous: consumer.id, claims_to_headers: { sub: 'X-User-Id' } }, { 'x-user-id': 'admin' });
    assert.equal(anon.exit, undefined);
    assert.equal(anon.ctx.upstreamHeaders['x-user-id'], undefined);
    const c = jwtConfig.parse({ run_on_preflight: false, claims_to_headers: { sub: 'X-User-Id' } });
    const e = testEnv({ consumers: [consumer], jwtSecrets: [secret] });
    const ctx = testCtx({ method: 'OPTIONS', headers: { 'x-user-id': 'admin' }, upstreamHeaders: { 'x-user-id': 'admin' } });
    await jwtHandler.access!(ctx, c, jwtHandler.init!(c, e, 'jwt-2'), e);
    assert.equal(ctx.upstreamHeaders['x-user-id'], undefined);
    const ok = await run({ claims_to_headers: { sub: 'X-User-Id' } }, { ...bearer(token({ sub: 'u-7' })), 'x-user-id': 'admin' });
    assert.equal(ok.ctx.upstreamHeaders['x-user-id'], 'u-7');
  });

  it('answers 401 to a token whose crit header names an extension (RFC 7515 §4.1.11)', async () => {
    const r = await run({}, bearer(sign('{"alg":"HS256","crit":["exp"]}', '{"iss":"k1"}')));
    assert.equal(r.exit?.status, 401);
    assert.deepEqual((r.exit as { json: unknown }).json, { message: 'Bad token; unsupported critical header' });
    assert.equal(r.ctx.consumer, null);
  });

  it('treats a non-finite exp or nbf (1e309) as invalid, not as never expiring', async () => {
    for (const claim of ['exp', 'nbf']) {
      const r = await run({ claims_to_verify: [claim] }, bearer(sign('{"alg":"HS256"}', `{"iss":"k1","${claim}":1e309}`)));
      assert.equal(r.exit?.status, 401, claim);
      assert.deepEqual((r.exit as { json: unknown }).json, { [claim]: 'must be a number' });
    }
  });

  it('answers 401, not a crash, to a cookie token with a malformed %-escape', async () => {
    const r = await run({ cookie_names: ['tok'] }, { cookie: 'tok=%E0%A4%A' });
    assert.equal(r.exit?.status, 401);
  });

  it('with hide_credentials removes a cookie token and keeps the other cookies', async () => {
    const r = await run({ cookie_names: ['tok'], hide_credentials: true }, { cookie: `a=1; tok=${token()}; b=2` });
    assert.equal(r.exit, undefined);
    assert.equal(r.ctx.upstreamHeaders.cookie, 'a=1; b=2');
    const only = await run({ cookie_names: ['tok'], hide_credentials: true }, { cookie: `tok=${token()}` });
    assert.equal(only.ctx.upstreamHeaders.cookie, undefined);
  });

  it('keeps the verified-token cache within its byte bound for 2,000 distinct 15 KB tokens (probe 3.5)', async () => {
    const e = testEnv({ consumers: [consumer], jwtSecrets: [secret] });
    const c = jwtConfig.parse({});
    const state = jwtHandler.init!(c, e, 'jwt-1');
    for (let i = 0; i < 2_000; i++) {
      const ctx = testCtx({ headers: bearer(token({ n: i, pad: 'x'.repeat(11_000) })) });
      assert.equal(await jwtHandler.access!(ctx, c, state, e), undefined);
    }
    assert.ok(state.verified.calculatedSize <= MAX_VERIFIED_BYTES, `${state.verified.calculatedSize} bytes cached`);
    assert.ok(state.verified.size < 2_000 && state.verified.size > 100, `${state.verified.size} tokens cached`);
  });
});
