// Holds the running config and applies new snapshots all-or-nothing (ARCHITECTURE.md invariant 4):
// verify signature → decode → validate → version check → compile → swap one reference → persist to disk
// (written off the event loop: disk-cache.ts)
// (the signed bytes, so the disk cache is checked the same way at a cold start). A snapshot
// that fails anywhere is rejected and reported while the old config keeps serving.
//
// Without stalling the proxy (invariant 7): decode and validation run on a worker thread
// (decoder.ts), compile in bounded slices of the event loop (compile/), and applies run one at a
// time, in the order they arrive. Only the swap and what follows it change anything.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { LAST_ERROR_MAX, openSnapshot, truncate, type Logger, type TrustedKey } from '@portico/shared';
import type { HealthRegistry } from '../proxy/balancer.ts';
import type { RuntimeConfig } from '../proxy/forward.ts';
import { compileSliced, type Compiled, type PluginPorts } from '../compile/index.ts';
import { SnapshotDecoder, type Decoded } from './decoder.ts';
import { SnapshotFile } from './disk-cache.ts';

/** The last applied snapshot as received: the signed envelope around the gzip-compressed JSON. */
export const CACHE_FILE = 'snapshot.signed';

export type ApplyResult =
  | { status: 'applied'; version: number; compileMs: number }
  | { status: 'ignored'; reason: string }
  | { status: 'rejected'; error: string };


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

export interface ApplyTimes {
  decode_ms: number;
  compile_ms: number;
  routes: number;
  /** The event loop's longest delay while this apply ran (perf_hooks, 1 ms resolution): what a request could have waited. */
  loop_delay_max_ms: number;
}

export class ConfigState {
  private config: RuntimeConfig | null = null;
  lastError: string | null = null;
  appliedAt = 0;
  /**
   * How long the last successful apply took, by stage (wall time: decode on the worker thread,
   * compile in slices), and the longest the event loop was held while it ran.
   */
  lastApply: ApplyTimes | null = null;
  private listeners: (() => void)[] = [];
  readonly decoder = new SnapshotDecoder();
  /**
   * The event loop's delay while an apply runs (enabled only then: it wakes the loop every 1 ms).
   * One for the node's life: making one took ~0.5 ms of the event loop per apply.
   */
  private readonly loopDelay = monitorEventLoopDelay({ resolution: 1 });
  /** The apply running now, if any: the next one starts after it. */
  private applying: Promise<unknown> = Promise.resolve();
  /** False in a worker of a multi-worker node: its primary keeps the node's disk cache (cluster/). */
  persist = true;

  /** The disk cache, written off the event loop after each swap. */
  private readonly disk: SnapshotFile;

  constructor(private dataDir: string, private log: Logger, private ports: PluginPorts, readonly health: HealthRegistry,
    private trusted: readonly TrustedKey[], private resources: CompileResources = NO_RESOURCES) {
    this.disk = new SnapshotFile(path.join(dataDir, CACHE_FILE), log);
  }

  /** The version the disk cache holds (what a cold start would serve); 0 when this process has not written or read one. */
  get cacheVersion(): number { return this.disk.version; }

  current = (): RuntimeConfig | null => this.config;
  get version(): number { return this.config?.version ?? 0; }
  get hash(): string { return this.config?.hash ?? '0'.repeat(64); }

  onApplied(fn: () => void): void { this.listeners.push(fn); }

  /** Load the disk cache written by a previous run, before anything else (invariant 5). */
  async loadCache(): Promise<boolean> {
    let bytes: Buffer;
    try { bytes = readFileSync(path.join(this.dataDir, CACHE_FILE)); } catch { return false; }
    const r = await this.apply(bytes, { persist: false });
    if (r.status === 'applied') {
      this.disk.version = r.version;
      this.log.info({ version: r.version }, 'serving cached config from disk');
    }
    else if (r.status === 'rejected') this.log.warn({ error: r.error }, 'disk-cached config is unusable; waiting for the bus');
    return r.status === 'applied';
  }

  /**
   * Applies a signed snapshot (the envelope as received); applies run one at a time, in call order.
   * `release` is called once `bytes` are no longer needed here (SnapshotHandler).
   */
  apply(bytes: Uint8Array, opts: { persist?: boolean; release?: () => void } = {}): Promise<ApplyResult> {
    const run = this.applying.then(() => this.applyNow(bytes, opts));
    this.applying = run.catch(() => {});
    return run;
  }

  private async applyNow(bytes: Uint8Array, opts: { persist?: boolean; release?: () => void }): Promise<ApplyResult> {
    const loop = this.loopDelay;
    loop.reset();
    loop.enable();
    let persisting = false;
    try {
      const r = await this.decodeAndSwap(bytes, opts, loop);
      persisting = r.status === 'applied' && opts.persist !== false && this.persist;
      // Off the event loop (disk-cache.ts); /status says which version the file holds (cache_version).
      if (persisting) this.disk.write(bytes, (r as { version: number }).version, opts.release);
      return r;
    } finally {
      loop.disable();
      if (!persisting) opts.release?.();
    }
  }

  private async decodeAndSwap(bytes: Uint8Array, opts: { persist?: boolean }, loop: ReturnType<typeof monitorEventLoopDelay>): Promise<ApplyResult> {
    let decoded: Decoded;
    const t0 = performance.now();
    try {
      // The signature first: nothing from an unsigned or forged snapshot is decompressed or parsed.
      decoded = await this.decoder.decode(await openSnapshot(bytes, this.trusted, this.decoder.checkSignature), this.version);
    } catch (err) {
      return this.reject((err as Error).message);
    }
    if (decoded.status === 'ignored') {
      return { status: 'ignored', reason: `version ${decoded.version} is not newer than ${this.version}` };
    }
    const snapshot = decoded.snapshot;
    const t1 = performance.now();
    let compiled: Compiled;
    try {
      compiled = await compileSliced(snapshot, this.ports, this.health, process.env, this.config, decoded.changes);
    } catch (err) {
      this.resources.rollback();
      return this.reject(`snapshot ${snapshot.version} failed to compile: ${(err as Error).message}`);
    }
    // The swap; only now do side effects happen (health state and probe timers, Redis stores).
    this.config = compiled.runtime;
    compiled.commit();
    this.resources.commit();
    this.lastError = null;
    this.appliedAt = Date.now();
    const compileMs = performance.now() - t1;
    this.lastApply = {
      decode_ms: Math.round(t1 - t0), compile_ms: Math.round(compileMs), routes: snapshot.config.routes.length,
      loop_delay_max_ms: Math.round(loop.max / 1e5) / 10,
    };
    this.log.info({ version: snapshot.version, hash: snapshot.hash, ...this.lastApply }, 'config applied');
    for (const fn of this.listeners) fn();
    return { status: 'applied', version: snapshot.version, compileMs };
  }

  /** Node shutdown: the disk cache written through, the decoder's thread stopped. */
  async close(): Promise<void> {
    await this.disk.flush();
    await this.decoder.close();
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
