import { z } from 'zod';
import { isIP } from 'node:net';
import { bool, foreign, httpToken, int, MAX_NAME_LENGTH, oneOf, opt, set, tags, text, timestamp, utf8Name, uuid } from './fields.ts';
import { normalizePath } from './path.ts';
import { LRUCache } from 'lru-cache';
import { SafeRegex } from '../regex/index.ts';

export const ROUTE_PROTOCOLS = ['grpc', 'grpcs', 'http', 'https', 'tcp', 'tls', 'tls_passthrough', 'udp'] as const;

/**
 * Compiled route regexes by pattern, failures included. Every snapshot is validated and compiled
 * whole on each config change, and an RE2 compile costs ~20 µs (10k regex paths added ~230 ms to
 * each decode, measured): unchanged patterns are compiled once, by whichever of validation (CP and
 * DP) or the router (DP) meets them first. SafeRegex holds no per-match state, so sharing is safe.
 */
const compiled = new LRUCache<string, SafeRegex | SyntaxError>({ max: 50_000 });
function compileCached(key: string, source: string, opts: { caseInsensitive?: boolean; anchorStart?: boolean }): SafeRegex {
  let hit = compiled.get(key);
  if (hit === undefined) {
    try { hit = new SafeRegex(source, opts); } catch (err) { hit = err instanceof SyntaxError ? err : new SyntaxError(String(err)); }
    compiled.set(key, hit);
  }
  if (hit instanceof SyntaxError) throw hit;
  return hit;
}

/**
 * Compile a route's `~` path the way the DP matches it: anchored at the start only (§3.2), on the
 * linear-time engine. Throws a SyntaxError for what RE2 refuses (backreferences, lookaround).
 */
export function compileRoutePathRegex(source: string): SafeRegex {
  return compileCached('p' + source, source, { anchorStart: true });
}

/** Compile a route header rule's `~*` regex (without the prefix): case-insensitive, unanchored. */
export function compileHeaderRegex(source: string): SafeRegex {
  return compileCached('h' + source, source, { caseInsensitive: true });
}

/** RE2's reason a pattern cannot compile, or null. */
function compileError(compile: (source: string) => SafeRegex, source: string): string | null {
  try { compile(source); return null; } catch (err) { return (err as Error).message; }
}

/** Kong's message for a pattern its engine refuses; ours names RE2's reason. */
const regexIssue = (source: string, reason: string) => `invalid regex: '${source}' (RE2 returned: ${reason})`;

const routePath = () =>
  text().superRefine((v, ctx) => {
    if (v.startsWith('~')) {
      const err = compileError(compileRoutePathRegex, v.slice(1));
      if (err) ctx.addIssue({ code: 'custom', message: regexIssue(v.slice(1), err) });
      return;
    }
    if (!v.startsWith('/')) { ctx.addIssue({ code: 'custom', message: 'should start with: / (fixed path) or ~/ (regex path)' }); return; }
    if (v.includes('//')) { ctx.addIssue({ code: 'custom', message: 'must not have empty segments' }); return; }
    if (/%(?![0-9a-fA-F]{2})/.test(v)) { ctx.addIssue({ code: 'custom', message: 'invalid url-encoded value' }); return; }
    const normalized = normalizePath(v);
    if (normalized !== v) ctx.addIssue({ code: 'custom', message: `non-normalized path, consider use '${normalized}' instead` });
  }).meta({ starts_with: '/' });

const LABEL = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)$/;
const routeHost = () =>
  z.string().superRefine((v, ctx) => {
    if (v.length > MAX_NAME_LENGTH) { ctx.addIssue({ code: 'custom', message: `length must be at most ${MAX_NAME_LENGTH}` }); return; }
    const [name, port, ...more] = v.split(':');
    if (more.length || (port !== undefined && !/^\d{1,5}$/.test(port))) {
      ctx.addIssue({ code: 'custom', message: `invalid port number` }); return;
    }
    const labels = name.split('.');
    const stars = labels.filter((l) => l === '*').length;
    if (stars > 1) { ctx.addIssue({ code: 'custom', message: 'invalid wildcard: must have at most one wildcard' }); return; }
    if (stars === 1 && labels[0] !== '*' && labels[labels.length - 1] !== '*') {
      ctx.addIssue({ code: 'custom', message: 'invalid wildcard: must be placed at leftmost or rightmost label' }); return;
    }
    if (labels.length === 1 && stars === 1) { ctx.addIssue({ code: 'custom', message: `invalid hostname: ${v}` }); return; }
    if (name.includes('*') && stars === 0) { ctx.addIssue({ code: 'custom', message: 'invalid wildcard: must be placed at leftmost or rightmost label' }); return; }
    for (const l of labels) {
      if (l !== '*' && !LABEL.test(l)) { ctx.addIssue({ code: 'custom', message: `invalid hostname: ${v}` }); return; }
    }
  });

const method = () => z.string().max(32, 'length must be at most 32').regex(/^[A-Z]+$/, 'invalid value');

/** Header rules: names are RFC 9110 tokens (a space, CRLF, `:authority` or `constructor` can never be a rule). */
const routeHeaders = () =>
  z.record(httpToken(), z.array(text()).min(1, 'length must be at least 1')).superRefine((h, ctx) => {
    for (const name of Object.keys(h)) {
      if (name.toLowerCase() === 'host') {
        ctx.addIssue({ code: 'custom', path: [name], message: "cannot contain 'host' header, which must be specified in the 'hosts' attribute" });
      }
      for (const value of h[name]) {
        if (!value.startsWith('~*')) continue;
        const err = compileError(compileHeaderRegex, value.slice(2));
        if (err) ctx.addIssue({ code: 'custom', path: [name], message: regexIssue(value.slice(2), err) });
      }
    }
  });

/** `ip` as Kong's `ip_or_cidr`: an address, or an address with a prefix length. */
const ipOrCidr = () =>
  z.string().max(64, 'length must be at most 64').superRefine((v, ctx) => {
    const [addr, bits, ...more] = v.split('/');
    const family = isIP(addr);
    const max = family === 4 ? 32 : 128;
    if (!family || more.length || (bits !== undefined && (!/^\d{1,3}$/.test(bits) || Number(bits) > max))) {
      ctx.addIssue({ code: 'custom', message: `invalid ip or cidr range: '${v}'` });
    }
  });
/** Stream routes' `sources`/`destinations` entries, as Kong's: `{ ip?, port? }`, at least one set. */
const streamEndpoint = () =>
  z.strictObject({ ip: opt(ipOrCidr()), port: opt(int(0, 65535)) }).superRefine((e, ctx) => {
    if (e.ip == null && e.port == null) {
      ctx.addIssue({ code: 'custom', path: ['@entity'], message: "at least one of these fields must be non-empty: 'ip', 'port'" });
    }
  });

/** A route: the rules that select requests for a service (reference/kong-compat.md §2.2). */
export const routeSchema = z.strictObject({
  id: uuid().describe('Primary key, generated when absent'),
  created_at: timestamp().describe('Creation time, seconds since the epoch'),
  updated_at: timestamp().describe('Last update time, seconds since the epoch'),
  name: opt(utf8Name()).describe('Unique name; usable in place of the id in admin paths'),
  protocols: set(oneOf(ROUTE_PROTOCOLS)).default(['http', 'https']).describe('Protocols this route accepts'),
  methods: opt(set(method())).describe('HTTP methods that match'),
  hosts: opt(z.array(routeHost())).describe('Host header values that match; `*` as leftmost or rightmost label'),
  paths: opt(z.array(routePath())).describe('Path prefixes, or regexes starting with `~`'),
  headers: opt(routeHeaders()).describe('Header values that must match (`~*` prefix: regex)'),
  snis: opt(set(text(MAX_NAME_LENGTH))).describe('TLS SNI names that match'),
  query: opt(z.record(httpToken('bad query argument name'), z.array(text()).min(1, 'length must be at least 1'))).describe("Portico: query arguments that must match, any listed value per name ('*': present with any value)"),
  sources: opt(set(streamEndpoint())).describe('Stream routes: source addresses'),
  destinations: opt(set(streamEndpoint())).describe('Stream routes: destination addresses'),
  https_redirect_status_code: z.union([z.literal(426), z.literal(301), z.literal(302), z.literal(307), z.literal(308)], { error: 'expected one of: 426, 301, 302, 307, 308' }).default(426).describe('Status used when an http request hits an https-only route'),
  regex_priority: int(-(2 ** 31), 2 ** 31 - 1).default(0).describe('Priority among regex routes; higher wins'),
  strip_path: bool().default(true).describe('Strip the matched prefix before proxying'),
  path_handling: oneOf(['v0', 'v1']).default('v0').describe('Path handling algorithm (v0 only is implemented)'),
  preserve_host: bool().default(false).describe('Forward the client Host header upstream'),
  request_buffering: bool().default(true).describe('Kong compatibility; Portico always streams'),
  response_buffering: bool().default(true).describe('Kong compatibility; Portico always streams'),
  service: foreign().describe('The service this route proxies to'),
  tags: tags().describe('Free-form tags for filtering'),
}).superRefine((r, ctx) => {
  const isHttp = r.protocols.some((p) => p === 'http' || p === 'https');
  if (isHttp) {
    const none = [r.methods, r.hosts, r.headers, r.paths, r.query].every((v) => v == null || (Array.isArray(v) ? v.length === 0 : Object.keys(v).length === 0))
      && (r.snis == null || r.snis.length === 0 || !r.protocols.includes('https'));
    if (none) {
      const msg = r.protocols.includes('https')
        ? "must set one of 'methods', 'hosts', 'headers', 'paths', 'snis' when 'protocols' is 'https'"
        : "must set one of 'methods', 'hosts', 'headers', 'paths' when 'protocols' is 'http'";
      ctx.addIssue({ code: 'custom', path: ['@entity'], message: msg });
    }
    if (r.snis?.length && !r.protocols.includes('https')) {
      ctx.addIssue({ code: 'custom', path: ['snis'], message: "'snis' can only be set when 'protocols' is 'grpcs', 'https', 'tls' or 'tls_passthrough'" });
    }
  }
  const groups = [['http', 'https'], ['tcp', 'tls', 'udp'], ['tls_passthrough'], ['grpc', 'grpcs']];
  const used = groups.filter((g) => r.protocols.some((p) => g.includes(p)));
  if (used.length > 1) {
    ctx.addIssue({ code: 'custom', path: ['protocols'], message: "these sets are mutually exclusive: ('http', 'https'), ('tcp', 'tls', 'udp'), ('tls_passthrough'), ('grpc', 'grpcs')" });
  }
}).meta({
  // Kong's route check, as `GET /schemas/routes` shows it (paths listed first: the usual matcher).
  entity_checks: [{
    conditional_at_least_one_of: {
      if_field: 'protocols', if_match: { elements: { type: 'string', one_of: ['http', 'https'] } },
      then_at_least_one_of: ['paths', 'methods', 'hosts', 'headers', 'snis'],
    },
  }],
});
export type Route = z.infer<typeof routeSchema>;
