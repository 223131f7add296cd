// Holds the running config and applies new snapshots all-or-nothing (ARCHITECTURE.md invariant 4):
// verify signature → decode → validate → version check → compile → swap one reference → persist to disk
// (the signed bytes, so the disk cache is checked the same way at a cold start). A snapshot
// that fails anywhere is rejected and reported while the old config keeps serving.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  decodeSnapshot, LAST_ERROR_MAX, openSnapshot, resolveReferences, truncate, upstreamSchema, writeFileAtomic, type Logger, type Snapshot, type Target, type TrustedKey,
  type Upstream,
} from '@portico/shared';
import { Router } from '../router/router.ts';
import type { PluginEnv } from '@portico/shared/plugins/handlers';
import { buildIndex, PluginChains } from '../plugins/compile.ts';
import type { HealthRegistry } from '../proxy/balancer.ts';
import { compileTargets, serviceBreakerName } from '../proxy/target.ts';
import type { RuntimeConfig } from '../proxy/forward.ts';

/** The last applied snapshot as received: the signed envelope around the gzip-compressed JSON. */
export const CACHE_FILE = 'snapshot.signed';

export type ApplyResult =
  | { status: 'applied'; version: number; compileMs: number }
  | { status: 'ignored'; reason: string }
  | { status: 'rejected'; error: string };

export type PluginPorts = Omit<PluginEnv, 'index'>;

/**
 * Resources a compile acquires through the ports (Redis stores): `commit` once the compiled config
 * is swapped in (release what the old one alone held), `rollback` when it is rejected (release
 * what only it acquired), so a rejected snapshot changes nothing.
 */
export interface CompileResources {
  commit(): void;
  rollback(): void;
}

const NO_RESOURCES: CompileResources = { commit() {}, rollback() {} };

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
 * The entities that carry secrets, with their vault references (`{vault://env/NAME}`) resolved from
 * this node's environment: the secrets never enter Postgres, the snapshot or the disk cache. A
 * reference that cannot be resolved fails the compile, naming the entity and field.
 */
function resolveSecrets(config: Snapshot['config'], environment: NodeJS.ProcessEnv): Pick<Snapshot['config'], 'plugins' | 'jwt_secrets'> {
  const each = <T extends { id: string }>(list: T[], kind: string, field: keyof T) => list.map((e) => {
    try {
      const resolved = resolveReferences(e[field], environment, String(field));
      return resolved === e[field] ? e : { ...e, [field]: resolved };
    } catch (err) {
      throw new Error(`${kind} ${e.id}: ${(err as Error).message}`);
    }
  });
  return { plugins: each(config.plugins, 'plugin', 'config'), jwt_secrets: each(config.jwt_secrets, 'jwt secret', 'secret') };
}

export function compile(snapshot: Snapshot, ports: PluginPorts, health: HealthRegistry, environment: NodeJS.ProcessEnv = process.env): RuntimeConfig {
  const serviceBreakers = serviceBreakerUpstreams(snapshot);
  const config = { ...snapshot.config, ...resolveSecrets(snapshot.config, environment) };
  const env: PluginEnv = { ...ports, index: buildIndex(config) };
  const plugins = new PluginChains(config.plugins, env);
  const upstreams = health.build([...snapshot.config.upstreams, ...serviceBreakers.upstreams], [...snapshot.config.targets, ...serviceBreakers.targets]);
  return {
    version: snapshot.version,
    hash: snapshot.hash,
    router: new Router(snapshot.config.routes, snapshot.config.services, (route) => plugins.chainFor(route)),
    plugins,
    upstreams,
    targets: compileTargets(snapshot.config.services, upstreams),
  };
}

export class ConfigState {
  private config: RuntimeConfig | null = null;
  lastError: string | null = null;
  appliedAt = 0;
  /** How long the last successful apply took, by stage. */
  lastApply: { decode_ms: number; compile_ms: number; routes: number } | null = null;
  private listeners: (() => void)[] = [];

  constructor(private dataDir: string, private log: Logger, private ports: PluginPorts, readonly health: HealthRegistry,
    private trusted: readonly TrustedKey[], private resources: CompileResources = NO_RESOURCES) {}

  current = (): RuntimeConfig | null => this.config;
  get version(): number { return this.config?.version ?? 0; }
  get hash(): string { return this.config?.hash ?? '0'.repeat(64); }

  onApplied(fn: () => void): void { this.listeners.push(fn); }

  /** Load the disk cache written by a previous run, before anything else (invariant 5). */
  loadCache(): boolean {
    let bytes: Buffer;
    try { bytes = readFileSync(path.join(this.dataDir, CACHE_FILE)); } catch { return false; }
    const r = this.apply(bytes, { persist: false });
    if (r.status === 'applied') this.log.info({ version: r.version }, 'serving cached config from disk');
    else if (r.status === 'rejected') this.log.warn({ error: r.error }, 'disk-cached config is unusable; waiting for the bus');
    return r.status === 'applied';
  }

  apply(bytes: Uint8Array, opts: { persist?: boolean } = {}): ApplyResult {
    let snapshot: Snapshot;
    const t0 = performance.now();
    try {
      // The signature first: nothing from an unsigned or forged snapshot is decompressed or parsed.
      snapshot = decodeSnapshot(openSnapshot(bytes, this.trusted));
    } catch (err) {
      return this.reject((err as Error).message);
    }
    if (this.config && snapshot.version <= this.config.version) {
      return { status: 'ignored', reason: `version ${snapshot.version} is not newer than ${this.config.version}` };
    }
    const t1 = performance.now();
    let compiled: RuntimeConfig;
    try {
      compiled = compile(snapshot, this.ports, this.health);
    } catch (err) {
      this.resources.rollback();
      return this.reject(`snapshot ${snapshot.version} failed to compile: ${(err as Error).message}`);
    }
    this.config = compiled;
    this.resources.commit();
    this.lastError = null;
    this.appliedAt = Date.now();
    const compileMs = performance.now() - t1;
    this.lastApply = { decode_ms: Math.round(t1 - t0), compile_ms: Math.round(compileMs), routes: snapshot.config.routes.length };
    if (opts.persist !== false) {
      try {
        writeFileAtomic(path.join(this.dataDir, CACHE_FILE), bytes);
      } catch (err) {
        this.log.error({ err }, 'could not persist the applied config to disk');
      }
    }
    this.log.info({ version: snapshot.version, hash: snapshot.hash, ...this.lastApply }, 'config applied');
    for (const fn of this.listeners) fn();
    return { status: 'applied', version: snapshot.version, compileMs };
  }

  /** Reported in every heartbeat and log line, so bounded: a message can quote a whole hostile document. */
  private reject(error: string): ApplyResult {
    const reported = truncate(error, LAST_ERROR_MAX);
    this.lastError = reported;
    this.log.error({ error: reported }, 'config snapshot rejected; the previous config keeps serving');
    for (const fn of this.listeners) fn();
    return { status: 'rejected', error: reported };
  }
}
