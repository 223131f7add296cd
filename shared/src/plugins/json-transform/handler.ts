// json-transform: each side's operations compiled once per snapshot (paths, templates, key-case
// caches), then run in order on the parsed body in the body phase. A path that reaches nothing
// changes nothing; `unwrap` of an absent path leaves the body as it is.
import { DEFAULT_BODY_CAP_BYTES, type BodyNeeds, type PluginHandler, type ProxyContext } from '../types.ts';
import { isObject, parseJsonPath, pick, removeAt, renameAt, setAt, valuesAt, type JsonPath } from '../json-paths.ts';
import { compileTemplate, render, type Template } from '../request-transformer/template.ts';
import { KeyCaser } from './keycase.ts';
import { cast, type ValueType } from '../body-transform.ts';
import { jsonTransform, type JsonTransformConfig, type JsonTransformOp } from './schema.ts';

type Step =
  | { op: 'unwrap'; path: JsonPath }
  | { op: 'allow'; paths: JsonPath[] }
  | { op: 'deny'; paths: JsonPath[] }
  | { op: 'rename'; from: JsonPath; to: JsonPath }
  | { op: 'set'; path: JsonPath; value: unknown; template: Template | null; type: ValueType }
  | { op: 'case'; caser: KeyCaser }
  | { op: 'wrap'; key: string; meta: Record<string, unknown> | undefined };

interface State { request: Step[]; response: Step[]; statuses: Set<number> | null; needs: BodyNeeds }

/** A path or template the schema validated (an error here is a bug). */
function p(s: string): JsonPath {
  const r = parseJsonPath(s);
  if (typeof r === 'string') throw new Error(`json-transform: ${r}`);
  return r;
}

function compileStep(o: JsonTransformOp): Step {
  switch (o.op) {
    case 'unwrap': return { op: 'unwrap', path: p(o.path!) };
    case 'allow': case 'deny': return { op: o.op, paths: o.paths!.map(p) };
    case 'rename': return { op: 'rename', from: p(o.from!), to: p(o.to!) };
    case 'set': {
      const t = o.template === undefined ? null : compileTemplate(o.template);
      if (typeof t === 'string') throw new Error(`json-transform: ${t}`);
      return { op: 'set', path: p(o.path!), value: o.value, template: t, type: o.type ?? 'string' };
    }
    case 'case': return { op: 'case', caser: new KeyCaser(o.keys!, (o.exclude ?? []).map(p)) };
    case 'wrap': return { op: 'wrap', key: o.key!, meta: o.meta };
  }
}

/** Runs the steps; returns the new body (the same object when nothing applied) and whether it changed. */
export function runSteps(steps: readonly Step[], body: unknown, ctx: ProxyContext): { value: unknown; changed: boolean } {
  let v = body;
  let changed = false;
  for (const s of steps) {
    switch (s.op) {
      case 'unwrap': { const found = valuesAt(v, s.path); if (found.length > 0) { v = found[0]; changed = true; } break; }
      case 'allow': v = pick(v, s.paths); changed = true; break;
      case 'deny': for (const path of s.paths) if (removeAt(v, path)) changed = true; break;
      case 'rename': if (renameAt(v, s.from, s.to)) changed = true; break;
      case 'set': {
        const value = s.template === null ? structuredClone(s.value) : cast(render(s.template, ctx), s.type);
        // A template that renders no number for a number is left out, as the transformers' json_types.
        if (value !== undefined && setAt(v, s.path, value)) changed = true;
        break;
      }
      case 'case': v = s.caser.apply(v); changed = true; break;
      case 'wrap': v = { ...s.meta, [s.key]: v }; changed = true; break;
    }
  }
  return { value: v, changed };
}

export const jsonTransformHandler: PluginHandler<JsonTransformConfig, State> = {
  name: jsonTransform.name,
  priority: jsonTransform.priority,
  init(config) {
    const request = config.request.ops.map(compileStep);
    const response = config.response.ops.map(compileStep);
    return {
      request, response,
      statuses: config.response.if_status.length > 0 ? new Set(config.response.if_status) : null,
      needs: { request: request.length > 0 ? 'json' : null, response: response.length > 0, maxBytes: config.max_body_bytes ?? DEFAULT_BODY_CAP_BYTES },
    };
  },
  body: {
    needs: (_config, state) => state.needs,
    request(ctx, body, _config, state) {
      if (body.kind !== 'json') return false;
      const r = runSteps(state.request, body.value, ctx);
      body.value = r.value;
      return r.changed;
    },
    response(ctx, status, _headers, body, _config, state) {
      if (state.statuses !== null && !state.statuses.has(status)) return false;
      const r = runSteps(state.response, body.value, ctx);
      body.value = r.value;
      return r.changed;
    },
  },
};
