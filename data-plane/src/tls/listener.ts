// The TLS proxy listener (PORTICO_PROXY_TLS_LISTEN, Kong's `proxy_listen 0.0.0.0:8443 http2 ssl`):
// TLS 1.2/1.3, HTTP/2 and HTTP/1.1 on one port by ALPN (`allowHTTP1`), the certificate chosen per
// SNI from the applied config's index (sni-index.ts). Requests of both versions go to the same
// proxy entry points as the plain listener (forward.ts `createProxy`, one ProxyExchange each):
// an HTTP/2 request is handed over as Node's compatibility request with HTTP/1-shaped headers.
import http2, { type Http2SecureServer, type Http2Server, type Http2ServerRequest, type Http2ServerResponse, type Http2Session } from 'node:http2';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Listen, Logger } from '@portico/shared';
import { MIN_TLS_VERSION, type KeyPair, type SniIndex } from './sni-index.ts';

/** Kong's keepalive_timeout (60 s): an idle HTTP/1.1 connection or HTTP/2 session is closed after it. */
const IDLE_TIMEOUT_MS = 60_000;

export interface TlsProxyHandlers {
  handleRequest(req: IncomingMessage, res: ServerResponse): void;
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
}

export interface TlsListenerOptions {
  listen: Listen;
  /** The certificate for handshakes no SNI selects. */
  defaultCertificate: KeyPair;
  /** The applied config's SNI index (null before any config: every handshake gets the default). */
  index: () => SniIndex | null;
  proxy: TlsProxyHandlers;
  log: Logger;
  onRequest?: () => void;
  onConnection?: (socket: Socket) => void;
  /** Ask every client for a certificate and accept any (the mTLS listener; mtls-auth verifies per route). */
  requestClientCertificate?: boolean;
}

export interface TlsListener {
  server: Http2SecureServer;
  /** Stop accepting; GOAWAY to HTTP/2 sessions, close idle HTTP/1.1 connections; force-close after `timeoutMs`. */
  close(timeoutMs: number): Promise<void>;
}

const PSEUDO = 58; // ':'

/**
 * An HTTP/2 request as the proxy reads HTTP/1.1 ones: pseudo-headers (RFC 9113 §8.3) left out
 * (they must never be forwarded as header fields) and `:authority` as Host (RFC 9113 §8.3.1). The
 * request's method and URL still come from its pseudo-headers through Node's getters.
 */
export function http1Headers(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {};
  for (const name of Object.keys(headers)) if (name.charCodeAt(0) !== PSEUDO) out[name] = headers[name];
  const authority = headers[':authority'];
  if (out.host === undefined && typeof authority === 'string') out.host = authority;
  return out;
}

/** What an HTTP/2 listener, TLS or cleartext, hands its requests to and reports. */
type Http2ListenerHooks = Pick<TlsListenerOptions, 'listen' | 'proxy' | 'onRequest'> & { onConnection?: (socket: Socket) => void };

/**
 * The request handling, connection tracking, listening and shutdown both HTTP/2 listeners share:
 * `connectionEvent` is the socket that carries requests (after the handshake on TLS).
 */
async function serveHttp2(server: Http2SecureServer | Http2Server, o: Http2ListenerHooks, connectionEvent: 'secureConnection' | 'connection'): Promise<(timeoutMs: number) => Promise<void>> {
  server.setTimeout(IDLE_TIMEOUT_MS);
  const sessions = new Set<Http2Session>();
  const sockets = new Set<Socket>();
  server.on('session', (s: Http2Session) => { sessions.add(s); s.once('close', () => sessions.delete(s)); });
  server.on(connectionEvent, (socket: Socket) => {
    o.onConnection?.(socket);
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('request', (req: Http2ServerRequest | IncomingMessage, res: Http2ServerResponse | ServerResponse) => {
    o.onRequest?.();
    if (req.httpVersionMajor === 2) {
      Object.defineProperty(req, 'headers', { value: http1Headers(req.headers), configurable: true, enumerable: true, writable: true });
    }
    o.proxy.handleRequest(req as IncomingMessage, res as ServerResponse);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.listen.port, o.listen.host, () => { server.off('error', reject); resolve(); });
  });
  return (timeoutMs) => new Promise((resolve) => {
    const force = setTimeout(() => { for (const s of sockets) s.destroy(); resolve(); }, timeoutMs);
    force.unref();
    server.close(() => { clearTimeout(force); resolve(); });
    for (const s of sessions) s.close();
    // HTTP/1.1 connections (TLS only) without a request in flight close now; busy ones when it ends.
    if (connectionEvent === 'secureConnection') {
      for (const s of sockets) if (!(s as Socket & { _httpMessage?: unknown })._httpMessage && (s as TLSSocket).alpnProtocol !== 'h2') s.end();
    }
  });
}

export async function startTlsListener(o: TlsListenerOptions): Promise<TlsListener> {
  const server = http2.createSecureServer({
    allowHTTP1: true,
    minVersion: MIN_TLS_VERSION,
    cert: o.defaultCertificate.cert,
    key: o.defaultCertificate.key,
    // Kong's precedence, from the index the last applied config built: a certificate changed by a
    // config serves from the next handshake; connections already open keep theirs.
    SNICallback: (servername, cb) => cb(null, o.index()?.select(servername)),
    requestCert: o.requestClientCertificate === true,
    rejectUnauthorized: false,
  });
  // HTTP/1.1 Upgrade (WebSocket) over TLS: the same upgrade path as the plain listener.
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => o.proxy.handleUpgrade(req, socket, head));
  server.on('tlsClientError', (err: Error & { code?: string }) => o.log.debug({ code: err.code, message: err.message }, 'TLS handshake failed'));
  return { server, close: await serveHttp2(server, o, 'secureConnection') };
}

export interface H2cListener {
  server: Http2Server;
  close(timeoutMs: number): Promise<void>;
}

/**
 * Cleartext HTTP/2 with prior knowledge (RFC 9113 §3.3; PORTICO_PROXY_H2C_LISTEN, off by default):
 * gRPC clients inside a trusted network without TLS. HTTP/2 only, no Upgrade from HTTP/1.1 (which
 * RFC 9113 deprecates); the same proxy entry point as the TLS listener's HTTP/2 requests.
 */
export async function startH2cListener(o: Http2ListenerHooks): Promise<H2cListener> {
  const server = http2.createServer();
  return { server, close: await serveHttp2(server, o, 'connection') };
}
