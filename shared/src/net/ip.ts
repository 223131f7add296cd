// IPv4 and IPv6 addresses and CIDR ranges, parsed by hand over (string, start, end) so the per-request
// paths (a client address, one X-Forwarded-For token) allocate nothing: an address is read into a
// caller's Uint32Array (IPv4: one word; IPv6: four words, most significant first).
//
// Contracts shared by every function here:
// - IPv4 is dotted-quad only, no leading zeros ("010.1.1.1" is refused: 8 or 10 would be a guess).
// - IPv4-mapped IPv6 (::ffff:a.b.c.d) is the IPv4 address: Node reports IPv4 clients of a dual-stack
//   socket that way, and a deny of 1.2.3.4 must not be bypassed by spelling it as IPv6.
// - A zone (fe80::1%eth0) is accepted in addresses and ignored; CIDRs may not carry one.

export type IpVersion = 4 | 6;

/** A parsed range. `words` holds the network (host bits cleared); IPv4 uses words[0] only. */
export interface Cidr {
  version: IpVersion;
  words: Uint32Array;
  prefix: number;
}

const CH_0 = 48, CH_9 = 57, CH_DOT = 46, CH_COLON = 58, CH_LBRACKET = 91;

function hexValue(c: number): number {
  if (c >= CH_0 && c <= CH_9) return c - CH_0;
  if (c >= 97 && c <= 102) return c - 87; // a-f
  if (c >= 65 && c <= 70) return c - 55; // A-F
  return -1;
}

/** Dotted-quad IPv4 in s[start, end) as an unsigned 32-bit number, or -1. */
export function parseIPv4(s: string, start = 0, end = s.length): number {
  let value = 0, octets = 0, i = start;
  while (octets < 4) {
    const first = i;
    let octet = 0;
    while (i < end && i - first < 3) {
      const c = s.charCodeAt(i);
      if (c < CH_0 || c > CH_9) break;
      octet = octet * 10 + (c - CH_0);
      i++;
    }
    const digits = i - first;
    if (digits === 0 || octet > 255 || (digits > 1 && s.charCodeAt(first) === CH_0)) return -1;
    value = value * 256 + octet;
    octets++;
    if (octets < 4) {
      if (i >= end || s.charCodeAt(i) !== CH_DOT) return -1;
      i++;
    }
  }
  return i === end ? value : -1;
}

// Scratch for the eight 16-bit groups of one IPv6 parse. Parsing is synchronous, so one module-level
// buffer is safe and keeps the per-request path allocation-free.
const groups = new Uint16Array(8);

/** IPv6 in s[start, end) into out[0..3]; false when malformed. */
function parseIPv6Into(s: string, start: number, end: number, out: Uint32Array): boolean {
  let n = 0, gap = -1, i = start;
  if (i < end && s.charCodeAt(i) === CH_COLON) {
    if (i + 1 >= end || s.charCodeAt(i + 1) !== CH_COLON) return false;
    gap = 0;
    i += 2;
  }
  while (i < end) {
    if (n >= 8) return false;
    const first = i;
    let v = 0;
    while (i < end) {
      const h = hexValue(s.charCodeAt(i));
      if (h < 0) break;
      v = (v << 4) | h;
      if (++i - first > 4) return false;
    }
    if (i < end && s.charCodeAt(i) === CH_DOT) {
      // A trailing dotted quad fills the last two groups.
      if (n > 6) return false;
      const v4 = parseIPv4(s, first, end);
      if (v4 < 0) return false;
      groups[n++] = v4 >>> 16;
      groups[n++] = v4 & 0xffff;
      i = end;
      break;
    }
    if (i === first) return false;
    groups[n++] = v;
    if (i === end) break;
    if (s.charCodeAt(i) !== CH_COLON) return false;
    i++;
    if (i < end && s.charCodeAt(i) === CH_COLON) {
      if (gap >= 0) return false;
      gap = n;
      i++;
    } else if (i === end) {
      return false;
    }
  }
  if (gap < 0) {
    if (n !== 8) return false;
  } else {
    if (n > 7) return false;
    const tail = n - gap, shift = 8 - n;
    for (let k = tail - 1; k >= 0; k--) groups[gap + shift + k] = groups[gap + k];
    for (let k = gap; k < gap + shift; k++) groups[k] = 0;
  }
  out[0] = ((groups[0] << 16) | groups[1]) >>> 0;
  out[1] = ((groups[2] << 16) | groups[3]) >>> 0;
  out[2] = ((groups[4] << 16) | groups[5]) >>> 0;
  out[3] = ((groups[6] << 16) | groups[7]) >>> 0;
  return true;
}

/**
 * The address in s[start, end) into `out` (needs 4 words): 4 (out[0] set), 6 (out[0..3] set), or 0
 * when it is not an address. IPv4-mapped IPv6 comes back as 4; a `%zone` suffix is ignored.
 */
export function parseIpInto(s: string, start: number, end: number, out: Uint32Array): IpVersion | 0 {
  let colon = false;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c === CH_COLON) { colon = true; break; }
  }
  if (!colon) {
    const v4 = parseIPv4(s, start, end);
    if (v4 < 0) return 0;
    out[0] = v4;
    return 4;
  }
  const zone = s.indexOf('%', start);
  if (zone >= 0 && zone < end) {
    if (zone === end - 1) return 0;
    end = zone;
  }
  if (!parseIPv6Into(s, start, end, out)) return 0;
  if (out[0] === 0 && out[1] === 0 && out[2] === 0xffff) {
    out[0] = out[3];
    return 4;
  }
  return 6;
}

/**
 * `addr`, `addr:port`, `[v6]` or `[v6]:port` in s[start, end) (nginx's ngx_parse_addr_port: one
 * colon means IPv4 with a port, more mean a bare IPv6 address).
 */
export function parseAddrPortInto(s: string, start: number, end: number, out: Uint32Array): IpVersion | 0 {
  if (start < end && s.charCodeAt(start) === CH_LBRACKET) {
    const close = s.indexOf(']', start);
    if (close < 0 || close >= end) return 0;
    if (close + 1 < end && (s.charCodeAt(close + 1) !== CH_COLON || !isPort(s, close + 2, end))) return 0;
    return parseIpInto(s, start + 1, close, out);
  }
  const colon = s.indexOf(':', start);
  if (colon >= 0 && colon < end) {
    const second = s.indexOf(':', colon + 1);
    if (second < 0 || second >= end) {
      if (!isPort(s, colon + 1, end)) return 0;
      end = colon;
    }
  }
  return parseIpInto(s, start, end, out);
}

function isPort(s: string, start: number, end: number): boolean {
  if (start >= end || end - start > 5) return false;
  let p = 0;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c < CH_0 || c > CH_9) return false;
    p = p * 10 + (c - CH_0);
  }
  return p <= 65535;
}

/** Canonical text of an address (IPv4 dotted quad; IPv6 as RFC 5952: lower case, longest zero run as `::`). */
export function formatIp(version: IpVersion, words: ArrayLike<number>): string {
  if (version === 4) {
    const v = words[0];
    return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
  }
  const g: number[] = [];
  for (let w = 0; w < 4; w++) g.push(words[w] >>> 16, words[w] & 0xffff);
  let bestAt = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) { bestAt = i; bestLen = j - i; }
    i = j;
  }
  const hex = (from: number, to: number) => g.slice(from, to).map((x) => x.toString(16)).join(':');
  return bestAt < 0 ? hex(0, 8) : `${hex(0, bestAt)}::${hex(bestAt + bestLen, 8)}`;
}

/** The canonical form of an address, or null when `s` is not one (ports are not accepted here). */
export function canonicalIp(s: string): string | null {
  const out = new Uint32Array(4);
  const v = parseIpInto(s, 0, s.length, out);
  return v === 0 ? null : formatIp(v, out);
}

/** Mask of the first `bits` bits of a 32-bit word (bits clamped to 0..32). */
export function wordMask(bits: number): number {
  if (bits <= 0) return 0;
  if (bits >= 32) return 0xffffffff;
  return (0xffffffff << (32 - bits)) >>> 0;
}

/** An address or CIDR (`10.0.0.0/8`, `2001:db8::/32`, `1.2.3.4`); host bits are cleared. */
export function parseCidr(s: string): Cidr | null {
  const slash = s.indexOf('/');
  const end = slash < 0 ? s.length : slash;
  if (s.indexOf('%') >= 0) return null;
  const words = new Uint32Array(4);
  let version: IpVersion | 0 = 0;
  let mappedFromV6 = false;
  if (s.indexOf(':') >= 0 && s.indexOf(':') < end) {
    if (!parseIPv6Into(s, 0, end, words)) return null;
    version = 6;
    mappedFromV6 = words[0] === 0 && words[1] === 0 && words[2] === 0xffff;
  } else {
    const v4 = parseIPv4(s, 0, end);
    if (v4 < 0) return null;
    words[0] = v4;
    version = 4;
  }
  const max = version === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const digits = s.slice(slash + 1);
    if (!/^(0|[1-9]\d{0,2})$/.test(digits)) return null;
    prefix = Number(digits);
    if (prefix > max) return null;
  }
  // ::ffff:a.b.c.d/96+ is an IPv4 range (addresses are matched as IPv4 after unmapping).
  if (mappedFromV6 && prefix >= 96) {
    words[0] = words[3];
    words[1] = words[2] = words[3] = 0;
    version = 4;
    prefix -= 96;
  }
  const n = version === 4 ? 1 : 4;
  for (let w = 0; w < n; w++) words[w] = (words[w] & wordMask(prefix - 32 * w)) >>> 0;
  return { version, words, prefix };
}

/** Kong's field message for a bad entry, or null when `s` is an address or CIDR. */
export function cidrError(s: string): string | null {
  return parseCidr(s) ? null : `invalid ip or cidr range: '${s}'`;
}

export function formatCidr(c: Cidr): string {
  return `${formatIp(c.version, c.words)}/${c.prefix}`;
}

/** localhost, 127.0.0.0/8 or ::1 (bracketed or not): a host name or address that only this machine reaches. */
export function isLoopbackHost(host: string): boolean {
  const h = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (h.toLowerCase() === 'localhost') return true;
  const words = new Uint32Array(4);
  const v = parseIpInto(h, 0, h.length, words);
  if (v === 4) return words[0] >>> 24 === 127;
  return v === 6 && words[0] === 0 && words[1] === 0 && words[2] === 0 && words[3] === 1;
}

/** A Host header without its port, lower-cased (`[::1]:8000` → `[::1]`). */
export function hostOf(hostHeader: string): string {
  const colon = hostHeader.lastIndexOf(':');
  return (colon > -1 && !hostHeader.endsWith(']') ? hostHeader.slice(0, colon) : hostHeader).toLowerCase();
}
