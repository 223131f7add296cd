// The upgrade leg of a `ProxyExchange` (exchange.ts): WebSocket and any HTTP/1.1 Upgrade. Routing,
// the access phase, target choice and headers are the HTTP path's own (`prepare`, `pickPeer`,
// `sealUpstreamHeaders`); here the exchange dials the target, writes the sealed request head and
// splices the two sockets. The exchange's `finish` (on the client socket's close) releases the
// balancer slot, so least-connections sees WebSocket load and a half-open probe slot is never kept.
import net from 'node:net';
import tls from 'node:tls';
import type { Socket } from 'node:net';
import type { ProxyExchange } from './exchange.ts';
import { safely } from './guard.ts';
import { requestHead } from './headers.ts';
import { MESSAGES } from './errors.ts';

const kUpgrade = Symbol('portico.upgrade');
interface Carrier { [kUpgrade]?: ProxyExchange }
const exchangeOf = (s: Socket): ProxyExchange => (s as Carrier)[kUpgrade]!;

function onUpstreamConnected(this: Socket): void {
  const x = exchangeOf(this);
  safely(x, splice, this);
}

/** Writes the sealed request head and joins the two sockets. */
function splice(this: ProxyExchange, upstream: Socket): void {
  upstream.setTimeout(0);
  this.sent = true;
  const client = this.socket!;
  upstream.write(requestHead(this.upstreamMethod, this.upstreamPathname + this.upstreamQuery, this.headers));
  if (this.head !== null && this.head.length > 0) upstream.write(this.head);
  upstream.once('data', onUpstreamFirstData);
  upstream.pipe(client);
  client.pipe(upstream);
}

/** The upstream's status line: reported to the balancer like an HTTP answer, and logged. */
function onUpstreamFirstData(this: Socket, chunk: Buffer): void {
  const x = exchangeOf(this);
  x.responded = true;
  const status = chunk.length >= 12 && chunk.toString('latin1', 0, 5) === 'HTTP/' ? Number(chunk.toString('latin1', 9, 12)) : 0;
  x.status = status;
  if (status > 0) x.report({ kind: 'status', status, latencyMs: performance.now() - x.upstreamStarted });
}

function onUpstreamTimeout(this: Socket): void {
  const x = exchangeOf(this);
  x.upstreamSocket = null;
  this.destroy();
  safely(x, x.upstreamFailed, 'UND_ERR_CONNECT_TIMEOUT', new Error(MESSAGES.timeout));
}

function onUpstreamError(this: Socket, err: Error): void {
  const x = exchangeOf(this);
  if (x.upstreamSocket !== this) return;
  x.upstreamSocket = null;
  if (x.finished) return;
  safely(x, x.upstreamFailed, (err as { code?: string }).code ?? '', err);
}

function onUpstreamClose(this: Socket): void {
  const x = exchangeOf(this);
  if (x.upstreamSocket === this) x.socket!.destroy();
}

export function connectUpgrade(x: ProxyExchange): void {
  if (x.finished || !x.pickPeer()) return;
  const service = x.service!;
  x.headers.connection = 'Upgrade';
  x.headers.upgrade = x.req.headers.upgrade ?? 'websocket';
  x.sent = false;
  x.responded = false;
  x.upstreamStarted = performance.now();
  const upstream = service.protocol === 'https'
    ? tls.connect({ host: x.dialHost, port: x.dialPort, servername: net.isIP(x.dialHost) ? undefined : x.dialHost, rejectUnauthorized: service.tls_verify === true })
    : net.connect({ host: x.dialHost, port: x.dialPort });
  (upstream as Carrier)[kUpgrade] = x;
  x.upstreamSocket = upstream;
  upstream.setTimeout(service.connect_timeout, onUpstreamTimeout);
  upstream.once(service.protocol === 'https' ? 'secureConnect' : 'connect', onUpstreamConnected);
  upstream.on('error', onUpstreamError);
  upstream.on('close', onUpstreamClose);
}
