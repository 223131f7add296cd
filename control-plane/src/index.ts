// The control plane as a library: start it with an environment and, for all-in-one, a bus.
import os from 'node:os';
import { randomUUID } from 'node:crypto';
import { serve } from '@hono/node-server';
import type { Server } from 'node:http';
import { Hono } from 'hono';
import {
  closeServer, EnvError, isLoopbackHost, loadNodeId, natsConnectOptions, signEnvelope, type CacheCommand, type HealthOverride, nodeTracer, parseSigningKey, PORTICO_VERSION, type Env, type Logger, type SigningKey, type SnapshotPublisher,
} from '@portico/shared';
import { openDatabase } from './db/index.ts';
import { SnapshotLoop } from './snapshot/builder.ts';
import { connectNatsPublisher } from './snapshot/nats.ts';
import { DataPlaneRegistry } from './cluster/registry.ts';
import { createAdminApp, type AdminDeps } from './admin/app.ts';
import { AdminAuth, bootstrapToken } from './admin/auth.ts';
import { createGuiApp } from './gui/server.ts';
import { TrafficHistory } from './gui/metrics.ts';
import { DeclarativeError, importFile } from './declarative/index.ts';
import { createKeyring, keyringKeyFromEnv, useKeyring } from './services/keyring.ts';

export { ensureKeyringKey } from './services/keyring.ts';
import { ControlPlaneMetrics } from './metrics.ts';
import { ControlPlaneTracing } from './tracing.ts';

export interface ControlPlane {
  stop(): Promise<void>;
}

function listen(app: Pick<Hono, 'fetch'>, host: string, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    // Longer than clients' idle timeouts, so a client never reuses a connection the server is closing.
    const server = serve({ fetch: app.fetch, hostname: host, port, serverOptions: { keepAliveTimeout: 75_000 } }, () => resolve(server as Server)) as Server;
    server.once('error', reject);
  });
}

/** PORTICO_SIGNING_KEY, the key snapshots are signed with. */
export function signingKeyFromEnv(env: Env): SigningKey {
  if (env.PORTICO_SIGNING_KEY) {
    try { return parseSigningKey(env.PORTICO_SIGNING_KEY); } catch (err) { throw new EnvError((err as Error).message); }
  }
  throw new EnvError('PORTICO_SIGNING_KEY is required when the control plane runs alone: data planes apply only snapshots it signs (generate an Ed25519 key: openssl genpkey -algorithm ed25519)');
}

/** What a composition root (the all-in-one) gives a CP that runs beside a DP. */
export interface EmbeddedOptions {
  /** The in-process bus, when no NATS_URL is set. */
  bus?: SnapshotPublisher;
  /** The key snapshots are signed with, when not from PORTICO_SIGNING_KEY. */
  signing?: SigningKey;
  upstreamHealth?: AdminDeps['upstreamHealth'];
  /** Prometheus endpoints whose traffic Portico Manager charts (the embedded DP's status listener). */
  trafficSources?: string[];
  /** The keyring key, when not from PORTICO_KEYRING_KEY (the all-in-one's generated one). */
  keyringKey?: Buffer;
}

/** PORTICO_DECLARATIVE_CONFIG: the file becomes the store's content before the first snapshot. */
async function loadDeclarativeConfig(env: Env, database: Awaited<ReturnType<typeof openDatabase>>, log: Logger): Promise<void> {
  const file = env.PORTICO_DECLARATIVE_CONFIG!;
  try {
    const r = await importFile(database.db, { actor: null, method: 'LOAD', path: file, client_ip: 'local', request_id: randomUUID() }, file, process.env);
    log.info({ file, version: r.version, summary: r.summary }, 'declarative config loaded');
  } catch (err) {
    await database.close();
    if (err instanceof DeclarativeError) throw new EnvError(`PORTICO_DECLARATIVE_CONFIG ${file} is invalid:\n  ${err.message.split('\n').join('\n  ')}`);
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new EnvError(`PORTICO_DECLARATIVE_CONFIG ${file}: no such file`);
    throw err;
  }
}

export async function startControlPlane(env: Env, log: Logger, embedded: EmbeddedOptions = {}): Promise<ControlPlane> {
  const { bus, upstreamHealth } = embedded;
  const signing = embedded.signing ?? signingKeyFromEnv(env);
  const token = bootstrapToken(env);
  const keyringKey = keyringKeyFromEnv(env) ?? embedded.keyringKey;
  useKeyring(keyringKey ? createKeyring(keyringKey) : null);
  if (!keyringKey) log.warn('no PORTICO_KEYRING_KEY: key-auth keys are kept as hashes only, so the admin API cannot give them back (decK cannot manage them)');
  // Read and checked before any socket opens: a bad credential file is an exit 2, not a retry loop.
  const natsOptions = bus ? null : natsConnectOptions(env, 'portico-control-plane');
  const nodeId = loadNodeId(env.PORTICO_DATA_DIR, 'cp_node_id');
  const database = await openDatabase({ url: env.DATABASE_URL, dataDir: env.PORTICO_DATA_DIR });
  log.info({ database: database.kind }, 'database ready, migrations applied');
  const auth = new AdminAuth(database.db, log, env.PORTICO_ADMIN_GUI_ORIGINS);
  await auth.init(token);
  if (!auth.enabled && !isLoopbackHost(env.PORTICO_ADMIN_LISTEN.host)) {
    await database.close();
    throw new EnvError(`PORTICO_ADMIN_LISTEN is ${env.PORTICO_ADMIN_LISTEN.host}:${env.PORTICO_ADMIN_LISTEN.port}, not loopback, and no admin exists: set PORTICO_ADMIN_TOKEN (or PORTICO_ADMIN_TOKEN_FILE) so the admin API requires a token, or listen on 127.0.0.1`);
  }
  // The GUI hands requests to the admin API from inside this process: the same loopback rule holds.
  if (!auth.enabled && env.PORTICO_GUI_LISTEN && !isLoopbackHost(env.PORTICO_GUI_LISTEN.host)) {
    await database.close();
    throw new EnvError(`PORTICO_GUI_LISTEN is ${env.PORTICO_GUI_LISTEN.host}:${env.PORTICO_GUI_LISTEN.port}, not loopback, and no admin exists: set PORTICO_ADMIN_TOKEN (or PORTICO_ADMIN_TOKEN_FILE), listen on 127.0.0.1, or set it to off`);
  }
  if (env.PORTICO_DECLARATIVE_CONFIG) await loadDeclarativeConfig(env, database, log);
  const publisher = bus ?? connectNatsPublisher(natsOptions!, log);
  const snapshots = new SnapshotLoop(database.db, publisher, log, signing, env.PORTICO_CONFIG_HISTORY);
  const nodeTraces = await nodeTracer(env.PORTICO_OTEL_TRACES_ENDPOINT, 'portico-control-plane', nodeId);
  const tracing = nodeTraces ? new ControlPlaneTracing(nodeTraces) : null;
  snapshots.tracing = tracing;
  const registry = new DataPlaneRegistry(database.db, log);
  publisher.onHeartbeat((hb) => { void registry.record(hb); });
  await snapshots.start();

  const sendHealth = (o: Omit<HealthOverride, 'id' | 'issued_at'>) => {
    const message: HealthOverride = { id: randomUUID(), issued_at: Date.now(), ...o };
    return publisher.sendHealth(signEnvelope(Buffer.from(JSON.stringify(message)), signing));
  };
  const sendCache: AdminDeps['sendCache'] = async (op, filter, expected, timeoutMs) => {
    if (!publisher.sendCache) throw new Error('this bus carries no cache commands');
    const message: CacheCommand = { id: randomUUID(), issued_at: Date.now(), op, ...filter };
    return publisher.sendCache(signEnvelope(Buffer.from(JSON.stringify(message)), signing), expected, timeoutMs);
  };
  const metrics = new ControlPlaneMetrics(snapshots, registry);
  const admin = createAdminApp({ database, snapshots, registry, nodeId, role: bus ? 'traditional' : 'control_plane', log, upstreamHealth, auth, sendHealth, sendCache, metrics });
  const adminFetch = metrics.countAdmin(tracing ? tracing.traceAdmin(admin.fetch) : admin.fetch);
  const adminServer = await listen({ fetch: adminFetch }, env.PORTICO_ADMIN_LISTEN.host, env.PORTICO_ADMIN_LISTEN.port);
  log.info({ listen: env.PORTICO_ADMIN_LISTEN }, 'admin API listening');

  // Charts: the embedded DP (all-in-one), plus the DPs the operator lists (PORTICO_GUI_TRAFFIC_SOURCES).
  const embeddedOnly = !!embedded.trafficSources?.length && !env.PORTICO_GUI_TRAFFIC_SOURCES.length;
  const traffic = new TrafficHistory([...(embedded.trafficSources ?? []), ...env.PORTICO_GUI_TRAFFIC_SOURCES], log, embeddedOnly);
  let guiServer: Server | undefined;
  if (env.PORTICO_GUI_LISTEN) {
    guiServer = await listen(createGuiApp({ admin, traffic, log }), env.PORTICO_GUI_LISTEN.host, env.PORTICO_GUI_LISTEN.port);
    traffic.start();
    log.info({ listen: env.PORTICO_GUI_LISTEN }, 'Portico Manager listening');
  }

  let statusServer: Server | undefined;
  if (!bus) {
    // All-in-one serves status from the DP; a CP alone answers ready once its database does.
    const status = new Hono();
    status.get('/status', async (c) => c.json({
      role: 'control_plane', node_id: nodeId, hostname: os.hostname(), version: PORTICO_VERSION,
      database: { reachable: await database.ping() }, configuration: snapshots.latest,
    }));
    status.get('/status/ready', async (c) => (await database.ping())
      ? c.json({ message: 'ready' }) : c.json({ message: 'database unreachable' }, 503));
    status.get('/metrics', async (c) => c.text(await metrics.text(), 200, { 'content-type': metrics.registry.contentType }));
    status.notFound((c) => c.json({ message: 'Not found' }, 404));
    statusServer = await listen(status, env.PORTICO_STATUS_LISTEN.host, env.PORTICO_STATUS_LISTEN.port);
  }

  return {
    async stop() {
      await closeServer(adminServer, env.PORTICO_SHUTDOWN_TIMEOUT_MS);
      traffic.stop();
      if (guiServer) await closeServer(guiServer, 1_000);
      if (statusServer) await closeServer(statusServer, 1_000);
      await snapshots.stop();
      await tracing?.shutdown();
      await publisher.close();
      await database.close();
    },
  };
}
