// The node's disk cache of the applied snapshot (ARCHITECTURE.md invariant 5), written off the
// proxy's event loop. Writing 350 KB is ~0.3 ms of copying, but replacing the old file by rename on
// a disk that Postgres and NATS keep busy (ext4 starts the new file's writeback at the rename) held
// the event loop 5–20 ms now and then: in the apply bench, the p99 of requests due in the 300 ms
// after a write was 16–22 ms against 3–10 ms with the file on tmpfs. Here the write runs on
// libuv's threadpool; applies do not wait for it.
import { writeFileAtomicAsync, type Logger } from '@portico/shared';

export class SnapshotFile {
  /** The version the file holds as written by this process (0: none yet); /status reports it. */
  version = 0;
  private writing: Promise<void> | null = null;
  private next: { bytes: Uint8Array; version: number; done?: () => void } | null = null;

  constructor(private readonly file: string, private readonly log: Logger) {}

  /**
   * Writes `bytes` (version `version`) after any write under way: to a temp file, then renamed over
   * the cache, so a reader finds the old file or the new one, never half. Of several writes asked
   * for while one runs, only the latest is made. `done` is called once `bytes` are no longer needed
   * (written, failed, or passed over for a later write).
   */
  write(bytes: Uint8Array, version: number, done?: () => void): void {
    this.next?.done?.();
    this.next = { bytes, version, done };
    this.writing ??= this.drain();
  }

  /** Resolves once every write asked for so far has been made (or has failed and been logged): shutdown waits for it. */
  async flush(): Promise<void> {
    while (this.writing) await this.writing;
  }

  private async drain(): Promise<void> {
    try {
      while (this.next) {
        const { bytes, version, done } = this.next;
        this.next = null;
        try {
          await writeFileAtomicAsync(this.file, bytes);
          this.version = version;
        } catch (err) {
          this.log.error({ err }, 'could not persist the applied config to disk');
        } finally {
          done?.();
        }
      }
    } finally {
      this.writing = null;
    }
  }
}
