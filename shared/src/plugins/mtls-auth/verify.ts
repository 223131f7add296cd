// Client certificate chain verification against one plugin instance's CA list. Hand-written on
// node:crypto's X509Certificate rather than left to the TLS layer because each route may trust
// different CAs while a listener holds one list; the mTLS listener asks for a certificate and
// accepts any, and this decides per route (reference/edge-design.md §7b).
import type { X509Certificate } from 'node:crypto';

/** How far up a presented chain is followed. */
const MAX_CHAIN = 10;

const validAt = (c: X509Certificate, nowMs: number): boolean => Date.parse(c.validFrom) <= nowMs && nowMs <= Date.parse(c.validTo);
const signedBy = (c: X509Certificate, issuer: X509Certificate): boolean => c.checkIssued(issuer) && c.verify(issuer.publicKey);
const selfSigned = (c: X509Certificate): boolean => signedBy(c, c);

/**
 * The certificate that issued the leaf (`chain[0]`) when `chain` (leaf first, intermediates as the
 * client sent them) leads to one of `trusted`, else null. Every certificate on the way must be valid
 * now and signed by the next; intermediates must be CAs. A trusted certificate that is not
 * self-signed anchors the chain only with `allowPartialChain`. The issuer is what a CRL for the
 * leaf must be signed by (RFC 5280 §6.3.3).
 */
export function verifiedIssuer(chain: readonly X509Certificate[], trusted: readonly X509Certificate[], nowMs: number, allowPartialChain: boolean): X509Certificate | null {
  const leaf = chain[0];
  let cert = leaf;
  let issuer: X509Certificate | null = null;
  if (!cert || !validAt(cert, nowMs)) return null;
  for (let depth = 0; depth < MAX_CHAIN; depth++) {
    for (const anchor of trusted) {
      if (validAt(anchor, nowMs) && (allowPartialChain || selfSigned(anchor)) && signedBy(cert, anchor)) return issuer ?? anchor;
    }
    const next = chain.find((c) => c !== cert && c.ca && signedBy(cert, c));
    if (!next || !validAt(next, nowMs) || selfSigned(next)) return null;
    issuer ??= next;
    cert = next;
  }
  return null;
}

/** The subject's CN, then the DNS and email names of subjectAltName: the names a consumer may be found by. */
export function subjectNames(cert: X509Certificate): string[] {
  const names: string[] = [];
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1];
  if (cn) names.push(cn);
  for (const part of (cert.subjectAltName ?? '').split(/,\s*/)) {
    const m = /^(?:DNS|email):(.+)$/.exec(part);
    if (m && !names.includes(m[1])) names.push(m[1]);
  }
  return names;
}

/** The subject as one distinguished name (`CN=a,O=b`), for authenticated_group_by=DN. */
export const subjectDn = (cert: X509Certificate): string => cert.subject.split('\n').join(',');
