// Credentials as stored and distributed. Secrets that only need checking are hashed before they
// are stored (ARCHITECTURE.md invariant 8): API keys with SHA-256 (they are long and random, and
// the DP looks them up by hash), basic-auth passwords with scrypt (salted and slow). The
// plaintext key is returned once, in the create response.
import { createPublicKey, hash } from 'node:crypto';
import { z } from 'zod';
import { foreign, int, multiline, oneOf, opt, referenceable, str, tags, text, timestamp, uuid } from './fields.ts';

/** One-shot (no Hash object): the DP hashes every key-auth request's key. */
export const hashApiKey = (key: string): string => hash('sha256', key, 'hex');

/** Fields every credential has. */
const credentialBase = {
  id: uuid().describe('Primary key, generated when absent'),
  created_at: timestamp().describe('Creation time, seconds since the epoch'),
};

export const keyAuthCredentialSchema = z.strictObject({
  ...credentialBase,
  consumer: foreign().describe('The consumer this key identifies'),
  key_hash: z.string().regex(/^[0-9a-f]{64}$/).describe('SHA-256 of the key; the key itself is never stored'),
  key_prefix: text(8).describe('First characters of the key, to tell keys apart'),
  expires_at: opt(z.int()).describe('Expiry, seconds since the epoch (from `ttl`)'),
  tags: tags().describe('Free-form tags for filtering'),
});
export type KeyAuthCredential = z.infer<typeof keyAuthCredentialSchema>;

/** What a client writes for a key: `key` (generated when absent) and `ttl` seconds. */
export const keyAuthInputSchema = z.object({
  key: str().optional(),
  ttl: opt(int(0, 100 * 365 * 24 * 3600)).optional(),
});

export const JWT_ALGORITHMS = ['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512', 'EdDSA'] as const;

/** The key type (and EC curve) each asymmetric algorithm verifies with (RFC 7518 §3, RFC 8037). */
const KEY_FOR_ALGORITHM: Record<string, { types: string[]; curve?: string; label: string }> = {
  RS256: { types: ['rsa'], label: 'an RSA' }, RS384: { types: ['rsa'], label: 'an RSA' }, RS512: { types: ['rsa'], label: 'an RSA' },
  PS256: { types: ['rsa', 'rsa-pss'], label: 'an RSA' }, PS384: { types: ['rsa', 'rsa-pss'], label: 'an RSA' }, PS512: { types: ['rsa', 'rsa-pss'], label: 'an RSA' },
  ES256: { types: ['ec'], curve: 'prime256v1', label: 'a P-256' },
  ES384: { types: ['ec'], curve: 'secp384r1', label: 'a P-384' },
  ES512: { types: ['ec'], curve: 'secp521r1', label: 'a P-521' },
  EdDSA: { types: ['ed25519', 'ed448'], label: 'an Ed25519 or Ed448' },
};

/**
 * Why `pem` cannot verify tokens signed with `algorithm`, or null. Kong answers `invalid key` for a
 * PEM OpenSSL cannot read; a private key, or a key of the wrong type or curve, would only fail
 * later on every request, so it is refused here with the same prefix.
 */
export function publicKeyError(algorithm: string, pem: string): string | null {
  const want = KEY_FOR_ALGORITHM[algorithm];
  if (!want) return null;
  if (!/-----BEGIN (?:RSA )?PUBLIC KEY-----/.test(pem)) return 'invalid key: expected a PEM public key';
  let key;
  try { key = createPublicKey({ key: pem, format: 'pem' }); } catch { return 'invalid key'; }
  const type = key.asymmetricKeyType ?? '';
  if (!want.types.includes(type) || (want.curve && key.asymmetricKeyDetails?.namedCurve !== want.curve)) {
    return `invalid key: ${algorithm} needs ${want.label} public key`;
  }
  return null;
}

export const jwtSecretSchema = z.strictObject({
  ...credentialBase,
  consumer: foreign().describe('The consumer tokens signed with this secret identify'),
  key: str().describe("Matched against the token's `iss` (or the configured claim)"),
  secret: opt(referenceable(str())).describe('HMAC secret (HS*), or a vault reference such as {vault://env/JWT_SECRET}'),
  rsa_public_key: opt(multiline(16_384)).describe('PEM public key (RS*, PS*, ES*, EdDSA)'),
  algorithm: oneOf(JWT_ALGORITHMS).default('HS256').describe('The only algorithm accepted for this credential'),
  tags: tags().describe('Free-form tags for filtering'),
}).superRefine((j, ctx) => {
  if (!j.algorithm.startsWith('HS') && !j.rsa_public_key) {
    ctx.addIssue({ code: 'custom', path: ['rsa_public_key'], message: `required for algorithm '${j.algorithm}'` });
  } else if (j.rsa_public_key && !j.algorithm.startsWith('HS')) {
    const err = publicKeyError(j.algorithm, j.rsa_public_key);
    if (err) ctx.addIssue({ code: 'custom', path: ['rsa_public_key'], message: err });
  }
});
export type JwtSecret = z.infer<typeof jwtSecretSchema>;

export const basicAuthCredentialSchema = z.strictObject({
  ...credentialBase,
  consumer: foreign().describe('The consumer this credential identifies'),
  username: str().describe('Unique user name'),
  password: str().describe('scrypt hash of the password (write the plaintext; it is hashed before it is stored)'),
  tags: tags().describe('Free-form tags for filtering'),
});
export type BasicAuthCredential = z.infer<typeof basicAuthCredentialSchema>;

export const aclSchema = z.strictObject({
  ...credentialBase,
  consumer: foreign().describe('The consumer in the group'),
  group: str().describe('Group name'),
  tags: tags().describe('Free-form tags for filtering'),
});
export type Acl = z.infer<typeof aclSchema>;
