import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureSigningKeyPair, openSnapshot, parsePublicKeys, parseSigningKey, signSnapshot, trustedOf } from './sign.ts';
import { encodeSnapshot, SnapshotError } from './codec.ts';
import { emptyConfig } from './schema.ts';
import { configHash } from './hash.ts';

function pair() {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    priv: privateKey.export({ format: 'pem', type: 'pkcs8' }) as string,
    pub: publicKey.export({ format: 'pem', type: 'spki' }) as string,
  };
}
const payload = encodeSnapshot({ version: 1, hash: configHash(emptyConfig()), built_at: 0, config: emptyConfig() });

describe('signed snapshots', () => {
  it('opens what the matching key signed, with any key of a rotation list', async () => {
    const a = pair(); const b = pair();
    const signed = signSnapshot(payload, parseSigningKey(b.priv));
    assert.deepEqual(Buffer.from(await openSnapshot(signed, parsePublicKeys(`${a.pub},${b.pub}`))), Buffer.from(payload));
  });

  it('refuses unsigned bytes, another key, and a tampered payload or signature', async () => {
    const a = pair(); const b = pair();
    const trusted = parsePublicKeys(a.pub);
    await assert.rejects(() => openSnapshot(payload, trusted), (e) => e instanceof SnapshotError && /not signed/.test(e.message));
    await assert.rejects(() => openSnapshot(signSnapshot(payload, parseSigningKey(b.priv)), trusted), /untrusted key/);
    const signed = Buffer.from(signSnapshot(payload, parseSigningKey(a.priv)));
    const tampered = Buffer.from(signed); tampered[tampered.length - 1] ^= 1;
    await assert.rejects(() => openSnapshot(tampered, trusted), /signature is invalid/);
    const badSig = Buffer.from(signed); badSig[20] ^= 1;
    await assert.rejects(() => openSnapshot(badSig, trusted), /signature is invalid/);
    await assert.rejects(() => openSnapshot(signed.subarray(0, 30), trusted), /not signed/);
  });

  it('remembers a snapshot it opened only for the key list it was checked against', async () => {
    const a = pair(); const b = pair();
    const trusted = parsePublicKeys(a.pub);
    const signed = Buffer.from(signSnapshot(payload, parseSigningKey(a.priv)));
    assert.deepEqual(Buffer.from(await openSnapshot(signed, trusted)), Buffer.from(payload));
    await assert.rejects(() => openSnapshot(signed, parsePublicKeys(b.pub)), /untrusted key/);
  });

  it('reads keys from PEM text or files and names the variable when they are wrong', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'portico-sign-'));
    const a = pair();
    writeFileSync(path.join(dir, 'k.pem'), a.priv);
    writeFileSync(path.join(dir, 'k.pub'), a.pub);
    assert.equal(parseSigningKey(path.join(dir, 'k.pem')).keyId.length, 8);
    assert.equal(parsePublicKeys(path.join(dir, 'k.pub')).length, 1);
    assert.throws(() => parseSigningKey('/nonexistent/key.pem'), /PORTICO_SIGNING_KEY: .*ENOENT/);
    assert.throws(() => parseSigningKey(a.pub), /PORTICO_SIGNING_KEY/);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'pem', type: 'spki' }) as string;
    assert.throws(() => parsePublicKeys(rsa), /PORTICO_SIGNING_PUBLIC_KEYS: expected an Ed25519 key, got rsa/);
    assert.throws(() => parsePublicKeys(' , '), /no key given/);
  });

  it('generates the all-in-one key pair once, the private half readable by its owner only', () => {
    const dir = path.join(mkdtempSync(path.join(os.tmpdir(), 'portico-sign-')), 'data');
    const first = ensureSigningKeyPair(dir);
    const again = ensureSigningKeyPair(dir);
    assert.deepEqual(again.signing.keyId, first.signing.keyId);
    assert.equal(statSync(path.join(dir, 'signing-key.pem')).mode & 0o777, 0o600);
    assert.deepEqual(parsePublicKeys(first.publicKeyPath)[0].keyId, trustedOf(first.signing).keyId);
  });
});
