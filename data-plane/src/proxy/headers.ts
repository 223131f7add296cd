// Headers on the way up and down (reference/kong-compat.md §3.7–3.8). Every upstream-bound header,
// on the HTTP and the WebSocket path alike, is built by `upstreamRequestHeaders` and, once plugins
// have set theirs, checked by `sealUpstreamHeaders`; the WebSocket path serializes only sealed
// headers (`requestHead`).
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { HTTP_TOKEN, PORTICO_VERSION } from '@portico/shared';
import { IDENTITY_HEADERS } from '@portico/shared/plugins/handlers';

export const VIA_TOKEN = `portico/${PORTICO_VERSION}`;
const VIA_11 = `1.1 ${VIA_TOKEN}`;
const VIA_10 = `1.0 ${VIA_TOKEN}`;
const VIA_2 = `2 ${VIA_TOKEN}`;
export const REQUEST_ID_HEADER = 'x-portico-request-id';

/** RFC 9110 §7.6.1 hop-by-hop headers, plus ones undici refuses to be handed. */
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization',
  'te', 'trailer', 'transfer-encoding', 'upgrade', 'expect', 'host',
]);
/** Not copied upstream: hop-by-hop headers, and identity headers only the gateway may set (a client could spoof them). */
const NOT_FORWARDED = new Set([...HOP_BY_HOP, ...IDENTITY_HEADERS]);

export interface UpstreamHeaderInput {
  req: IncomingMessage;
  requestId: string;
  /** Host header to send upstream. */
  host: string;
  /** The client's Host (or the absolute-form authority), for X-Forwarded-Host. */
  clientHost: string;
  clientIp: string;
  listenPort: number;
  originalPath: string;
  strippedPrefix: string;
  /**
   * nginx's `underscores_in_headers`. Off (the default), client headers whose names hold `_` are
   * not forwarded: WSGI, CGI, PHP and Rack read `X_Consumer_Username` as `X-Consumer-Username`,
   * which would let a client forge the identity headers the gateway sets (probe 2.2).
   */
  underscores: boolean;
  /** The scheme the client used: `https` on the TLS listener. */
  proto?: 'http' | 'https';
  /** The TCP peer is a trusted proxy: the X-Forwarded-Proto/-Host/-Port/-Path/-Prefix it sent are kept (Kong). */
  trustedPeer?: boolean;
}

export function upstreamRequestHeaders(i: UpstreamHeaderInput): Record<string, string | string[]> {
  const src = i.req.headers;
  const out: Record<string, string | string[]> = {};
  const connectionListed = listedInConnection(src);
  // Own keys only: an inherited property (a polluted Object.prototype, issue 9 item 1) is never a
  // header the client sent.
  for (const name of Object.keys(src)) {
    if (NOT_FORWARDED.has(name) || (connectionListed !== null && connectionListed.has(name))) continue;
    if (!i.underscores && name.includes('_')) continue;
    const v = src[name];
    if (v !== undefined) out[name] = v;
  }
  if (typeof src.te === 'string' && /\btrailers\b/i.test(src.te)) out.te = 'trailers';
  out.host = i.host;
  const xff = src['x-forwarded-for'];
  // X-Forwarded-For is appended to (Kong: nginx's $proxy_add_x_forwarded_for, with the client
  // address realip settled on). The other X-Forwarded-* and X-Real-IP are replaced unless the peer
  // is a trusted proxy (Kong's trusted_ips), whose values are kept.
  out['x-forwarded-for'] = xff ? `${Array.isArray(xff) ? xff.join(', ') : xff}, ${i.clientIp}` : i.clientIp;
  const keep = i.trustedPeer === true;
  if (!keep || src['x-forwarded-proto'] === undefined) out['x-forwarded-proto'] = i.proto ?? 'http';
  if (!keep || src['x-forwarded-host'] === undefined) out['x-forwarded-host'] = hostWithoutPort(i.clientHost);
  if (!keep || src['x-forwarded-port'] === undefined) out['x-forwarded-port'] = String(i.listenPort);
  if (!keep || src['x-forwarded-path'] === undefined) out['x-forwarded-path'] = i.originalPath;
  if (!keep || src['x-forwarded-prefix'] === undefined) {
    if (i.strippedPrefix && i.strippedPrefix !== '/') out['x-forwarded-prefix'] = i.strippedPrefix;
    else if (out['x-forwarded-prefix'] !== undefined) delete out['x-forwarded-prefix'];
  }
  out['x-real-ip'] = i.clientIp;
  const via = i.req.httpVersionMajor === 2 ? VIA_2 : i.req.httpVersionMinor === 0 ? VIA_10 : VIA_11;
  out.via = src.via ? `${src.via}, ${via}` : via;
  out[REQUEST_ID_HEADER] = i.requestId;
  return out;
}

function hostWithoutPort(host: string): string {
  const colon = host.lastIndexOf(':');
  return colon > -1 && !host.endsWith(']') ? host.slice(0, colon) : host;
}

function listedInConnection(h: IncomingHttpHeaders): Set<string> | null {
  const c = h.connection;
  if (!c || c === 'keep-alive' || c === 'close') return null;
  return new Set(c.toLowerCase().split(',').map((s) => s.trim()).filter(Boolean));
}

/** Control characters other than HTAB: never valid in a field value (RFC 9110 §5.5). */
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;
/** Anything outside visible ASCII, SP and HTAB. */
const NOT_PLAIN = /[^\t\x20-\x7e]/;
/** RFC 8187 attr-char, the characters an ext-value keeps as they are. */
const NOT_ATTR_CHAR = /[^A-Za-z0-9!#$&+\-.^_`|~]/gu;

const pctByte = (c: string): string => {
  let out = '';
  for (const b of Buffer.from(c, 'utf8')) out += `%${b < 16 ? '0' : ''}${b.toString(16).toUpperCase()}`;
  return out;
};

/**
 * A header value set by the gateway (a consumer's name, a jwt claim) that holds characters outside
 * visible ASCII is sent as an RFC 8187 ext-value: `UTF-8''` and the percent-encoded UTF-8 bytes
 * (`ユーザー` → `UTF-8''%E3%83%A6%E3%83%BC%E3%82%B6%E3%83%BC`). Plain ASCII values are sent as
 * they are. Lone surrogates become U+FFFD.
 */
export function encodeHeaderValue(value: string): string {
  // String.prototype.toWellFormed (Node 20) is not in this project's TypeScript lib yet.
  const wellFormed = (value as string & { toWellFormed(): string }).toWellFormed();
  return `UTF-8''${wellFormed.replace(NOT_ATTR_CHAR, pctByte)}`;
}

/**
 * Header names already seen to be HTTP tokens: the gateway sets the same few on every request
 * (X-Forwarded-*, X-Consumer-*), so each is tested once. Bounded, as names may come from config.
 */
const TOKEN_NAMES = new Set<string>();
const TOKEN_NAMES_MAX = 1024;

/** Why `sealUpstreamHeaders` refused a request: the header's name, never its value. */
export interface HeaderRefusal { name: string; reason: 'name' | 'control' }

/**
 * Makes what plugins set upstream-safe, in place, before anything is sent: a name that is not an
 * HTTP token, or a value holding CR, LF, NUL or another control character, refuses the request
 * (the caller answers 400; nothing goes upstream); a gateway-set value with other non-ASCII
 * characters is encoded by `encodeHeaderValue` rather than failing with a 502 as undici would.
 * Values the client sent itself (identical to its own header) are left as received: Node's parser
 * already refused control characters in them, and their bytes round-trip as latin1.
 */
export function sealUpstreamHeaders(headers: Record<string, string | string[]>, client: IncomingHttpHeaders): HeaderRefusal | null {
  for (const name of Object.keys(headers)) {
    const v = headers[name];
    if (v === client[name]) continue;
    if (!TOKEN_NAMES.has(name)) {
      if (!HTTP_TOKEN.test(name)) return { name, reason: 'name' };
      if (TOKEN_NAMES.size < TOKEN_NAMES_MAX) TOKEN_NAMES.add(name);
    }
    if (typeof v === 'string') {
      if (!NOT_PLAIN.test(v)) continue;
      if (CONTROL.test(v)) return { name, reason: 'control' };
      headers[name] = encodeHeaderValue(v);
    } else if (Array.isArray(v)) {
      for (let k = 0; k < v.length; k++) {
        const one = String(v[k]);
        if (!NOT_PLAIN.test(one)) continue;
        if (CONTROL.test(one)) return { name, reason: 'control' };
        v[k] = encodeHeaderValue(one);
      }
    } else if (v == null) {
      delete headers[name];
    } else {
      headers[name] = String(v);
    }
  }
  return null;
}

/** An HTTP/1.1 request head from sealed headers (the WebSocket path writes it to a raw socket). */
export function requestHead(method: string, target: string, headers: Record<string, string | string[]>): string {
  let head = `${method} ${target} HTTP/1.1\r\n`;
  for (const name of Object.keys(headers)) {
    const v = headers[name];
    if (Array.isArray(v)) for (const one of v) head += `${name}: ${one}\r\n`;
    else head += `${name}: ${v}\r\n`;
  }
  return head + '\r\n';
}

/**
 * A response head the gateway writes itself on a raw socket (answers on the upgrade path).
 * Values holding control characters are left out rather than written: nothing a plugin or a
 * config puts in a header can split the response.
 */
export function responseHead(status: number, reason: string, headers: Record<string, string | number | string[]>): string {
  let head = `HTTP/1.1 ${status} ${reason}\r\n`;
  for (const name of Object.keys(headers)) {
    const v = headers[name];
    if (!HTTP_TOKEN.test(name)) continue;
    for (const one of Array.isArray(v) ? v : [v]) {
      const text = String(one);
      if (!CONTROL.test(text)) head += `${name}: ${text}\r\n`;
    }
  }
  return head + '\r\n';
}

/**
 * Response headers for the client from undici's raw list (`[name, value, …]` as Buffers), minus
 * hop-by-hop ones and those the upstream's Connection names; repeated names become arrays.
 */
export function downstreamHeaders(raw: Buffer[]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  let connection: string | null = null;
  let via: string | null = null;
  for (let k = 0; k < raw.length; k += 2) {
    const name = raw[k].toString('latin1').toLowerCase();
    const value = raw[k + 1].toString('latin1');
    if (name === 'connection') { connection = connection === null ? value : `${connection}, ${value}`; continue; }
    if (name === 'via') { via = via === null ? value : `${via}, ${value}`; continue; }
    if (name === 'host' || name === 'expect' || (HOP_BY_HOP.has(name) && name !== 'proxy-authenticate')) continue;
    const prev = out[name];
    if (prev === undefined) out[name] = value;
    else if (Array.isArray(prev)) prev.push(value);
    else out[name] = [prev, value];
  }
  if (connection !== null && connection !== 'keep-alive' && connection !== 'close') {
    for (const listed of connection.toLowerCase().split(',')) {
      const n = listed.trim();
      if (n && out[n] !== undefined) delete out[n];
    }
  }
  out.via = via ? `${via}, ${VIA_11}` : VIA_11;
  return out;
}
