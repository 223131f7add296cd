import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import pino from 'pino';
import { parseSigningKey, signEnvelope, trustedOf, type HealthOverride } from '@portico/shared';
import { HealthOverrides, MAX_AGE_MS } from './health-overrides.ts';

const pem = () => generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
const cp = parseSigningKey(pem());
const stranger = parseSigningKey(pem());
const NOW = 1_800_000_000_000;

function setup() {
  const calls: [string, string, boolean][] = [];
  const overrides = new HealthOverrides([trustedOf(cp)], (u, t, h) => { calls.push([u, t, h]); return u === 'up'; }, pino({ level: 'silent' }), () => NOW);
  return { calls, overrides };
}
const message = (fields: Partial<HealthOverride> = {}, key = cp) =>
  signEnvelope(Buffer.from(JSON.stringify({ id: randomUUID(), issued_at: NOW, upstream: 'up', target: '10.0.0.1:80', healthy: false, ...fields })), key);

describe('health overrides from the CP', () => {
  it('applies a fresh, signed override once', () => {
    const { calls, overrides } = setup();
    const m = message();
    assert.equal(overrides.receive(m), 'applied');
    assert.deepEqual(calls, [['up', '10.0.0.1:80', false]]);
    assert.equal(overrides.receive(m), 'refused', 'a replay of the same message');
    assert.equal(overrides.receive(message({ upstream: 'other' })), 'unknown target');
  });

  it('refuses an override older than the last one applied to that target (reordered or replayed)', () => {
    const { calls, overrides } = setup();
    const older = message({ issued_at: NOW - 1_000, healthy: false });
    assert.equal(overrides.receive(message({ issued_at: NOW, healthy: true })), 'applied');
    assert.equal(overrides.receive(older), 'refused');
    assert.equal(overrides.receive(message({ issued_at: NOW - 500, target: '10.0.0.2:80' })), 'applied', 'another target is independent');
    assert.deepEqual(calls.map((c) => c[2]), [true, false]);
  });

  it('refuses unsigned, foreign-signed, stale, future and malformed messages without touching health', () => {
    const { calls, overrides } = setup();
    const body = Buffer.from(JSON.stringify({ id: randomUUID(), issued_at: NOW, upstream: 'up', target: 't', healthy: false }));
    assert.equal(overrides.receive(body), 'refused');
    assert.equal(overrides.receive(message({}, stranger)), 'refused');
    assert.equal(overrides.receive(message({ issued_at: NOW - MAX_AGE_MS - 1 })), 'refused');
    assert.equal(overrides.receive(message({ issued_at: NOW + MAX_AGE_MS + 1 })), 'refused');
    assert.equal(overrides.receive(signEnvelope(Buffer.from('{"__proto__":{"x":1}}'), cp)), 'refused');
    assert.equal(overrides.receive(signEnvelope(Buffer.from('not json'), cp)), 'refused');
    assert.deepEqual(calls, []);
  });
});
