// TLS on the data plane: the SNI certificate index, the TLS listener (HTTP/2 + HTTP/1.1), its
// default certificate, and TLS towards upstreams.
export { buildSniIndex, SniIndex, servedCertificate, MIN_TLS_VERSION, type KeyPair, type ServedCertificate } from './sni-index.ts';
export { startH2cListener, startTlsListener, http1Headers, type TlsListener, type TlsListenerOptions } from './listener.ts';
export { defaultCertificate } from './default-cert.ts';
export { indexTlsMaterial, upstreamTlsFor, type TlsMaterial, type UpstreamTls } from './upstream.ts';
