// A worker process of a multi-worker DP node: the proxy (and TLS, mTLS, h2c) listeners of
// startDataPlane, with what is node-wide held by the primary (primary.ts). It asks for the node's
// current config and applies it before it listens, so node:cluster sends it connections only once
// it can route them (a restarted worker included).
import type { CacheReply, Heartbeat, Logger, SnapshotHandler, SnapshotSubscriber, Env } from '@portico/shared';
import { HealthRegistry } from '../proxy/balancer.ts';
import type { ConfigState } from '../sync/config-state.ts';
import { startDataPlane, type DataPlane } from '../index.ts';
import { PrimaryRateLimitStore } from './rate-limit.ts';
import type { ToPrimary, ToWorker, UpstreamTargets, WorkerCounters } from './protocol.ts';

/** Dropped once the primary is gone: this process exits then (node:cluster ends a worker on disconnect). */
const send = (m: ToPrimary): void => { if (process.connected) process.send!(m); };

/** The upstreams the running config balances over, for the primary's probes and health view. */
function upstreamsOf(state: ConfigState): UpstreamTargets[] {
  return [...(state.current()?.upstreams.values() ?? [])].map((b) => ({ upstream: b.upstream, targets: b.targets.map((t) => ({ target: t.target, weight: t.weight })) }));
}

export async function startWorker(env: Env, log: Logger): Promise<DataPlane> {
  let handler: SnapshotHandler | null = null;
  let cacheHandler: ((bytes: Uint8Array) => Promise<CacheReply | null>) | null = null;
  /** Snapshots that arrive before startDataPlane watches the bus: the newest is applied then. */
  let early: Extract<ToWorker, { t: 'snapshot' }> | null = null;
  const overrideHandlers: ((bytes: Uint8Array) => void)[] = [];
  let state: ConfigState | null = null;
  let dp: DataPlane | null = null;
  let lastVersion = 0;
  const rateLimits = new PrimaryRateLimitStore(send);
  const health = new HealthRegistry(null, (upstream, t) => send({ t: 'health', upstream, target: t.target, s: { healthy: t.healthy, breaker: t.breaker, openedAt: t.openedAt } }));

  const applied = (seq: number, ok: boolean): void => {
    const version = state?.version ?? 0;
    const changed = version !== lastVersion;
    lastVersion = version;
    send({ t: 'applied', seq, ok, version, ...(changed && state ? { upstreams: upstreamsOf(state) } : {}) });
  };
  const deliver = (m: Extract<ToWorker, { t: 'snapshot' }>): void => {
    void Promise.resolve(handler!(m.bytes, m.traceparent)).then((ok) => applied(m.seq, ok), () => applied(m.seq, false));
  };

  let init: (m: Extract<ToWorker, { t: 'init' }>) => void;
  const initial = new Promise<Extract<ToWorker, { t: 'init' }>>((resolve) => { init = resolve; });
  process.on('message', (m: ToWorker) => {
    switch (m.t) {
      case 'init': init(m); break;
      case 'snapshot': if (handler) deliver(m); else early = m; break;
      case 'override': for (const h of overrideHandlers) h(m.bytes); break;
      case 'health': health.applyShared(m.upstream, m.target, m.s); break;
      case 'rl': rateLimits.answer(m.id, m.grants); break;
      case 'query': void answer(m); break;
      default: log.error({ message: (m as { t?: unknown }).t }, 'unknown message from the primary; dropped');
    }
  });
  const answer = async (m: Extract<ToWorker, { t: 'query' }>): Promise<void> => {
    const value = !dp ? null
      : m.what === 'cache' ? (cacheHandler ? await cacheHandler(m.bytes).catch(() => null) : null)
      : m.what === 'metrics' ? await dp.metrics() : { requests: dp.counters.requests, connections: dp.counters.connections } satisfies WorkerCounters;
    send({ t: 'answer', id: m.id, value });
  };
  const bus: SnapshotSubscriber = {
    async watch(h) {
      handler = h;
      if (early) deliver(early);
      early = null;
    },
    heartbeat(hb: Heartbeat) { send({ t: 'hb', hb }); },
    onHealth(h) { overrideHandlers.push(h); },
    onCache(h) { cacheHandler = h; },
    async close() {},
  };
  send({ t: 'hello' });
  const first = await initial;
  dp = await startDataPlane(env, log, undefined, undefined, {
    bus, initial: first.bytes, localRateLimitStore: rateLimits, health,
    onState(s) { state = s; s.persist = false; },
  });
  applied(first.seq, first.bytes === null || dp.state.version > 0);
  return dp;
}
