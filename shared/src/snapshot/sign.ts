// Signed snapshots (ARCHITECTURE.md invariant 9): the CP signs the wire bytes with an Ed25519 key
// that never leaves it; every DP checks the signature against the public keys it trusts before it
// decompresses or parses anything, for snapshots from the bus and from its disk cache alike. NATS
// authentication keeps strangers off the bus; the signature is what makes a snapshot the CP's, even
// for a client that can publish.
//
// Envelope: "PSN1" · key id (8 bytes: sha256 of the raw public key, truncated) · signature (64
// bytes, Ed25519 over the payload) · payload (the gzip-compressed snapshot).
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../runtime/lifecycle.ts';
import { SnapshotError } from './codec.ts';
import { readVariableFile } from '../env.ts';

const MAGIC = Buffer.from('PSN1');
const KEY_ID_BYTES = 8;
const SIG_BYTES = 64;
const HEADER_BYTES = MAGIC.length + KEY_ID_BYTES + SIG_BYTES;
/** Bytes of a signed envelope before its payload. */
export const ENVELOPE_HEADER_BYTES = HEADER_BYTES;

export interface SigningKey { privateKey: KeyObject; keyId: Buffer }
export interface TrustedKey { publicKey: KeyObject; keyId: Buffer }

function keyIdOf(publicKey: KeyObject): Buffer {
  const raw = publicKey.export({ format: 'der', type: 'spki' });
  return createHash('sha256').update(raw).digest().subarray(0, KEY_ID_BYTES);
}

/** Wraps any control message the CP sends (snapshots, health overrides) in a signed envelope. */
export function signEnvelope(payload: Uint8Array, key: SigningKey): Uint8Array {
  const signature = sign(null, payload, key.privateKey);
  return Buffer.concat([MAGIC, key.keyId, signature, payload]);
}
export const signSnapshot = signEnvelope;

/** An envelope's parts, once its framing and key id check out against `trusted`. Throws SnapshotError naming `what`. */
function envelopeParts(envelope: Uint8Array, trusted: readonly TrustedKey[], what: string): { key: TrustedKey; signature: Buffer; payload: Buffer } {
  const bytes = Buffer.from(envelope.buffer, envelope.byteOffset, envelope.byteLength);
  if (bytes.length < HEADER_BYTES || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new SnapshotError(`${what} is not signed; refusing it (only what the control plane signs is applied)`);
  }
  const keyId = bytes.subarray(MAGIC.length, MAGIC.length + KEY_ID_BYTES);
  const key = trusted.find((k) => k.keyId.equals(keyId));
  if (!key) throw new SnapshotError(`${what} is signed by an untrusted key (id ${keyId.toString('hex')}); not in PORTICO_SIGNING_PUBLIC_KEYS`);
  return { key, signature: bytes.subarray(MAGIC.length + KEY_ID_BYTES, HEADER_BYTES), payload: bytes.subarray(HEADER_BYTES) };
}

const invalid = (what: string, key: TrustedKey) => new SnapshotError(`${what} signature is invalid (key id ${key.keyId.toString('hex')})`);

/**
 * The payload of a signed envelope, once its signature checks out against one of `trusted`.
 * Throws SnapshotError naming `what` was refused. For the small control messages (health
 * overrides, cache commands); snapshots use openSnapshot.
 */
export function openEnvelope(envelope: Uint8Array, trusted: readonly TrustedKey[], what: string): Uint8Array {
  const { key, signature, payload } = envelopeParts(envelope, trusted, what);
  if (!verify(null, payload, key.publicKey, signature)) throw invalid(what, key);
  return payload;
}

/**
 * Snapshots opened, by the envelope object, with the key list they were checked against: a data
 * plane checks a pushed snapshot before it changes any state (data-plane/src/sync/nats.ts) and
 * again where it applies it; the second is this lookup. Kept only while the envelope is referenced.
 */
const opened = new WeakMap<Uint8Array, { trusted: readonly TrustedKey[]; payload: Uint8Array }>();

/**
 * Checks an Ed25519 signature over `payload` off the caller's event loop; resolves whether it holds.
 * The default runs on libuv's thread pool (crypto.verify with a callback); a DP passes its decoder
 * thread's check (data-plane/src/sync/decoder.ts), which reads a copy in memory it reuses.
 */
export type SignatureCheck = (payload: Uint8Array, publicKey: KeyObject, signature: Uint8Array) => Promise<boolean>;

/** crypto.verify on libuv's thread pool, which works on its own copy of the bytes. */
export const threadPoolCheck: SignatureCheck = (payload, publicKey, signature) => new Promise<boolean>((resolve, reject) => {
  verify(null, payload, publicKey, signature, (err, valid) => { if (err) reject(err); else resolve(valid); });
});

/**
 * A snapshot's payload once its signature checks out (rejects with SnapshotError otherwise). The
 * check (`check`) runs off the event loop: Ed25519 over a 340 KB snapshot is 0.5-0.9 ms of SHA-512,
 * which on the event loop held up every request in flight on a DP at each config write.
 */
export async function openSnapshot(envelope: Uint8Array, trusted: readonly TrustedKey[], check: SignatureCheck = threadPoolCheck): Promise<Uint8Array> {
  const known = opened.get(envelope);
  if (known && known.trusted === trusted) return known.payload;
  const { key, signature, payload } = envelopeParts(envelope, trusted, 'snapshot');
  if (!await check(payload, key.publicKey, signature)) throw invalid('snapshot', key);
  opened.set(envelope, { trusted, payload });
  return payload;
}

/** Forgets that `envelope` was opened: its memory is about to hold another snapshot. */
export function forgetOpened(envelope: Uint8Array): void {
  opened.delete(envelope);
}

/** PEM text, or a path to a PEM file. */
function pemOf(value: string, what: string): string {
  const v = value.trim();
  if (v.startsWith('-----BEGIN')) return v;
  return readVariableFile(v, what).toString('utf8');
}

function ed25519(key: KeyObject, what: string): KeyObject {
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`${what}: expected an Ed25519 key, got ${key.asymmetricKeyType ?? key.type}`);
  return key;
}

/** PORTICO_SIGNING_KEY: an Ed25519 private key (PEM text or file). Throws a message naming the problem. */
export function parseSigningKey(value: string): SigningKey {
  let privateKey: KeyObject;
  try { privateKey = createPrivateKey(pemOf(value, 'PORTICO_SIGNING_KEY')); } catch (err) {
    throw new Error(`PORTICO_SIGNING_KEY: ${(err as Error).message.replace(/^PORTICO_SIGNING_KEY: /, '')}`);
  }
  ed25519(privateKey, 'PORTICO_SIGNING_KEY');
  return { privateKey, keyId: keyIdOf(createPublicKey(privateKey)) };
}

/** PORTICO_SIGNING_PUBLIC_KEYS: Ed25519 public keys (PEM text or files), comma-separated, for rotation. */
export function parsePublicKeys(value: string): TrustedKey[] {
  const keys: TrustedKey[] = [];
  for (const part of value.split(',').map((p) => p.trim()).filter(Boolean)) {
    let publicKey: KeyObject;
    try { publicKey = createPublicKey(pemOf(part, 'PORTICO_SIGNING_PUBLIC_KEYS')); } catch (err) {
      throw new Error(`PORTICO_SIGNING_PUBLIC_KEYS: ${(err as Error).message.replace(/^PORTICO_SIGNING_PUBLIC_KEYS: /, '')}`);
    }
    ed25519(publicKey, 'PORTICO_SIGNING_PUBLIC_KEYS');
    keys.push({ publicKey, keyId: keyIdOf(publicKey) });
  }
  if (!keys.length) throw new Error('PORTICO_SIGNING_PUBLIC_KEYS: no key given');
  return keys;
}

export const SIGNING_KEY_FILE = 'signing-key.pem';
export const SIGNING_PUBLIC_KEY_FILE = 'signing-key.pub.pem';

/** The public half of a signing key, as a DP trusts it. */
export function trustedOf(key: SigningKey): TrustedKey {
  return { publicKey: createPublicKey(key.privateKey), keyId: key.keyId };
}

/** The all-in-one's key pair, generated in its data dir on first start (private key mode 0600). */
export function ensureSigningKeyPair(dataDir: string): { signing: SigningKey; publicKeyPath: string } {
  const priv = path.join(dataDir, SIGNING_KEY_FILE);
  const pub = path.join(dataDir, SIGNING_PUBLIC_KEY_FILE);
  if (!existsSync(priv)) {
    mkdirSync(dataDir, { recursive: true });
    const pair = generateKeyPairSync('ed25519');
    writeFileAtomic(priv, pair.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, 0o600);
    writeFileAtomic(pub, pair.publicKey.export({ format: 'pem', type: 'spki' }) as string, 0o644);
  }
  const signing = parseSigningKey(priv);
  if (!existsSync(pub)) writeFileAtomic(pub, trustedOf(signing).publicKey.export({ format: 'pem', type: 'spki' }) as string, 0o644);
  return { signing, publicKeyPath: pub };
}
