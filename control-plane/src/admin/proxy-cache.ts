// Kong's proxy-cache admin endpoints (reference/kong-compat.md §4.12), in hybrid mode too: a purge
// or lookup goes over the bus to every DP, signed, and the answer lists the nodes that purged and
// those that did not answer in time (Kong has no purge in hybrid mode at all).
//   DELETE /proxy-cache                         everything; or ?route=&service=&prefix=&tag= (ours)
//   GET|DELETE /proxy-cache/{key}               one key, every proxy-cache plugin
//   GET|DELETE /proxy-cache/{plugin}/caches/{key}
import type { Context } from 'hono';
import { AdminError, type CacheCommand, type CacheReply } from '@portico/shared';
import type { Db } from '../db/index.ts';
import { ENTITY_BY_NAME } from '../services/entity.ts';
import { getEntity, requireEntity } from '../services/store.ts';
import type { DataPlaneRegistry } from '../cluster/registry.ts';

type Handler = (c: Context) => Promise<Response> | Response;
export type CacheFilter = Omit<CacheCommand, 'id' | 'issued_at' | 'op'>;

/** How long the admin API waits for DPs to answer a purge. */
export const CACHE_REPLY_TIMEOUT_MS = 3_000;
/** A node seen within this long is expected to answer (three missed heartbeats: it is gone). */
const LIVE_WITHIN_S = 15;
const FILTERS = ['route', 'service', 'prefix', 'tag'] as const;
const MAX_KEY = 256;

export interface ProxyCacheRouteDeps {
  db: Db;
  registry: DataPlaneRegistry;
  resource(path: string, handlers: Partial<Record<'GET' | 'DELETE', Handler>>): void;
  /** Sends a signed cache command to every DP; resolves with the answers gathered in time. */
  sendCache(op: 'purge' | 'get', filter: CacheFilter, expected: number, timeoutMs: number): Promise<CacheReply[]>;
}

function cacheKeyParam(c: Context, name: string): string {
  const k = c.req.param(name)!;
  if (k.length === 0 || k.length > MAX_KEY || /[\0-\x1f*?[\]\\]/.test(k)) throw AdminError.message(400, `invalid cache key ${JSON.stringify(k.slice(0, 80))}`);
  return k;
}

export function proxyCacheRoutes(deps: ProxyCacheRouteDeps): void {
  const { db, registry, resource } = deps;
  const pluginDef = ENTITY_BY_NAME.get('plugins')!;

  /** The nodes expected to answer: those that reported recently and are not draining. */
  const liveNodes = async () => {
    const now = Math.floor(Date.now() / 1000);
    return (await registry.list(null)).filter((n) => now - n.last_seen <= LIVE_WITHIN_S && n.status !== 'draining');
  };

  const send = async (op: 'purge' | 'get', filter: CacheFilter) => {
    const nodes = await liveNodes();
    let replies: CacheReply[];
    try {
      replies = await deps.sendCache(op, filter, Math.max(nodes.length, 1), CACHE_REPLY_TIMEOUT_MS);
    } catch (err) {
      throw AdminError.message(503, `the data planes could not be reached: ${(err as Error).message}`);
    }
    return { nodes, replies };
  };

  const purge = async (c: Context, filter: CacheFilter) => {
    const { nodes, replies } = await send('purge', filter);
    const answered = new Set(replies.map((r) => r.node_id));
    const hostOf = new Map(nodes.map((n) => [n.id, n.hostname]));
    return c.json({
      purged: replies.map((r) => ({ node_id: r.node_id, hostname: hostOf.get(r.node_id) ?? null, entries: r.purged ?? 0, ...(r.errors ? { errors: r.errors } : {}) })),
      not_answered: nodes.filter((n) => !answered.has(n.id)).map((n) => ({ node_id: n.id, hostname: n.hostname })),
      filter,
    });
  };

  const lookup = async (c: Context, filter: CacheFilter) => {
    const { replies } = await send('get', filter);
    const found = replies.find((r) => r.entry !== null && r.entry !== undefined);
    if (!found) return c.json({ message: 'Not found' }, 404);
    return c.json({ ...(found.entry as object), node_id: found.node_id });
  };

  /** A proxy-cache plugin by id; anything else is Kong's 404. */
  const pluginId = async (c: Context): Promise<string> => {
    const p = await getEntity(db, pluginDef, c.req.param('plugin')!).catch(() => undefined);
    if (!p || p.name !== 'proxy-cache') throw AdminError.message(404, 'Not found');
    return p.id as string;
  };

  resource('/proxy-cache', {
    DELETE: async (c) => {
      const filter: CacheFilter = {};
      for (const name of Object.keys(c.req.queries())) {
        if (!(FILTERS as readonly string[]).includes(name)) throw AdminError.message(400, `unknown purge filter ${JSON.stringify(name.slice(0, 80))} (expected one of: ${FILTERS.join(', ')})`);
      }
      for (const f of FILTERS) {
        const v = c.req.query(f);
        if (v === undefined) continue;
        if (v === '' || v.length > 2048 || /[\0-\x1f]/.test(v)) throw AdminError.message(400, `${f} must be a non-empty string without control characters`);
        if (f === 'prefix' && !v.startsWith('/')) throw AdminError.message(400, 'prefix must start with /');
        if (f === 'route' || f === 'service') {
          filter[f] = (await requireEntity(db, ENTITY_BY_NAME.get(`${f}s`)!, v).catch((err) => {
            throw err instanceof AdminError && err.status === 404 ? AdminError.message(404, `no ${f} ${JSON.stringify(v.slice(0, 80))}`) : err;
          })).id as string;
        } else filter[f] = v;
      }
      return purge(c, filter);
    },
  });
  resource('/proxy-cache/:key', {
    GET: (c) => lookup(c, { key: cacheKeyParam(c, 'key') }),
    DELETE: (c) => purge(c, { key: cacheKeyParam(c, 'key') }),
  });
  resource('/proxy-cache/:plugin/caches/:key', {
    GET: async (c) => lookup(c, { plugin: await pluginId(c), key: cacheKeyParam(c, 'key') }),
    DELETE: async (c) => purge(c, { plugin: await pluginId(c), key: cacheKeyParam(c, 'key') }),
  });
}
