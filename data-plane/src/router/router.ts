// Kong's traditional_compatible router (reference/kong-compat.md §3.1–3.3), compiled once per
// snapshot. Prefix paths are indexed by exact prefix string and probed once per distinct prefix
// length, so matching cost depends on the path's length, not on the number of routes; routes
// without prefix paths (regex, hosts only, …) are scanned in priority order, stopping as soon as a
// better match is impossible.
import { compileRoutePathRegex, type RegexMatch, type Route, type SafeRegex, type Service } from '@portico/shared';
import type { PluginSlot } from '../plugins/compile.ts';

export interface MatchInput {
  method: string;
  /** Normalized request path, no query. */
  path: string;
  /** Host header without port, lower-cased. */
  host: string;
  /** The port the request arrived on (for `host:port` route hosts). */
  port: number;
  headers: Record<string, string | string[] | undefined>;
  /** The raw query string (with or without `?`); parsed only if a route matches on it. */
  query?: string;
}

export interface Match {
  route: Route;
  service: Service | null;
  /** What strip_path removes: the prefix, or the text a regex path matched; '' when none. */
  matchedPath: string;
  /** Regex path captures: numbered and named. */
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
  pluginFlags: { hasLog: boolean; needsBody: boolean };
}

interface HostRule { exact: Set<string>; suffixes: string[]; prefixes: string[]; withPort: { host: string; port: number; kind: 'exact' | 'suffix' | 'prefix' }[] }
interface HeaderRule { name: string; values: Set<string>; regexes: RegExp[] }

interface SubRoute {
  rank: number;
  compiled: CompiledRoute;
  methods: Set<string> | null;
  hosts: HostRule | null;
  headers: HeaderRule[] | null;
  query: [string, Set<string>][] | null;
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

function compileHeaders(headers: Record<string, string[]> | null): HeaderRule[] | null {
  if (!nonEmpty(headers)) return null;
  return Object.entries(headers!).map(([name, values]) => ({
    name: name.toLowerCase(),
    values: new Set(values.filter((v) => !v.startsWith('~*')).map((v) => v.toLowerCase())),
    regexes: values.filter((v) => v.startsWith('~*')).map((v) => new RegExp(v.slice(2), 'i')),
  }));
}

function headersMatch(rules: HeaderRule[], headers: MatchInput['headers']): boolean {
  for (const rule of rules) {
    const raw = headers[rule.name];
    if (raw === undefined) return false;
    const values = Array.isArray(raw) ? raw : [raw];
    let ok = false;
    for (const v of values) {
      const lv = v.toLowerCase();
      if (rule.values.has(lv) || rule.regexes.some((r) => r.test(v))) { ok = true; break; }
    }
    if (!ok) return false;
  }
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

export class Router {
  private readonly byPrefix = new Map<string, SubRoute[]>();
  /** Distinct prefix lengths, longest first. */
  private readonly prefixLengths: number[];
  /** For each index in prefixLengths: the best (lowest) rank among it and every shorter length. */
  private readonly bestRankFrom: number[];
  /** Sub-routes without a prefix path, in priority order. */
  private readonly scan: SubRoute[];
  readonly size: number;

  constructor(routes: Route[], services: Service[], chainFor: (route: Route) => PluginSlot[] = () => []) {
    const serviceById = new Map(services.map((s) => [s.id, s]));
    const subs: { sub: Omit<SubRoute, 'rank'>; prio: number[]; route: Route }[] = [];
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
        },
      };
      const base = {
        compiled, methods: nonEmpty(route.methods) ? new Set(route.methods!) : null, hosts: compileHosts(route.hosts), headers: compileHeaders(route.headers),
        query: nonEmpty(route.query) ? Object.entries(route.query!).map(([k, v]) => [k, new Set(v)] as [string, Set<string>]) : null,
      };
      const paths = nonEmpty(route.paths) ? route.paths! : [null];
      for (const p of paths) {
        subs.push({
          route,
          prio: priority(route, p),
          sub: { ...base, prefix: p && !p.startsWith('~') ? p : null, regex: p?.startsWith('~') ? compileRoutePathRegex(p.slice(1)) : null },
        });
      }
    }
    subs.sort((a, b) => {
      for (let i = 0; i < a.prio.length; i++) if (a.prio[i] !== b.prio[i]) return b.prio[i] - a.prio[i];
      if (a.route.created_at !== b.route.created_at) return a.route.created_at - b.route.created_at;
      return a.route.id < b.route.id ? -1 : a.route.id > b.route.id ? 1 : 0;
    });
    const scan: SubRoute[] = [];
    subs.forEach(({ sub }, rank) => {
      const s: SubRoute = { ...sub, rank };
      if (s.prefix !== null) {
        const list = this.byPrefix.get(s.prefix);
        if (list) list.push(s); else this.byPrefix.set(s.prefix, [s]);
      } else {
        scan.push(s);
      }
    });
    this.scan = scan;
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
    this.size = subs.length;
  }

  match(input: MatchInput): Match | null {
    this.params = null;
    let best: SubRoute | null = null;
    let bestCaptures: RegexMatch | null = null;
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
        if (this.others(s, input)) { best = s; break; }
      }
    }
    for (const s of this.scan) {
      if (best && s.rank >= best.rank) break;
      if (!this.others(s, input)) continue;
      if (s.regex) {
        const m = s.regex.exec(path);
        if (!m) continue;
        best = s; bestCaptures = m;
      } else {
        best = s;
      }
      break;
    }
    if (!best) return null;
    let matchedPath = '';
    let captures: Match['captures'] = null;
    if (best.prefix !== null) matchedPath = best.prefix;
    else if (bestCaptures) {
      matchedPath = bestCaptures.matched;
      captures = { unnamed: bestCaptures.unnamed, named: { ...bestCaptures.named } };
    }
    return { route: best.compiled.route, service: best.compiled.service, matchedPath, captures, compiled: best.compiled };
  }

  /** The current request's parsed query, built at most once per match. */
  private params: URLSearchParams | null = null;

  private others(s: SubRoute, input: MatchInput): boolean {
    if (s.methods && !s.methods.has(input.method)) return false;
    if (s.hosts && !hostMatches(s.hosts, input.host, input.port)) return false;
    if (s.headers && !headersMatch(s.headers, input.headers)) return false;
    if (s.query) {
      const q = input.query ?? '';
      this.params ??= new URLSearchParams(q.startsWith('?') ? q.slice(1) : q);
      for (const [name, values] of s.query) {
        const got = this.params.getAll(name);
        if (!got.length) return false;
        if (!values.has('*') && !got.some((v) => values.has(v))) return false;
      }
    }
    return true;
  }
}
