// Credentials as stored and distributed. Secrets that only need checking are hashed before they
// are stored (ARCHITECTURE.md invariant 8): API keys with SHA-256 (they are long and random, and
// the DP looks them up by hash), basic-auth passwords with scrypt (salted and slow). The
// plaintext key is returned once, in the create response.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { foreign, int, oneOf, opt, str, tags, timestamp, uuid } from './fields.ts';

export const hashApiKey = (key: string): string => createHash('sha256').update(key).digest('hex');

/** Fields every credential has. */
const credentialBase = {
  id: uuid().describe('Primary key, generated when absent'),
  created_at: timestamp().describe('Creation time, seconds since the epoch'),
};

export const keyAuthCredentialSchema = z.strictObject({
  ...credentialBase,
  consumer: foreign().describe('The consumer this key identifies'),
  key_hash: z.string().regex(/^[0-9a-f]{64}$/).describe('SHA-256 of the key; the key itself is never stored'),
  key_prefix: z.string().max(8).describe('First characters of the key, to tell keys apart'),
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

export const jwtSecretSchema = z.strictObject({
  ...credentialBase,
  consumer: foreign().describe('The consumer tokens signed with this secret identify'),
  key: str().describe("Matched against the token's `iss` (or the configured claim)"),
  secret: opt(str()).describe('HMAC secret (HS*)'),
  rsa_public_key: opt(z.string()).describe('PEM public key (RS*, PS*, ES*, EdDSA)'),
  algorithm: oneOf(JWT_ALGORITHMS).default('HS256').describe('The only algorithm accepted for this credential'),
  tags: tags().describe('Free-form tags for filtering'),
}).superRefine((j, ctx) => {
  if (!j.algorithm.startsWith('HS') && !j.rsa_public_key) {
    ctx.addIssue({ code: 'custom', path: ['rsa_public_key'], message: `required for algorithm '${j.algorithm}'` });
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
