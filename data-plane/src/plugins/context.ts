// The per-request context plugins see (shared/src/plugins/types.ts ProxyContext). Built only for
// routes that have plugins; the query string and body are parsed only if a plugin asks.
import type { IncomingMessage } from 'node:http';
import { X509Certificate } from 'node:crypto';
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';
import type { Socket } from 'node:net';
import type { AuthenticatedCredential, ConnectionInfo, Consumer, Exit, ProxyContext, RequestSummary, ResponseCapture, Route, Service } from '@portico/shared/plugins/handlers';

const kConnection = Symbol('portico.connection');
interface Counted { [kConnection]?: { id: number; requests: number } }
let connectionSerial = 0;

/**
 * Counts a request on its connection (Kong's tracker reads nginx's $connection and
 * $connection_requests): one property write per request, the serial assigned on the first.
 */
export function countRequest(socket: Socket | null | undefined): void {
  if (!socket) return;
  const c = (socket as Counted)[kConnection];
  if (c === undefined) (socket as Counted)[kConnection] = { id: ++connectionSerial, requests: 1 };
  else c.requests++;
}

export class RequestContext implements ProxyContext {
  consumer: Consumer | null = null;
  credential: AuthenticatedCredential | null = null;
  jwtClaims: Record<string, unknown> | null = null;
  authenticatedGroups: string[] | null = null;
  responseHeaders: Record<string, string> = {};
  shared: Record<string, unknown> = {};
  logFields: Record<string, unknown> | null = null;
  errorFields: Record<string, string> | null = null;
  serviceOverride: string | null = null;
  methodOverride: string | null = null;
  pathOverride: string | null = null;
  readonly startedAt = Date.now();
  summary: RequestSummary | null = null;
  responseCapture: ResponseCapture | null = null;
  upstreamFallback: (() => Exit | null) | null = null;
  private params: URLSearchParams | null = null;
  private paramsInitial = '';
  private bodyInitial = '';
  private bodyKind: 'json' | 'form' | null = null;
  readonly method: string;
  readonly headers: IncomingMessage['headers'];
  readonly scheme: 'http' | 'https';
  readonly listenPort: number;
  private raw: Buffer | null = null;
  private readonly socket: Socket | null;

  constructor(
    readonly requestId: string,
    private readonly req: IncomingMessage,
    readonly path: string,
    readonly clientIp: string,
    readonly route: Route,
    readonly service: Service | null,
    public upstreamHeaders: Record<string, string | string[]>,
    private readonly rawQuery: string,
    readonly uriCaptures: ProxyContext['uriCaptures'],
  ) {
    this.method = req.method ?? 'GET';
    this.headers = req.headers;
    this.socket = req.socket ?? null;
    this.scheme = (this.socket as { encrypted?: boolean } | null)?.encrypted ? 'https' : 'http';
    this.listenPort = this.socket?.localPort ?? 0;
  }

  /** Made on first use (the aggregator's legs), aborted by `ended`. */
  private gone: AbortController | null = null;
  clientSignal(): AbortSignal {
    return (this.gone ??= new AbortController()).signal;
  }

  /** The request is over (the exchange's finish): work a plugin still does for it stops. */
  ended(): void {
    this.gone?.abort(Object.assign(new Error('the request is over'), { code: 'CLIENT_GONE' }));
  }

  connection(): ConnectionInfo {
    const s = this.socket;
    const c = s === null ? undefined : (s as Counted)[kConnection];
    return { localAddress: s?.localAddress ?? '', localPort: s?.localPort ?? 0, id: c?.id ?? 0, requests: c?.requests ?? 0 };
  }

  rawBody(): Buffer | null {
    return this.raw;
  }

  private peerChain: X509Certificate[] | null | undefined = undefined;
  clientCertificate(): X509Certificate[] | null {
    if (this.peerChain === undefined) this.peerChain = peerCertificateChain(this.req.socket as TLSSocket);
    return this.peerChain;
  }

  hasQuery(): boolean {
    return this.rawQuery.length > 1;
  }

  query(): URLSearchParams {
    if (!this.params) {
      this.params = new URLSearchParams(this.rawQuery.startsWith('?') ? this.rawQuery.slice(1) : this.rawQuery);
      this.paramsInitial = this.rawQuery === '' ? '' : this.params.toString();
    }
    return this.params;
  }

  /** The query string to send upstream: the client's bytes unless a plugin changed the arguments. */
  finalQuery(): string {
    if (!this.params || (this.rawQuery === '' && this.params.size === 0)) return this.rawQuery;
    const now = this.params.toString();
    if (now === this.paramsInitial) return this.rawQuery;
    return now ? `?${now}` : '';
  }

  /** Parse a buffered JSON or form body into `shared.body` for plugins that read the body. */
  setBody(buf: Buffer): void {
    this.raw = buf;
    const ctype = String(this.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    try {
      if (ctype === 'application/json' || ctype.endsWith('+json')) {
        const v = JSON.parse(buf.toString('utf8'));
        if (v && typeof v === 'object' && !Array.isArray(v)) { this.shared.body = v; this.bodyKind = 'json'; }
      } else if (ctype === 'application/x-www-form-urlencoded') {
        const form: Record<string, string | string[]> = {};
        for (const [k, v] of new URLSearchParams(buf.toString('utf8'))) {
          const prev = form[k];
          form[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
        }
        this.shared.body = form; this.bodyKind = 'form';
      }
    } catch { /* not parseable: plugins see no body */ }
    this.bodyInitial = this.bodyKind ? JSON.stringify(this.shared.body) : '';
  }

  bodyChanged(): boolean {
    return this.bodyKind !== null && JSON.stringify(this.shared.body) !== this.bodyInitial;
  }

  /** Serialize a changed body back in its own format, fixing Content-Length upstream. */
  serializeBody(headers: Record<string, string | string[]>): Buffer {
    const body = this.shared.body as Record<string, unknown>;
    let out: Buffer;
    if (this.bodyKind === 'json') out = Buffer.from(JSON.stringify(body));
    else {
      const p = new URLSearchParams();
      for (const [k, v] of Object.entries(body)) for (const one of Array.isArray(v) ? v : [v]) p.append(k, String(one));
      out = Buffer.from(p.toString());
    }
    headers['content-length'] = String(out.length);
    delete headers['transfer-encoding'];
    return out;
  }
}

/** The chain a TLS client presented, leaf first (Node links it through issuerCertificate); null without one. */
function peerCertificateChain(socket: TLSSocket): X509Certificate[] | null {
  if (typeof socket?.getPeerCertificate !== 'function') return null;
  let c: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  if (!c?.raw) return null;
  const chain: X509Certificate[] = [];
  const seen = new Set<string>();
  while (c?.raw && !seen.has(c.fingerprint256)) {
    seen.add(c.fingerprint256);
    chain.push(new X509Certificate(c.raw));
    c = c.issuerCertificate;
  }
  return chain;
}
