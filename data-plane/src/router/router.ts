// Kong's traditional_compatible router (reference/kong-compat.md §3.1–3.3), compiled once per
// snapshot. Prefix paths are indexed by exact prefix string and probed once per distinct prefix
// length, so matching cost depends on the path's length, not on the number of routes; routes
// without prefix paths (regex, hosts only, …) are scanned in priority order, stopping as soon as a
// better match is impossible.
//
// Contract: no request can make `match` throw or stall. Request headers are read as own properties
// only (Node's `req.headers` inherits from Object.prototype, so `headers.constructor` is a function,
// not a header: probe 4.2), and `~` path and `~*` header regexes run on RE2 (`SafeRegex`, linear
// time: probe 4.3). The router holds no per-request state; a request's parsed query lives in `match`.
// Node 20's parser drops a request header named `__proto__` from `req.headers` (the assignment is a
// no-op), so a `__proto__` header rule never matches a request, as nginx's default of dropping
// header names with underscores would do in Kong.
import { compileHeaderRegex, compileRoutePathRegex, type RegexMatch, type Route, type SafeRegex, type Service } from '@portico/shared';
import type { PluginSlot } from '../plugins/compile.ts';
import { drain } from '../compile/slice.ts';

export interface MatchInput {
  method: string;
  /** Normalized request path, no query. */
  path: string;
  /** Host header without port, lower-cased. */
  host: string;
  /** The port the request arrived on (for `host:port` route hosts). */
  port: number;
  /** Lower-cased names (Node's `req.headers`); only own properties are read. */
  headers: Record<string, string | string[] | undefined>;
  /** The raw query string (with or without `?`); parsed only if a route matches on it. */
  query?: string;
  /** The TLS SNI the client sent ('' for none) on the TLS listener; undefined for plain HTTP, where `snis` are not considered (Kong#6425). */
  sni?: string;
}

export interface Match {
  route: Route;
  service: Service | null;
  /** What strip_path removes: the prefix, or the text a regex path matched; '' when none. */
  matchedPath: string;
  /**
   * Regex path captures: numbered ('' for a group that did not take part) and named (a
   * null-prototype object: group names come from configuration; a group that did not take part
   * is absent, as in Kong).
   */
  captures: { unnamed: string[]; named: Record<string, string> } | null;
  /** Compiled per-route data (plugins hang theirs here). */
  compiled: CompiledRoute;
}

export interface CompiledRoute {
  route: Route;
  service: Service | null;
  /** The route's plugin chain, in execution order. */
  plugins: PluginSlot[];
  /** What the chain needs, decided once per snapshot rather than per request. */
  pluginFlags: { hasLog: boolean; needsBody: boolean; limitsBody: boolean; bodyPhase: boolean };
}

interface HostRule { exact: Set<string>; suffixes: string[]; prefixes: string[]; withPort: { host: string; port: number; kind: 'exact' | 'suffix' | 'prefix' }[] }
/** Values are lower-cased at compile; a request value matches one of them or one regex (§3.2). */
interface HeaderRule { name: string; values: Set<string>; regexes: SafeRegex[] }
/** `any`: the rule lists '*' (present with any value), decided here rather than per request. */
interface QueryRule { name: string; any: boolean; values: Set<string> }

interface SubRoute {
  rank: number;
  compiled: CompiledRoute;
  methods: Set<string> | null;
  hosts: HostRule | null;
  /** Route `snis`, wildcards as hosts'. */
  snis: HostRule | null;
  headers: HeaderRule[] | null;
  query: QueryRule[] | null;
  prefix: string | null;
  regex: SafeRegex | null;
}

const nonEmpty = (v: unknown): boolean => v != null && (Array.isArray(v) ? v.length > 0 : Object.keys(v as object).length > 0);

function compileHosts(hosts: string[] | null): HostRule | null {
  if (!nonEmpty(hosts)) return null;
  const rule: HostRule = { exact: new Set(), suffixes: [], prefixes: [], withPort: [] };
  for (const raw of hosts!) {
    const [name, portText] = raw.toLowerCase().split(':');
    const kind = name.startsWith('*.') ? 'suffix' : name.endsWith('.*') ? 'prefix' : 'exact';
    const host = kind === 'suffix' ? name.slice(1) : kind === 'prefix' ? name.slice(0, -1) : name;
    if (portText !== undefined) rule.withPort.push({ host, port: Number(portText), kind });
    else if (kind === 'exact') rule.exact.add(host);
    else if (kind === 'suffix') rule.suffixes.push(host);
    else rule.prefixes.push(host);
  }
  return rule;
}

function hostMatches(rule: HostRule, host: string, port: number): boolean {
  if (rule.exact.has(host)) return true;
  for (const s of rule.suffixes) if (host.endsWith(s)) return true;
  for (const p of rule.prefixes) if (host.startsWith(p)) return true;
  for (const w of rule.withPort) {
    if (w.port !== port) continue;
    if (w.kind === 'exact' ? host === w.host : w.kind === 'suffix' ? host.endsWith(w.host) : host.startsWith(w.host)) return true;
  }
  return false;
}

/**
 * Compiles one regex of a route through the process-wide compile cache the admin API's validation
 * shares (shared/src/entities/route.ts), so a snapshot change does not recompile unchanged
 * patterns; names the route and the pattern if RE2 refuses it.
 */
function compileRegex(route: Route, field: string, source: string, compile: (source: string) => SafeRegex): SafeRegex {
  try {
    return compile(source);
  } catch (err) {
    throw new Error(`route ${route.id}: invalid regex in ${field}: '${source}' (${(err as Error).message})`);
  }
}

function compileHeaders(route: Route): HeaderRule[] | null {
  if (!nonEmpty(route.headers)) return null;
  const rules: HeaderRule[] = [];
  // Object.entries reads own properties only, so a `__proto__` or `constructor` rule is kept as a
  // rule on the header of that name.
  for (const [name, list] of Object.entries(route.headers!)) {
    const rule: HeaderRule = { name: name.toLowerCase(), values: new Set(), regexes: [] };
    for (const v of list) {
      if (v.startsWith('~*')) rule.regexes.push(compileRegex(route, `headers.${name}`, v.slice(2), compileHeaderRegex));
      else rule.values.add(v.toLowerCase());
    }
    rules.push(rule);
  }
  return rules;
}

function compileQuery(route: Route): QueryRule[] | null {
  if (!nonEmpty(route.query)) return null;
  return Object.entries(route.query!).map(([name, values]) => ({ name, any: values.includes('*'), values: new Set(values) }));
}

function headerValueMatches(rule: HeaderRule, value: string): boolean {
  if (rule.values.size > 0 && rule.values.has(value.toLowerCase())) return true;
  for (const re of rule.regexes) if (re.test(value)) return true;
  return false;
}

function headersMatch(rules: HeaderRule[], headers: MatchInput['headers']): boolean {
  for (const rule of rules) {
    // Own properties only: an inherited `constructor` or a polluted Object.prototype is no header.
    if (!Object.hasOwn(headers, rule.name)) return false;
    const raw = headers[rule.name];
    if (typeof raw === 'string') {
      if (!headerValueMatches(rule, raw)) return false;
    } else if (Array.isArray(raw)) {
      let ok = false;
      for (const v of raw) if (typeof v === 'string' && headerValueMatches(rule, v)) { ok = true; break; }
      if (!ok) return false;
    } else {
      return false;
    }
  }
  return true;
}

function queryMatches(rules: QueryRule[], params: URLSearchParams): boolean {
  for (const rule of rules) {
    if (rule.any) {
      if (!params.has(rule.name)) return false;
      continue;
    }
    let ok = false;
    for (const v of params.getAll(rule.name)) if (rule.values.has(v)) { ok = true; break; }
    if (!ok) return false;
  }
  return true;
}

/**
 * The request's query, parsed on first use and at most once per match. Created per match only when
 * the snapshot has query rules; the Router itself holds no request state.
 */
class RequestQuery {
  private params: URLSearchParams | null = null;
  constructor(private readonly raw: string | undefined) {}
  get(): URLSearchParams {
    return this.params ??= new URLSearchParams(this.raw === undefined ? '' : this.raw.startsWith('?') ? this.raw.slice(1) : this.raw);
  }
}

/** Everything but the path: methods, hosts, headers, query (`query` is null when no route has query rules). */
function fits(s: SubRoute, input: MatchInput, query: RequestQuery | null): boolean {
  if (s.methods && !s.methods.has(input.method)) return false;
  if (s.hosts && !hostMatches(s.hosts, input.host, input.port)) return false;
  if (s.snis && input.sni !== undefined && !hostMatches(s.snis, input.sni.toLowerCase(), input.port)) return false;
  if (s.headers && !headersMatch(s.headers, input.headers)) return false;
  if (s.query && !queryMatches(s.query, query!.get())) return false;
  return true;
}

/** Kong's priority, as a tuple compared element by element, higher first (§3.3). */
function priority(route: Route, path: string | null): number[] {
  const fields = [route.methods, route.hosts, route.headers, route.paths, route.snis, route.query].filter(nonEmpty).length;
  const plainHosts = nonEmpty(route.hosts) && !route.hosts!.some((h) => h.includes('*')) ? 1 : 0;
  const headerCount = nonEmpty(route.headers) ? Object.keys(route.headers!).length : 0;
  const isRegex = path?.startsWith('~') ? 1 : 0;
  return [fields, plainHosts, headerCount, isRegex, isRegex ? route.regex_priority : 0, path && !isRegex ? path.length : 0];
}

/** What a route compiles to on its own (no service, no plugins): the same for every snapshot it is in. */
interface RouteParts {
  methods: Set<string> | null;
  hosts: HostRule | null;
  snis: HostRule | null;
  headers: HeaderRule[] | null;
  query: QueryRule[] | null;
  paths: { prio: number[]; prefix: string | null; regex: SafeRegex | null }[];
}

/**
 * Parts compiled per route object. A DP keeps the objects of entities that did not change between
 * snapshots (sync/decoder.ts), so a new snapshot compiles only the routes that changed; the cache
 * lets go of a route when its object is dropped. Route objects are never mutated.
 */
const partsCache = new WeakMap<Route, RouteParts>();

/** The route's compiled parts, from the cache or made now; throws, naming the route, on a regex RE2 refuses. */
export function routeParts(route: Route): RouteParts {
  let parts = partsCache.get(route);
  if (parts) return parts;
  parts = {
    methods: nonEmpty(route.methods) ? new Set(route.methods!) : null, hosts: compileHosts(route.hosts), snis: compileHosts(route.snis),
    headers: compileHeaders(route), query: compileQuery(route),
    paths: (nonEmpty(route.paths) ? route.paths! : [null]).map((p) => {
      const isRegex = p !== null && p.startsWith('~');
      return {
        prio: priority(route, p),
        prefix: p !== null && !isRegex ? p : null,
        // Kong anchors a route regex at the start only (§3.2).
        regex: isRegex ? compileRegex(route, 'paths', p.slice(1), compileRoutePathRegex) : null,
      };
    }),
  };
  partsCache.set(route, parts);
  return parts;
}

type ChainFor = (route: Route) => PluginSlot[];

/** Sub-routes ranked and indexed, and whether any route matches on the query: a Router's input. */
export interface PreparedRoutes {
  byPrefix: Map<string, SubRoute[]>;
  scan: SubRoute[];
  hasQueryRules: boolean;
  size: number;
}

/**
 * The per-route work of building a Router (plugin chain, parts, sub-routes), one step per route so
 * a caller can give the event loop turns between them; the generator's value is the Router's input.
 */
export function* prepareRoutes(routes: Route[], services: Service[], chainFor: ChainFor): Generator<undefined, PreparedRoutes, undefined> {
  const serviceById = new Map(services.map((s) => [s.id, s]));
  const subs: { sub: Omit<SubRoute, 'rank'>; prio: number[]; route: Route }[] = [];
  let hasQueryRules = false;
  for (const route of routes) {
    const service = route.service ? serviceById.get(route.service.id) ?? null : null;
    // A disabled service takes its routes out of the router (Kong §2.1).
    if (service && !service.enabled) continue;
    if (!route.protocols.includes('http') && !route.protocols.includes('https')) continue;
    const plugins = chainFor(route);
    const compiled: CompiledRoute = {
      route, service, plugins,
      pluginFlags: {
        hasLog: plugins.some((sl) => sl.handler.log !== undefined),
        needsBody: plugins.some((sl) => sl.handler.needsBody?.(sl.base?.config) === true),
        limitsBody: plugins.some((sl) => sl.handler.requestBodyLimit !== undefined),
        bodyPhase: plugins.some((sl) => sl.handler.body !== undefined),
      },
    };
    const { methods, hosts, snis, headers, query, paths } = routeParts(route);
    if (query) hasQueryRules = true;
    for (const { prio, prefix, regex } of paths) subs.push({ route, prio, sub: { compiled, methods, hosts, snis, headers, query, prefix, regex } });
    yield;
  }
  subs.sort((a, b) => {
    for (let i = 0; i < a.prio.length; i++) if (a.prio[i] !== b.prio[i]) return b.prio[i] - a.prio[i];
    if (a.route.created_at !== b.route.created_at) return a.route.created_at - b.route.created_at;
    return a.route.id < b.route.id ? -1 : a.route.id > b.route.id ? 1 : 0;
  });
  yield;
  const byPrefix = new Map<string, SubRoute[]>();
  const scan: SubRoute[] = [];
  for (let rank = 0; rank < subs.length; rank++) {
    // Every field written out, in one order: a spread here (in a generator V8 runs unoptimised) made
    // sub-routes of another shape, and match() at 10,000 routes cost ~1.2 µs instead of ~0.25 µs.
    const b = subs[rank].sub;
    const s: SubRoute = { rank, compiled: b.compiled, methods: b.methods, hosts: b.hosts, snis: b.snis, headers: b.headers, query: b.query, prefix: b.prefix, regex: b.regex };
    if (s.prefix !== null) {
      const list = byPrefix.get(s.prefix);
      if (list) list.push(s); else byPrefix.set(s.prefix, [s]);
    } else {
      scan.push(s);
    }
    if ((rank & 63) === 63) yield;
  }
  return { byPrefix, scan, hasQueryRules, size: subs.length };
}

export class Router {
  private readonly byPrefix: Map<string, SubRoute[]>;
  /** Distinct prefix lengths, longest first. */
  private readonly prefixLengths: number[];
  /** For each index in prefixLengths: the best (lowest) rank among it and every shorter length. */
  private readonly bestRankFrom: number[];
  /** Sub-routes without a prefix path, in priority order. */
  private readonly scan: SubRoute[];
  /** Whether any route matches on the query (only then does a match carry a RequestQuery). */
  private readonly hasQueryRules: boolean;
  readonly size: number;

  /**
   * Throws, naming the route, when a regex cannot compile: the snapshot is then rejected whole.
   * `prepared`: the per-route work already done by `prepareRoutes` (compile/ runs it in slices).
   */
  constructor(routes: Route[], services: Service[], chainFor: ChainFor = () => [], prepared?: PreparedRoutes) {
    const { byPrefix, scan, hasQueryRules, size } = prepared ?? drain(prepareRoutes(routes, services, chainFor));
    this.byPrefix = byPrefix;
    this.scan = scan;
    this.hasQueryRules = hasQueryRules;
    this.prefixLengths = [...new Set([...this.byPrefix.keys()].map((k) => k.length))].sort((a, b) => b - a);
    const bestAtLength = new Map<number, number>();
    for (const [prefix, list] of this.byPrefix) {
      const cur = bestAtLength.get(prefix.length);
      if (cur === undefined || list[0].rank < cur) bestAtLength.set(prefix.length, list[0].rank);
    }
    this.bestRankFrom = new Array(this.prefixLengths.length);
    let acc = Infinity;
    for (let i = this.prefixLengths.length - 1; i >= 0; i--) {
      acc = Math.min(acc, bestAtLength.get(this.prefixLengths[i])!);
      this.bestRankFrom[i] = acc;
    }
    this.size = size;
  }

  match(input: MatchInput): Match | null {
    const query = this.hasQueryRules ? new RequestQuery(input.query) : null;
    let best: SubRoute | null = null;
    let found: RegexMatch | null = null;
    const path = input.path;
    for (let i = 0; i < this.prefixLengths.length; i++) {
      // No shorter prefix can outrank what was found: stop probing.
      if (best && best.rank < this.bestRankFrom[i]) break;
      const len = this.prefixLengths[i];
      if (len > path.length) continue;
      const list = this.byPrefix.get(len === path.length ? path : path.slice(0, len));
      if (!list) continue;
      for (const s of list) {
        if (best && s.rank >= best.rank) break;
        if (fits(s, input, query)) { best = s; break; }
      }
    }
    for (const s of this.scan) {
      if (best && s.rank >= best.rank) break;
      if (!fits(s, input, query)) continue;
      if (s.regex) {
        const m = s.regex.exec(path);
        if (!m) continue;
        found = m;
      }
      best = s;
      break;
    }
    if (!best) return null;
    const c = best.compiled;
    if (found) return { route: c.route, service: c.service, matchedPath: found.matched, captures: { unnamed: found.unnamed, named: found.named }, compiled: c };
    return { route: c.route, service: c.service, matchedPath: best.prefix ?? '', captures: null, compiled: c };
  }
}
