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
  /** Position in priority order, lower first; only the order matters (updates rank new ones with fractions). */
  rank: number;
  /** Kong's priority tuple (see `priority`). */
  prio: number[];
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

/** One route in a router: its compiled form and its sub-routes (one per path, in path order). */
interface RouteEntry {
  compiled: CompiledRoute;
  subs: SubRoute[];
  /** Bookkeeping of `updateRoutes`: the token of the last update that kept this entry. */
  seen: object | null;
}

/**
 * Sub-routes ranked and indexed: a Router's input, and what the next snapshot's router is updated
 * from (`updateRoutes`). An update shares `entries` and `byPrefix` with the router serving now and
 * holds its edits to them in `pending` until its own router is committed (Router.commit, after the
 * swap): the serving router is untouched while the next one is built, and a rejected snapshot
 * leaves it as it was. Making them at commit rather than copying two 10,000-entry maps keeps a
 * one-route apply's work and garbage in proportion to the change.
 */
export interface PreparedRoutes {
  byPrefix: Map<string, SubRoute[]>;
  /**
   * For each prefix length in `byPrefix`, a rank no worse than the best of its lists' first
   * sub-routes (exact after a full build; commits of updates lower it, never raise it, so it stays
   * a bound without a scan of every prefix): `match` stops probing shorter prefixes below it.
   */
  bestAtLength: Map<number, number>;
  scan: SubRoute[];
  /** Every sub-route, best first (ascending rank). */
  sorted: SubRoute[];
  /** The routes in the router (a route of a disabled service, or not http(s), has none). */
  entries: Map<Route, RouteEntry>;
  /** Sub-routes with query rules (only when some exist does a match parse the query). */
  queryRules: number;
  /** The snapshot's routes that are not in the router. */
  unrouted: Route[];
  /** Edits to `entries` and `byPrefix` not made yet (see above); null once made. */
  pending?: PendingEdits | null;
}

interface PendingEdits {
  removed: RouteEntry[];
  added: RouteEntry[];
  /** Each touched prefix's new list, or null when none is left. */
  prefixes: Map<string, SubRoute[] | null>;
}

/** Kong's order of sub-routes: priority tuple, higher first; then the older route; then the smaller id. */
function compareSubs(a: SubRoute, b: SubRoute): number {
  for (let i = 0; i < a.prio.length; i++) if (a.prio[i] !== b.prio[i]) return b.prio[i] - a.prio[i];
  const ra = a.compiled.route, rb = b.compiled.route;
  if (ra.created_at !== rb.created_at) return ra.created_at - rb.created_at;
  return ra.id < rb.id ? -1 : ra.id > rb.id ? 1 : 0;
}

/** A route's entry (its chain, flags and sub-routes, ranks unset), or null when it is not routed. */
function compileEntry(route: Route, service: Service | null, chainFor: ChainFor): RouteEntry | null {
  // A disabled service takes its routes out of the router (Kong §2.1).
  if (service && !service.enabled) return null;
  if (!route.protocols.includes('http') && !route.protocols.includes('https')) return null;
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
  // Every field written out, in one order: sub-routes of one shape keep match() fast (a spread
  // here, in a generator V8 runs unoptimised, cost ~1.2 µs per match at 10,000 routes, not ~0.25).
  const subs = paths.map(({ prio, prefix, regex }): SubRoute => ({ rank: 0, prio, compiled, methods, hosts, snis, headers, query, prefix, regex }));
  return { compiled, subs, seen: null };
}

const serviceOf = (route: Route, serviceById: Map<string, Service>): Service | null => (route.service ? serviceById.get(route.service.id) ?? null : null);

/** Indexes ranked sub-routes: prefix lists and the scan list, each in rank order. */
function index(sorted: SubRoute[]): { byPrefix: Map<string, SubRoute[]>; scan: SubRoute[] } {
  const byPrefix = new Map<string, SubRoute[]>();
  const scan: SubRoute[] = [];
  for (const s of sorted) {
    if (s.prefix === null) { scan.push(s); continue; }
    const list = byPrefix.get(s.prefix);
    if (list) list.push(s); else byPrefix.set(s.prefix, [s]);
  }
  return { byPrefix, scan };
}

/**
 * The per-route work of building a Router (plugin chain, parts, sub-routes), one step per route so
 * a caller can give the event loop turns between them; the generator's value is the Router's input.
 */
export function* prepareRoutes(routes: Route[], services: Service[], chainFor: ChainFor): Generator<undefined, PreparedRoutes, undefined> {
  const serviceById = serviceIndex(services);
  const entries = new Map<Route, RouteEntry>();
  const sorted: SubRoute[] = [];
  const unrouted: Route[] = [];
  let queryRules = 0;
  for (const route of routes) {
    const entry = compileEntry(route, serviceOf(route, serviceById), chainFor);
    if (!entry) { unrouted.push(route); continue; }
    entries.set(route, entry);
    for (const s of entry.subs) sorted.push(s);
    for (const s of entry.subs) if (s.query) queryRules++;
    yield;
  }
  sorted.sort(compareSubs);
  yield;
  for (let rank = 0; rank < sorted.length; rank++) sorted[rank].rank = rank;
  const { byPrefix, scan } = index(sorted);
  const bestAtLength = new Map<number, number>();
  for (const [prefix, list] of byPrefix) {
    const cur = bestAtLength.get(prefix.length);
    if (cur === undefined || list[0].rank < cur) bestAtLength.set(prefix.length, list[0].rank);
  }
  return { byPrefix, bestAtLength, scan, sorted, entries, queryRules, unrouted };
}

/** A rank strictly between `lo` and `hi` (either may be infinite), or null when doubles have none left there. */
function rankBetween(lo: number, hi: number): number | null {
  if (lo === -Infinity) return hi === Infinity ? 0 : hi - 1;
  if (hi === Infinity) return lo + 1;
  const mid = (lo + hi) / 2;
  return mid > lo && mid < hi ? mid : null;
}

/** Index of the first sub-route in `sorted` that `s` sorts before (after every one it ties with). */
function upperBound(sorted: SubRoute[], s: SubRoute): number {
  let lo = 0, hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareSubs(s, sorted[mid]) < 0) hi = mid; else lo = mid + 1;
  }
  return lo;
}

/** Index of the sub-route of rank `rank` in `sorted` (ascending ranks). */
function indexOfRank(sorted: SubRoute[], rank: number): number {
  let lo = 0, hi = sorted.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const r = sorted[mid].rank;
    if (r === rank) return mid;
    if (r < rank) lo = mid + 1; else hi = mid - 1;
  }
  return -1;
}

/** More changed routes than this and a full build is cheaper than an update. */
export const UPDATE_MAX_CHANGES = 256;
/** Routes an update looks at between turns (a power of two): ~0.2 ms of work. */
const STEP_ROUTES = 1024;

/** The router input of `updateRoutes`, and which routes of the snapshot came and went (routed or not). */
export interface UpdatedRoutes { prepared: PreparedRoutes; added: Route[]; removed: Route[] }

/** Which route objects a snapshot's list has that the last one did not, and which it lost (sync/decoder.ts ListChange). */
export interface RoutesChange { added: readonly Route[]; removed: readonly Route[] }

/** Services by id, made once per services list: route-only snapshots keep the very list (sync/decoder.ts). */
const servicesById = new WeakMap<readonly Service[], Map<string, Service>>();
function serviceIndex(services: readonly Service[]): Map<string, Service> {
  let index = servicesById.get(services);
  if (!index) servicesById.set(services, index = new Map(services.map((s) => [s.id, s])));
  return index;
}

/**
 * The next snapshot's router input from the running one's (`prev`), doing work only for routes that
 * changed: a route whose object and service are the ones `prev` holds keeps its compiled route and
 * sub-routes (the decoder keeps the objects of unchanged entities). New sub-routes get a rank
 * between their neighbours' (a fraction), so no kept sub-route is renumbered or copied; only the
 * prefix lists they touch are. The caller guarantees `chainFor` gives what `prev` was built with
 * for the routes that did not change (compile/ reuses the plugin chains only when plugins and what
 * they read are unchanged). Null when a full build is the better course: more than
 * UPDATE_MAX_CHANGES routes changed, or doubles ran out of room between two ranks.
 *
 * `change`, when the caller knows it (the decoder does), says which route objects came and went
 * since the routes `prev` was made from, with the same services: then no route but those is looked
 * at. Without it, every route is compared with `prev`'s.
 */
export function* updateRoutes(prev: PreparedRoutes, routes: Route[], services: Service[], chainFor: ChainFor, change?: RoutesChange): Generator<undefined, UpdatedRoutes | null, undefined> {
  if (prev.pending) throw new Error('updateRoutes: the router to update from is not committed');
  const serviceById = serviceIndex(services);
  const added: RouteEntry[] = [];
  const unrouted: Route[] = [];
  const removed: RouteEntry[] = [];
  let changes: { added: Route[]; removed: Route[] };
  if (change) {
    if (change.added.length > UPDATE_MAX_CHANGES || change.removed.length > UPDATE_MAX_CHANGES) return null;
    const gone = new Set<Route>();
    for (const route of change.removed) {
      const had = prev.entries.get(route);
      if (had) removed.push(had); else gone.add(route);
    }
    // Routes `prev` did not route: those removed go, the rest stay unrouted.
    if (gone.size) { for (const r of prev.unrouted) if (!gone.delete(r)) unrouted.push(r); } else unrouted.push(...prev.unrouted);
    if (gone.size) return null; // not what `prev` was made from: build in full
    for (const route of change.added) {
      if (prev.entries.has(route)) return null;
      const entry = compileEntry(route, serviceOf(route, serviceById), chainFor);
      if (entry) added.push(entry); else unrouted.push(route);
    }
    changes = { added: [...change.added], removed: [...change.removed] };
  } else {
    const token = {};
    for (let i = 0; i < routes.length; i++) {
      if ((i & (STEP_ROUTES - 1)) === STEP_ROUTES - 1) yield;
      const route = routes[i];
      const service = serviceOf(route, serviceById);
      const had = prev.entries.get(route);
      if (had !== undefined && had.compiled.service === service) { had.seen = token; continue; }
      const entry = compileEntry(route, service, chainFor);
      if (!entry) { unrouted.push(route); continue; }
      if (added.push(entry) > UPDATE_MAX_CHANGES) return null;
    }
    if (routes.length - added.length - unrouted.length !== prev.entries.size) {
      for (const e of prev.entries.values()) if (e.seen !== token) removed.push(e);
    }
    changes = { added: [...added.map((e) => e.compiled.route), ...unrouted], removed: [...removed.map((e) => e.compiled.route), ...prev.unrouted] };
  }
  if (removed.length > UPDATE_MAX_CHANGES) return null;
  if (added.length === 0 && removed.length === 0) return { prepared: { ...prev, unrouted }, ...changes };

  yield;
  const sorted = prev.sorted.slice();
  const gone = new Set<SubRoute>();
  for (const e of removed) {
    for (const s of e.subs) { gone.add(s); sorted.splice(indexOfRank(sorted, s.rank), 1); }
  }
  const fresh: SubRoute[] = [];
  for (const e of added) for (const s of e.subs) fresh.push(s);
  fresh.sort(compareSubs);
  for (const s of fresh) {
    const at = upperBound(sorted, s);
    const rank = rankBetween(at > 0 ? sorted[at - 1].rank : -Infinity, at < sorted.length ? sorted[at].rank : Infinity);
    if (rank === null) return null;
    s.rank = rank;
    sorted.splice(at, 0, s);
  }
  yield;
  // Prefix lists: only those that changed are made anew.
  const touched = new Map<string, SubRoute[]>();
  let scanChanged = false;
  let queryRules = prev.queryRules;
  for (const s of gone) {
    if (s.query) queryRules--;
    if (s.prefix === null) scanChanged = true; else if (!touched.has(s.prefix)) touched.set(s.prefix, []);
  }
  for (const s of fresh) {
    if (s.query) queryRules++;
    if (s.prefix === null) { scanChanged = true; continue; }
    const list = touched.get(s.prefix);
    if (list) list.push(s); else touched.set(s.prefix, [s]);
  }
  const prefixes = new Map<string, SubRoute[] | null>();
  for (const [prefix, coming] of touched) {
    const list = (prev.byPrefix.get(prefix) ?? []).filter((s) => !gone.has(s));
    for (const s of coming) list.push(s);
    list.sort((a, b) => a.rank - b.rank);
    prefixes.set(prefix, list.length ? list : null);
  }
  const scan = scanChanged ? sorted.filter((s) => s.prefix === null) : prev.scan;
  return {
    prepared: { byPrefix: prev.byPrefix, bestAtLength: prev.bestAtLength, scan, sorted, entries: prev.entries, queryRules, unrouted, pending: { removed, added, prefixes } },
    ...changes,
  };
}

export class Router {
  private byPrefix!: Map<string, SubRoute[]>;
  /** Distinct prefix lengths, longest first. */
  private prefixLengths!: number[];
  /** For each index in prefixLengths: the best (lowest) rank among it and every shorter length. */
  private bestRankFrom!: number[];
  /** Sub-routes without a prefix path, in priority order. */
  private scan!: SubRoute[];
  /** Whether any route matches on the query (only then does a match carry a RequestQuery). */
  private hasQueryRules!: boolean;
  size!: number;

  /**
   * Throws, naming the route, when a regex cannot compile: the snapshot is then rejected whole.
   * `prepared`: the per-route work already done by `prepareRoutes` or `updateRoutes` (compile/ runs
   * them in slices); the next snapshot's router is updated from it.
   */
  constructor(routes: Route[], services: Service[], chainFor: ChainFor = () => [], readonly prepared: PreparedRoutes = drain(prepareRoutes(routes, services, chainFor))) {
    if (!prepared.pending) this.index();
  }

  /** Whether this router waits for commit() before it can match. */
  get pending(): boolean { return !!this.prepared.pending; }

  /**
   * Makes the edits of an updated router (updateRoutes) to the maps it shares with the router it
   * was updated from, which is retired from then on: call it once this router is swapped in.
   */
  commit(): void {
    const edits = this.prepared.pending;
    if (!edits) return;
    const { entries, byPrefix, bestAtLength } = this.prepared;
    for (const e of edits.removed) entries.delete(e.compiled.route);
    for (const e of edits.added) entries.set(e.compiled.route, e);
    for (const [prefix, list] of edits.prefixes) {
      if (!list) { byPrefix.delete(prefix); continue; }
      byPrefix.set(prefix, list);
      const best = bestAtLength.get(prefix.length);
      if (best === undefined || list[0].rank < best) bestAtLength.set(prefix.length, list[0].rank);
    }
    this.prepared.pending = null;
    this.index();
  }

  private index(): void {
    const { byPrefix, bestAtLength, scan, queryRules, sorted } = this.prepared;
    this.byPrefix = byPrefix;
    this.scan = scan;
    this.hasQueryRules = queryRules > 0;
    // Per length, not per prefix: a commit's work does not grow with the number of routes.
    this.prefixLengths = [...bestAtLength.keys()].sort((a, b) => b - a);
    this.bestRankFrom = new Array(this.prefixLengths.length);
    let acc = Infinity;
    for (let i = this.prefixLengths.length - 1; i >= 0; i--) {
      acc = Math.min(acc, bestAtLength.get(this.prefixLengths[i])!);
      this.bestRankFrom[i] = acc;
    }
    this.size = sorted.length;
  }

  match(input: MatchInput): Match | null {
    if (this.prefixLengths === undefined) throw new Error('Router.match before commit()');
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
