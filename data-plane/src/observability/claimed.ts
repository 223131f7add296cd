// Long-lived things built for plugin instances (log sinks, span exporters, flags) outlive snapshots
// while their config is unchanged. Each compile claims what it uses; once a new config is running,
// what no compile since the previous one claimed is released. A rejected compile is rolled back:
// what it made is released and its claims keep nothing (a rejected snapshot changes nothing).
export class Claimed<V> {
  private readonly items = new Map<string, V>();
  private claimed = new Set<string>();
  /** Keys made since the last sweep or rollback (by the config being compiled). */
  private made = new Set<string>();

  /** The item for `key`, made on first use; claimed by the config being compiled. */
  get(key: string, make: () => V): V {
    this.claimed.add(key);
    let v = this.items.get(key);
    if (v === undefined) { this.items.set(key, (v = make())); this.made.add(key); }
    return v;
  }

  /** A new config runs: releases what it did not claim. */
  sweep(release: (v: V) => void): void {
    for (const [key, v] of this.items) if (!this.claimed.has(key)) { this.items.delete(key); release(v); }
    this.claimed = new Set();
    this.made = new Set();
  }

  /** The config being compiled was rejected: releases what it made; the running config's items stay. */
  rollback(release: (v: V) => void): void {
    for (const key of this.made) {
      const v = this.items.get(key);
      this.items.delete(key);
      if (v !== undefined) release(v);
    }
    this.claimed = new Set();
    this.made = new Set();
  }

  get size(): number { return this.items.size; }
  values(): IterableIterator<V> { return this.items.values(); }
}
