// proxy-cache commands from the CP (the admin API's purges and lookups), received over the bus.
// A purge empties what every DP holds, so it is trusted like a health override: signed by the
// CP's key, fresh and not replayed (ReplayGuard). Every accepted command is answered, so the
// admin API can list the nodes that purged.
import { cacheCommandSchema, openEnvelope, type CacheReply, type Logger, type TrustedKey } from '@portico/shared';
import { ReplayGuard } from './health-overrides.ts';
import type { ProxyCacheStores } from '../adapters/proxy-cache.ts';

export function cacheCommandHandler(nodeId: string, trusted: readonly TrustedKey[], stores: ProxyCacheStores, log: Logger, guard = new ReplayGuard()) {
  return async (bytes: Uint8Array): Promise<CacheReply | null> => {
    let cmd;
    try {
      cmd = cacheCommandSchema.parse(JSON.parse(Buffer.from(openEnvelope(bytes, trusted, 'cache command')).toString('utf8')));
    } catch (err) {
      log.warn({ error: (err as Error).message.slice(0, 500) }, 'cache command refused');
      return null;
    }
    if (!guard.accept(cmd.id, cmd.issued_at)) {
      log.warn({ id: cmd.id, issued_at: cmd.issued_at }, 'cache command refused: stale or replayed');
      return null;
    }
    const { id: _id, issued_at: _at, op, ...filter } = cmd;
    try {
      if (op === 'get') return { node_id: nodeId, entry: filter.key === undefined ? null : await stores.lookup(filter.plugin, filter.key) };
      const r = await stores.purge(filter);
      log.info({ filter, purged: r.purged }, 'proxy-cache purge from the control plane');
      return { node_id: nodeId, purged: r.purged, ...(r.errors.length > 0 ? { errors: r.errors } : {}) };
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'cache command failed');
      return { node_id: nodeId, errors: [(err as Error).message] };
    }
  };
}
