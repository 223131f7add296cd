// Node-local rate-limit counters (policy `local`) with several workers: the primary holds the one
// MemoryRateLimitStore of the node and decides every hit, so a limit of N is N for the node, not
// N per worker. Exact rather than approximate: a hit costs one IPC round trip (as policy `redis`
// costs one Redis round trip), and the hits a worker takes in one turn of its event loop travel as
// one message and are answered by one, so the cost per hit falls under load. A node that must not
// pay the round trip uses policy `redis`, or PORTICO_WORKERS=1.
import type { Algorithm, Decision, Limit, MemoryRateLimitStore, RateLimitStore } from '@portico/shared/plugins/handlers';
import type { ToPrimary, ToWorker } from './protocol.ts';

/** A batch the primary has not answered in this long fails its hits (the plugin's fault_tolerant decides). */
const ANSWER_TIMEOUT_MS = 1_000;

type Waiter = { resolve: (d: Decision) => void; reject: (err: Error) => void };

/** A worker's port to the node's counters. */
export class PrimaryRateLimitStore implements RateLimitStore {
  private hits: [string, Limit[], Algorithm][] = [];
  private waiters: Waiter[] = [];
  private pending = new Map<number, { waiters: Waiter[]; timer: NodeJS.Timeout }>();
  private nextId = 1;

  constructor(private send: (m: ToPrimary) => void) {}

  hit(key: string, limits: Limit[], algorithm: Algorithm): Promise<Decision> {
    return new Promise((resolve, reject) => {
      if (this.hits.push([key, limits, algorithm]) === 1) setImmediate(this.flush);
      this.waiters.push({ resolve, reject });
    });
  }

  private flush = (): void => {
    const id = this.nextId++;
    const waiters = this.waiters;
    const timer = setTimeout(() => this.fail(id, new Error(`the node's counter store (its primary process) did not answer within ${ANSWER_TIMEOUT_MS} ms`)), ANSWER_TIMEOUT_MS);
    this.pending.set(id, { waiters, timer });
    const hits = this.hits;
    this.hits = [];
    this.waiters = [];
    try { this.send({ t: 'rl', id, hits }); } catch (err) { this.fail(id, err as Error); }
  };

  private fail(id: number, err: Error): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    for (const w of p.waiters) w.reject(err);
  }

  /** The primary's answer to a batch. */
  answer(id: number, decisions: Decision[]): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    p.waiters.forEach((w, i) => w.resolve(decisions[i]));
  }
}

/** The primary's side: one batch decided in order against the node's store. */
export function decideBatch(store: MemoryRateLimitStore, m: Extract<ToPrimary, { t: 'rl' }>): ToWorker {
  return { t: 'rl', id: m.id, decisions: m.hits.map(([key, limits, algorithm]) => store.hit(key, limits, algorithm)) };
}
