// Real service processes for tests: Postgres, NATS (JetStream) and Redis on free loopback ports,
// each in its own temp dir, each stoppable and restartable on the same port and data.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { randomInt } from 'node:crypto';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/**
 * Ports for test servers come from below the kernel's ephemeral range (32768–60999 here), so no
 * outgoing connection or `listen(0)` can take one between the moment it is handed out and the
 * moment its server binds it; and each is claimed with an exclusive file in a directory all test
 * processes share, so two test files running at once never get the same one. A claim lasts the
 * process: a gateway restarted on its old ports finds them still its own. Claims of dead
 * processes are taken back.
 */
const PORT_LOW = 20_000;
const PORT_SPAN = 12_000;
const claimDir = path.join(os.tmpdir(), 'portico-test-ports');
const claimed: string[] = [];
process.once('exit', () => { for (const f of claimed) rmSync(f, { force: true }); });

export async function freePort(): Promise<number> {
  mkdirSync(claimDir, { recursive: true });
  for (let tries = 0; tries < 10_000; tries++) {
    const port = PORT_LOW + randomInt(PORT_SPAN);
    if (!claim(port)) continue;
    if (await bindable(port)) return port;
  }
  throw new Error('no free test port left in the range');
}

function claim(port: number): boolean {
  const file = path.join(claimDir, String(port));
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' });
      claimed.push(file);
      return true;
    } catch {
      let owner = 0;
      try { owner = Number(readFileSync(file, 'utf8')); } catch { continue; }
      if (owner > 0 && owner !== process.pid && pidAlive(owner)) return false;
      if (owner === process.pid) return false;
      rmSync(file, { force: true });
    }
  }
  return false;
}

function pidAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (err) { return (err as NodeJS.ErrnoException).code === 'EPERM'; }
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 20_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (err) { lastErr = err; }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}${lastErr ? `: ${(lastErr as Error).message}` : ''}`);
}

export function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

function which(bin: string, extra: string[] = []): string {
  for (const dir of [...(process.env.PATH ?? '').split(':'), ...extra]) {
    const p = path.join(dir, bin);
    if (existsSync(p)) return p;
  }
  throw new Error(`${bin} not found on PATH (install it: see .ci/run)`);
}

function pgBinDirs(): string[] {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return [];
  return readdirSync(base).sort((a, b) => Number(b) - Number(a)).map((v) => path.join(base, v, 'bin'));
}

const isRoot = process.getuid?.() === 0;
const tmpRoot = () => mkdtempSync(path.join(os.tmpdir(), 'portico-test-'));

/** A killable child process that can be started again with the same arguments. */
export class Service {
  proc: ChildProcess | null = null;
  constructor(readonly name: string, readonly port: number, private cmd: string, private args: string[], private opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {}

  async start(): Promise<void> {
    const [cmd, args] = isRoot && this.name === 'postgres' ? ['runuser', ['-u', 'postgres', '--', this.cmd, ...this.args]] : [this.cmd, this.args];
    this.proc = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], cwd: this.opts.cwd, env: this.opts.env ?? process.env });
    let stderr = '';
    this.proc.stderr!.on('data', (d) => { stderr = (stderr + d).slice(-4000); });
    const proc = this.proc;
    await waitFor(`${this.name} on port ${this.port}`, async () => {
      if (proc.exitCode !== null) throw new Error(`${this.name} exited: ${stderr}`);
      return portOpen(this.port);
    });
  }

  /** SIGKILL: the abrupt failure tests want. */
  async kill(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await gone;
    this.proc = null;
  }
}

export interface PgHandle { url: string; service: Service; dir: string; stop(): Promise<void> }

export async function startPostgres(): Promise<PgHandle> {
  const initdb = which('initdb', pgBinDirs());
  const postgres = path.join(path.dirname(initdb), 'postgres');
  const dir = tmpRoot();
  const data = path.join(dir, 'data');
  if (isRoot) chownSync(dir, Number(execFileSync('id', ['-u', 'postgres']).toString().trim()), Number(execFileSync('id', ['-g', 'postgres']).toString().trim()));
  const initArgs = ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8'];
  if (isRoot) execFileSync('runuser', ['-u', 'postgres', '--', initdb, ...initArgs], { stdio: 'ignore' });
  else execFileSync(initdb, initArgs, { stdio: 'ignore' });
  const port = await freePort();
  const service = new Service('postgres', port, postgres, [
    '-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off',
    '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'max_connections=200',
  ]);
  await service.start();
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const { default: pg } = await import('pg');
  await waitFor('postgres accepting queries', async () => {
    const c = new pg.Client({ connectionString: url });
    await c.connect(); await c.query('SELECT 1'); await c.end();
    return true;
  });
  return { url, service, dir, stop: async () => { await service.kill(); rmSync(dir, { recursive: true, force: true }); } };
}

export interface NatsHandle { url: string; service: Service; stop(): Promise<void> }

/** `config` is extra nats-server configuration text (e.g. `max_payload: 65536`). */
export async function startNats(config?: string): Promise<NatsHandle> {
  const bin = which('nats-server', ['/usr/sbin', '/usr/local/sbin']);
  const dir = tmpRoot();
  const port = await freePort();
  const args = ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir];
  if (config) {
    const file = path.join(dir, 'nats.conf');
    writeFileSync(file, config + '\n');
    args.push('-c', file);
  }
  const service = new Service('nats', port, bin, args);
  await service.start();
  return { url: `nats://127.0.0.1:${port}`, service, stop: async () => { await service.kill(); rmSync(dir, { recursive: true, force: true }); } };
}

export interface RedisHandle { url: string; service: Service; stop(): Promise<void> }

export async function startRedis(): Promise<RedisHandle> {
  const bin = which('redis-server', ['/usr/sbin', '/usr/local/sbin']);
  const port = await freePort();
  const service = new Service('redis', port, bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
  await service.start();
  return { url: `redis://127.0.0.1:${port}`, service, stop: () => service.kill() };
}

export { tmpRoot };
