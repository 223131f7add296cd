// The CP's side of a config write's trace (shared/src/runtime/config-trace.ts): each admin write is
// a SERVER span; the snapshot build and publish it schedules are its children (bursts coalesce, so
// a snapshot joins the trace of the first write it holds); the publish span's traceparent goes out
// with the snapshot for each DP's apply span.
import { AsyncLocalStorage } from 'node:async_hooks';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type Span } from '@opentelemetry/api';
import type { NodeTracer } from '@portico/shared';

const READS = new Set(['GET', 'HEAD', 'OPTIONS']);

export class ControlPlaneTracing {
  private readonly write = new AsyncLocalStorage<Span>();
  constructor(private readonly node: NodeTracer) {}

  /** Wraps the admin API's fetch: a write runs inside its span. */
  traceAdmin<A extends unknown[]>(fetch: (req: Request, ...rest: A) => Response | Promise<Response>): (req: Request, ...rest: A) => Promise<Response> {
    return async (req, ...rest) => {
      if (READS.has(req.method)) return fetch(req, ...rest);
      const path = new URL(req.url).pathname;
      const span = this.node.tracer.startSpan(`admin ${req.method}`, { kind: SpanKind.SERVER, attributes: { 'http.request.method': req.method, 'url.path': path } });
      try {
        const res = await this.write.run(span, () => fetch(req, ...rest));
        span.setAttribute('http.response.status_code', res.status);
        if (res.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
        return res;
      } catch (err) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
        throw err;
      } finally {
        span.end();
      }
    };
  }

  /** The context of the admin write the caller runs under (the root context outside one). */
  currentWrite(): Context {
    const span = this.write.getStore();
    return span ? trace.setSpan(ROOT_CONTEXT, span) : ROOT_CONTEXT;
  }

  /** Runs `fn` in a span under `parent`, ending it (with an error status when `fn` throws). */
  async span<T>(name: string, parent: Context, fn: (span: Span) => Promise<T>): Promise<T> {
    const span = this.node.tracer.startSpan(name, {}, parent);
    try {
      return await fn(span);
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
      throw err;
    } finally {
      span.end();
    }
  }

  shutdown(): Promise<void> { return this.node.shutdown(); }
}
