// Headers on the way up and down (reference/kong-compat.md §3.7–3.8).
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { PORTICO_VERSION } from '@portico/shared';
import { IDENTITY_HEADERS } from '@portico/shared/plugins/handlers';

export const VIA_TOKEN = `portico/${PORTICO_VERSION}`;
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
  clientIp: string;
  listenPort: number;
  originalPath: string;
  strippedPrefix: string;
}

export function upstreamRequestHeaders(i: UpstreamHeaderInput): Record<string, string | string[]> {
  const src = i.req.headers;
  const out: Record<string, string | string[]> = {};
  const connectionListed = listedInConnection(src);
  for (const name in src) {
    if (NOT_FORWARDED.has(name) || (connectionListed && connectionListed.has(name))) continue;
    const v = src[name];
    if (v !== undefined) out[name] = v;
  }
  if (typeof src.te === 'string' && /\btrailers\b/i.test(src.te)) out.te = 'trailers';
  out.host = i.host;
  const xff = src['x-forwarded-for'];
  out['x-forwarded-for'] = xff ? `${Array.isArray(xff) ? xff.join(', ') : xff}, ${i.clientIp}` : i.clientIp;
  // Client-sent X-Forwarded-* are not trusted (Kong's default, no trusted_ips): replaced.
  out['x-forwarded-proto'] = 'http';
  out['x-forwarded-host'] = (src.host ?? '').replace(/:\d+$/, '');
  out['x-forwarded-port'] = String(i.listenPort);
  out['x-forwarded-path'] = i.originalPath;
  if (i.strippedPrefix && i.strippedPrefix !== '/') out['x-forwarded-prefix'] = i.strippedPrefix;
  else if (out['x-forwarded-prefix'] !== undefined) delete out['x-forwarded-prefix'];
  out['x-real-ip'] = i.clientIp;
  const via = `${i.req.httpVersion} ${VIA_TOKEN}`;
  out.via = src.via ? `${src.via}, ${via}` : via;
  out[REQUEST_ID_HEADER] = i.requestId;
  return out;
}

function listedInConnection(h: IncomingHttpHeaders): Set<string> | null {
  const c = h.connection;
  if (!c || c === 'keep-alive' || c === 'close') return null;
  return new Set(c.toLowerCase().split(',').map((s) => s.trim()).filter(Boolean));
}

/** Copy upstream response headers minus hop-by-hop ones. */
export function downstreamHeaders(upstream: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const connectionListed = typeof upstream.connection === 'string' && upstream.connection !== 'keep-alive' && upstream.connection !== 'close'
    ? new Set(upstream.connection.toLowerCase().split(',').map((s) => s.trim())) : null;
  for (const name in upstream) {
    if (name === 'host' || name === 'expect' || (HOP_BY_HOP.has(name) && name !== 'proxy-authenticate')) continue;
    if (connectionListed?.has(name)) continue;
    const v = upstream[name];
    if (v !== undefined) out[name] = v;
  }
  out.via = upstream.via ? `${upstream.via}, 1.1 ${VIA_TOKEN}` : `1.1 ${VIA_TOKEN}`;
  return out;
}
