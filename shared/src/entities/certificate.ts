// TLS certificates, SNIs and CA certificates as Kong's (reference/kong-compat.md §2.7,
// kong/db/schema/entities/{certificates,snis,ca_certificates}.lua). PEM is parsed with node:crypto
// on write, so a pair the data planes could not load never reaches a snapshot: the key must match
// the certificate, the certificate must not be expired, an SNI must be a well-formed (wildcard) name.
import { createHash, createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { z } from 'zod';
import { foreign, MAX_NAME_LENGTH, multiline, opt, tags, timestamp, uuid } from './fields.ts';
import { EXAMPLE_CERT, EXAMPLE_KEY } from './certificate-example.ts';

const PEM_CERT = '-----BEGIN CERTIFICATE-----';

/** The first certificate of a PEM bundle, or the reason it does not parse. */
export function parseCertificate(pem: string): { cert: X509Certificate } | { error: string } {
  if (!pem.includes(PEM_CERT)) return { error: 'invalid certificate: expected a PEM certificate' };
  try { return { cert: new X509Certificate(pem) }; } catch (err) { return { error: `invalid certificate: ${(err as Error).message}` }; }
}

/** A PEM private key, or the reason it does not parse (encrypted keys are refused: nothing could unlock them). */
export function parsePrivateKey(pem: string): { key: KeyObject } | { error: string } {
  if (!/-----BEGIN (?:RSA |EC |)PRIVATE KEY-----/.test(pem)) return { error: 'invalid key: expected an unencrypted PEM private key' };
  try { return { key: createPrivateKey({ key: pem, format: 'pem' }) }; } catch (err) { return { error: `invalid key: ${(err as Error).message}` }; }
}

/** Seconds since the epoch after which `cert` is no longer valid. */
export const notAfterSeconds = (cert: X509Certificate): number => Math.floor(Date.parse(cert.validTo) / 1000);

const EXPIRED = 'certificate expired, "Not After" time is in the past';

/**
 * Why `name` is not a valid SNI (Kong's `wildcard_host`), or null. One wildcard at most, and only as
 * the whole leftmost (`*.example.com`) or rightmost (`example.*`) label, or `*` alone (the default
 * certificate); no IP addresses (TLS SNI carries host names only, RFC 6066 §3) and no port.
 */
export function sniNameError(name: string): string | null {
  if (name.length > MAX_NAME_LENGTH) return `length must be at most ${MAX_NAME_LENGTH}`;
  if (name === '*') return null;
  const stars = name.split('*').length - 1;
  if (stars > 1) return 'only one wildcard must be specified';
  if (stars === 1 && !name.startsWith('*.') && !name.endsWith('.*')) {
    return name.startsWith('*') || name.endsWith('*') ? 'wildcard must be a whole label: *.example.com or example.*' : 'wildcard must be leftmost or rightmost character';
  }
  const plain = name.replace('*', 'wildcard');
  if (/:\d*$/.test(plain) && !plain.includes('::') && plain.split(':').length === 2) return 'must not have a port';
  if (isIP(plain) || isIP(plain.replace(/^\[|\]$/g, ''))) return 'must not be an IP';
  if (!/^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(plain)) return `invalid value: ${name}`;
  return null;
}

export const sniName = () => z.string().superRefine((v, ctx) => {
  const err = sniNameError(v);
  if (err) ctx.addIssue({ code: 'custom', message: err });
});

const pem = () => multiline();
const certPem = () => pem().meta({ example: EXAMPLE_CERT });
const keyPem = () => pem().meta({ example: EXAMPLE_KEY });

function checkPair(certPem: string, keyPem: string, field: 'cert' | 'cert_alt', mismatch: string, ctx: z.RefinementCtx): X509Certificate | null {
  const keyField = field === 'cert' ? 'key' : 'key_alt';
  const c = parseCertificate(certPem);
  const k = parsePrivateKey(keyPem);
  if ('error' in c) ctx.addIssue({ code: 'custom', path: [field], message: c.error });
  if ('error' in k) ctx.addIssue({ code: 'custom', path: [keyField], message: k.error });
  if ('error' in c || 'error' in k) return null;
  if (!c.cert.checkPrivateKey(k.key)) { ctx.addIssue({ code: 'custom', path: ['@entity'], message: mismatch }); return null; }
  if (notAfterSeconds(c.cert) < Date.now() / 1000) { ctx.addIssue({ code: 'custom', path: [field], message: EXPIRED }); return null; }
  return c.cert;
}

/** A certificate and its private key (and optionally a second pair of another key type). */
export const certificateSchema = z.strictObject({
  id: uuid().describe('Primary key, generated when absent'),
  created_at: timestamp().describe('Creation time, seconds since the epoch'),
  updated_at: timestamp().describe('Last update time, seconds since the epoch'),
  cert: certPem().describe('PEM certificate, optionally followed by its intermediates'),
  key: keyPem().describe('PEM private key of `cert` (a secret: redacted for viewers, never logged)'),
  cert_alt: opt(pem()).describe('A second PEM certificate of another key type (RSA and ECDSA)'),
  key_alt: opt(pem()).describe('PEM private key of `cert_alt`'),
  tags: tags().describe('Free-form tags for filtering'),
}).superRefine((c, ctx) => {
  const main = checkPair(c.cert, c.key, 'cert', 'certificate does not match key', ctx);
  if ((c.cert_alt == null) !== (c.key_alt == null)) {
    ctx.addIssue({ code: 'custom', path: ['@entity'], message: "all or none of these fields must be set: 'cert_alt', 'key_alt'" });
    return;
  }
  if (c.cert_alt == null || c.key_alt == null) return;
  const alt = checkPair(c.cert_alt, c.key_alt, 'cert_alt', 'alternative certificate does not match key', ctx);
  if (main && alt && main.publicKey.asymmetricKeyType === alt.publicKey.asymmetricKeyType) {
    ctx.addIssue({
      code: 'custom', path: ['@entity'],
      message: 'certificate and alternative certificate need to have different type (e.g. RSA and ECDSA), the provided certificates were both of the same type',
    });
  }
});
export type Certificate = z.infer<typeof certificateSchema>;

/** The write-only `snis` shorthand of a certificate: the SNI rows pointing at it. */
export const certificateInputSchema = z.object({
  snis: z.array(sniName()).optional().describe('SNI names served with this certificate (creates or replaces its SNIs)'),
});

/** The earliest expiry of a certificate's pairs, seconds since the epoch (for `?expiring_in=`). */
export function certificateNotAfter(c: { cert: string; cert_alt?: string | null }): number | null {
  const times = [c.cert, c.cert_alt].filter((p): p is string => !!p).map(parseCertificate)
    .flatMap((r) => ('cert' in r ? [notAfterSeconds(r.cert)] : []));
  return times.length ? Math.min(...times) : null;
}

export const sniSchema = z.strictObject({
  id: uuid().describe('Primary key, generated when absent'),
  created_at: timestamp().describe('Creation time, seconds since the epoch'),
  updated_at: timestamp().describe('Last update time, seconds since the epoch'),
  name: sniName().describe('Host name, `*.parent`, `prefix.*`, or `*` (served when no other SNI matches)'),
  certificate: foreign().describe('The certificate served for this name'),
  tags: tags().describe('Free-form tags for filtering'),
});
export type Sni = z.infer<typeof sniSchema>;

/** Lower-case hex SHA-256 of the certificate's DER, as Kong's `cert_digest`. */
export const certDigest = (cert: X509Certificate): string => createHash('sha256').update(cert.raw).digest('hex');

/** A CA certificate that verifies upstreams (`services.ca_certificates`) and clients (`mtls-auth`). */
export const caCertificateSchema = z.strictObject({
  id: uuid().describe('Primary key, generated when absent'),
  created_at: timestamp().describe('Creation time, seconds since the epoch'),
  updated_at: timestamp().describe('Last update time, seconds since the epoch'),
  cert: certPem().describe('One PEM CA certificate'),
  cert_digest: opt(z.string().regex(/^[0-9a-f]{64}$/)).describe('SHA-256 of the certificate (computed on write)'),
  tags: tags().describe('Free-form tags for filtering'),
}).superRefine((c, ctx) => {
  const first = c.cert.indexOf(PEM_CERT);
  if (first >= 0 && c.cert.indexOf(PEM_CERT, first + PEM_CERT.length) >= 0) {
    ctx.addIssue({ code: 'custom', path: ['@entity'], message: 'please submit only one certificate at a time' }); return;
  }
  const parsed = parseCertificate(c.cert);
  if ('error' in parsed) { ctx.addIssue({ code: 'custom', path: ['cert'], message: parsed.error }); return; }
  if (notAfterSeconds(parsed.cert) < Date.now() / 1000) { ctx.addIssue({ code: 'custom', path: ['@entity'], message: EXPIRED }); return; }
  if (!parsed.cert.ca) ctx.addIssue({ code: 'custom', path: ['@entity'], message: 'certificate does not appear to be a CA because it is missing the "CA" basic constraint' });
});
export type CaCertificate = z.infer<typeof caCertificateSchema>;
