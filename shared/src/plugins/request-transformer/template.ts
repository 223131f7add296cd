// request-transformer's value templates: `$(headers.x)`, `$(headers["x-y"])`, `$(query_params.x)`,
// `$(uri_captures.name)`, `$(uri_captures[1])`, `$(shared.x)` (Kong), and beyond Kong
// `$(consumer.username)`, `$(consumer.id)`, `$(consumer.custom_id)`, `$(jwt.claim.<name>)` (a claim of
// the token the jwt plugin verified; a string as is, anything else as JSON), `$(request_id)`. Kong evaluates
// any Lua expression there; only these lookups are accepted, checked at write time (`templateError`)
// and compiled once per snapshot (`compileTemplate`), so a request only concatenates.
//
// Headers are read from what goes upstream (the client's, plus what earlier plugins set: a consumer's
// X-Consumer-Username, a correlation id), except Host, which is the client's.
//
// Something absent renders as '' (Kong's Penlight templates render `tostring(x or '')`). A header
// sent several times renders its values joined with ', ' (one field value, RFC 9110 §5.3); a
// query argument given several times renders its first value.
import type { ProxyContext } from '../types.ts';

type Source = 'headers' | 'query_params' | 'uri_captures' | 'shared' | 'consumer' | 'jwt' | 'request_id';
/** One lookup: where, and the key (a header name already lower-cased, a capture number as a string). */
export interface Lookup { source: Source; key: string; index: number }
/** Literal text and lookups, alternating: parts[0] text, parts[1] lookup, parts[2] text, … */
export type Template = ReadonlyArray<string | Lookup>;

const ROOT = /^[A-Za-z_][A-Za-z0-9_]*/;
const KNOWN = new Set(['headers', 'query_params', 'uri_captures', 'shared', 'consumer', 'jwt', 'request_id']);
const JWT_CLAIM = /^jwt\.claim\.([A-Za-z_][A-Za-z0-9_:.-]*)$|^jwt\.claim\[\s*(?:"([^"]*)"|'([^']*)')\s*\]$/;
const DOTTED = /^([a-z_]+)\.([A-Za-z_][A-Za-z0-9_-]*)$/;
const BRACKETED = /^([a-z_]+)\[\s*(?:"([^"]*)"|'([^']*)'|(\d+))\s*\]$/;
const CONSUMER_FIELDS = new Set(['id', 'username', 'custom_id']);

export function parseLookup(expr: string): Lookup | string {
  const e = expr.trim();
  if (e === 'request_id') return { source: 'request_id', key: '', index: -1 };
  const root = ROOT.exec(e)?.[0];
  if (root !== undefined && !KNOWN.has(root)) {
    return `unknown template variable '${root}' in '${e}' (known: headers, query_params, uri_captures, shared, consumer, jwt, request_id)`;
  }
  if (root === 'jwt') {
    const m = JWT_CLAIM.exec(e);
    return m === null ? `unsupported template expression '${e}': write jwt.claim.<name>` : { source: 'jwt', key: m[1] ?? m[2] ?? m[3], index: -1 };
  }
  let source: string, key: string, index = -1;
  const d = DOTTED.exec(e);
  const b = d ? null : BRACKETED.exec(e);
  if (d) { source = d[1]; key = d[2]; }
  else if (b) {
    source = b[1];
    key = b[2] ?? b[3] ?? b[4];
    if (b[4] !== undefined) index = Number(b[4]);
  } else return `unsupported template expression '${e}'`;
  switch (source) {
    case 'headers':
      if (index >= 0) return `unsupported template expression '${e}'`;
      // ngx.req.get_headers() lookups: case-insensitive, `_` read as `-` (so `headers.x_api_key`).
      return { source, key: key.toLowerCase().replace(/_/g, '-'), index };
    case 'query_params': case 'shared':
      if (index >= 0) return `unsupported template expression '${e}'`;
      return { source, key, index };
    case 'uri_captures':
      if (index === 0) return `unsupported template expression '${e}': captures are numbered from 1`;
      return { source, key, index };
    case 'consumer':
      if (!CONSUMER_FIELDS.has(key) || index >= 0) return `unsupported template expression '${e}': consumer has id, username and custom_id`;
      return { source, key, index };
    default:
      return `unsupported template expression '${e}'`;
  }
}

/** Why `value` is not a valid template, or null. Unbalanced `$(` is refused rather than sent as text. */
export function templateError(value: string): string | null {
  const t = compileTemplate(value);
  return typeof t === 'string' ? t : null;
}

/** The compiled template, or an error message. A value without `$(` compiles to `[value]`. */
export function compileTemplate(value: string): Template | string {
  return splitTemplate(value, parseLookup);
}

/**
 * Literal text and `$(…)` expressions, alternating, each expression parsed by `parse` (an error
 * message refuses the whole value). Shared by templates that add their own variables (aggregator legs).
 */
export function splitTemplate<L extends object>(value: string, parse: (expr: string) => L | string): Array<string | L> | string {
  const parts: Array<string | L> = [];
  let last = 0;
  for (let start = value.indexOf('$('); start >= 0; start = value.indexOf('$(', last)) {
    // The expression runs to the matching parenthesis (Penlight's `%b()`).
    let depth = 1, end = start + 2;
    for (; end < value.length && depth > 0; end++) {
      if (value[end] === '(') depth++;
      else if (value[end] === ')') depth--;
    }
    if (depth > 0) return `unterminated template expression in '${value}'`;
    const lookup = parse(value.slice(start + 2, end - 1));
    if (typeof lookup === 'string') return lookup;
    parts.push(value.slice(last, start), lookup);
    last = end;
  }
  parts.push(value.slice(last));
  return parts;
}

export const isLiteral = (t: Template): boolean => t.length === 1;

export function lookup(l: Lookup, ctx: ProxyContext): string {
  switch (l.source) {
    case 'headers': {
      // Host is the client's (Kong's request headers), not the one computed for the upstream.
      const v = l.key === 'host' ? ctx.headers.host : ctx.upstreamHeaders[l.key];
      return v === undefined ? '' : typeof v === 'string' ? v : v.join(', ');
    }
    case 'query_params': return ctx.hasQuery() ? ctx.query().get(l.key) ?? '' : '';
    case 'uri_captures': {
      const c = ctx.uriCaptures;
      if (c === null) return '';
      return (l.index > 0 ? c.unnamed[l.index - 1] : c.named[l.key]) ?? '';
    }
    case 'shared': {
      const v = ctx.shared[l.key];
      return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : '';
    }
    case 'consumer': {
      const c = ctx.consumer;
      const v = c === null ? null : l.key === 'id' ? c.id : l.key === 'username' ? c.username : c.custom_id;
      return v ?? '';
    }
    case 'jwt': {
      const v = ctx.jwtClaims?.[l.key];
      return v === undefined || v === null ? '' : typeof v === 'string' ? v : JSON.stringify(v);
    }
    case 'request_id': return ctx.requestId;
  }
}

export function render(t: Template, ctx: ProxyContext): string {
  let out = t[0] as string;
  for (let i = 1; i < t.length; i += 2) out += lookup(t[i] as Lookup, ctx) + (t[i + 1] as string);
  return out;
}
