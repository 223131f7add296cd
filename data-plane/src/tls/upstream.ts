// TLS towards an https service: verify its certificate when `tls_verify` is on, against the
// service's `ca_certificates` (else the system store) and no deeper than `tls_verify_depth`;
// present `client_certificate` when it has one (mTLS to services). The SNI and Host are undici's:
// it sends the request's Host header as SNI, which is the service host, the upstream's
// host_header, or the client's Host with preserve_host, as Kong's `proxy_ssl_server_name`.
// Connections are pooled per distinct set of these settings (`key`), so two services that verify
// differently never share a connection.
import { checkServerIdentity, type ConnectionOptions, type DetailedPeerCertificate, type PeerCertificate } from 'node:tls';
import type { CaCertificate, Certificate, Service } from '@portico/shared';

export interface UpstreamTls {
  /** Identifies the pool: equal keys, equal TLS settings. */
  key: string;
  connect: Pick<ConnectionOptions, 'ca' | 'cert' | 'key' | 'rejectUnauthorized' | 'checkServerIdentity'>;
}

/** Certificates beyond the leaf in the chain the upstream presented, up to the trust anchor. */
function chainDepth(leaf: DetailedPeerCertificate): number {
  let depth = 0;
  let c = leaf;
  while (c.issuerCertificate && c.issuerCertificate !== c && c.issuerCertificate.fingerprint256 !== c.fingerprint256) {
    depth++;
    c = c.issuerCertificate;
  }
  return depth;
}

/** Host name check as Node's, plus the chain depth limit (OpenSSL's verify depth, nginx's proxy_ssl_verify_depth). */
function depthChecker(maxDepth: number) {
  return (host: string, cert: PeerCertificate): Error | undefined => {
    const err = checkServerIdentity(host, cert);
    if (err) return err;
    const depth = chainDepth(cert as DetailedPeerCertificate);
    if (depth > maxDepth) {
      return Object.assign(new Error(`upstream certificate chain is ${depth} deep, over tls_verify_depth ${maxDepth}`), { code: 'ERR_TLS_CHAIN_TOO_DEEP' });
    }
    return undefined;
  };
}

export interface TlsMaterial {
  certificates: ReadonlyMap<string, Certificate>;
  caCertificates: ReadonlyMap<string, CaCertificate>;
}

export function indexTlsMaterial(certificates: readonly Certificate[], caCertificates: readonly CaCertificate[]): TlsMaterial {
  return { certificates: new Map(certificates.map((c) => [c.id, c])), caCertificates: new Map(caCertificates.map((c) => [c.id, c])) };
}

/** The TLS settings for a service's upstream connections, or null when it is not https. */
export function upstreamTlsFor(service: Service, material: TlsMaterial): UpstreamTls | null {
  if (service.protocol !== 'https') return null;
  const verify = service.tls_verify === true;
  const connect: UpstreamTls['connect'] = { rejectUnauthorized: verify };
  const parts: string[] = [verify ? 'verify' : 'noverify'];
  if (verify) {
    const cas = (service.ca_certificates ?? []).map((id) => material.caCertificates.get(id)).filter((c): c is CaCertificate => c !== undefined);
    if (cas.length) {
      connect.ca = cas.map((c) => c.cert);
      parts.push(`ca=${cas.map((c) => c.cert_digest ?? c.id).join(',')}`);
    }
    if (service.tls_verify_depth != null) {
      connect.checkServerIdentity = depthChecker(service.tls_verify_depth);
      parts.push(`depth=${service.tls_verify_depth}`);
    }
  }
  const client = service.client_certificate ? material.certificates.get(service.client_certificate.id) : undefined;
  if (client) {
    connect.cert = client.cert;
    connect.key = client.key;
    parts.push(`client=${client.id}@${client.updated_at}`);
  }
  return { key: parts.join('|'), connect };
}
