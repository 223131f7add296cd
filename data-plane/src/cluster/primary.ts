// The primary process of a multi-worker DP node (PORTICO_WORKERS > 1). One node keeps one
// identity: this process holds the NATS subscription, the disk cache, heartbeats, the status
// listener, active health probes and the node's local rate-limit counters; N workers (worker.ts,
// forked with node:cluster, which shares the proxy, TLS, mTLS and h2c ports among them) proxy.
// Each snapshot's signature is checked here once; the verified bytes go to every worker, which
// applies them through ConfigState.apply as a single-process node does. The node reports its
// least advanced worker's version, so it is in sync only when every worker is.
import cluster, { type Worker } from 'node:cluster';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Server } from 'node:http';
import {
  type CacheReply,
  closeServer, HEARTBEAT_INTERVAL_MS, loadNodeId, natsConnectOptions, openSnapshot, PORTICO_VERSION,
  type Env, type Heartbeat, type Logger, type Target,
} from '@portico/shared';
import { MemoryRateLimitStore } from '@portico/shared/plugins/handlers';
import { HealthRegistry, type UpstreamBalancer } from '../proxy/balancer.ts';
import { probeTarget } from '../proxy/probe.ts';
import { CACHE_FILE } from '../sync/config-state.ts';
import { SnapshotFile } from '../sync/disk-cache.ts';
import { connectNatsSubscriber } from '../sync/nats.ts';
import { HealthOverrides } from '../sync/health-overrides.ts';
import { createStatusApp, upstreamHealth, type ConfigView, type WorkerStatus } from '../status/app.ts';
import { primaryIp, startStatusServer, trustedKeys } from '../index.ts';
import { defaultCertificate } from '../tls/index.ts';
import { grantBatch } from './rate-limit.ts';
import { mergeMetrics } from './metrics.ts';
import type { ToPrimary, ToWorker, UpstreamTargets, WorkerCounters } from './protocol.ts';
import { withProxyFlags } from '../node-flags.ts';

/** A worker that dies sooner than this after its start is restarted after a growing delay. */
const STABLE_AFTER_MS = 5_000;
const RESTART_DELAY_MAX_MS = 10_000;
/** How long /status and /metrics wait for a worker's answer. */
const QUERY_TIMEOUT_MS = 2_000;
/** Past the shutdown timeout, workers still running are killed. */
const EXIT_GRACE_MS = 5_000;

interface WorkerRecord {
  worker: Worker;
  startedAt: number;
  hb: Heartbeat | null;
}

export interface Primary { stop(): Promise<void> }

export async function startPrimary(env: Env, log: Logger): Promise<Primary> {
  const trusted = trustedKeys(env);
  const natsOptions = natsConnectOptions(env, 'portico-data-plane');
  mkdirSync(env.PORTICO_DATA_DIR, { recursive: true });
  // Made before any worker starts, so every process of the node reads the same id.
  const nodeId = loadNodeId(env.PORTICO_DATA_DIR);
  const startedAt = Date.now();
  const cacheFile = path.join(env.PORTICO_DATA_DIR, CACHE_FILE);
  const disk = new SnapshotFile(cacheFile, log);
  // A generated default certificate is made here, once: workers making it at the same time
  // could leave one's key beside another's certificate in the data dir.
  if (env.PORTICO_PROXY_TLS_LISTEN || env.PORTICO_PROXY_MTLS_LISTEN) await defaultCertificate(env, log);
  cluster.setupPrimary({ serialization: 'advanced', execArgv: withProxyFlags(process.execArgv) });

  /** The config the node runs: the newest bytes a worker applied (or the disk cache at start). */
  let current: { bytes: Uint8Array; version: number } | null = null;
  let appliedAt = 0;
  try {
    const bytes = readFileSync(cacheFile);
    await openSnapshot(bytes, trusted);
    current = { bytes, version: 0 };
    log.info('serving cached config from disk');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log.warn({ error: (err as Error).message }, 'disk-cached config is unusable; waiting for the bus');
  }
  /** Bytes sent to workers by sequence number, until every worker sent them has answered. */
  const sent = new Map<number, { bytes: Uint8Array; waiting: number }>();
  let seq = 0;
  /** Digests of snapshots the workers rejected: refused at once when the bus offers them again. */
  const rejected = new Set<string>();
  const digest = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

  const records = new Map<number, WorkerRecord>();
  const sendTo = (w: Worker, m: ToWorker): void => { if (w.isConnected()) w.send(m); };
  const broadcast = (m: ToWorker, except?: Worker): number => {
    let n = 0;
    for (const r of records.values()) if (r.worker !== except && r.worker.isConnected()) { r.worker.send(m); n++; }
    return n;
  };

  // Active probes run here once for the node; what they and the workers learn reaches every worker.
  const health = new HealthRegistry(probeTarget, (upstream, t) => {
    broadcast({ t: 'health', upstream, target: t.target, s: { healthy: t.healthy, breaker: t.breaker, openedAt: t.openedAt } });
  });
  let balancers: Map<string, UpstreamBalancer> | null = null;
  let probedVersion = 0;
  const plan = (version: number, list: UpstreamTargets[]): void => {
    if (version <= probedVersion) return;
    probedVersion = version;
    const targets = list.flatMap((u) => u.targets.map((t) => ({ ...t, upstream: { id: u.upstream.id } }) as Target));
    const p = health.plan(list.map((u) => u.upstream), targets);
    p.commit();
    balancers = p.balancers;
  };

  const counters = new MemoryRateLimitStore();
  const sweep = setInterval(() => counters.sweep(), 60_000);
  sweep.unref();

  let nextQuery = 1;
  const queries = new Map<number, (v: unknown) => void>();
  const query = (r: WorkerRecord, what: 'counters' | 'metrics' | 'cache', bytes?: Uint8Array): Promise<unknown> => new Promise((resolve) => {
    const id = nextQuery++;
    const timer = setTimeout(() => { queries.delete(id); resolve(null); }, QUERY_TIMEOUT_MS);
    queries.set(id, (v) => { clearTimeout(timer); queries.delete(id); resolve(v); });
    try { sendTo(r.worker, what === 'cache' ? { t: 'query', id, what, bytes: bytes! } : { t: 'query', id, what }); } catch { queries.get(id)?.(null); }
  });

  let draining = false;
  const live = () => [...records.values()].filter((r) => r.hb);
  const least = () => live().reduce<WorkerRecord | null>((a, r) => (!a || r.hb!.config_version < a.hb!.config_version ? r : a), null);
  const view: ConfigView = {
    get version() { return least()?.hb!.config_version ?? 0; },
    get hash() { return least()?.hb!.config_hash ?? '0'.repeat(64); },
    get appliedAt() { return appliedAt; },
    get lastError() { return live().find((r) => r.hb!.last_error)?.hb!.last_error ?? null; },
    lastApply: null,
    get cacheVersion() { return disk.version; },
    // Ready (/status/ready) once a worker serves a config: a worker being restarted does not take
    // the node out of its load balancer, as node:cluster sends connections only to listening workers.
    current: () => (current && live().some((r) => r.hb!.status === 'ready') ? { upstreams: balancers ?? new Map() } : null),
  };

  const onApplied = (m: Extract<ToPrimary, { t: 'applied' }>): void => {
    const s = sent.get(m.seq);
    if (s && --s.waiting <= 0) sent.delete(m.seq);
    if (m.upstreams) plan(m.version, m.upstreams);
    if (!s) return;
    if (!m.ok) { rejected.add(digest(s.bytes)); return; }
    if (m.version > (current?.version ?? 0) || (current?.bytes === s.bytes && current.version === 0)) {
      const persist = current?.bytes !== s.bytes;
      current = { bytes: s.bytes, version: m.version };
      appliedAt = Date.now();
      // The node's disk cache: written once, by the primary, for bytes a worker applied (off its event loop, as a single node's).
      if (persist) disk.write(s.bytes, m.version);
      else if (disk.version === 0) disk.version = m.version; // the cache read at start, now known by its version
    }
  };

  const onMessage = (r: WorkerRecord, m: ToPrimary): void => {
    switch (m.t) {
      case 'hello': {
        const id = ++seq;
        if (current) sent.set(id, { bytes: current.bytes, waiting: 1 });
        sendTo(r.worker, { t: 'init', seq: id, bytes: current?.bytes ?? null });
        break;
      }
      case 'applied': onApplied(m); break;
      case 'hb': {
        const before = r.hb;
        r.hb = m.hb;
        if (before?.config_version !== m.hb.config_version || before?.status !== m.hb.status || before?.last_error !== m.hb.last_error) beat();
        break;
      }
      case 'health':
        health.applyShared(m.upstream, m.target, m.s);
        broadcast(m, r.worker);
        break;
      case 'rl': sendTo(r.worker, grantBatch(counters, m)); break;
      case 'answer': queries.get(m.id)?.(m.value); break;
      default: log.error({ message: (m as { t?: unknown }).t }, 'unknown message from a worker; dropped');
    }
  };

  let restartDelay = 0;
  const fork = (): void => {
    const worker = cluster.fork();
    const r: WorkerRecord = { worker, startedAt: Date.now(), hb: null };
    records.set(worker.id, r);
    worker.on('message', (m: ToPrimary) => onMessage(r, m));
  };
  cluster.on('exit', (worker, code, signal) => {
    const r = records.get(worker.id);
    records.delete(worker.id);
    if (draining) return;
    log.error({ worker: worker.id, pid: worker.process.pid, code, signal }, 'data-plane worker exited; starting another');
    beat();
    restartDelay = r && Date.now() - r.startedAt < STABLE_AFTER_MS ? Math.min(RESTART_DELAY_MAX_MS, Math.max(250, restartDelay * 2)) : 0;
    setTimeout(() => { if (!draining) fork(); }, restartDelay).unref();
  });
  for (let i = 0; i < env.PORTICO_WORKERS; i++) fork();

  const workerList = async (): Promise<WorkerStatus[]> => Promise.all([...records.values()].map(async (r) => {
    const c = await query(r, 'counters') as WorkerCounters | null;
    return {
      id: r.worker.id, pid: r.worker.process.pid!, config_version: r.hb?.config_version ?? 0, config_hash: r.hb?.config_hash ?? '0'.repeat(64),
      last_error: r.hb?.last_error ?? null, status: r.hb?.status ?? 'starting', total_requests: c?.requests ?? 0, connections_accepted: c?.connections ?? 0,
    };
  }));
  const status = createStatusApp({
    nodeId, state: view, draining: () => draining, counters: { requests: 0, connections: 0 }, pluginCounters: new Map(),
    observability: {
      contentType: 'text/plain; version=0.0.4; charset=utf-8',
      metrics: async () => mergeMetrics((await Promise.all([...records.values()].map(async (r) => ({ worker: r.worker.id, text: await query(r, 'metrics') as string | null }))))
        .filter((x): x is { worker: number; text: string } => typeof x.text === 'string')),
    },
    workers: workerList,
  });
  const statusServer: Server = await startStatusServer(env, status);

  const subscriber = connectNatsSubscriber(natsOptions, log, () => current?.version ?? 0, trusted);
  const hostname = os.hostname();
  const ip = primaryIp();
  function beat(): void {
    const list = live();
    const low = least();
    const hb: Heartbeat = {
      id: nodeId, hostname, ip, version: PORTICO_VERSION, config_version: low?.hb!.config_version ?? 0, config_hash: low?.hb!.config_hash ?? '0'.repeat(64),
      last_error: view.lastError, started_at: startedAt,
      status: draining ? 'draining' : list.length > 0 && list.every((r) => r.hb!.status === 'ready') ? 'ready' : 'starting',
      workers: list.map((r) => ({ pid: r.worker.process.pid!, config_version: r.hb!.config_version, config_hash: r.hb!.config_hash, last_error: r.hb!.last_error, status: r.hb!.status })),
    };
    subscriber.heartbeat(hb);
  }
  const overrides = new HealthOverrides(trusted, upstreamHealth(view, nodeId).set, log);
  subscriber.onHealth((bytes) => {
    overrides.receive(bytes);
    broadcast({ t: 'override', bytes });
  });
  // proxy-cache commands: every worker holds its own memory tier, so each runs the command; the
  // node answers once, with the entries all its workers purged (and the first entry a get found).
  subscriber.onCache?.(async (bytes) => {
    const replies = (await Promise.all(live().map((r) => query(r, 'cache', bytes)))).filter((x): x is CacheReply => x !== null);
    if (!replies.length) return null;
    const purged = replies.some((x) => x.purged !== undefined) ? replies.reduce((n, x) => n + (x.purged ?? 0), 0) : undefined;
    const entry = replies.find((x) => x.entry != null)?.entry;
    const errors = [...new Set(replies.flatMap((x) => x.errors ?? []))];
    return { node_id: nodeId, ...(purged !== undefined ? { purged } : {}), ...(entry !== undefined ? { entry } : replies.some((x) => 'entry' in x) ? { entry: null } : {}), ...(errors.length ? { errors } : {}) };
  });
  await subscriber.watch(async (bytes, traceparent) => {
    // The one signature check of the node; a forged or unsigned snapshot never reaches a worker.
    try { await openSnapshot(bytes, trusted); } catch (err) {
      log.error({ error: (err as Error).message }, 'config snapshot rejected; the previous config keeps serving');
      return false;
    }
    if (rejected.has(digest(bytes))) return false;
    const id = ++seq;
    const waiting = broadcast({ t: 'snapshot', seq: id, bytes, traceparent });
    if (waiting) sent.set(id, { bytes, waiting });
    return true;
  });
  const heartbeat = setInterval(beat, HEARTBEAT_INTERVAL_MS);
  heartbeat.unref();
  log.info({ workers: env.PORTICO_WORKERS, proxy: env.PORTICO_PROXY_LISTEN, status: env.PORTICO_STATUS_LISTEN, node_id: nodeId }, 'data plane node started');

  return {
    async stop() {
      draining = true;
      beat();
      clearInterval(heartbeat);
      // Each worker drains its in-flight requests (startDataPlane's stop) and exits.
      const exits = [...records.values()].map((r) => new Promise<void>((resolve) => {
        if (r.worker.isDead()) return resolve();
        const kill = setTimeout(() => { log.warn({ worker: r.worker.id }, 'worker did not drain in time; killed'); r.worker.process.kill('SIGKILL'); }, env.PORTICO_SHUTDOWN_TIMEOUT_MS + EXIT_GRACE_MS);
        r.worker.once('exit', () => { clearTimeout(kill); resolve(); });
        r.worker.process.kill('SIGTERM');
      }));
      await Promise.all(exits);
      await closeServer(statusServer, 1_000);
      clearInterval(sweep);
      health.stop();
      await subscriber.close();
      await disk.flush();
    },
  };
}
