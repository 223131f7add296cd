// aggregator: runs a route's legs against services and answers with their merged JSON
// (reference/edge-design.md §1c). The graph, templates and field operations are compiled once per
// snapshot (init); per request, one `Composition` runs it:
//
//   start every leg whose depends_on are done ─► each leg: render path/query/headers ─► call the
//   service through env.services (balancer, breaker, pools) under its own deadline
//   = min(leg.timeout_ms, what is left of timeout_ms) ─► 2xx + JSON: done; else failed
//        │ a required leg failed: every call in flight is aborted at once, answer 504/503/502
//        │ an optional leg failed: its dependents are skipped, the rest goes on
//   all settled ─► merge in declared order (each under its own key) ─► 200, plus
//                  X-Aggregate-Completed: false, Cache-Control: no-store and _errors when partial
import { DEADLINE_CODE, type AccessResult, type Exit, type PluginEnv, type PluginHandler, type ProxyContext, type ServiceFailure, type ServicePort } from '../types.ts';
import { IDENTITY_HEADERS } from '../auth.ts';
import { parseDotted, pick, removeAt, renameAt, valuesAt, type JsonPath } from '../json-paths.ts';
import { aggregator, splitForEach, type AggregatorConfig, type AggregatorLeg } from './schema.ts';
import { compileLegTemplate, renderLeg, type LegTemplate, type LegValues } from './template.ts';

/** Why a leg did not give its part of the answer (the `reason` of an `_errors` entry). */
export type LegReason = ServiceFailure | 'upstream_5xx' | 'upstream_status' | 'invalid_json' | 'dependency_failed' | 'dependency_null' | 'fan_out_too_large';
export interface LegError { leg: string; reason: LegReason; status?: number; message: string }

/** Headers the gateway set that every leg gets (the request's id, forwarding, the consumer). */
const GATEWAY_HEADERS = ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-real-ip', 'via', 'x-portico-request-id', ...IDENTITY_HEADERS];
const MESSAGES = {
  timeout: 'The upstream server is timing out',
  unavailable: 'The upstream server is currently unavailable',
  bad: 'An invalid response was received from the upstream server',
};
const deadline = (): Error => Object.assign(new Error('leg deadline passed'), { code: DEADLINE_CODE });
const cancelled = (why: string): Error => Object.assign(new Error(`cancelled: ${why}`), { code: 'PORTICO_CANCELLED' });

interface CompiledLeg {
  index: number;
  leg: AggregatorLeg;
  key: string;
  path: LegTemplate;
  query: Array<[string, LegTemplate]>;
  headers: Array<[string, LegTemplate]>;
  deps: number[];
  forEach: { from: string; path: JsonPath } | null;
  allow: JsonPath[] | null;
  deny: JsonPath[];
  rename: Array<{ from: JsonPath; to: JsonPath }>;
  /** Legs waiting for this one. */
  dependents: number[];
}

interface State { legs: CompiledLeg[]; services: ServicePort }

function must<T>(v: T | string, what: string): T {
  if (typeof v === 'string') throw new Error(`aggregator: ${what}: ${v}`);
  return v;
}
const fieldPath = (s: string) => must(parseDotted(s, false), s);

function compile(config: AggregatorConfig, services: ServicePort): State {
  const index = new Map(config.legs.map((l, i) => [l.name, i]));
  const legs = config.legs.map((leg, i): CompiledLeg => {
    const fe = leg.for_each === null ? null : splitForEach(leg.for_each);
    return {
      index: i, leg, key: leg.into ?? leg.name,
      path: must(compileLegTemplate(leg.path), 'path'),
      query: Object.entries(leg.query).map(([k, v]) => [k, must(compileLegTemplate(v), `query ${k}`)]),
      headers: Object.entries(leg.headers).map(([k, v]) => [k.toLowerCase(), must(compileLegTemplate(v), `header ${k}`)]),
      deps: leg.depends_on.map((d) => index.get(d)!),
      forEach: fe === null ? null : { from: fe.leg, path: fe.path === '' ? [] : fieldPath(fe.path) },
      allow: leg.allow.length ? leg.allow.map(fieldPath) : null,
      deny: leg.deny.map(fieldPath),
      rename: Object.entries(leg.rename).map(([from, to]) => ({ from: fieldPath(from), to: fieldPath(to) })),
      dependents: [],
    };
  });
  for (const l of legs) for (const d of l.deps) legs[d].dependents.push(l.index);
  return { legs, services };
}

/** allow, then deny, then rename, on a copy the answer owns. */
function shape(l: CompiledLeg, body: unknown): unknown {
  let v = l.allow === null ? body : pick(body, l.allow);
  for (const p of l.deny) removeAt(v, p);
  for (const r of l.rename) renameAt(v, r.from, r.to);
  return v;
}

type Outcome = { ok: true; body: unknown } | { ok: false; error: LegError };

/** One request's run of the graph. */
class Composition {
  readonly started: number;
  readonly end: number;
  readonly abort = new AbortController();
  readonly outcomes: Array<Outcome | undefined>;
  readonly bodies = new Map<string, unknown>();
  private waiting: number[];
  private pending: number;
  private inFlight = 0;
  private readonly queue: Array<() => void> = [];
  private failed: LegError | null = null;
  private done!: () => void;
  readonly finished = new Promise<void>((r) => { this.done = r; });

  constructor(readonly ctx: ProxyContext, readonly config: AggregatorConfig, readonly state: State, readonly env: PluginEnv) {
    this.started = env.now();
    this.end = this.started + config.timeout_ms;
    this.outcomes = new Array(state.legs.length);
    this.waiting = state.legs.map((l) => l.deps.length);
    this.pending = state.legs.length;
    // A client that leaves takes its legs with it: every call in flight is aborted.
    const client = ctx.clientSignal?.();
    if (client) client.addEventListener('abort', () => { this.abort.abort(cancelled('the request is over')); this.done(); }, { once: true });
  }

  run(): Promise<void> {
    for (const l of this.state.legs) if (l.deps.length === 0) void this.start(l);
    return this.finished;
  }

  /** A slot among max_concurrency calls in flight. */
  private async slot(): Promise<void> {
    if (this.inFlight < this.config.max_concurrency) { this.inFlight++; return; }
    await new Promise<void>((r) => this.queue.push(r));
  }

  private release(): void {
    const next = this.queue.shift();
    if (next) next(); else this.inFlight--;
  }

  private async start(l: CompiledLeg): Promise<void> {
    const t0 = this.env.now();
    let outcome: Outcome;
    try { outcome = await this.runLeg(l); } catch (err) {
      // A bug, not the service's doing: logged with its stack; the leg fails as any other would.
      this.env.log.error({ err, leg: l.leg.name, request_id: this.ctx.requestId }, 'aggregator leg failed');
      outcome = this.fail(l, 'connect_error', 'internal error');
    }
    this.settle(l, outcome, t0);
  }

  private settle(l: CompiledLeg, outcome: Outcome, t0: number): void {
    if (this.outcomes[l.index] !== undefined) return;
    this.outcomes[l.index] = outcome;
    this.pending--;
    this.state.services.record(this.ctx, l.leg.name, outcome.ok ? 'ok' : outcome.error.reason, this.env.now() - t0);
    if (this.failed !== null) return;
    if (!outcome.ok && l.leg.required) {
      // Fail fast: whatever else is in flight is abandoned now, not at the deadline.
      this.failed = outcome.error;
      this.abort.abort(cancelled('a required leg failed'));
      this.done();
      return;
    }
    if (outcome.ok) this.bodies.set(l.leg.name, outcome.body);
    for (const d of l.dependents) {
      if (--this.waiting[d] > 0) continue;
      const next = this.state.legs[d];
      const broken = next.deps.find((k) => !this.outcomes[k]!.ok);
      if (broken !== undefined) this.settle(next, this.fail(next, 'dependency_failed', `leg '${this.state.legs[broken].leg.name}' failed`), this.env.now());
      else void this.start(next);
    }
    if (this.pending === 0) this.done();
  }

  private fail(l: CompiledLeg, reason: LegReason, message: string, status?: number): Outcome {
    return { ok: false, error: status === undefined ? { leg: l.leg.name, reason, message } : { leg: l.leg.name, reason, status, message } };
  }

  private async runLeg(l: CompiledLeg): Promise<Outcome> {
    if (l.forEach === null) return this.call(l, undefined);
    const list = valuesAt(this.bodies.get(l.forEach.from), l.forEach.path)[0];
    if (!Array.isArray(list)) return this.fail(l, 'dependency_null', `'${l.leg.for_each}' is not a list`);
    if (list.length > l.leg.max_fan_out) return this.fail(l, 'fan_out_too_large', `${list.length} items, max_fan_out is ${l.leg.max_fan_out}`);
    const results = await Promise.all(list.map((item) => this.call(l, item)));
    const bad = results.find((r) => !r.ok);
    return bad ?? { ok: true, body: results.map((r) => (r as { body: unknown }).body) };
  }

  /** One call of a leg (one item of a fan-out): render, send under the leg's deadline, judge the answer. */
  private async call(l: CompiledLeg, item: unknown): Promise<Outcome> {
    const values: LegValues = { bodies: this.bodies, item };
    const ctx = this.ctx;
    const path = renderLeg(l.path, ctx, values, encodeURIComponent);
    if (path === null) return this.fail(l, 'dependency_null', 'a value the path needs is null or missing');
    const q = new URLSearchParams();
    if (l.leg.forward_query.length && ctx.hasQuery()) for (const name of l.leg.forward_query) for (const v of ctx.query().getAll(name)) q.append(name, v);
    for (const [name, t] of l.query) {
      const v = renderLeg(t, ctx, values, String);
      if (v === null) return this.fail(l, 'dependency_null', `a value query argument '${name}' needs is null or missing`);
      q.set(name, v);
    }
    const headers: Record<string, string | string[]> = { accept: 'application/json' };
    const up = ctx.upstreamHeaders;
    for (const h of GATEWAY_HEADERS) if (up[h] !== undefined) headers[h] = up[h];
    for (const h of l.leg.forward_headers) { const v = up[h.toLowerCase()]; if (v !== undefined) headers[h.toLowerCase()] = v; }
    for (const [name, t] of l.headers) {
      const v = renderLeg(t, ctx, values, String);
      if (v === null) return this.fail(l, 'dependency_null', `a value header '${name}' needs is null or missing`);
      headers[name] = v;
    }
    const body = l.leg.body === 'client' ? ctx.rawBody() : null;
    if (body !== null && up['content-type'] !== undefined) headers['content-type'] = up['content-type'];
    const qs = q.toString();
    await this.slot();
    const left = Math.min(l.leg.timeout_ms ?? Infinity, this.end - this.env.now());
    const leg = new AbortController();
    const onCancel = () => leg.abort(this.abort.signal.reason);
    this.abort.signal.addEventListener('abort', onCancel, { once: true });
    const timer = setTimeout(() => leg.abort(deadline()), Math.max(0, left));
    try {
      if (left <= 0 || this.abort.signal.aborted) return this.fail(l, this.abort.signal.aborted ? 'cancelled' : 'timeout', 'no time left in the budget');
      const r = await this.state.services.call(ctx, {
        service: l.leg.service, method: l.leg.method, target: qs ? `${path}?${qs}` : path, headers, body, signal: leg.signal,
        maxBodyBytes: this.config.max_body_bytes, label: l.leg.name,
      });
      if (!r.ok) return this.fail(l, r.failure, r.message);
      if (r.status >= 500) return this.fail(l, 'upstream_5xx', `the service answered ${r.status}`, r.status);
      if (r.status < 200 || r.status > 299) return this.fail(l, 'upstream_status', `the service answered ${r.status}`, r.status);
      let parsed: unknown;
      try { parsed = r.body.length === 0 ? null : JSON.parse(r.body.toString('utf8')); } catch { return this.fail(l, 'invalid_json', 'the answer is not JSON', r.status); }
      return { ok: true, body: parsed };
    } finally {
      clearTimeout(timer);
      this.abort.signal.removeEventListener('abort', onCancel);
      this.release();
    }
  }

  /** The client's answer, once `finished`. */
  answer(): Exit {
    const c = this.config;
    const id = this.ctx.requestId;
    if (this.failed !== null) {
      const f = this.failed;
      const [status, message] = f.reason === 'timeout' ? [504, MESSAGES.timeout] : f.reason === 'circuit_open' ? [503, MESSAGES.unavailable] : [502, MESSAGES.bad];
      return { status, json: { message, request_id: id, legs: [f] }, headers: { 'cache-control': 'no-store', [c.completeness_header.toLowerCase()]: 'false' } };
    }
    const out: Record<string, unknown> = {};
    const errors: LegError[] = [];
    for (const l of this.state.legs) {
      // Unsettled only when the client left first (nothing is sent then).
      const o: Outcome = this.outcomes[l.index] ?? { ok: false, error: { leg: l.leg.name, reason: 'cancelled', message: 'the request is over' } };
      if (o.ok) out[l.key] = l.forEach === null ? shape(l, o.body) : (o.body as unknown[]).map((b) => shape(l, b));
      else errors.push(o.error);
    }
    const headers: Record<string, string> = { [c.completeness_header.toLowerCase()]: errors.length ? 'false' : 'true' };
    if (errors.length) { out[c.errors_key] = errors; headers['cache-control'] = 'no-store'; }
    return { status: 200, json: out, headers };
  }
}

export const aggregatorHandler: PluginHandler<AggregatorConfig, State> = {
  name: aggregator.name,
  priority: aggregator.priority,
  needsBody: (config) => config?.legs.some((l) => l.body === 'client') === true,
  init(config, env) {
    const services = env.services;
    if (!services) throw new Error('aggregator: this data plane offers no service calls');
    for (const l of config.legs) if (!services.has(l.service)) throw new Error(`aggregator: leg '${l.name}': no service '${l.service}'`);
    return compile(config, services);
  },
  access: async function aggregate(ctx, config, state, env): Promise<AccessResult> {
    const run = new Composition(ctx, config, state, env);
    await run.run();
    return run.answer();
  },
};
