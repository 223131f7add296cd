// Starts Portico processes exactly as users do (the npm scripts' entry points), on free ports.
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, tmpRoot, waitFor } from './procs.ts';
import { withProxyFlags } from '../../data-plane/src/node-flags.ts';

export const ROOT = path.resolve(fileURLToPath(new URL('../..', import.meta.url)));
/** The built bundles, as `npm start` / `npm run control-plane` / `npm run data-plane` run them (`npm run build` first). */
const ENTRY = {
  'control-plane': 'control-plane/dist/main.mjs',
  'data-plane': 'data-plane/dist/main.mjs',
  'all-in-one': 'dist/portico.mjs',
} as const;

export type Role = keyof typeof ENTRY;

/** The snapshot signing key pair split CPs and DPs get unless a test sets its own (PEM text). */
const pair = generateKeyPairSync('ed25519');
export const TEST_SIGNING = {
  privateKey: pair.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string,
  publicKey: pair.publicKey.export({ format: 'pem', type: 'spki' }) as string,
};

export interface GatewayProcess {
  role: Role;
  admin: string;
  proxy: string;
  status: string;
  /** Portico Manager (the CP's PORTICO_GUI_LISTEN). */
  gui: string;
  /** The TLS listener's port (HTTP/2 and HTTP/1.1), on 127.0.0.1. */
  proxyTlsPort: number;
  dataDir: string;
  proc: ChildProcess;
  logs: () => string;
  start(): Promise<void>;
  /** SIGTERM and wait for exit; resolves with the exit code. */
  stop(): Promise<number | null>;
  kill(): Promise<void>;
  cleanup(): void;
}

export interface GatewayOptions {
  env?: Record<string, string | undefined>;
  dataDir?: string;
  /** Wait for /status/ready (default true). */
  waitReady?: boolean;
  /** Node flags before the entry (a bench's --cpu-prof, --trace-gc). */
  nodeArgs?: string[];
}

export async function startGateway(role: Role, opts: GatewayOptions = {}): Promise<GatewayProcess> {
  const [adminPort, proxyPort, statusPort, guiPort, proxyTlsPort] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
  const dataDir = opts.dataDir ?? tmpRoot();
  let log = '';
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    PORTICO_ADMIN_LISTEN: `127.0.0.1:${adminPort}`,
    PORTICO_PROXY_LISTEN: `127.0.0.1:${proxyPort}`,
    PORTICO_STATUS_LISTEN: `127.0.0.1:${statusPort}`,
    PORTICO_GUI_LISTEN: `127.0.0.1:${guiPort}`,
    PORTICO_PROXY_TLS_LISTEN: `127.0.0.1:${proxyTlsPort}`,
    PORTICO_DATA_DIR: dataDir,
    PORTICO_LOG_LEVEL: 'info',
    PORTICO_SHUTDOWN_TIMEOUT_MS: '5000',
    // One process per DP unless a test asks for workers (test/e2e/workers.test.ts): the suite
    // shares two cores with other work, and a DP's default is one worker per core.
    PORTICO_WORKERS: '1',
  };
  if (role === 'control-plane') env.PORTICO_SIGNING_KEY = TEST_SIGNING.privateKey;
  if (role === 'data-plane') env.PORTICO_SIGNING_PUBLIC_KEYS = TEST_SIGNING.publicKey;
  for (const [k, v] of Object.entries(opts.env ?? {})) { if (v === undefined) delete env[k]; else env[k] = v; }
  const g: GatewayProcess = {
    role, dataDir,
    admin: `http://127.0.0.1:${adminPort}`,
    proxy: `http://127.0.0.1:${proxyPort}`,
    status: `http://127.0.0.1:${statusPort}`,
    gui: `http://127.0.0.1:${guiPort}`,
    proxyTlsPort,
    proc: null as unknown as ChildProcess,
    logs: () => log,
    async start() {
      const proc = spawn(process.execPath, [...(role === 'data-plane' ? withProxyFlags(opts.nodeArgs ?? []) : opts.nodeArgs ?? []), ENTRY[role]], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
      g.proc = proc;
      proc.stdout!.on('data', (d) => { log = (log + d).slice(-200_000); });
      proc.stderr!.on('data', (d) => { log = (log + d).slice(-200_000); });
      if (opts.waitReady === false) return;
      const probe = role === 'control-plane' ? `${g.admin}/status` : `${g.status}/status/ready`;
      // Generous: an all-in-one creating its embedded database on a loaded 2-core machine takes tens of seconds.
      try {
        await waitFor(`${role} ready`, async () => {
          if (proc.exitCode !== null) throw new Error(`${role} exited with ${proc.exitCode}:\n${log}`);
          const r = await fetch(probe).catch(() => null);
          return r?.ok;
        }, 90_000, 100);
      } catch (err) {
        // A gateway that never became ready must not outlive the test that started it.
        if (proc.exitCode === null && !proc.signalCode) proc.kill('SIGKILL');
        throw err;
      }
    },
    async stop() {
      const p = g.proc;
      if (p.exitCode !== null) return p.exitCode;
      const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
      p.kill('SIGTERM');
      return exited;
    },
    async kill() {
      const p = g.proc;
      if (p.exitCode !== null || p.signalCode) return;
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGKILL');
      await exited;
    },
    cleanup() { rmSync(dataDir, { recursive: true, force: true }); },
  };
  await g.start();
  return g;
}

/** Small admin client: JSON in, JSON out, status kept. */
export async function admin(base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any; headers: Headers }> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    if (typeof body === 'string' || body instanceof URLSearchParams || body instanceof FormData) init.body = body as BodyInit;
    else { init.body = JSON.stringify(body); (init.headers as Record<string, string>)['content-type'] = 'application/json'; }
  }
  const r = await fetch(base + path, init);
  const text = await r.text();
  let parsed: unknown = text;
  try { parsed = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  return { status: r.status, body: parsed, headers: r.headers };
}

export async function statusOf(g: GatewayProcess): Promise<{ version: number; hash: string; last_error: string | null }> {
  const r = await fetch(`${g.status}/status`);
  const j = await r.json() as { configuration: { version: number; hash: string; last_error: string | null } };
  return j.configuration;
}
