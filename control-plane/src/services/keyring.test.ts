import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { EnvError } from '@portico/shared';
import { createKeyring, parseKeyringKey } from './keyring.ts';

describe('keyring', () => {
  const key = randomBytes(32);
  const ring = createKeyring(key);

  it('seals a key so that only the same keyring opens it, with a fresh IV each time', () => {
    const a = ring.encrypt('alice-secret');
    const b = ring.encrypt('alice-secret');
    assert.notEqual(a, b);
    assert.doesNotMatch(a, /alice/);
    assert.equal(ring.decrypt(a), 'alice-secret');
    assert.equal(createKeyring(randomBytes(32)).decrypt(a), undefined, 'another key');
  });

  it('refuses a tampered or truncated value instead of returning garbage', () => {
    const sealed = ring.encrypt('bob-key');
    const [id, data] = sealed.split(':');
    const raw = Buffer.from(data, 'base64');
    raw[raw.length - 20] ^= 1;
    assert.equal(ring.decrypt(`${id}:${raw.toString('base64')}`), undefined);
    assert.equal(ring.decrypt(`${id}:AAAA`), undefined);
    assert.equal(ring.decrypt('nonsense'), undefined);
  });

  it('reads 32-byte keys as base64 or hex, and names the variable otherwise', () => {
    assert.deepEqual(parseKeyringKey(key.toString('base64'), 'V'), key);
    assert.deepEqual(parseKeyringKey(key.toString('hex') + '\n', 'V'), key);
    for (const bad of ['', 'short', randomBytes(16).toString('base64'), randomBytes(33).toString('hex')]) {
      assert.throws(() => parseKeyringKey(bad, 'PORTICO_KEYRING_KEY'), (e: Error) => e instanceof EnvError && /PORTICO_KEYRING_KEY: expected 32 bytes/.test(e.message));
    }
  });
});
