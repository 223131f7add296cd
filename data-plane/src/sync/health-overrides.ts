// Target health overrides from the CP (`PUT /upstreams/{u}/targets/{t}/healthy|unhealthy` on the
// admin API), received over the bus. They change which targets take traffic, so they are trusted
// like snapshots: signed by the CP's key, and fresh. A message older than MAX_AGE_MS, or one seen
// before, is a replay by whoever can publish on NATS, and is refused.
import { LRUCache } from 'lru-cache';
import { healthOverrideSchema, openEnvelope, type Logger, type TrustedKey } from '@portico/shared';

/** Accepts messages issued at most this long ago (or ahead, for clock skew between nodes). */
export const MAX_AGE_MS = 60_000;

export type HealthOverrideResult = 'applied' | 'unknown target' | 'refused';

/**
 * Refuses a signed command from the CP that is older (or further ahead) than MAX_AGE_MS, or seen
 * before: a replay by whoever can publish on NATS. Health overrides and cache commands use it.
 */
export class ReplayGuard {
  /** Ids seen within MAX_AGE_MS; older ones are refused by age anyway. */
  private seen = new LRUCache<string, true>({ max: 10_000, ttl: MAX_AGE_MS * 2 });
  constructor(private now: () => number = Date.now) {}

  /** True for a command seen for the first time, issued within MAX_AGE_MS of now; it is remembered. */
  accept(id: string, issuedAt: number): boolean {
    if (Math.abs(this.now() - issuedAt) > MAX_AGE_MS || this.seen.has(id)) return false;
    this.seen.set(id, true);
    return true;
  }
}

export class HealthOverrides {
  private readonly guard: ReplayGuard;
  /** The newest override applied per target: an older one arriving later (reordered, replayed) is refused. */
  private latest = new LRUCache<string, number>({ max: 10_000 });

  constructor(
    private trusted: readonly TrustedKey[],
    private set: (upstream: string, target: string, healthy: boolean) => boolean,
    private log: Logger,
    now: () => number = Date.now,
  ) { this.guard = new ReplayGuard(now); }

  receive(bytes: Uint8Array): HealthOverrideResult {
    let override;
    try {
      const payload = openEnvelope(bytes, this.trusted, 'health override');
      override = healthOverrideSchema.parse(JSON.parse(Buffer.from(payload).toString('utf8')));
    } catch (err) {
      this.log.warn({ error: (err as Error).message.slice(0, 500) }, 'health override refused');
      return 'refused';
    }
    const key = `${override.upstream}\n${override.target}`;
    if (override.issued_at <= (this.latest.get(key) ?? -1) || !this.guard.accept(override.id, override.issued_at)) {
      this.log.warn({ id: override.id, issued_at: override.issued_at }, 'health override refused: stale or replayed');
      return 'refused';
    }
    this.latest.set(key, override.issued_at);
    const found = this.set(override.upstream, override.target, override.healthy);
    this.log.info({ upstream: override.upstream, target: override.target, healthy: override.healthy, found }, 'health override from the control plane');
    return found ? 'applied' : 'unknown target';
  }
}
