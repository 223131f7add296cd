// A whole cluster for a test file: Postgres, NATS, an echo upstream, one CP and N DPs.
import { startNats, startPostgres, waitFor, type NatsHandle, type PgHandle } from './procs.ts';
import { admin, startGateway, type GatewayProcess } from './gateway.ts';
import { startUpstream, type Upstream } from './upstream.ts';

export interface Stack {
  pg: PgHandle; nats: NatsHandle; upstream: Upstream; cp: GatewayProcess; dps: GatewayProcess[];
  A: (method: string, path: string, body?: unknown, headers?: Record<string, string>) => ReturnType<typeof admin>;
  /** Write through the admin API and wait until every running DP applied the resulting version. */
  write: (method: string, path: string, body?: unknown) => ReturnType<typeof admin>;
  converge: (version: number, dps?: GatewayProcess[]) => Promise<void>;
  stop(): Promise<void>;
}

export async function dpVersion(dp: GatewayProcess): Promise<number> {
  const r = await fetch(`${dp.status}/status`);
  return ((await r.json()) as { configuration: { version: number } }).configuration.version;
}

/**
 * Waits until the DP's disk cache holds `version` (default: the version it runs): the file is
 * written off the event loop after each apply, so a test that reads it, or kills the node to cold
 * start from it, waits for /status to say it is there.
 */
export async function waitCached(dp: GatewayProcess, version?: number): Promise<void> {
  const want = version ?? await dpVersion(dp);
  await waitFor(`${dp.role} disk cache at version ${want}`, async () => {
    const r = await fetch(`${dp.status}/status`);
    return ((await r.json()) as { configuration: { cache_version: number } }).configuration.cache_version >= want;
  }, 10_000, 10);
}

export async function startStack(opts: { dps?: number; natsConfig?: string; dpEnv?: Record<string, string>; cpEnv?: Record<string, string>; dpNodeArgs?: string[]; cpNodeArgs?: string[] } = {}): Promise<Stack> {
  const [pg, nats, upstream] = await Promise.all([startPostgres(), startNats(opts.natsConfig), startUpstream()]);
  const cp = await startGateway('control-plane', { env: { DATABASE_URL: pg.url, NATS_URL: nats.url, ...opts.cpEnv }, nodeArgs: opts.cpNodeArgs });
  const dps: GatewayProcess[] = [];
  for (let i = 0; i < (opts.dps ?? 1); i++) dps.push(await startGateway('data-plane', { env: { NATS_URL: nats.url, ...opts.dpEnv }, nodeArgs: opts.dpNodeArgs }));
  const A = (method: string, path: string, body?: unknown, headers?: Record<string, string>) => admin(cp.admin, method, path, body, headers);
  const converge = async (version: number, which = dps) => {
    await Promise.all(which.map((dp) => waitFor(`DP at version ${version}`, async () => (await dpVersion(dp)) >= version, 10_000, 20)));
  };
  return {
    pg, nats, upstream, cp, dps, A, converge,
    async write(method, path, body) {
      const r = await A(method, path, body);
      const v = Number(r.headers.get('x-portico-config-version'));
      if (v) await converge(v, dps.filter((d) => d.proc.exitCode === null && !d.proc.signalCode));
      return r;
    },
    async stop() {
      await Promise.all([...dps, cp].map(async (g) => { await g.kill(); g.cleanup(); }));
      await Promise.all([pg.stop(), nats.stop(), upstream.close()]);
    },
  };
}
