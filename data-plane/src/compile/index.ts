// Snapshot → runtime config, in one place (ARCHITECTURE.md invariant 7; review §5.1): the router,
// per-route plugin chains, credential index, balancers and service targets. `compile` is pure: it
// changes nothing that runs. What a config needs from the node's long-lived state (target health
// and probe timers) happens in `commit()`, called only once the result is swapped in; Redis
// stores are acquired lazily and committed or rolled back by the caller (CompileResources). So a
// snapshot rejected anywhere leaves the node exactly as it was.
import {
  jwtSecretSchema, referenceablePaths, resolveAt, upstreamSchema, type Config, type Route, type Snapshot, type Target, type Upstream,
} from '@portico/shared';
import { PLUGIN_DEFINITIONS } from '@portico/shared/plugins/schemas';
import type { PluginEnv } from '@portico/shared/plugins/handlers';
import { prepareRoutes, updateRoutes, Router, type RoutesChange } from '../router/router.ts';
import { drain, drainSliced } from './slice.ts';
import { buildIndex, PluginChains } from '../plugins/compile.ts';
import type { HealthRegistry } from '../proxy/balancer.ts';
import { compileTargets, serviceBreakerName, type ServiceTarget } from '../proxy/target.ts';
import { ServiceCalls, type ServiceCallPorts } from '../proxy/service-calls.ts';
import type { RuntimeConfig } from '../proxy/forward.ts';
import { buildSniIndex } from '../tls/sni-index.ts';
import { indexTlsMaterial } from '../tls/upstream.ts';

/** The node's ports for plugins; `serviceCalls` (the proxy's agents) becomes each snapshot's env.services. */
export type PluginPorts = Omit<PluginEnv, 'index' | 'services'> & { serviceCalls?: ServiceCallPorts };

export interface Compiled {
  runtime: RuntimeConfig;
  /** Apply the config's effects on long-lived node state; call once, after the swap. */
  commit(): void;
}

/**
 * A service with its own circuit_breaker whose host is not an upstream becomes a one-target
 * upstream named after the service id, so the breaker machinery serves it unchanged.
 */
function serviceBreakerUpstreams(snapshot: Snapshot): { upstreams: Upstream[]; targets: Target[] } {
  const names = new Set(snapshot.config.upstreams.map((u) => u.name.toLowerCase()));
  const upstreams: Upstream[] = [];
  const targets: Target[] = [];
  for (const sv of snapshot.config.services) {
    if (!sv.circuit_breaker || names.has(sv.host.toLowerCase())) continue;
    const u = upstreamSchema.parse({ id: sv.id, created_at: 0, updated_at: 0, name: serviceBreakerName(sv.id), circuit_breaker: sv.circuit_breaker });
    upstreams.push(u);
    const host = sv.host.includes(':') ? `[${sv.host}]` : sv.host;
    targets.push({ id: sv.id, created_at: 0, updated_at: 0, upstream: { id: sv.id }, target: `${host}:${sv.port}`, weight: 100, tags: null });
  }
  return { upstreams, targets };
}

/**
 * The fields schemas mark referenceable (plugin configs' `redis.password`, jwt secrets), with their
 * vault references (`{vault://env/NAME}`) resolved from this node's environment: the secrets never
 * enter Postgres, the snapshot or the disk cache. A reference that cannot be resolved fails the
 * compile, naming the entity and field.
 */
function resolveSecrets(config: Snapshot['config'], environment: NodeJS.ProcessEnv): Pick<Snapshot['config'], 'plugins' | 'jwt_secrets'> {
  const resolve = <T extends { id: string }>(e: T, kind: string, paths: readonly (readonly string[])[]): T => {
    try { return resolveAt(e, paths, environment); } catch (err) { throw new Error(`${kind} ${e.id}: ${(err as Error).message}`); }
  };
  const jwtPaths = referenceablePaths(jwtSecretSchema);
  return {
    plugins: config.plugins.map((p) => {
      const def = PLUGIN_DEFINITIONS.get(p.name);
      return def ? resolve(p, 'plugin', referenceablePaths(def.configSchema).map((path) => ['config', ...path])) : p;
    }),
    jwt_secrets: config.jwt_secrets.map((j) => resolve(j, 'jwt secret', jwtPaths)),
  };
}

/** Every service a plugin config names (PluginDefinition.serviceRefs) must be in the snapshot. */
function checkServiceRefs(plugins: Snapshot['config']['plugins'], targets: ReadonlyMap<string, ServiceTarget>): void {
  for (const p of plugins) {
    for (const { path, ref } of PLUGIN_DEFINITIONS.get(p.name)?.serviceRefs?.(p.config) ?? []) {
      if (!targets.has(ref)) throw new Error(`plugin ${p.id}: config.${path.join('.')}: no service '${ref}' in this config`);
    }
  }
}

/**
 * How lists changed since the snapshot decoded before this one (sync/decoder.ts ListChange): per
 * list, the list then (`base`), the entity objects added and those removed. compile/ uses a
 * change only when its base is what the running config was compiled from.
 */
export type ListChanges = Partial<Record<string, { base: readonly object[]; added: readonly object[]; removed: readonly object[] }>>;

export function compile(snapshot: Snapshot, ports: PluginPorts, health: HealthRegistry, environment: NodeJS.ProcessEnv = process.env, prev: RuntimeConfig | null = null, changes: ListChanges = {}): Compiled {
  return drain(compileSteps(snapshot, ports, health, environment, prev, changes));
}

/**
 * `compile` in slices of the event loop (compile/slice.ts): no step holds the proxy for more than
 * a few milliseconds at 10,000 routes, and routes unchanged since the last snapshot (the same
 * objects, sync/decoder.ts) reuse their compiled parts.
 */
export function compileSliced(snapshot: Snapshot, ports: PluginPorts, health: HealthRegistry, environment: NodeJS.ProcessEnv = process.env, prev: RuntimeConfig | null = null, changes: ListChanges = {}): Promise<Compiled> {
  return drainSliced(compileSteps(snapshot, ports, health, environment, prev, changes));
}

/**
 * What plugin chains, plugin state, balancers and service targets are made of: when none of these
 * lists changed since the running config (`prev`), a snapshot reuses all of those and only its
 * routes (and SNIs) are compiled again, and only those routes that changed (router/updateRoutes).
 * The common write at scale, a route, then costs an apply work and garbage in proportion to it,
 * not to the 10,000 routes around it.
 */
const REUSE_LISTS = [
  'services', 'consumers', 'plugins', 'keyauth_credentials', 'jwt_secrets', 'basicauth_credentials', 'acls',
  'upstreams', 'targets', 'certificates', 'ca_certificates',
] as const satisfies readonly (keyof Config)[];

/** The same entities in the same order: the decoder keeps the objects of unchanged entities (sync/decoder.ts). */
function sameList(a: readonly object[], b: readonly object[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function* compileSteps(snapshot: Snapshot, ports: PluginPorts, health: HealthRegistry, environment: NodeJS.ProcessEnv, prev: RuntimeConfig | null, changes: ListChanges): Generator<undefined, Compiled, undefined> {
  const before = prev?.source;
  if (prev && before && REUSE_LISTS.every((name) => sameList(snapshot.config[name], before[name]))) {
    return yield* recompileRoutes(snapshot, prev, before, changes);
  }
  const serviceBreakers = serviceBreakerUpstreams(snapshot);
  const config = { ...snapshot.config, ...resolveSecrets(snapshot.config, environment) };
  const planned = health.plan([...snapshot.config.upstreams, ...serviceBreakers.upstreams], [...snapshot.config.targets, ...serviceBreakers.targets]);
  const upstreams = planned.balancers;
  const targets = compileTargets(snapshot.config.services, upstreams, indexTlsMaterial(snapshot.config.certificates, snapshot.config.ca_certificates));
  checkServiceRefs(config.plugins, targets);
  const { serviceCalls, ...rest } = ports;
  const env: PluginEnv = { ...rest, index: buildIndex(config), ...(serviceCalls ? { services: new ServiceCalls(targets, serviceCalls) } : {}) };
  const plugins = new PluginChains(config.plugins, env);
  const chainFor = (route: Route) => plugins.chainFor(route);
  const prepared = yield* prepareRoutes(snapshot.config.routes, snapshot.config.services, chainFor);
  yield;
  const router = new Router(snapshot.config.routes, snapshot.config.services, chainFor, prepared);
  yield;
  const runtime: RuntimeConfig = {
    version: snapshot.version,
    hash: snapshot.hash,
    router,
    plugins,
    upstreams,
    targets,
    sni: buildSniIndex(snapshot.config.certificates, snapshot.config.snis),
    routeIds: new Set(snapshot.config.routes.map((r) => r.id)),
    source: snapshot.config,
  };
  return { runtime, commit: planned.commit };
}

/** `prev` with new routes and SNIs: everything else it holds is what this snapshot would compile to. */
function* recompileRoutes(snapshot: Snapshot, prev: RuntimeConfig, before: Config, changes: ListChanges): Generator<undefined, Compiled, undefined> {
  const { routes, services, certificates, snis } = snapshot.config;
  const chainFor = (route: Route) => prev.plugins.chainFor(route);
  let router = prev.router;
  let routeIds = prev.routeIds;
  let idEdits: { removed: Route[]; added: Route[] } | null = null;
  if (!sameList(routes, before.routes)) {
    // The decoder's account of what came and went, when it is against the routes running now.
    const change = changes.routes?.base === before.routes ? changes.routes as RoutesChange : undefined;
    const updated = yield* updateRoutes(prev.router.prepared, routes, services, chainFor, change);
    yield;
    if (updated && prev.routeIds) {
      // Shares its maps, and the id set, with the running router: both are edited at commit.
      router = new Router(routes, services, chainFor, updated.prepared);
      idEdits = updated;
    } else {
      router = new Router(routes, services, chainFor, yield* prepareRoutes(routes, services, chainFor));
      routeIds = new Set(routes.map((r) => r.id));
    }
  }
  const runtime: RuntimeConfig = {
    ...prev,
    version: snapshot.version,
    hash: snapshot.hash,
    router,
    sni: sameList(snis, before.snis) ? prev.sni : buildSniIndex(certificates, snis),
    routeIds,
    source: snapshot.config,
  };
  // Balancers, targets and plugin state are the running ones: only the router's edits to make.
  return {
    runtime,
    commit() {
      router.commit();
      if (idEdits && routeIds) {
        const ids = routeIds as Set<string>;
        for (const r of idEdits.removed) ids.delete(r.id);
        for (const r of idEdits.added) ids.add(r.id);
        idEdits = null;
      }
    },
  };
}
