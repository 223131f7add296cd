// Kong's plugin queue (kong/tools/queue.lua) for log sinks: entries wait in a bounded queue and a
// background worker sends them in batches; a failed batch is retried with exponential backoff
// until max_retry_time, then dropped. A full queue drops the new entry. Every drop is counted
// (portico_log_queue_dropped_total): a slow or dead collector never slows or fails a request,
// because `push` is O(1) and never waits.
export interface QueueSettings {
  max_batch_size: number;
  /** Seconds. */
  max_coalescing_delay: number;
  max_entries: number;
  max_bytes: number | null;
  /** Seconds. */
  max_retry_time: number;
  initial_retry_delay: number;
  max_retry_delay: number;
  concurrency_limit: number;
}

export interface QueueStats { queued: number; sent: number; dropped: number; failedAttempts: number }

export type DropReason = 'queue_full' | 'retries_exhausted' | 'closed';

export class LogQueue<T> {
  private entries: T[] = [];
  /** Byte size of each queued entry (max_bytes). */
  private sizes: number[] = [];
  private bytes = 0;
  private timer: NodeJS.Timeout | null = null;
  private inFlight = 0;
  private closed = false;
  readonly stats: QueueStats = { queued: 0, sent: 0, dropped: 0, failedAttempts: 0 };

  constructor(
    readonly name: string,
    private readonly settings: QueueSettings,
    private readonly send: (batch: T[]) => Promise<void>,
    private readonly onDrop: (count: number, reason: DropReason) => void = () => {},
  ) {}

  /** Adds an entry; false (and counted) when the queue is full. Never waits. */
  push(entry: T, size = 0): boolean {
    const s = this.settings;
    if (this.closed) { this.drop(1, 'closed'); return false; }
    if (this.entries.length >= s.max_entries || (s.max_bytes !== null && this.bytes + size > s.max_bytes)) { this.drop(1, 'queue_full'); return false; }
    this.entries.push(entry);
    this.sizes.push(size);
    this.bytes += size;
    this.stats.queued = this.entries.length;
    if (this.entries.length >= s.max_batch_size) this.kick();
    else if (this.timer === null) this.arm();
    return true;
  }

  /** Sends what there is after max_coalescing_delay, if the batch does not fill first. */
  private arm(): void {
    const t = setTimeout(() => this.kick(), this.settings.max_coalescing_delay * 1000);
    t.unref();
    this.timer = t;
  }

  get length(): number { return this.entries.length; }

  private drop(count: number, reason: DropReason): void {
    this.stats.dropped += count;
    this.onDrop(count, reason);
  }

  /** Starts sending the next batch when concurrency allows. */
  kick(): void {
    if (this.timer !== null) { clearTimeout(this.timer); this.timer = null; }
    while (this.entries.length > 0 && (this.settings.concurrency_limit === -1 || this.inFlight < 1)) {
      const batch = this.entries.splice(0, this.settings.max_batch_size);
      for (const n of this.sizes.splice(0, batch.length)) this.bytes -= n;
      this.stats.queued = this.entries.length;
      this.inFlight++;
      void this.deliver(batch).finally(() => {
        this.inFlight--;
        if (this.entries.length >= this.settings.max_batch_size || (this.closed && this.entries.length > 0)) this.kick();
        else if (this.entries.length > 0 && this.timer === null) this.arm();
      });
    }
  }

  /** Sends one batch, retrying with backoff (initial_retry_delay doubling up to max_retry_delay) for max_retry_time. */
  private async deliver(batch: T[]): Promise<void> {
    const s = this.settings;
    const deadline = performance.now() + s.max_retry_time * 1000;
    let delay = s.initial_retry_delay * 1000;
    for (;;) {
      try {
        await this.send(batch);
        this.stats.sent += batch.length;
        return;
      } catch {
        this.stats.failedAttempts++;
        if (this.closed || performance.now() + delay > deadline) { this.drop(batch.length, this.closed ? 'closed' : 'retries_exhausted'); return; }
        await new Promise((r) => setTimeout(r, delay).unref());
        delay = Math.min(delay * 2, s.max_retry_delay * 1000);
      }
    }
  }

  /** Sends what is queued (one last try each) and stops taking entries. */
  async close(): Promise<void> {
    this.closed = true;
    this.kick();
    while (this.inFlight > 0) await new Promise((r) => setTimeout(r, 10));
  }
}
