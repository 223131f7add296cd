import { z } from 'zod';
import { bool, httpToken, int, opt, set, str, text } from '../../entities/fields.ts';
import { parseDotted } from '../json-paths.ts';
import { DEFAULT_BODY_CAP_BYTES, type PluginDefinition } from '../types.ts';
import { compileLegTemplate, templateRefs } from './template.ts';

// aggregator (reference/edge-design.md §1c): one client request answered from several services'
// answers, merged into one JSON object. A terminal plugin on a route: it runs after auth, ACL and
// rate limits and answers the request itself. Everything a request would otherwise find wrong
// with the graph (an unknown leg, a cycle, a template naming a leg it does not wait for) is
// refused here, at write time, with the path of the field.

/** Default total time budget of one composition. */
export const DEFAULT_TIMEOUT_MS = 3_000;
/** Legs (or fan-out calls) in flight at once for one request. */
export const DEFAULT_MAX_CONCURRENCY = 8;
/** Calls one fan-out leg may make (one per item of the list it runs over). */
export const DEFAULT_MAX_FAN_OUT = 20;
export const MAX_FAN_OUT = 100;
export const MAX_LEGS = 32;
/** RFC 9110 §9.2.2: the methods a leg may repeat without asking (anything else is a write). */
export const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'TRACE']);

const LEG_NAME = /^[A-Za-z0-9_-]+$/;

const template = (what: string) => text().superRefine((v, ctx) => {
  const t = compileLegTemplate(v);
  if (typeof t === 'string') ctx.addIssue({ code: 'custom', message: t });
}).describe(what);

const fieldPath = () => str().superRefine((v, ctx) => {
  const p = parseDotted(v, false);
  if (typeof p === 'string') ctx.addIssue({ code: 'custom', message: p });
});

const leg = z.strictObject({
  name: str().max(64, 'length must be at most 64').regex(LEG_NAME, "letters, digits, '_' and '-' only").describe('The leg\'s name: its key in the answer by default, and how templates and depends_on name it'),
  service: str().describe('The service (id or name) called: its upstream, balancing, health checks, circuit breaker and retries of failed connects apply'),
  method: z.string().regex(/^[A-Z]+$/, 'expected an upper-case HTTP method').max(16).default('GET').describe('HTTP method'),
  path: template('Path template, starting with /: `/users/$(consumer.id)`, `/orders/$(legs.cart.order_id)`, `/items/$(item)`; each value is percent-encoded')
    .refine((v) => v.startsWith('/'), 'must start with /').default('/'),
  query: z.record(httpToken('bad query argument name'), template('Query argument template')).default({}).describe('Query arguments, name → template'),
  headers: z.record(httpToken(), template('Header template')).default({}).describe('Request headers, name → template'),
  forward_query: set(text().min(1)).default([]).describe('Query arguments of the client\'s request passed to this leg as they came'),
  forward_headers: set(httpToken()).default([]).describe('Headers of the client\'s request passed to this leg (the gateway\'s X-Forwarded-*, request id and consumer headers always are)'),
  body: z.enum(['none', 'client']).default('none').describe("'client': the client's request body is sent (buffered); 'none': no body"),
  required: bool().default(true).describe('A required leg that fails fails the whole answer (502/503/504); an optional one is listed in _errors'),
  timeout_ms: opt(int(1, 600_000)).describe('This leg\'s own timeout, within what is left of timeout_ms (null: what is left)'),
  into: opt(str().max(128)).describe('The key its body goes under in the answer (null: the leg\'s name)'),
  allow: z.array(fieldPath()).max(64).default([]).describe('Only these fields of the body are kept (`a.b`, `items[*].id`); empty: all'),
  deny: z.array(fieldPath()).max(64).default([]).describe('These fields are removed'),
  rename: z.record(z.string(), fieldPath()).default({}).describe('Fields renamed, old path → new path'),
  depends_on: set(str()).default([]).describe('Legs this one waits for (their answers are its template values)'),
  for_each: opt(str()).describe('`<leg>.<path to a list>`: one call per element (`$(item)` in templates), answers kept in order'),
  max_fan_out: int(1, MAX_FAN_OUT).default(DEFAULT_MAX_FAN_OUT).describe('Most elements for_each runs over; a longer list fails the leg'),
});
export type AggregatorLeg = z.infer<typeof leg>;

export const aggregatorConfig = z.strictObject({
  timeout_ms: int(1, 600_000).default(DEFAULT_TIMEOUT_MS).describe('Total time budget: every leg ends by then'),
  max_concurrency: int(1, 64).default(DEFAULT_MAX_CONCURRENCY).describe('Calls in flight at once for one request'),
  max_body_bytes: int(1, 64 * DEFAULT_BODY_CAP_BYTES).default(DEFAULT_BODY_CAP_BYTES).describe('Most bytes of one leg\'s answer (a longer one fails the leg)'),
  allow_multiple_writes: bool().default(false).describe('Allow more than one leg with a non-idempotent method (POST, PATCH): a partial failure leaves writes half done'),
  errors_key: str().max(128).default('_errors').describe('Key of the list of failed optional legs in a partial answer'),
  completeness_header: httpToken().default('X-Aggregate-Completed').describe('Header saying whether every leg answered (true/false)'),
  legs: z.array(leg).min(1, 'at least one leg is required').max(MAX_LEGS, `at most ${MAX_LEGS} legs`).describe('The calls, merged in this order'),
}).superRefine(checkGraph);
export type AggregatorConfig = z.infer<typeof aggregatorConfig>;

/** What a leg's templates and for_each read of other legs (the handler compiles the same). */
export function legReads(l: AggregatorLeg): { legs: string[]; item: boolean } {
  const legs: string[] = [];
  let item = false;
  for (const t of [l.path, ...Object.values(l.query), ...Object.values(l.headers)]) {
    const c = compileLegTemplate(t);
    if (typeof c === 'string') continue;
    const r = templateRefs(c);
    legs.push(...r.legs);
    item ||= r.item;
  }
  return { legs, item };
}

/** The leg for_each names and the path after it. */
export function splitForEach(v: string): { leg: string; path: string } {
  const dot = v.indexOf('.');
  return dot < 0 ? { leg: v, path: '' } : { leg: v.slice(0, dot), path: v.slice(dot + 1) };
}

function checkGraph(c: { legs: AggregatorLeg[]; timeout_ms: number; allow_multiple_writes: boolean; errors_key: string }, ctx: z.RefinementCtx): void {
  const byName = new Map<string, number>();
  const into = new Map<string, number>();
  c.legs.forEach((l, i) => {
    if (byName.has(l.name)) ctx.addIssue({ code: 'custom', path: ['legs', i, 'name'], message: `duplicate leg name '${l.name}'` });
    byName.set(l.name, i);
    const key = l.into ?? l.name;
    if (into.has(key)) ctx.addIssue({ code: 'custom', path: ['legs', i, 'into'], message: `'${key}' is already where leg '${c.legs[into.get(key)!].name}' goes` });
    else if (key === c.errors_key) ctx.addIssue({ code: 'custom', path: ['legs', i, 'into'], message: `'${key}' is the errors_key` });
    into.set(key, i);
    if (l.timeout_ms !== null && l.timeout_ms > c.timeout_ms) ctx.addIssue({ code: 'custom', path: ['legs', i, 'timeout_ms'], message: `must be at most timeout_ms (${c.timeout_ms})` });
  });
  c.legs.forEach((l, i) => {
    l.depends_on.forEach((d, j) => {
      const k = byName.get(d);
      if (k === undefined) ctx.addIssue({ code: 'custom', path: ['legs', i, 'depends_on', j], message: `unknown leg '${d}'` });
      else if (l.required && !c.legs[k].required) ctx.addIssue({ code: 'custom', path: ['legs', i, 'depends_on', j], message: `a required leg cannot depend on the optional leg '${d}'` });
    });
    const reads = legReads(l);
    for (const r of new Set(reads.legs)) {
      if (!l.depends_on.includes(r)) ctx.addIssue({ code: 'custom', path: ['legs', i], message: `a template reads leg '${r}', which is not in depends_on` });
    }
    if (l.for_each !== null) {
      const { leg: from, path } = splitForEach(l.for_each);
      if (!l.depends_on.includes(from)) ctx.addIssue({ code: 'custom', path: ['legs', i, 'for_each'], message: `leg '${from}' is not in depends_on` });
      const p = path === '' ? [] : parseDotted(path, false);
      if (typeof p === 'string') ctx.addIssue({ code: 'custom', path: ['legs', i, 'for_each'], message: p });
    } else if (reads.item) ctx.addIssue({ code: 'custom', path: ['legs', i], message: '$(item) is only available with for_each' });
  });
  const cycle = findCycle(c.legs, byName);
  if (cycle !== null) ctx.addIssue({ code: 'custom', path: ['legs', byName.get(cycle[0])!, 'depends_on'], message: `dependency cycle: ${cycle.join(' → ')}` });
  const writes = c.legs.filter((l) => !IDEMPOTENT_METHODS.has(l.method));
  if (writes.length > 1 && !c.allow_multiple_writes) {
    ctx.addIssue({ code: 'custom', path: ['legs', c.legs.indexOf(writes[1]), 'method'], message: `more than one non-idempotent leg (${writes.map((w) => w.name).join(', ')}): set allow_multiple_writes to allow it` });
  }
}

/** A cycle of leg names (first repeated last), or null when depends_on is a DAG. */
function findCycle(legs: AggregatorLeg[], byName: Map<string, number>): string[] | null {
  const state = new Array<0 | 1 | 2>(legs.length).fill(0);
  const stack: string[] = [];
  const visit = (i: number): string[] | null => {
    if (state[i] === 2) return null;
    if (state[i] === 1) return [...stack.slice(stack.indexOf(legs[i].name)), legs[i].name];
    state[i] = 1;
    stack.push(legs[i].name);
    for (const d of legs[i].depends_on) {
      const k = byName.get(d);
      if (k === undefined) continue;
      const found = visit(k);
      if (found) return found;
    }
    stack.pop();
    state[i] = 2;
    return null;
  };
  for (let i = 0; i < legs.length; i++) {
    const found = visit(i);
    if (found) return found;
  }
  return null;
}

// Priority 1: after every access plugin (auth, ACL, rate limits, transformers, canary, tracing) and
// after request-termination (2), whose kill switch still wins when both are on a route.
export const aggregator: PluginDefinition = {
  name: 'aggregator', priority: 1, configSchema: aggregatorConfig,
  serviceRefs: (c: AggregatorConfig) => c.legs.map((l, i) => ({ path: ['legs', i, 'service'], ref: l.service })),
};
