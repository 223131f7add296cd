// The access-log line (one JSON object per request, pino): everything needed to bill, debug and
// join with traces. Consumers appear by id and username, never by a key; the path has credential
// query arguments redacted (the caller passes it so).
import { pino } from 'pino';
import { loggerOptions, type Logger } from '@portico/shared';
import type { ProxyContext, RequestSummary } from '@portico/shared/plugins/handlers';

/**
 * One write is at most PIPE_BUF bytes (Linux: 4096) and made of whole lines (sonic-boom's maxWrite
 * chunks never split a line), so on a pipe every write is atomic: lines from several processes
 * (cluster workers) sharing one stdout never interleave. Writing starts once BUFFER_BYTES are
 * gathered; FLUSH_EVERY_MS bounds how long a line waits when traffic is light.
 */
const MAX_WRITE = 4096;
const BUFFER_BYTES = 3072;
const FLUSH_EVERY_MS = 1000;

/** Where the proxy sends one line per finished request. */
export interface AccessLogWriter { write(x: AccessLogInput, s: RequestSummary): void }

export interface AccessLog extends AccessLogWriter {
  /** Writes every line logged so far; the node calls it once its listeners have drained. */
  close(): Promise<void>;
}

/** Lines to a logger as they come (unit tests). */
export const accessLogTo = (logger: Logger): AccessLogWriter => ({ write: (x, s) => { logger.info(accessLine(x, s)); } });

/**
 * The access log on a stdout destination of its own. Through the node's logger a line cost about
 * as much CPU as the proxied request itself (`npm run bench`, "access log on" rows: 111 against
 * 50 µs): pino's redaction pass and one synchronous write(2) per request. Here lines are gathered
 * and written asynchronously, several per write (sonic-boom with minLength), at most about two
 * FLUSH_EVERY_MS late. Nothing is lost on a drain: `close` (SIGTERM) waits until every line is
 * written, and a process that exits without it has the rest written synchronously on 'exit'.
 */
export function openAccessLog(log: Logger, fd = 1): AccessLog {
  const dest = pino.destination({ dest: fd, sync: false, minLength: BUFFER_BYTES, maxWrite: MAX_WRITE });
  // A closed stdout (EPIPE) must not end the node: the lines have nowhere to go.
  dest.on('error', () => {});
  const redacting = pino({ ...loggerOptions(log.level), base: log.bindings() }, dest).child({ access: true });
  // The node's logger's level gates the access log too (PORTICO_LOG_LEVEL=warn has no info lines).
  const enabled = redacting.isLevelEnabled('info');
  // pino's line, written directly: its redaction pass was the other half of a line's cost (about
  // 25 µs) and its serializer is slower than JSON.stringify. A line holds only the fields
  // accessLine sets, none of which REDACT_PATHS names (no headers, keys, secrets or passwords),
  // unless a plugin added fields of its own (ctx.logFields): only those lines go through pino.
  const bindings = JSON.stringify({ ...log.bindings(), access: true }).slice(1, -1);
  const INFO = pino.levels.values.info;
  // Unconditional: a flush while a write is in flight leaves what is under minLength for the next turn.
  const timer = setInterval(() => dest.flush(), FLUSH_EVERY_MS);
  timer.unref();
  const onExit = (): void => { try { dest.flushSync(); } catch { /* nowhere to report it */ } };
  process.once('exit', onExit);
  return {
    write(x, s) {
      if (!enabled) return;
      if (x.ctx?.logFields) { redacting.info(accessLine(x, s)); return; }
      dest.write(`{"level":${INFO},"time":${Date.now()},${bindings},${JSON.stringify(accessLine(x, s)).slice(1)}\n`);
    },
    close: () => new Promise<void>((resolve) => {
      clearInterval(timer);
      // flush() waits for the write in flight, but leaves what is under minLength buffered
      // (sonic-boom 4): once it is done, the rest goes out synchronously. Its callback also gets
      // fsync's error on a pipe or a terminal, which changes nothing here.
      dest.flush(() => { onExit(); process.off('exit', onExit); resolve(); });
    }),
  };
}

export interface AccessLogInput {
  requestId: string;
  method: string;
  path: string;
  clientIp: string;
  route: ProxyContext['route'] | null;
  service: ProxyContext['service'] | null;
  ctx: ProxyContext | null;
  error: string | undefined;
  aborted: boolean | undefined;
}

const header = (ctx: ProxyContext | null, name: string): string | null => ctx?.responseHeaders[name] ?? null;

/** Remaining requests of the most constraining rate limit, when the rate-limiting plugin ran. */
export function rateLimitRemaining(ctx: ProxyContext | null): number | null {
  const v = header(ctx, 'ratelimit-remaining');
  return v === null ? null : Number(v);
}

export function accessLine(x: AccessLogInput, s: RequestSummary): Record<string, unknown> {
  const ctx = x.ctx;
  const c = ctx?.consumer ?? null;
  return {
    timestamp: new Date(s.startedAt).toISOString(),
    request_id: x.requestId,
    trace_id: s.traceId,
    method: x.method,
    path: x.path,
    status: s.status,
    latency_ms: s.latencies.request,
    upstream_latency_ms: s.latencies.proxy,
    proxy_latency_ms: s.latencies.kong,
    client_ip: x.clientIp,
    consumer: c ? { id: c.id, username: c.username ?? null } : null,
    route: x.route ? { id: x.route.id, name: x.route.name ?? null } : null,
    service: x.service ? { id: x.service.id, name: x.service.name ?? null } : null,
    upstream: s.upstreamTarget,
    tries: s.tries,
    cache_status: header(ctx, 'x-cache-status'),
    ratelimit_remaining: rateLimitRemaining(ctx),
    bytes_in: s.bytesIn,
    bytes_out: s.bytesOut,
    source: s.source,
    error: x.error,
    aborted: x.aborted,
    ...ctx?.logFields,
  };
}
