// basic-auth with in-memory ports and real scrypt: no username oracle, a capped thread-pool share,
// and a negative cache, so a flood of guesses cannot starve the pool other requests need.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { basicAuthConfig } from './schema.ts';
import { basicAuthHandler } from './handler.ts';
import { DUMMY_PASSWORD_HASH, hashPassword, PasswordGate } from '../../entities/password.ts';
import { testCtx, testEnv } from '../test-ports.ts';
import type { Consumer } from '../../entities/consumer.ts';
import type { BasicAuthCredential } from '../../entities/credentials.ts';
import type { Exit } from '../types.ts';

const consumer = { id: '00000000-0000-4000-8000-0000000000c1', username: 'bob', custom_id: null, created_at: 0, updated_at: 0, tags: null } as Consumer;
const cred = { id: '00000000-0000-4000-8000-0000000000b1', username: 'bob', password: hashPassword('right'), consumer: { id: consumer.id }, created_at: 0, tags: null } as unknown as BasicAuthCredential;
const basic = (user: string, pass: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` });

/** A gate that records which hashes it was asked to check. */
class RecordingGate extends PasswordGate {
  checked: string[] = [];
  refused = 0;
  maxSeen = 0;
  override verify(plain: string, encoded: string) {
    const p = super.verify(plain, encoded);
    if (p) this.checked.push(encoded); else this.refused++;
    this.maxSeen = Math.max(this.maxSeen, this.load.inFlight);
    return p;
  }
}

function setup(gate = new RecordingGate(2, 4)) {
  const e = testEnv({ consumers: [consumer], basicAuth: [cred] });
  const c = basicAuthConfig.parse({});
  const state = basicAuthHandler.init!(c, e, 'ba-1');
  state.gate = gate;
  const call = async (user: string, pass: string) => {
    const ctx = testCtx({ headers: basic(user, pass) });
    return { exit: await basicAuthHandler.access!(ctx, c, state, e) as Exit | undefined, ctx };
  };
  return { e, state, gate, call };
}

describe('basic-auth handler', () => {
  it('accepts the right password once checked, then from the cache', async () => {
    const { call, gate } = setup();
    assert.equal((await call('bob', 'right')).exit, undefined);
    const again = await call('bob', 'right');
    assert.equal(again.exit, undefined);
    assert.equal(again.ctx.consumer?.id, consumer.id);
    assert.equal(gate.checked.length, 1);
  });

  it('checks an unknown username with scrypt against a dummy hash, as a wrong password is checked', async () => {
    const { call, gate } = setup();
    assert.equal((await call('nobody', 'x')).exit?.status, 401);
    assert.equal((await call('bob', 'wrong')).exit?.status, 401);
    assert.deepEqual(gate.checked, [DUMMY_PASSWORD_HASH, cred.password]);
  });

  it('answers a repeated failed attempt from the negative cache, for known and unknown users alike', async () => {
    const { call, gate } = setup();
    for (let i = 0; i < 3; i++) {
      assert.equal((await call('bob', 'wrong')).exit?.status, 401);
      assert.equal((await call('nobody', 'x')).exit?.status, 401);
    }
    assert.equal(gate.checked.length, 2);
  });

  it('runs at most maxInFlight checks at once, queues a few and answers 503 beyond, then recovers', async () => {
    const { call, gate, e } = setup(new RecordingGate(2, 3));
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => call('bob', `guess-${i}`)));
    const statuses = results.map((r) => r.exit?.status);
    assert.equal(statuses.filter((s) => s === 401).length, 5, 'two running and three queued were checked');
    assert.equal(statuses.filter((s) => s === 503).length, 15);
    assert.equal(results.find((r) => r.exit?.status === 503)!.exit!.headers!['retry-after'], '1');
    assert.equal(gate.maxSeen, 2);
    assert.deepEqual(gate.load, { inFlight: 0, queued: 0 });
    assert.ok(e.events.includes('basic_auth_busy'));
    assert.equal((await call('bob', 'right')).exit, undefined, 'a valid login passes once the flood is over');
  });
});
