// Which certificate a TLS handshake gets, by its SNI, with Kong's precedence
// (kong/runloop/certificate.lua): the exact name, then `*.parent` (the first label replaced), then
// `prefix.*` (the last label replaced), then an SNI named `*`, then the listener's default certificate.
// Built once per applied config and held by the runtime config, so a new certificate serves from
// the next handshake after the swap and connections already open keep what they negotiated. An
// entry is a certificate with all its pairs (RSA and ECDSA, `cert`/`cert_alt`): the listener picks
// the entry from the ClientHello before the handshake (listener.ts) and hands the connection to a
// server holding those pairs only, so OpenSSL serves the pair the client's algorithms accept.
import { createHash } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { certificateNotAfter, type Certificate, type Sni } from '@portico/shared';

/** TLS 1.2 and 1.3 only, as Kong's `ssl_protocols TLSv1.2 TLSv1.3`. */
export const MIN_TLS_VERSION = 'TLSv1.2';

export interface KeyPair { cert: string | Buffer; key: string | Buffer }

/**
 * What a handshake serves for one certificate: every pair it has, as the `cert`/`key` options of a
 * TLS server (the client's signature algorithms and ciphers choose among them). Compared by identity:
 * one object per certificate, reused across configs while its PEM stays the same.
 */
export interface ServedCertificate {
  readonly cert: (string | Buffer)[];
  readonly key: (string | Buffer)[];
  /** When the first of its pairs expires, seconds since the epoch (null: unreadable, never for a stored certificate). */
  readonly notAfter: number | null;
}

/** A certificate's pairs as one ServedCertificate, loaded once to refuse what OpenSSL cannot use. */
export function servedCertificate(c: Pick<Certificate, 'cert' | 'key' | 'cert_alt' | 'key_alt'> | KeyPair): ServedCertificate {
  const alt = 'cert_alt' in c && c.cert_alt && c.key_alt ? { cert: c.cert_alt, key: c.key_alt } : null;
  const pairs = { cert: alt ? [c.cert, alt.cert] : [c.cert], key: alt ? [c.key, alt.key] : [c.key] };
  createSecureContext({ minVersion: MIN_TLS_VERSION, ...pairs });
  return { ...pairs, notAfter: certificateNotAfter({ cert: String(c.cert), cert_alt: alt ? String(alt.cert) : null }) };
}

const materialDigest = (c: Certificate): string =>
  createHash('sha256').update(`${c.cert}\0${c.key}\0${c.cert_alt ?? ''}\0${c.key_alt ?? ''}`).digest('hex');

/**
 * Entries of the last index built, by the digest of their PEM: a config change that leaves a
 * certificate as it was reuses its entry (and the listener its server) instead of parsing its key
 * again. Only a cache; what serves is whatever the applied runtime config's index holds.
 */
let previousEntries = new Map<string, ServedCertificate>();

export class SniIndex {
  constructor(
    private readonly byName: ReadonlyMap<string, ServedCertificate>,
    /** Every certificate of the config by id (its expiry for /metrics), SNIs or not. */
    readonly certificates: ReadonlyMap<string, ServedCertificate> = new Map(),
  ) {}

  /**
   * The certificate for `servername`; undefined means the listener's default certificate, which a
   * client without SNI gets too.
   */
  select(servername: string | undefined): ServedCertificate | undefined {
    if (!servername) return undefined;
    const name = servername.toLowerCase();
    const m = this.byName;
    const exact = m.get(name);
    if (exact) return exact;
    const firstDot = name.indexOf('.');
    if (firstDot > 0) {
      const leftWild = m.get('*' + name.slice(firstDot));
      if (leftWild) return leftWild;
      const lastDot = name.lastIndexOf('.');
      const rightWild = m.get(name.slice(0, lastDot) + '.*');
      if (rightWild) return rightWild;
    }
    return m.get('*');
  }

  get size(): number { return this.byName.size; }
}

/** The index for a config's certificates and SNIs. Throws, naming the certificate, if one cannot be loaded. */
export function buildSniIndex(certificates: readonly Certificate[], snis: readonly Sni[]): SniIndex {
  const entries = new Map<string, ServedCertificate>();
  const byCertificate = new Map<string, ServedCertificate>();
  for (const c of certificates) {
    const digest = materialDigest(c);
    let entry = entries.get(digest) ?? previousEntries.get(digest);
    if (!entry) {
      try { entry = servedCertificate(c); } catch (err) { throw new Error(`certificate ${c.id} cannot be loaded: ${(err as Error).message}`); }
    }
    entries.set(digest, entry);
    byCertificate.set(c.id, entry);
  }
  const byName = new Map<string, ServedCertificate>();
  for (const s of snis) {
    const entry = s.certificate ? byCertificate.get(s.certificate.id) : undefined;
    if (entry) byName.set(s.name.toLowerCase(), entry);
  }
  previousEntries = entries;
  return new SniIndex(byName, byCertificate);
}
