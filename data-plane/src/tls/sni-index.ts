// Which certificate a TLS handshake gets, by its SNI, with Kong's precedence
// (kong/runloop/certificate.lua): the exact name, then `*.parent` (the first label replaced), then
// `prefix.*` (the last label replaced), then an SNI named `*`, then the listener's default certificate.
// Built once per applied config (one SecureContext per certificate, the expensive object) and held
// by the runtime config, so a new certificate serves from the next handshake after the swap and
// connections already open keep the context they negotiated.
import { createHash } from 'node:crypto';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { Certificate, Sni } from '@portico/shared';

/** TLS 1.2 and 1.3 only, as Kong's `ssl_protocols TLSv1.2 TLSv1.3`. */
export const MIN_TLS_VERSION = 'TLSv1.2';

export interface KeyPair { cert: string | Buffer; key: string | Buffer }

/** One SecureContext for a certificate: its RSA and ECDSA pairs together, the client picks by its signature algorithms. */
export function secureContextFor(c: Pick<Certificate, 'cert' | 'key' | 'cert_alt' | 'key_alt'>): SecureContext {
  const alt = c.cert_alt && c.key_alt;
  return createSecureContext({
    minVersion: MIN_TLS_VERSION,
    cert: alt ? [c.cert, c.cert_alt!] : c.cert,
    key: alt ? [c.key, c.key_alt!] : c.key,
  });
}

const materialDigest = (c: Certificate): string =>
  createHash('sha256').update(`${c.cert}\0${c.key}\0${c.cert_alt ?? ''}\0${c.key_alt ?? ''}`).digest('hex');

/**
 * Contexts of the last index built, by the digest of their PEM: a config change that leaves a
 * certificate as it was reuses its context instead of parsing its key again. Only a cache; what
 * serves is whatever the applied runtime config's index holds.
 */
let previousContexts = new Map<string, SecureContext>();

export class SniIndex {
  constructor(private readonly byName: ReadonlyMap<string, SecureContext>) {}

  /**
   * The context for `servername`; undefined means the listener's default certificate (Node's
   * SNICallback falls back to the server's own context), which a client without SNI gets too.
   */
  select(servername: string | undefined): SecureContext | undefined {
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
  const contexts = new Map<string, SecureContext>();
  const byCertificate = new Map<string, SecureContext>();
  for (const c of certificates) {
    const digest = materialDigest(c);
    let ctx = contexts.get(digest) ?? previousContexts.get(digest);
    if (!ctx) {
      try { ctx = secureContextFor(c); } catch (err) { throw new Error(`certificate ${c.id} cannot be loaded: ${(err as Error).message}`); }
    }
    contexts.set(digest, ctx);
    byCertificate.set(c.id, ctx);
  }
  const byName = new Map<string, SecureContext>();
  for (const s of snis) {
    const ctx = s.certificate ? byCertificate.get(s.certificate.id) : undefined;
    if (ctx) byName.set(s.name.toLowerCase(), ctx);
  }
  previousContexts = contexts;
  return new SniIndex(byName);
}
