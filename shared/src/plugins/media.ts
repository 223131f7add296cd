// Media types (RFC 9110 §8.3.1): what the DP's body phase and the request validator read from a
// Content-Type. Type, subtype and parameter names are case-insensitive; so is a charset's value.

/** The media type of a Content-Type value, lower-case, without parameters. */
export function mediaType(contentType: string | string[] | undefined): string {
  const v = Array.isArray(contentType) ? contentType[0] : contentType;
  if (v === undefined) return '';
  const semi = v.indexOf(';');
  return (semi < 0 ? v : v.slice(0, semi)).trim().toLowerCase();
}

/** `application/json` and the structured `+json` types (RFC 6839), as Kong 3.4+. */
export function isJsonType(media: string): boolean {
  return media === 'application/json' || (media.startsWith('application/') && media.endsWith('+json'));
}

export interface MediaType {
  /** `type/subtype`, lower-case. */
  type: string;
  /** Parameters by lower-case name; a charset's value lower-case, quotes removed. */
  params: Record<string, string>;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** A Content-Type parsed, or null when it is not `type/subtype` followed by `; name=value` parameters. */
export function parseMediaType(value: string): MediaType | null {
  const [head, ...rest] = value.split(';');
  const type = head.trim().toLowerCase();
  const slash = type.indexOf('/');
  if (slash <= 0 || !TOKEN.test(type.slice(0, slash)) || !TOKEN.test(type.slice(slash + 1))) return null;
  const params: Record<string, string> = Object.create(null);
  for (const p of rest) {
    if (p.trim() === '') continue;
    const eq = p.indexOf('=');
    if (eq < 0) return null;
    const name = p.slice(0, eq).trim().toLowerCase();
    let v = p.slice(eq + 1).trim();
    if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
    if (!TOKEN.test(name)) return null;
    params[name] = name === 'charset' ? v.toLowerCase() : v;
  }
  return { type, params };
}
