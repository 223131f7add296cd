// Long work on the proxy's event loop (compiling 10,000 routes, assembling a decoded snapshot) in
// bounded slices: the loop gets a turn between slices, so requests keep flowing during an apply
// (ARCHITECTURE.md invariant 7: applying a snapshot never stalls requests).
import { setImmediate as nextTurn } from 'node:timers/promises';

/** Longest stretch of apply work on the event loop before requests get a turn. */
export const SLICE_MS = 4;

export class Slicer {
  private started = performance.now();
  /** Turns given to the event loop so far. */
  turns = 0;
  constructor(private readonly budgetMs = SLICE_MS) {}

  /** True once this slice has used its budget; then `await turn()`. Cheap enough to ask per item. */
  due(): boolean { return performance.now() - this.started >= this.budgetMs; }

  /** Lets pending I/O and timers run, then starts a new slice. */
  async turn(): Promise<void> {
    this.turns++;
    await nextTurn();
    this.started = performance.now();
  }
}

/** Runs stepwise work (a generator yielding between steps) to its end in one go. */
export function drain<T>(steps: Generator<unknown, T, undefined>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/** Runs stepwise work to its end, giving the event loop a turn whenever a slice is used up. */
export async function drainSliced<T>(steps: Generator<unknown, T, undefined>, slicer = new Slicer()): Promise<T> {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    if (slicer.due()) await slicer.turn();
  }
}
