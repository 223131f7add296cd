// request-transformer (reference/kong-compat.md §4.9), headers and query strings: Kong's order
// replace.uri → http_method → headers → querystring, and within each remove → rename → replace (only
// when present; Host always) → add (only when absent; never Host) → append (always: a repeated
// header or argument).
//
// Every value is rendered before any operation runs, so a template reads the request as this plugin
// found it (client headers plus what earlier plugins set upstream), as Kong's do. Header names are
// handled lower-case (the DP's upstream headers are keyed so), so a case-only rename changes nothing
// on the wire.
//
// Deviations from Kong, on purpose: a query rename whose source is absent changes nothing (Kong
// deletes the target); a pair with an empty literal value (`X-Foo:`) is skipped in every operation
// (Kong skips it for headers, and deletes the argument for a query replace).
import { DEFAULT_BODY_CAP_BYTES, type AccessResult, type BodyNeeds, type PluginDefinition, type PluginHandler, type ProxyContext, type RequestBody } from '../types.ts';
import { splitPair } from '../transformer-fields.ts';
import { applyBodyOps, bodyOpsCount, compileBodyOps, type BodyOps } from '../body-transform.ts';
import { isObject } from '../json-paths.ts';
import { requestTransformer, requestTransformerAdvanced, type RequestTransformerConfig } from './schema.ts';
import { compileTemplate, isLiteral, render, type Template } from './template.ts';

/** An operation with a value: the name, and the index of its value in the rendered values. */
interface Op { name: string; slot: number }
interface Rename { from: string; to: string }
interface Ops { remove: string[]; rename: Rename[]; replace: Op[]; add: Op[]; append: Op[] }

interface State {
  headers: Ops;
  query: Ops;
  hasHeaderOps: boolean;
  hasQueryOps: boolean;
  uriSlot: number;
  method: string | null;
  templates: Template[];
  /** The values when none is a template (rendered once, here); null when some are. */
  literals: string[] | null;
  /** The `body` lists, run in the body phase; null when there are none. */
  body: BodyOps | null;
  bodyNeeds: BodyNeeds;
}

function compile(config: RequestTransformerConfig): State {
  const templates: Template[] = [];
  const valueOps = (entries: string[], lower: boolean): Op[] => {
    const ops: Op[] = [];
    for (const e of entries) {
      const { name, value } = splitPair(e);
      if (value === '') continue;
      const t = compileTemplate(value);
      if (typeof t === 'string') throw new Error(`request-transformer: ${t}`); // the schema refused it already
      ops.push({ name: lower ? name.toLowerCase() : name, slot: templates.push(t) - 1 });
    }
    return ops;
  };
  const renames = (entries: string[], lower: boolean): Rename[] => entries.map(splitPair)
    .filter((p) => p.value !== '')
    .map((p) => (lower ? { from: p.name.toLowerCase(), to: p.value.toLowerCase() } : { from: p.name, to: p.value }))
    .filter((r) => r.from !== r.to);
  const headers: Ops = {
    remove: config.remove.headers.map((e) => splitPair(e).name.toLowerCase()).filter((n) => n !== 'host'),
    rename: renames(config.rename.headers, true).filter((r) => r.from !== 'host'),
    replace: valueOps(config.replace.headers, true),
    add: valueOps(config.add.headers, true).filter((o) => o.name !== 'host'),
    append: valueOps(config.append.headers, true),
  };
  const query: Ops = {
    remove: config.remove.querystring,
    rename: renames(config.rename.querystring, false),
    replace: valueOps(config.replace.querystring, false),
    add: valueOps(config.add.querystring, false),
    append: valueOps(config.append.querystring, false),
  };
  let uriSlot = -1;
  if (config.replace.uri !== null) {
    const t = compileTemplate(config.replace.uri);
    if (typeof t === 'string') throw new Error(`request-transformer: ${t}`);
    uriSlot = templates.push(t) - 1;
  }
  const slotOf = (value: string): number => {
    const t = compileTemplate(value);
    if (typeof t === 'string') throw new Error(`request-transformer: ${t}`);
    return templates.push(t) - 1;
  };
  const body = compileBodyOps({
    allow: config.allow?.body, remove: config.remove.body, rename: config.rename.body, replace: config.replace.body, add: config.add.body, append: config.append.body,
    types: { replace: config.replace.json_types, add: config.add.json_types, append: config.append.json_types },
  }, config.dots_in_keys ?? true, slotOf);
  const hasBody = bodyOpsCount(body) > 0;
  const count = (o: Ops) => o.remove.length + o.rename.length + o.replace.length + o.add.length + o.append.length;
  return {
    headers, query, uriSlot, method: config.http_method, templates,
    hasHeaderOps: count(headers) > 0, hasQueryOps: count(query) > 0,
    literals: templates.every(isLiteral) ? templates.map((t) => t[0] as string) : null,
    body: hasBody ? body : null,
    bodyNeeds: { request: hasBody ? 'form' : null, response: false, maxBytes: config.max_body_bytes ?? DEFAULT_BODY_CAP_BYTES },
  };
}

function transformHeaders(h: Record<string, string | string[]>, ops: Ops, values: string[]): void {
  for (const name of ops.remove) delete h[name];
  for (const { from, to } of ops.rename) {
    const v = h[from];
    if (v === undefined) continue;
    delete h[from];
    h[to] = v;
  }
  for (const { name, slot } of ops.replace) if (h[name] !== undefined || name === 'host') h[name] = values[slot];
  for (const { name, slot } of ops.add) if (h[name] === undefined) h[name] = values[slot];
  for (const { name, slot } of ops.append) {
    const v = h[name];
    // Host is one value: Kong's append sets it (its header table never holds Host at this point).
    h[name] = v === undefined || name === 'host' ? values[slot] : typeof v === 'string' ? [v, values[slot]] : [...v, values[slot]];
  }
}

function transformQuery(q: URLSearchParams, ops: Ops, values: string[]): void {
  for (const name of ops.remove) q.delete(name);
  for (const { from, to } of ops.rename) {
    if (!q.has(from)) continue;
    const vs = q.getAll(from);
    q.delete(from);
    q.delete(to);
    for (const v of vs) q.append(to, v);
  }
  for (const { name, slot } of ops.replace) if (q.has(name)) q.set(name, values[slot]);
  for (const { name, slot } of ops.add) if (!q.has(name)) q.append(name, values[slot]);
  for (const { name, slot } of ops.append) q.append(name, values[slot]);
}

function values(state: State, ctx: ProxyContext): string[] {
  if (state.literals !== null) return state.literals;
  const t = state.templates;
  const out = new Array<string>(t.length);
  for (let i = 0; i < t.length; i++) out[i] = render(t[i], ctx);
  return out;
}

/** Body phase: Kong's body lists on a JSON object, form fields or a multipart body's fields. */
function transformBody(ctx: ProxyContext, body: RequestBody, state: State): boolean {
  const ops = state.body!;
  if (body.kind === 'json') {
    // Kong transforms JSON objects only; an array or a scalar goes through as it came.
    if (!isObject(body.value)) return false;
    const r = applyBodyOps(body.value, ops, values(state, ctx));
    body.value = r.root;
    return r.changed;
  }
  const r = applyBodyOps(body.fields, ops, values(state, ctx));
  // Form fields hold strings: a typed value (json_types) is written as text.
  for (const [k, v] of Object.entries(r.root)) r.root[k] = Array.isArray(v) ? v.map(String) : String(v);
  body.fields = r.root as typeof body.fields;
  return r.changed;
}

function handlerFor(def: PluginDefinition): PluginHandler<RequestTransformerConfig, State> {
  return {
    name: def.name,
    priority: def.priority,
    init: compile,
    access: function requestTransformerAccess(ctx: ProxyContext, _config, state): AccessResult {
      const v = values(state, ctx);
      if (state.uriSlot >= 0) ctx.pathOverride = v[state.uriSlot];
      if (state.method !== null) ctx.methodOverride = state.method;
      if (state.hasHeaderOps) transformHeaders(ctx.upstreamHeaders, state.headers, v);
      if (state.hasQueryOps) transformQuery(ctx.query(), state.query, v);
    },
    body: {
      needs: (_config, state) => state.bodyNeeds,
      request: (ctx, body, _config, state) => transformBody(ctx, body, state),
    },
  };
}

export const requestTransformerHandler = handlerFor(requestTransformer);
/** One engine, two schemas: the advanced plugin is this handler reading its extra fields. */
export const requestTransformerAdvancedHandler = handlerFor(requestTransformerAdvanced);
