// Requests plugins send to services (the aggregator's legs), through what the proxy uses for its
// own upstream requests: the service's target, its balancer (health checks, circuit breaker,
// slots), the pooled undici agents and the proxy's retry rule for failed connects. One
// `ServiceCalls` per snapshot (env.services), bound to that snapshot's targets, so a request in
// flight keeps calling the services of the config it started with (invariant 4).
//
// Each call is one undici dispatch handler (as ProxyExchange): `onConnect` marks it sent and keeps
// the abort function, so the caller's AbortSignal closes the upstream connection at once — the
// service sees its request aborted, not a response nobody reads.
import type { Dispatcher } from 'undici';
import {
  DEADLINE_CODE, type ProxyContext, type ServiceFailure, type ServicePort, type ServiceRequest, type ServiceResponse,
} from '@portico/shared/plugins/handlers';
import { UpstreamBalancer, type TargetState } from './balancer.ts';
import { bracket, hostPort, type ServiceTarget } from './target.ts';
import { downstreamHeaders, sealUpstreamHeaders } from './headers.ts';
import { TIMEOUT_ERRORS, mayRetry } from './policy.ts';
import { traceCallEnd, traceCallStart } from '../observability/tracing.ts';

const EMPTY_TRIED: ReadonlySet<string> = new Set();

/** What the node gives every snapshot's ServiceCalls: the proxy's pooled agents and the leg metrics. */
export interface ServiceCallPorts {
  dispatcherFor(t: ServiceTarget): Dispatcher;
  /** `portico_aggregate_leg_total` and its duration (observability/index.ts). */
  recordLeg?(routeId: string, leg: string, outcome: string, ms: number): void;
}

type Settle = (r: ServiceResponse) => void;

/** One attempt's undici handler: collects the answer up to the cap, or fails. */
class Attempt implements Dispatcher.DispatchHandler {
  sent = false;
  status = 0;
  headers: Buffer[] = [];
  parts: Buffer[] = [];
  size = 0;
  abortFn: ((err: Error) => void) | null = null;
  done = false;
  readonly started = performance.now();

  constructor(readonly maxBytes: number, readonly signal: AbortSignal, readonly settle: (a: Attempt, err: Error | null) => void) {}

  onAbortSignal = (): void => { this.abortFn?.(this.signal.reason as Error); };

  onConnect(abort: (err?: Error) => void): void {
    this.sent = true;
    this.abortFn = abort;
    if (this.signal.aborted) abort(this.signal.reason as Error);
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[]): boolean {
    this.status = statusCode;
    this.headers = rawHeaders;
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.size += chunk.length;
    if (this.size > this.maxBytes) {
      this.abortFn?.(Object.assign(new Error(`answer over ${this.maxBytes} bytes`), { code: 'TOO_LARGE' }));
      return false;
    }
    this.parts.push(chunk);
    return true;
  }

  onComplete(): void { this.finish(null); }
  onError(err: Error): void { this.finish(err); }

  private finish(err: Error | null): void {
    if (this.done) return;
    this.done = true;
    this.signal.removeEventListener('abort', this.onAbortSignal);
    this.settle(this, err);
  }
}

const codeOf = (err: Error): string => (err as { code?: string }).code ?? '';

export class ServiceCalls implements ServicePort {
  constructor(private readonly targets: ReadonlyMap<string, ServiceTarget>, private readonly ports: ServiceCallPorts) {}

  has(service: string): boolean { return this.targets.has(service); }

  record(ctx: ProxyContext, label: string, outcome: string, ms: number): void {
    this.ports.recordLeg?.(ctx.route.id, label, outcome, ms);
  }

  call(ctx: ProxyContext, req: ServiceRequest): Promise<ServiceResponse> {
    const t = this.targets.get(req.service);
    if (!t) return Promise.resolve({ ok: false, failure: 'unknown_service', message: `no service '${req.service}'` });
    const headers = { ...req.headers };
    if (req.body !== null) headers['content-length'] = String(req.body.length);
    const refused = sealUpstreamHeaders(headers, ctx.headers);
    if (refused) return Promise.resolve({ ok: false, failure: 'bad_header', message: `header '${refused.name}' is not sendable` });
    return new Promise<ServiceResponse>((resolve) => this.attempt(ctx, req, t, headers, 0, null, resolve));
  }

  /** One attempt; a failed connect is tried again on the next target (the proxy's rule, policy.ts). */
  private attempt(ctx: ProxyContext, req: ServiceRequest, t: ServiceTarget, headers: Record<string, string | string[]>, n: number, tried: Set<string> | null, resolve: Settle): void {
    if (req.signal.aborted) { resolve(aborted(req.signal)); return; }
    const b = t.balancer;
    let peer: TargetState | null = null;
    let origin = t.origin;
    if (b !== null) {
      peer = b.pick(null, tried ?? EMPTY_TRIED) ?? (tried !== null ? b.pick(null, EMPTY_TRIED) : null);
      if (peer === null) {
        // Nothing is sent: an open breaker answers in no time, without touching the service.
        const open = b.upstream.circuit_breaker !== null && b.targets.some((x) => x.breaker === 'open');
        resolve({ ok: false, failure: open ? 'circuit_open' : 'no_target', message: open ? 'circuit breaker open' : 'no healthy target' });
        return;
      }
      (tried ??= new Set()).add(peer.target);
      origin = `${t.scheme}://${bracket(peer.host)}:${peer.port}`;
      headers.host = b.upstream.host_header ?? hostPort(peer.host, peer.port, t.defaultPort);
    } else headers.host = t.hostHeader;
    const probeEpoch = peer === null ? -1 : UpstreamBalancer.probeEpoch(peer);
    const span = traceCallStart(ctx, req.label, req.method, origin, req.target, headers);
    const a = new Attempt(req.maxBodyBytes, req.signal, (a, err) => {
      if (peer !== null) {
        const timeout = err !== null && (TIMEOUT_ERRORS.has(codeOf(err)) || codeOf(err) === DEADLINE_CODE);
        // A cancellation or an answer too big is the caller's doing, not the target's health.
        if (err === null || a.status > 0) b!.report(peer, { kind: 'status', status: a.status, latencyMs: performance.now() - a.started });
        else if (timeout) b!.report(peer, { kind: 'timeout' });
        else if (!req.signal.aborted) b!.report(peer, { kind: 'tcp' });
        b!.release(peer, probeEpoch);
      }
      traceCallEnd(span, err === null ? a.status : 0, err === null ? undefined : codeOf(err) || err.message);
      if (err === null) {
        resolve({ ok: true, status: a.status, headers: downstreamHeaders(a.headers), body: a.parts.length === 1 ? a.parts[0] : Buffer.concat(a.parts) });
        return;
      }
      if (req.signal.aborted) { resolve(aborted(req.signal)); return; }
      const code = codeOf(err);
      if (code === 'TOO_LARGE') { resolve({ ok: false, failure: 'too_large', message: err.message }); return; }
      if (n < t.service.retries && mayRetry(req.method, true, a.sent, code)) { this.attempt(ctx, req, t, headers, n + 1, tried, resolve); return; }
      const failure: ServiceFailure = TIMEOUT_ERRORS.has(code) ? 'timeout' : 'connect_error';
      resolve({ ok: false, failure, message: code || err.message });
    });
    req.signal.addEventListener('abort', a.onAbortSignal, { once: true });
    try {
      this.ports.dispatcherFor(t).dispatch({
        origin, path: req.target, method: req.method as Dispatcher.HttpMethod, headers, body: req.body,
        headersTimeout: t.service.read_timeout, bodyTimeout: t.service.read_timeout,
      }, a);
    } catch (err) {
      // undici refuses some arguments by throwing: the attempt still ends once, its slot given back.
      a.onError(err as Error);
    }
  }
}

function aborted(signal: AbortSignal): ServiceResponse {
  const deadline = codeOf(signal.reason as Error) === DEADLINE_CODE;
  return { ok: false, failure: deadline ? 'timeout' : 'cancelled', message: deadline ? 'deadline passed' : 'cancelled' };
}
