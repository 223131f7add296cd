// Plugin chains compiled once per snapshot (ARCHITECTURE.md, "Plugins"): for every route, the
// plugins that can run on it in priority order, each with its most specific non-consumer config
// already chosen. Consumer-scoped configs are kept aside and picked per request once an auth
// plugin has identified the consumer, with Kong's precedence (reference/kong-compat.md §2.4):
//   1 route+service+consumer  2 route+consumer  3 service+consumer  4 route+service
//   5 consumer  6 route  7 service  8 global
import type { Config, PluginEntity, Route } from '@portico/shared';
import type { CredentialIndex, PluginEnv, PluginHandler } from '@portico/shared/plugins/handlers';
import { PLUGIN_HANDLERS } from '@portico/shared/plugins/handlers';
import { SECRET_QUERY_NAMES } from '@portico/shared';

export interface PluginInstance {
  id: string;
  name: string;
  config: any;
  state: unknown;
  handler: PluginHandler;
  routeId: string | null;
  serviceId: string | null;
  consumerId: string | null;
}

export interface PluginSlot {
  name: string;
  handler: PluginHandler;
  /** The config that runs when no consumer-scoped one applies. */
  base: PluginInstance | null;
  baseRank: number;
  /** consumer id → that consumer's instances of this plugin, when any exist. */
  byConsumer: Map<string, PluginInstance[]> | null;
}

const idOf = (ref: { id: string } | null) => ref?.id ?? null;

export function buildIndex(config: Config): CredentialIndex {
  const groups = new Map<string, string[]>();
  for (const a of config.acls) {
    const id = a.consumer?.id;
    if (!id) continue;
    const list = groups.get(id);
    if (list) list.push(a.group); else groups.set(id, [a.group]);
  }
  return {
    consumersById: new Map(config.consumers.map((c) => [c.id, c])),
    consumersByUsername: new Map(config.consumers.filter((c) => c.username).map((c) => [c.username!, c])),
    keyAuthByHash: new Map(config.keyauth_credentials.map((k) => [k.key_hash, k])),
    jwtByKey: new Map(config.jwt_secrets.map((j) => [j.key, j])),
    basicAuthByUsername: new Map(config.basicauth_credentials.map((b) => [b.username, b])),
    aclGroupsByConsumer: groups,
    caCertificatesById: new Map(config.ca_certificates.map((c) => [c.id, c])),
  };
}

function rankFor(i: PluginInstance, route: Route): number {
  const r = i.routeId !== null, s = i.serviceId !== null, c = i.consumerId !== null;
  if (r && i.routeId !== route.id) return Infinity;
  if (s && i.serviceId !== (route.service?.id ?? null)) return Infinity;
  if (r && s && c) return 1;
  if (r && c) return 2;
  if (s && c) return 3;
  if (r && s) return 4;
  if (c) return 5;
  if (r) return 6;
  if (s) return 7;
  return 8;
}

export class PluginChains {
  private readonly instances: PluginInstance[];
  private readonly consumerScoped = new Map<string, Map<string, PluginInstance[]>>();
  /**
   * Lower-case query argument names whose values are credentials in this snapshot: the defaults
   * plus every key-auth `key_names` (when it reads the query) and jwt `uri_param_names`. Access
   * and error log lines redact them (ARCHITECTURE.md invariant 8).
   */
  readonly secretQueryNames = new Set<string>(SECRET_QUERY_NAMES);

  constructor(plugins: PluginEntity[], readonly env: PluginEnv) {
    this.instances = [];
    for (const p of plugins) {
      if (!p.enabled || !(p.protocols.includes('http') || p.protocols.includes('https'))) continue;
      const handler = PLUGIN_HANDLERS.get(p.name);
      if (!handler) throw new Error(`plugin '${p.name}' is not available on this data plane`);
      const inst: PluginInstance = {
        id: p.id, name: p.name, config: p.config, handler, state: handler.init ? handler.init(p.config, env, p.id) : undefined,
        routeId: idOf(p.route), serviceId: idOf(p.service), consumerId: idOf(p.consumer),
      };
      this.instances.push(inst);
      if (p.name === 'key-auth' && p.config.key_in_query !== false) for (const n of (p.config.key_names as string[] | undefined) ?? []) this.secretQueryNames.add(String(n).toLowerCase());
      if (p.name === 'jwt') for (const n of (p.config.uri_param_names as string[] | undefined) ?? []) this.secretQueryNames.add(String(n).toLowerCase());
      if (inst.consumerId) {
        let byConsumer = this.consumerScoped.get(p.name);
        if (!byConsumer) this.consumerScoped.set(p.name, (byConsumer = new Map()));
        const list = byConsumer.get(inst.consumerId);
        if (list) list.push(inst); else byConsumer.set(inst.consumerId, [inst]);
      }
    }
  }

  /** The chain for one route, in execution order (priority, then name reverse-alphabetical). */
  chainFor(route: Route): PluginSlot[] {
    const slots = new Map<string, PluginSlot>();
    for (const inst of this.instances) {
      if (inst.consumerId) continue;
      const rank = rankFor(inst, route);
      if (rank === Infinity) continue;
      const slot = slots.get(inst.name);
      if (!slot) slots.set(inst.name, { name: inst.name, handler: inst.handler, base: inst, baseRank: rank, byConsumer: null });
      else if (rank < slot.baseRank) { slot.base = inst; slot.baseRank = rank; }
    }
    for (const [name, byConsumer] of this.consumerScoped) {
      const slot = slots.get(name);
      if (slot) slot.byConsumer = byConsumer;
      else slots.set(name, { name, handler: [...byConsumer.values()][0][0].handler, base: null, baseRank: Infinity, byConsumer });
    }
    return [...slots.values()].sort((a, b) => b.handler.priority - a.handler.priority || (a.name < b.name ? 1 : -1));
  }

  /** The instance to run for `slot` now that `consumerId` (maybe null) is known. */
  static pick(slot: PluginSlot, route: Route, consumerId: string | null): PluginInstance | null {
    if (!slot.byConsumer || !consumerId) return slot.base;
    const own = slot.byConsumer.get(consumerId);
    if (!own) return slot.base;
    let best = slot.base;
    let bestRank = slot.baseRank;
    for (const inst of own) {
      const rank = rankFor(inst, route);
      if (rank < bestRank) { best = inst; bestRank = rank; }
    }
    return best;
  }
}
