// Load balancing over an upstream's targets (reference/kong-compat.md §7): weighted round-robin,
// least-connections and consistent hashing; Kong's passive and active health checks; and, beyond
// Kong, a per-target circuit breaker that recovers on its own through half-open probes.
// Health and breaker state live in a registry outside snapshots, keyed by upstream and target, so
// a config change that does not touch an upstream keeps what the node has learned about it.
import type { Target, Upstream } from '@portico/shared';

/** Ring points per unit of weight: 160 points for the default weight of 100. */
const RING_POINTS_PER_WEIGHT = 1.6;

export type Outcome = { kind: 'tcp' } | { kind: 'timeout' } | { kind: 'status'; status: number; latencyMs?: number };

export interface TargetState {
  target: string;
  host: string;
  port: number;
  weight: number;
  healthy: boolean;
  /** Set by PUT …/healthy|unhealthy; overrides checks until they change it again. */
  successes: number;
  tcpFailures: number;
  timeouts: number;
  httpFailures: number;
  breaker: 'closed' | 'open' | 'half_open';
  consecutiveFailures: number;
  openedAt: number;
  probesInFlight: number;
  /** Counts open → half-open transitions, so a probe's slot is given back only to its own episode. */
  halfOpenEpoch: number;
  /** Requests in flight to this target (least-connections). */
  active: number;
  /** Smooth weighted round-robin's running weight. */
  current: number;
  /** Moving average of time to response headers, ms (the `latency` algorithm). */
  ewmaMs: number;
}

/** Circuit-breaker openings on this node (portico_circuit_breaker_trips_total). */
export const breakerTrips = { count: 0 };

/** Weight of the newest sample in the latency average. */
const EWMA_ALPHA = 0.2;


interface StatusJudge { healthy: Uint8Array; unhealthy: Uint8Array }
const statusTables = new Map<string, Uint8Array>();
/**
 * `table[status] === 1` for each listed status (HTTP statuses are below 1000). Equal lists share
 * one table (most upstreams keep the defaults), so 10,000 upstreams do not hold 10,000 copies.
 */
function statusTable(list: readonly number[]): Uint8Array {
  const key = list.join(',');
  let t = statusTables.get(key);
  if (!t) {
    t = new Uint8Array(1000);
    for (const s of list) if (s >= 0 && s < 1000) t[s] = 1;
    statusTables.set(key, t);
  }
  return t;
}
/** FNV-1a, then murmur3's finalizer so that similar strings (ports, user ids) spread over the ring. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) { h ^= s.charCodeAt(i); h = Math.imul(h, 0x01000193); }
  h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function splitTarget(t: string): { host: string; port: number } {
  const i = t.lastIndexOf(':');
  return { host: t.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(t.slice(i + 1)) };
}

/** What one process learned about a target, for the node's other workers (cluster/health-sync.ts). */
export interface SharedHealth {
  healthy: boolean;
  breaker: TargetState['breaker'];
  openedAt: number;
}

/** Told when a report changes a target's health or breaker state. */
export type HealthChanged = (upstreamId: string, t: TargetState) => void;

export class UpstreamBalancer {
  readonly targets: TargetState[];
  private ring: { point: number; index: number }[] = [];
  /** The upstream's status lists as lookups, built once per snapshot (every response is judged by them). */
  private readonly statuses: { passive: StatusJudge; active: StatusJudge; breakerFailure: Uint8Array };

  /** `weights[i]` is targets[i]'s weight in this config (it reaches the shared state on commit). */
  constructor(readonly upstream: Upstream, targets: TargetState[], weights: number[] = targets.map((t) => t.weight), private changed?: HealthChanged) {
    this.targets = targets;
    if (upstream.algorithm === 'consistent-hashing') this.buildRing(weights);
    const hc = upstream.healthchecks;
    this.statuses = {
      passive: { healthy: statusTable(hc.passive.healthy.http_statuses), unhealthy: statusTable(hc.passive.unhealthy.http_statuses) },
      active: { healthy: statusTable(hc.active.healthy.http_statuses), unhealthy: statusTable(hc.active.unhealthy.http_statuses) },
      breakerFailure: statusTable(upstream.circuit_breaker?.failure_codes ?? []),
    };
  }

  /**
   * A hash ring with points in proportion to weight. A target's points depend on its own weight
   * only, so adding or removing a target moves just the keys that land on its points.
   */
  private buildRing(weights: number[]): void {
    const ring: { point: number; index: number }[] = [];
    this.targets.forEach((t, index) => {
      if (weights[index] <= 0) return;
      const n = Math.max(1, Math.round(weights[index] * RING_POINTS_PER_WEIGHT));
      for (let i = 0; i < n; i++) ring.push({ point: fnv1a(`${t.target}#${i}`), index });
    });
    this.ring = ring.sort((a, b) => a.point - b.point);
  }

  private usable(t: TargetState, now: number): boolean {
    if (t.weight <= 0 || !t.healthy) return false;
    const cb = this.upstream.circuit_breaker;
    if (!cb || t.breaker === 'closed') return true;
    if (t.breaker === 'open') {
      if (now - t.openedAt < cb.open_timeout * 1000) return false;
      t.breaker = 'half_open';
      t.probesInFlight = 0;
      t.halfOpenEpoch++;
    }
    return t.probesInFlight < cb.half_open_requests;
  }

  /** Below `threshold` percent of healthy weight the whole upstream counts as down (Kong). */
  private belowThreshold(): boolean {
    const th = this.upstream.healthchecks.threshold;
    if (!th) return false;
    let total = 0, healthy = 0;
    for (const t of this.targets) { total += t.weight; if (t.healthy) healthy += t.weight; }
    return total === 0 || (healthy * 100) / total < th;
  }

  /** Choose a target, skipping those already tried by this request; null when none is usable. */
  pick(hashKey: string | null, tried: ReadonlySet<string>): TargetState | null {
    const now = Date.now();
    if (this.belowThreshold()) return null;
    let chosen: TargetState | null = null;
    const algorithm = this.upstream.algorithm;
    if (algorithm === 'consistent-hashing' && hashKey !== null && this.ring.length) {
      const h = fnv1a(hashKey);
      let lo = 0, hi = this.ring.length;
      while (lo < hi) { const mid = (lo + hi) >>> 1; if (this.ring[mid].point < h) lo = mid + 1; else hi = mid; }
      for (let k = 0; k < this.ring.length; k++) {
        const t = this.targets[this.ring[(lo + k) % this.ring.length].index];
        if (!tried.has(t.target) && this.usable(t, now)) { chosen = t; break; }
      }
    } else if (algorithm === 'latency') {
      // Lowest expected wait: average latency × (open requests + 1), per unit of weight. Targets
      // without samples yet score 0 and are tried first, so every target gets measured.
      let best = Infinity;
      for (const t of this.targets) {
        if (tried.has(t.target) || !this.usable(t, now)) continue;
        const score = (t.ewmaMs * (t.active + 1)) / t.weight;
        if (score < best) { best = score; chosen = t; }
      }
    } else if (algorithm === 'least-connections') {
      let best = Infinity;
      for (const t of this.targets) {
        if (tried.has(t.target) || !this.usable(t, now)) continue;
        const load = (t.active + 1) / t.weight;
        if (load < best) { best = load; chosen = t; }
      }
    } else {
      // Smooth weighted round-robin (as nginx): even spread, exact weights over a cycle.
      let total = 0;
      for (const t of this.targets) {
        if (tried.has(t.target) || !this.usable(t, now)) continue;
        t.current += t.weight;
        total += t.weight;
        if (!chosen || t.current > chosen.current) chosen = t;
      }
      if (chosen) chosen.current -= total;
    }
    if (chosen) {
      chosen.active++;
      if (chosen.breaker === 'half_open') chosen.probesInFlight++;
    }
    return chosen;
  }

  /**
   * Which half-open episode a picked request probes, or -1 when it is not a probe. Read right
   * after `pick`, passed back to `release`.
   */
  static probeEpoch(t: TargetState): number {
    return t.breaker === 'half_open' ? t.halfOpenEpoch : -1;
  }

  /**
   * Gives back what `pick` took: the connection count, and the half-open probe slot when the
   * breaker is still in the episode the request probed. Called exactly once per pick, whether
   * the attempt was reported, retried or abandoned by its client (review C1: a client leaving
   * during a probe must not keep the slot, or the target never comes back on this node).
   */
  release(t: TargetState, probeEpoch: number): void {
    if (t.active > 0) t.active--;
    if (probeEpoch !== -1 && t.breaker === 'half_open' && t.halfOpenEpoch === probeEpoch && t.probesInFlight > 0) t.probesInFlight--;
  }

  /** Feed one attempt's result to passive health checks and the breaker (slots: `release`). */
  report(t: TargetState, o: Outcome, probe = false): void {
    const healthyBefore = t.healthy, breakerBefore = t.breaker;
    this.learn(t, o, probe);
    if (this.changed && (t.healthy !== healthyBefore || t.breaker !== breakerBefore)) this.changed(this.upstream.id, t);
  }

  private learn(t: TargetState, o: Outcome, probe: boolean): void {
    const hc = probe ? this.upstream.healthchecks.active : this.upstream.healthchecks.passive;
    if (o.kind === 'status' && o.latencyMs !== undefined) t.ewmaMs = t.ewmaMs ? t.ewmaMs + EWMA_ALPHA * (o.latencyMs - t.ewmaMs) : o.latencyMs;
    const judge = probe ? this.statuses.active : this.statuses.passive;
    const healthyStatus = o.kind === 'status' && judge.healthy[o.status] === 1;
    const unhealthyStatus = o.kind === 'status' && judge.unhealthy[o.status] === 1;
    if (o.kind === 'tcp') this.fail(t, 'tcpFailures', hc.unhealthy.tcp_failures);
    else if (o.kind === 'timeout') this.fail(t, 'timeouts', hc.unhealthy.timeouts);
    else if (unhealthyStatus) this.fail(t, 'httpFailures', hc.unhealthy.http_failures);
    else if (healthyStatus) {
      t.tcpFailures = 0; t.timeouts = 0; t.httpFailures = 0;
      t.successes++;
      if (!t.healthy && hc.healthy.successes > 0 && t.successes >= hc.healthy.successes) t.healthy = true;
    }
    if (probe) return;
    const cb = this.upstream.circuit_breaker;
    if (!cb) return;
    const failed = o.kind !== 'status' || this.statuses.breakerFailure[o.status] === 1;
    if (failed) {
      t.consecutiveFailures++;
      if (t.breaker === 'half_open' || (t.breaker === 'closed' && t.consecutiveFailures >= cb.failures)) {
        t.breaker = 'open';
        t.openedAt = Date.now();
        breakerTrips.count++;
      }
    } else {
      t.consecutiveFailures = 0;
      if (t.breaker === 'half_open') t.breaker = 'closed';
    }
  }

  private fail(t: TargetState, counter: 'tcpFailures' | 'timeouts' | 'httpFailures', limit: number): void {
    t.successes = 0;
    t[counter]++;
    if (limit > 0 && t[counter] >= limit) t.healthy = false;
  }

  setHealthy(t: TargetState, healthy: boolean): void {
    t.healthy = healthy;
    t.successes = 0; t.tcpFailures = 0; t.timeouts = 0; t.httpFailures = 0;
    if (healthy) { t.breaker = 'closed'; t.consecutiveFailures = 0; }
  }

  /** Kong's GET /upstreams/{u}/health body, plus the breaker state of each target. */
  health(nodeId: string): unknown {
    const checksOn = this.checksEnabled();
    return {
      data: this.targets.map((t) => {
        const health = t.weight === 0 || (!checksOn && !this.upstream.circuit_breaker && t.healthy) ? 'HEALTHCHECKS_OFF' : t.healthy ? 'HEALTHY' : 'UNHEALTHY';
        return {
          target: t.target, weight: t.weight, upstream: { id: this.upstream.id }, health,
          circuit_breaker: this.upstream.circuit_breaker ? t.breaker : null,
          data: { addresses: [{ ip: t.host, port: t.port, health, weight: t.weight }] },
        };
      }),
      next: null,
      node_id: nodeId,
    };
  }

  checksEnabled(): boolean {
    const hc = this.upstream.healthchecks;
    return hc.active.healthy.interval > 0 || hc.active.unhealthy.interval > 0
      || [hc.passive.unhealthy.tcp_failures, hc.passive.unhealthy.timeouts, hc.passive.unhealthy.http_failures, hc.passive.healthy.successes].some((n) => n > 0);
  }
}

/**
 * Holds per-target state across snapshots and runs active health checks. In a worker of a
 * multi-process node (cluster/) `probe` is null, as the primary probes for the whole node, and
 * `changed` passes what this process learns to the others, which take it through `applyShared`.
 */
export class HealthRegistry {
  private states = new Map<string, TargetState>();
  private timers = new Map<string, { key: string; timers: NodeJS.Timeout[] }>();

  constructor(private readonly probe: ((t: TargetState, u: Upstream) => Promise<Outcome>) | null, private readonly changed?: HealthChanged) {}

  /**
   * State another process of the node learned. Counters restart from it, as after a transition
   * learned here; false when the target is not in the running config (yet).
   */
  applyShared(upstreamId: string, target: string, s: SharedHealth): boolean {
    const t = this.states.get(`${upstreamId}|${target}`);
    if (!t) return false;
    if (t.healthy !== s.healthy) {
      t.healthy = s.healthy;
      t.successes = 0; t.tcpFailures = 0; t.timeouts = 0; t.httpFailures = 0;
    }
    if (t.breaker !== s.breaker) {
      t.breaker = s.breaker;
      t.openedAt = s.openedAt;
      t.consecutiveFailures = 0;
      if (s.breaker === 'half_open') { t.probesInFlight = 0; t.halfOpenEpoch++; }
    }
    return true;
  }

  /**
   * The balancers for a snapshot, reusing the live state of targets that still exist. Pure until
   * `commit()`: nothing running changes (no state registered or dropped, no weight, no probe
   * timer) unless the snapshot is swapped in, so a rejected one changes nothing (invariant 4).
   */
  plan(upstreams: Upstream[], targets: Target[]): { balancers: Map<string, UpstreamBalancer>; commit(): void } {
    const byUpstream = new Map<string, Target[]>();
    for (const t of targets) {
      const id = t.upstream?.id;
      if (!id) continue;
      const list = byUpstream.get(id);
      if (list) list.push(t); else byUpstream.set(id, [t]);
    }
    const balancers = new Map<string, UpstreamBalancer>();
    const next = new Map<string, TargetState>();
    const weights: [TargetState, number][] = [];
    for (const u of upstreams) {
      const states: TargetState[] = [];
      const planned: number[] = [];
      for (const t of byUpstream.get(u.id) ?? []) {
        const key = `${u.id}|${t.target}`;
        let st = this.states.get(key);
        if (!st) {
          st = {
            target: t.target, ...splitTarget(t.target), weight: t.weight, healthy: true, successes: 0, tcpFailures: 0,
            timeouts: 0, httpFailures: 0, breaker: 'closed', consecutiveFailures: 0, openedAt: 0, probesInFlight: 0, halfOpenEpoch: 0, active: 0, current: 0, ewmaMs: 0,
          };
        } else if (st.weight !== t.weight) {
          weights.push([st, t.weight]);
        }
        next.set(key, st);
        states.push(st);
        planned.push(t.weight);
      }
      balancers.set(u.name.toLowerCase(), new UpstreamBalancer(u, states, planned, this.changed));
    }
    const commit = () => {
      for (const [st, weight] of weights) st.weight = weight;
      this.states = next;
      for (const b of balancers.values()) this.schedule(b);
      for (const [id, entry] of this.timers) {
        if (!upstreams.some((u) => u.id === id)) { entry.timers.forEach(clearInterval); this.timers.delete(id); }
      }
    };
    return { balancers, commit };
  }

  /** (Re)start active checks when an upstream's check config or targets changed. */
  private schedule(b: UpstreamBalancer): void {
    const probe = this.probe;
    if (!probe) return;
    const u = b.upstream;
    const a = u.healthchecks.active;
    const key = JSON.stringify([a, b.targets.map((t) => t.target)]);
    const existing = this.timers.get(u.id);
    if (existing?.key === key) return;
    existing?.timers.forEach(clearInterval);
    const timers: NodeJS.Timeout[] = [];
    const run = (wantHealthy: boolean) => {
      const due = b.targets.filter((t) => t.weight > 0 && t.healthy === wantHealthy).slice(0, a.concurrency);
      // Probe results count like traffic, against the active thresholds (report(..., probe=true)).
      for (const t of due) void probe(t, u).then((o) => b.report(t, o, true));
    };
    if (a.healthy.interval > 0) timers.push(setInterval(() => run(true), a.healthy.interval * 1000));
    if (a.unhealthy.interval > 0) timers.push(setInterval(() => run(false), a.unhealthy.interval * 1000));
    timers.forEach((t) => t.unref());
    this.timers.set(u.id, { key, timers });
  }

  stop(): void {
    for (const e of this.timers.values()) e.timers.forEach(clearInterval);
    this.timers.clear();
  }
}
