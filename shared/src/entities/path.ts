// Request-path normalization as Kong's router does it (reference/kong-compat.md §3.1): percent-encoded
// unreserved characters decoded, reserved ones kept encoded with upper-case hex, dot segments
// resolved (RFC 3986 §5.2.4) and `//` merged. Shared so the CP validates route paths with the very
// function the DP matches requests with.

// RFC 3986 §2.2 reserved characters stay encoded; so do control, space and non-ASCII bytes, which
// would otherwise turn into raw bytes in a JS string.
function keepEncoded(code: number): boolean {
  if (code < 0x21 || code >= 0x7f) return true;
  return ":/?#[]@!$&'()*+,;=%".includes(String.fromCharCode(code));
}

function decodeSafe(path: string): string {
  if (!path.includes('%')) return path;
  return path.replace(/%([0-9a-fA-F]{2})/g, (m, hex: string) => {
    const code = parseInt(hex, 16);
    return keepEncoded(code) ? `%${hex.toUpperCase()}` : String.fromCharCode(code);
  });
}

/** RFC 3986 §5.2.4 remove_dot_segments, with empty segments merged first. */
function removeDotSegments(path: string): string {
  const segments = path.split('/');
  const out: string[] = [];
  const trailing = segments.length > 1 && ['', '.', '..'].includes(segments[segments.length - 1]);
  for (const seg of segments) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') { out.pop(); continue; }
    out.push(seg);
  }
  let result = '/' + out.join('/');
  if (trailing && out.length > 0) result += '/';
  return result;
}

export function normalizePath(raw: string): string {
  const decoded = decodeSafe(raw);
  if (!decoded.includes('//') && !decoded.includes('/.')) return decoded.startsWith('/') ? decoded : '/' + decoded;
  return removeDotSegments(decoded);
}

const SAFE = /[^A-Za-z0-9\-._~!$&'()*+,;=:@/%]/g;
/** Re-escape characters outside RFC 3986's path set before sending upstream. */
export function escapePath(path: string): string {
  return SAFE.test(path) ? path.replace(SAFE, (c) => encodeURIComponent(c)) : path;
}
