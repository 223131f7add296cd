// Node-local rate-limit counters (policy `local`) with several workers: the primary holds the one
// MemoryRateLimitStore of the node, so a limit of N is N for the node, not N per worker. A worker
// spends leases of it (adapters/leased-rate-limit.ts, as policy `redis` spends leases of Redis's
// counters): the primary grants a block of units out of the node's counter at once, and the worker
// decides requests from the block, asking again when it runs low. The node never admits more than
// the limit; near it, leases shrink to one unit, so the last units go one IPC round trip each, in
// any worker. The grants a worker asks for in one turn of its event loop travel as one message.
import type { Algorithm, Grant, Limit, MemoryRateLimitStore } from '@portico/shared/plugins/handlers';
import { LeasedRateLimitStore, StoreUnavailableError } from '../adapters/leased-rate-limit.ts';
import type { ToPrimary, ToWorker } from './protocol.ts';

/** A batch the primary has not answered in this long fails its calls (the plugin's fault_tolerant decides). */
const ANSWER_TIMEOUT_MS = 1_000;

type Waiter = { resolve: (g: Grant) => void; reject: (err: Error) => void };

/** A worker's port to the node's counters. */
export class PrimaryRateLimitStore extends LeasedRateLimitStore {
  private asks: [string, Limit[], Algorithm, number][] = [];
  private waiters: Waiter[] = [];
  private pending = new Map<number, { waiters: Waiter[]; timer: NodeJS.Timeout }>();
  private nextId = 1;
  /** Messages sent to the primary (tests count them). */
  messages = 0;

  constructor(private send: (m: ToPrimary) => void, clock?: () => number) {
    super(clock);
  }

  protected call(key: string, limits: Limit[], algorithm: Algorithm, want: number): Promise<Grant> {
    return new Promise((resolve, reject) => {
      if (this.asks.push([key, limits, algorithm, want]) === 1) setImmediate(this.flush);
      this.waiters.push({ resolve, reject });
    });
  }

  private flush = (): void => {
    const id = this.nextId++;
    const waiters = this.waiters;
    const timer = setTimeout(() => this.fail(id, new StoreUnavailableError(`the node's counter store (its primary process) did not answer within ${ANSWER_TIMEOUT_MS} ms`)), ANSWER_TIMEOUT_MS);
    this.pending.set(id, { waiters, timer });
    const asks = this.asks;
    this.asks = [];
    this.waiters = [];
    this.messages++;
    try { this.send({ t: 'rl', id, asks }); } catch (err) { this.fail(id, new StoreUnavailableError(`the node's counter store (its primary process) is unreachable: ${(err as Error).message}`, { cause: err })); }
  };

  private fail(id: number, err: Error): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    for (const w of p.waiters) w.reject(err);
  }

  /** The primary's answer to a batch. */
  answer(id: number, grants: Grant[]): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    p.waiters.forEach((w, i) => w.resolve(grants[i]));
  }
}

/** The primary's side: one batch granted in order from the node's store. */
export function grantBatch(store: MemoryRateLimitStore, m: Extract<ToPrimary, { t: 'rl' }>): ToWorker {
  return { t: 'rl', id: m.id, grants: m.asks.map(([key, limits, algorithm, want]) => store.take(key, limits, algorithm, want)) };
}
