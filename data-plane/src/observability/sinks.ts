// Where file-log and http-log entries go. Both are built per plugin instance and reused across
// snapshots while their config is the same (so a config change elsewhere keeps the queue).
import { appendFile } from 'node:fs';
import { createWriteStream, type WriteStream } from 'node:fs';
import { Agent, request } from 'undici';
import type { HttpLogConfig } from '@portico/shared/plugins/handlers';
import type { FileLogConfig } from '@portico/shared/plugins/handlers';
import { LogQueue, type DropReason } from './log-queue.ts';

/** Bytes a file-log stream may hold unwritten (a stuck disk); past it entries are dropped and counted. */
export const FILE_LOG_MAX_BUFFERED_BYTES = 16 * 1024 * 1024;

export type DropCounter = (sink: string, count: number, reason: DropReason) => void;

/** Appends one JSON line per entry. `reopen`: opened and closed per entry, so a rotated file (renamed) is followed. */
export class FileLogSink {
  private stream: WriteStream | null = null;
  constructor(private readonly config: FileLogConfig, private readonly dropped: DropCounter) {}

  /** One entry; written as a JSON line. */
  write(entry: object): void {
    const line = `${JSON.stringify(entry)}\n`;
    if (this.config.reopen) {
      appendFile(this.config.path, line, (err) => { if (err) this.dropped('file-log', 1, 'queue_full'); });
      return;
    }
    if (this.stream === null) {
      this.stream = createWriteStream(this.config.path, { flags: 'a' });
      this.stream.on('error', () => { this.stream = null; this.dropped('file-log', 1, 'queue_full'); });
    }
    if (this.stream.writableLength > FILE_LOG_MAX_BUFFERED_BYTES) { this.dropped('file-log', 1, 'queue_full'); return; }
    this.stream.write(line);
  }

  close(): void { this.stream?.end(); this.stream = null; }
}

/** Kong's http-log: batches of entries POSTed (or PUT/PATCHed) to the collector through a LogQueue. */
export class HttpLogSink {
  /** Entries as built; serialized per batch when sent (strings when max_bytes needs their size). */
  readonly queue: LogQueue<object | string>;
  private readonly agent: Agent;
  private readonly url: string;
  private readonly headers: Record<string, string>;

  constructor(private readonly config: HttpLogConfig, dropped: DropCounter) {
    const u = new URL(config.http_endpoint);
    this.headers = { 'content-type': config.content_type, ...config.headers };
    // Userinfo in the URL becomes Basic auth (Kong), and is kept out of the request line.
    if (u.username || u.password) {
      this.headers.authorization = `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}`;
      u.username = ''; u.password = '';
    }
    this.url = u.toString();
    this.agent = new Agent({ keepAliveTimeout: Math.max(1, config.keepalive), headersTimeout: config.timeout || undefined, bodyTimeout: config.timeout || undefined, connect: { timeout: config.timeout || undefined } });
    this.queue = new LogQueue('http-log', config.queue, (batch) => this.send(batch), (n, reason) => dropped('http-log', n, reason));
  }

  /**
   * Queues an entry. Serializing is left to the batch's send, off the request's path, unless a
   * byte limit needs the entry's size now. (The entry is a fresh object: kongEntry copies what it
   * takes from the request, and config objects are never mutated.)
   */
  write(entry: object): void {
    if (this.config.queue.max_bytes === null) { this.queue.push(entry); return; }
    const json = JSON.stringify(entry);
    this.queue.push(json, json.length);
  }

  /** A batch of one is a single JSON object, more a JSON array (Kong). Anything but 2xx is a failure (retried). */
  private async send(batch: (object | string)[]): Promise<void> {
    const json = (e: object | string) => (typeof e === 'string' ? e : JSON.stringify(e));
    const body = batch.length === 1 ? json(batch[0]) : `[${batch.map(json).join(',')}]`;
    const res = await request(this.url, { method: this.config.method, headers: this.headers, body, dispatcher: this.agent });
    await res.body.dump();
    if (res.statusCode < 200 || res.statusCode > 299) throw new Error(`collector answered ${res.statusCode}`);
  }

  async close(): Promise<void> {
    await this.queue.close();
    await this.agent.close();
  }
}
