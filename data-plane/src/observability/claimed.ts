// Long-lived things built for plugin instances (log sinks, span exporters, flags) outlive snapshots
// while their config is unchanged. Each compile claims what it uses; once a new config is running,
// what no compile since the previous one claimed is released. (A rejected compile's claims only
// delay a release by one config.)
export class Claimed<V> {
  private readonly items = new Map<string, V>();
  private claimed = new Set<string>();

  /** The item for `key`, made on first use; claimed by the config being compiled. */
  get(key: string, make: () => V): V {
    this.claimed.add(key);
    let v = this.items.get(key);
    if (v === undefined) this.items.set(key, (v = make()));
    return v;
  }

  /** A new config runs: releases what it did not claim. */
  sweep(release: (v: V) => void): void {
    for (const [key, v] of this.items) if (!this.claimed.has(key)) { this.items.delete(key); release(v); }
    this.claimed = new Set();
  }

  get size(): number { return this.items.size; }
  values(): IterableIterator<V> { return this.items.values(); }
}
