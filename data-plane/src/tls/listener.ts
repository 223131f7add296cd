// The TLS proxy listener (PORTICO_PROXY_TLS_LISTEN, Kong's `proxy_listen 0.0.0.0:8443 http2 ssl`):
// TLS 1.2/1.3, HTTP/2 and HTTP/1.1 on one port by ALPN (`allowHTTP1`). The certificate is chosen
// before the handshake: the listener accepts TCP, reads the ClientHello's server name
// (client-hello.ts), picks the certificate from the applied config's index (sni-index.ts) and hands
// the connection to a TLS server holding only that certificate's pairs, RSA and ECDSA, so OpenSSL
// serves the one the client supports. (Node's SNICallback swaps in the SNI certificate but keeps
// the default's pair of the other key type, so a client could get the default certificate.)
// Requests of both versions go to the same proxy entry points as the plain listener (forward.ts
// `createProxy`, one ProxyExchange each): an HTTP/2 request is handed over as Node's compatibility
// request with HTTP/1-shaped headers.
import http2, { type Http2SecureServer, type Http2Server, type Http2ServerRequest, type Http2ServerResponse, type Http2Session } from 'node:http2';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import net, { type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Listen, Logger } from '@portico/shared';
import { MAX_CLIENT_HELLO, parseClientHello } from './client-hello.ts';
import { MIN_TLS_VERSION, servedCertificate, type KeyPair, type ServedCertificate, type SniIndex } from './sni-index.ts';

/** Kong's keepalive_timeout (60 s): an idle HTTP/1.1 connection or HTTP/2 session is closed after it. */
const IDLE_TIMEOUT_MS = 60_000;
/** A client that has not sent its whole ClientHello by then is closed (nginx's client_header_timeout). */
const CLIENT_HELLO_TIMEOUT_MS = 10_000;
/** Bytes held while the ClientHello arrives: the largest hello in records as small as TLS allows. */
const MAX_HELLO_BYTES = 2 * MAX_CLIENT_HELLO;

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
  /** The TCP server that accepts connections and reads their ClientHello. */
  server: Server;
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

/** The HTTP/2 sessions and connections of one listener (all its TLS servers), for its shutdown. */
interface Connections { sessions: Set<Http2Session>; sockets: Set<Socket> }

/**
 * The request handling and connection tracking every HTTP/2 server shares: `connectionEvent` is
 * the socket that carries requests (after the handshake on TLS).
 */
function serveRequests(server: Http2SecureServer | Http2Server, o: Http2ListenerHooks, connectionEvent: 'secureConnection' | 'connection', conns: Connections): void {
  server.setTimeout(IDLE_TIMEOUT_MS);
  server.on('session', (s: Http2Session) => { conns.sessions.add(s); s.once('close', () => conns.sessions.delete(s)); });
  server.on(connectionEvent, (socket: Socket) => {
    o.onConnection?.(socket);
    conns.sockets.add(socket);
    socket.once('close', () => conns.sockets.delete(socket));
  });
  server.on('request', (req: Http2ServerRequest | IncomingMessage, res: Http2ServerResponse | ServerResponse) => {
    o.onRequest?.();
    if (req.httpVersionMajor === 2) {
      Object.defineProperty(req, 'headers', { value: http1Headers(req.headers), configurable: true, enumerable: true, writable: true });
    }
    o.proxy.handleRequest(req as IncomingMessage, res as ServerResponse);
  });
}

async function listen(server: Server, at: Listen): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.host, () => { server.off('error', reject); resolve(); });
  });
}

/** Stop accepting on `server`, close sessions and idle HTTP/1.1 connections, force-close the rest after `timeoutMs`. */
function shutdown(server: Server, conns: Connections, tls: boolean) {
  return (timeoutMs: number) => new Promise<void>((resolve) => {
    const force = setTimeout(() => { for (const s of conns.sockets) s.destroy(); resolve(); }, timeoutMs);
    force.unref();
    server.close(() => { clearTimeout(force); resolve(); });
    for (const s of conns.sessions) s.close();
    // HTTP/1.1 connections (TLS only) without a request in flight close now; busy ones when it ends.
    if (tls) {
      for (const s of conns.sockets) if (!(s as Socket & { _httpMessage?: unknown })._httpMessage && (s as TLSSocket).alpnProtocol !== 'h2') s.end();
    }
  });
}

/**
 * Read a new connection's ClientHello without answering it, then put the bytes back and call
 * `handOff` with its server name. Anything that is not a ClientHello, is larger than TLS allows or
 * does not arrive in time is closed, quietly (a port scanner is not an error).
 */
function readServerName(socket: Socket, log: Logger, handOff: (servername: string | undefined) => void): void {
  let received: Buffer = Buffer.alloc(0);
  const stop = (reason: string | null) => {
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('error', onError);
    socket.off('end', onEnd);
    if (reason !== null) { log.debug({ reason, remote: socket.remoteAddress }, 'TLS: connection closed before the handshake'); socket.destroy(); }
  };
  const onData = (chunk: Buffer) => {
    received = received.length ? Buffer.concat([received, chunk]) : chunk;
    if (received.length > MAX_HELLO_BYTES) { stop(`more than ${MAX_HELLO_BYTES} bytes without a ClientHello`); return; }
    const hello = parseClientHello(received);
    if (hello.kind === 'partial') return;
    if (hello.kind === 'invalid') { stop(hello.reason); return; }
    stop(null);
    socket.pause();
    socket.unshift(received);
    handOff(hello.servername);
  };
  const onError = () => stop('connection error');
  const onEnd = () => stop('closed by the client');
  const timer = setTimeout(() => stop('no ClientHello in time'), CLIENT_HELLO_TIMEOUT_MS);
  timer.unref();
  socket.on('data', onData);
  socket.on('error', onError);
  socket.on('end', onEnd);
}

export async function startTlsListener(o: TlsListenerOptions): Promise<TlsListener> {
  const conns: Connections = { sessions: new Set(), sockets: new Set() };
  /**
   * One TLS server per certificate (never listening: it gets connections handed to it), built at
   * its first handshake and dropped with the certificate's entry when a config no longer has it.
   */
  const servers = new WeakMap<ServedCertificate, Http2SecureServer>();
  const serverFor = (served: ServedCertificate): Http2SecureServer => {
    let server = servers.get(served);
    if (server) return server;
    server = http2.createSecureServer({
      allowHTTP1: true,
      minVersion: MIN_TLS_VERSION,
      cert: served.cert,
      key: served.key,
      requestCert: o.requestClientCertificate === true,
      rejectUnauthorized: false,
    });
    // HTTP/1.1 Upgrade (WebSocket) over TLS: the same upgrade path as the plain listener.
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => o.proxy.handleUpgrade(req, socket, head));
    server.on('tlsClientError', (err: Error & { code?: string }) => o.log.debug({ code: err.code, message: err.message }, 'TLS handshake failed'));
    serveRequests(server, o, 'secureConnection', conns);
    servers.set(served, server);
    return server;
  };
  const fallback = servedCertificate(o.defaultCertificate);
  // Kong's precedence, from the index the last applied config built: a certificate changed by a
  // config serves from the next handshake; connections already open keep theirs.
  const front = net.createServer((socket) => {
    readServerName(socket, o.log, (servername) => {
      serverFor(o.index()?.select(servername) ?? fallback).emit('connection', socket);
    });
  });
  await listen(front, o.listen);
  return { server: front, close: shutdown(front, conns, true) };
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
  const conns: Connections = { sessions: new Set(), sockets: new Set() };
  serveRequests(server, o, 'connection', conns);
  await listen(server, o.listen);
  return { server, close: shutdown(server, conns, false) };
}
