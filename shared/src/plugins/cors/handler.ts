// cors (reference/kong-compat.md §4.6), as Kong's handler.lua: preflights (OPTIONS + Origin +
// Access-Control-Request-Method) are answered by the gateway with 200 and no body unless
// preflight_continue; other responses get Access-Control-Allow-Origin (+ credentials, exposed
// headers) in the response phase, Kong's header_filter. Origins are compiled once per snapshot:
// exact entries are normalized into a Set, regex entries compiled on RE2 (SafeRegex).
//
// Allow-Origin is never `*` together with Allow-Credentials: with credentials and an any-origin
// config, the request's Origin is echoed and `Vary: Origin` added (Kong's configure_credentials).
import { SafeRegex } from '../../regex/index.ts';
import { rawBodyExit } from '../exits.ts';
import type { AccessResult, PluginHandler, ProxyContext } from '../types.ts';
import { cors, type CorsConfig } from './schema.ts';

type Headers = Record<string, string | string[]>;

interface State {
  /** origins unset or ['*']: `*` without Vary. */
  anyOrigin: boolean;
  /** One exact origin: always sent as is. */
  single: string | null;
  /** `*` among several entries: any origin, once Vary is set (Kong checks it per request). */
  starInList: boolean;
  exact: Set<string>;
  regexes: SafeRegex[];
  /** Per regex: match the Origin's host only (the entry has no ':'), else scheme://host[:port]. */
  regexByHost: boolean[];
  methods: string;
  allowHeaders: string | null;
  exposeHeaders: string | null;
  maxAge: string | null;
  /**
   * Origin → Allow-Origin value (null: not allowed). A page's origin repeats on every request, and
   * an RE2 regex costs microseconds where a Map lookup costs nanoseconds. Bounded: emptied when
   * full, so a client sending random Origins costs what an uncached lookup costs, never memory.
   */
  decided: Map<string, string | null>;
}

const DECIDED_ORIGINS_MAX = 1024;

const ACAO = 'access-control-allow-origin';
const ACAC = 'access-control-allow-credentials';

// An origin entry is a regex when it has a character outside these (Kong's test).
const LITERAL_ORIGIN = /^[A-Za-z0-9.:/-]+$/;

// Bounds of an Origin's parts as LuaSocket's url.parse reads them (Kong normalizes with it), kept in
// module variables so one normalization allocates nothing unless the origin must be rewritten.
let schemeEnd = 0, hostStart = 0, hostEnd = 0, portStart = -1, authorityEnd = 0;

function isSchemeChar(c: number, first: boolean): boolean {
  const alpha = (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
  return first ? alpha : alpha || (c >= 48 && c <= 57) || c === 43 || c === 45 || c === 46;
}

/** False when `o` has no scheme://authority (then Kong uses it unchanged). */
function scanOrigin(o: string): boolean {
  const sep = o.indexOf('://');
  if (sep <= 0) return false;
  for (let i = 0; i < sep; i++) if (!isSchemeChar(o.charCodeAt(i), i === 0)) return false;
  let start = sep + 3, end = o.length;
  for (let j = start; j < o.length; j++) {
    const c = o.charCodeAt(j);
    if (c === 47 || c === 63 || c === 35) { end = j; break; } // / ? #
  }
  const at = o.lastIndexOf('@', end - 1);
  if (at >= start) start = at + 1;
  let colon = -1;
  for (let j = end - 1; j >= start; j--) {
    const c = o.charCodeAt(j);
    if (c === 58) { colon = j; break; }
    if (c === 93) break; // ] closes an IPv6 literal: no port after it
  }
  schemeEnd = sep; hostStart = start; authorityEnd = end;
  hostEnd = colon >= 0 ? colon : end;
  portStart = colon >= 0 ? colon + 1 : -1;
  return true;
}

/** scheme://host[:port] without userinfo, path or the scheme's default port (Kong's normalize_origin). */
export function normalizeOrigin(o: string): string {
  if (!scanOrigin(o)) return o;
  const port = portStart >= 0 ? o.slice(portStart, authorityEnd) : null;
  const defaultPort = (schemeEnd === 4 && port === '80' && o.startsWith('http')) || (schemeEnd === 5 && port === '443' && o.startsWith('https'));
  if (hostStart === schemeEnd + 3 && authorityEnd === o.length && !defaultPort) return o;
  return o.slice(0, schemeEnd + 3) + o.slice(hostStart, hostEnd) + (port !== null && !defaultPort ? ':' + port : '');
}

function originHost(o: string): string {
  return scanOrigin(o) ? o.slice(hostStart, hostEnd) : o;
}

function addVary(h: Headers): void {
  const v = h.vary;
  h.vary = v === undefined ? 'Origin' : Array.isArray(v) ? [...v, 'Origin'] : `${v}, Origin`;
}

function clear(h: Headers, name: string): void {
  if (h[name] !== undefined) delete h[name];
}

/** The Allow-Origin value for a listed origin (Kong sends it normalized), or null. */
function allowedOrigin(state: State, origin: string): string | null {
  const domain = normalizeOrigin(origin);
  if (state.exact.has(domain)) return domain;
  let host: string | null = null;
  for (let i = 0; i < state.regexes.length; i++) {
    if (state.regexes[i].test(state.regexByHost[i] ? (host ??= originHost(origin)) : domain)) return domain;
  }
  return null;
}

/**
 * Kong's configure_origin: sets or clears Allow-Origin in `h`; true when any origin is allowed.
 * `appendVary`: the response phase adds to the upstream's Vary; a preflight sets it.
 */
function configureOrigin(state: State, h: Headers, origin: string | undefined, appendVary: boolean): boolean {
  if (state.anyOrigin) { h[ACAO] = '*'; return true; }
  if (appendVary) addVary(h); else h.vary = 'Origin';
  if (state.single !== null) { h[ACAO] = state.single; return false; }
  if (origin) {
    if (state.starInList) { h[ACAO] = '*'; return true; }
    let allowed = state.decided.get(origin);
    if (allowed === undefined) {
      allowed = allowedOrigin(state, origin);
      if (state.decided.size >= DECIDED_ORIGINS_MAX) state.decided.clear();
      state.decided.set(origin, allowed);
    }
    if (allowed !== null) { h[ACAO] = allowed; return false; }
  }
  clear(h, ACAO);
  return false;
}

/** Kong's configure_credentials. */
function configureCredentials(config: CorsConfig, allowAll: boolean, h: Headers, origin: string | undefined, appendVary: boolean): void {
  if (!config.credentials) return;
  if (!allowAll) { h[ACAC] = 'true'; return; }
  // `*` cannot go with credentials: echo the requesting origin instead.
  if (origin) {
    if (appendVary) addVary(h); else h.vary = 'Origin';
    h[ACAO] = origin;
    h[ACAC] = 'true';
  }
}

function originOf(ctx: ProxyContext): string | undefined {
  return ctx.headers.origin || undefined;
}

function isPreflight(ctx: ProxyContext): boolean {
  return ctx.method === 'OPTIONS' && !!ctx.headers.origin && !!ctx.headers['access-control-request-method'];
}

export const corsHandler: PluginHandler<CorsConfig, State> = {
  name: cors.name,
  priority: cors.priority,
  init(config) {
    const origins = config.origins ?? [];
    const state: State = {
      anyOrigin: origins.length === 0 || (origins.length === 1 && origins[0] === '*'),
      single: origins.length === 1 && LITERAL_ORIGIN.test(origins[0]) ? origins[0] : null,
      starInList: origins.includes('*'),
      exact: new Set(), regexes: [], regexByHost: [], decided: new Map(),
      methods: config.methods.join(','),
      allowHeaders: config.headers && config.headers.length > 0 ? config.headers.join(',') : null,
      exposeHeaders: config.exposed_headers && config.exposed_headers.length > 0 ? config.exposed_headers.join(',') : null,
      maxAge: config.max_age == null ? null : String(config.max_age),
    };
    for (const entry of origins) {
      if (entry === '*') continue;
      if (LITERAL_ORIGIN.test(entry)) { state.exact.add(normalizeOrigin(entry)); continue; }
      // Kong anchors at the start and appends `$` (Kong 0.x regexes were unanchored).
      const body = entry.startsWith('^') ? entry.slice(1) : entry;
      state.regexes.push(new SafeRegex(body.endsWith('$') ? body : body + '$', { anchorStart: true }));
      state.regexByHost.push(!entry.includes(':'));
    }
    return state;
  },
  access: function corsAccess(ctx, config, state): AccessResult {
    if (!isPreflight(ctx) || config.preflight_continue) return;
    const origin = originOf(ctx);
    const h: Record<string, string> = {};
    const allowAll = configureOrigin(state, h, origin, false);
    configureCredentials(config, allowAll, h, origin, false);
    const requested = ctx.headers['access-control-request-headers'];
    const allowHeaders = state.allowHeaders ?? requested;
    if (allowHeaders) h['access-control-allow-headers'] = allowHeaders;
    h['access-control-allow-methods'] = state.methods;
    if (state.maxAge !== null) h['access-control-max-age'] = state.maxAge;
    if (config.private_network && ctx.headers['access-control-request-private-network'] === 'true') {
      h['access-control-allow-private-network'] = 'true';
    }
    return rawBodyExit(200, '', h);
  },
  response: function corsResponse(ctx, _status, headers, config, state) {
    // A preflight was answered in access, or handed to the upstream (preflight_continue) whose
    // headers then stand.
    if (isPreflight(ctx)) return;
    const origin = originOf(ctx);
    if (!origin && !config.allow_origin_absent) return;
    const allowAll = configureOrigin(state, headers, origin, true);
    configureCredentials(config, allowAll, headers, origin, true);
    if (state.exposeHeaders !== null) headers['access-control-expose-headers'] = state.exposeHeaders;
  },
};
