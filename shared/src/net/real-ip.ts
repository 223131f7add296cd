// The client's address as Kong sees it (trusted_ips, real_ip_header, real_ip_recursive), which are
// nginx's realip module: a header is believed only when the TCP peer is a trusted proxy. Then the
// header is read from the right, one comma-separated address at a time; without recursion the
// rightmost address is the client, with recursion trusted addresses are skipped and the first
// untrusted one is the client (the leftmost if all are trusted). A token that is not an address
// stops the walk at the last good one (nginx's ngx_http_get_forwarded_addr).
// So a client that is not a trusted proxy can never choose its own address by sending
// X-Forwarded-For or X-Real-IP.
import type { IncomingHttpHeaders } from 'node:http';
import { formatIp, parseAddrPortInto } from './ip.ts';
import type { IpMatcher } from './matcher.ts';

export interface RealIpOptions {
  /** Proxies whose headers are believed (PORTICO_TRUSTED_IPS). Empty: no header is ever believed. */
  trustedIps: IpMatcher;
  /** Header carrying the client address, lower case (PORTICO_REAL_IP_HEADER, default x-real-ip). */
  realIpHeader: string;
  /** Skip trusted addresses from the right of the header (PORTICO_REAL_IP_RECURSIVE). */
  recursive: boolean;
}

const scratch = new Uint32Array(4);
const CH_SPACE = 32, CH_COMMA = 44;

/** The TCP peer without the `::ffff:` prefix Node gives IPv4 clients of a dual-stack socket. */
export function peerAddress(socketAddress: string): string {
  return socketAddress.startsWith('::ffff:') && socketAddress.indexOf('.') > 0 ? socketAddress.slice(7) : socketAddress;
}

/**
 * The client address for this request. Costs one matcher lookup when nothing is trusted or the
 * peer is not trusted; allocates only the returned string when a header address is used.
 */
export function realClientIp(socketAddress: string, headers: IncomingHttpHeaders, options: RealIpOptions): string {
  const peer = peerAddress(socketAddress);
  const { trustedIps } = options;
  if (trustedIps.isEmpty || !trustedIps.contains(peer)) return peer;
  return addressFromHeader(peer, headers, options);
}

/** The client address a trusted peer's header names (`peer` when it names none). */
export function addressFromHeader(peer: string, headers: IncomingHttpHeaders, options: RealIpOptions): string {
  const { trustedIps } = options;
  const raw = headers[options.realIpHeader];
  const value = typeof raw === 'string' ? raw : Array.isArray(raw) ? raw.join(', ') : '';
  let end = value.length;
  let foundStart = -1, foundEnd = -1;
  for (;;) {
    while (end > 0 && (value.charCodeAt(end - 1) === CH_SPACE || value.charCodeAt(end - 1) === CH_COMMA)) end--;
    if (end === 0) break;
    let start = end;
    while (start > 0 && value.charCodeAt(start - 1) !== CH_SPACE && value.charCodeAt(start - 1) !== CH_COMMA) start--;
    const version = parseAddrPortInto(value, start, end, scratch);
    if (version === 0) break;
    foundStart = start;
    foundEnd = end;
    if (!options.recursive || start === 0 || !trustedIps.containsParsed(version, scratch)) break;
    end = start;
  }
  if (foundStart < 0) return peer;
  const version = parseAddrPortInto(value, foundStart, foundEnd, scratch);
  return formatIp(version as 4 | 6, scratch);
}
