// response-transformer (reference/kong-compat.md §4.10) and response-transformer-advanced (Kong
// Enterprise's field names, free): one handler. Headers: remove → rename → replace (only when
// present) → add (only when absent) → append (always: a repeated header), on every response, the
// gateway's own plugin answers included (Kong's header_filter). JSON keys: the same order (after
// `allow`) in the body phase, on JSON responses only (others stream through marked). -advanced:
// `if_status` per section, nested paths with `dots_in_keys: false`, `replace.body` (JSON responses
// only here: other types stream, as every body plugin's do). Values are literal, typed by
// `json_types`. Names are handled lower-case, as the DP keys response headers.
//
// `remove` also drops a header another plugin queued for the response (ctx.responseHeaders: cors,
// correlation-id), which the DP adds after this phase; the other operations see only the upstream's
// (or the exit's) headers.
import { DEFAULT_BODY_CAP_BYTES, type BodyNeeds, type JsonBody, type PluginDefinition, type PluginHandler, type ProxyContext } from '../types.ts';
import { splitPair } from '../transformer-fields.ts';
import { applyBodyOps, bodyOpsCount, compileBodyOps, type BodyOps } from '../body-transform.ts';
import { isObject } from '../json-paths.ts';
import { responseTransformer, responseTransformerAdvanced, type ResponseTransformerConfig } from './schema.ts';

interface Pair { name: string; value: string }
/** A status test: always true when the section has no if_status. */
type StatusTest = (status: number) => boolean;
type SectionName = 'allow' | 'remove' | 'rename' | 'replace' | 'add' | 'append';
interface State {
  remove: string[]; rename: Pair[]; replace: Pair[]; add: Pair[]; append: Pair[];
  json: BodyOps | null;
  /** Literal values of the JSON ops, by slot. */
  values: string[];
  replaceBody: string | null;
  when: Record<SectionName, StatusTest> | null;
  bodyNeeds: BodyNeeds;
}

const lowerPairs = (entries: string[]): Pair[] => entries.map(splitPair)
  .filter((p) => p.value !== '')
  .map((p) => ({ name: p.name.toLowerCase(), value: p.value }));

const ALWAYS: StatusTest = () => true;
function statusTest(list: string[] | undefined): StatusTest {
  if (!list || list.length === 0) return ALWAYS;
  const ranges = list.map((e) => { const [a, b] = e.split('-').map(Number); return [a, b ?? a] as const; });
  return (s) => ranges.some(([a, b]) => s >= a && s <= b);
}

function compile(config: ResponseTransformerConfig): State {
  const values: string[] = [];
  const json = compileBodyOps({
    allow: config.allow?.json, remove: config.remove.json, rename: config.rename.json, replace: config.replace.json, add: config.add.json, append: config.append.json,
    types: { replace: config.replace.json_types, add: config.add.json_types, append: config.append.json_types },
  }, config.dots_in_keys ?? true, (v) => values.push(v) - 1);
  const hasJson = bodyOpsCount(json) > 0;
  const replaceBody = config.replace.body ?? null;
  const sections: SectionName[] = ['allow', 'remove', 'rename', 'replace', 'add', 'append'];
  const conditional = sections.some((n) => (config[n]?.if_status?.length ?? 0) > 0);
  return {
    remove: config.remove.headers.map((e) => splitPair(e).name.toLowerCase()),
    rename: lowerPairs(config.rename.headers).map((p) => ({ name: p.name, value: p.value.toLowerCase() })).filter((p) => p.name !== p.value),
    replace: lowerPairs(config.replace.headers),
    add: lowerPairs(config.add.headers),
    append: lowerPairs(config.append.headers),
    json: hasJson ? json : null, values, replaceBody,
    when: conditional ? Object.fromEntries(sections.map((n) => [n, statusTest(config[n]?.if_status)])) as State['when'] : null,
    bodyNeeds: { request: null, response: hasJson || replaceBody !== null, maxBytes: config.max_body_bytes ?? DEFAULT_BODY_CAP_BYTES },
  };
}

/** The JSON ops whose section applies to this status (all of them without if_status). */
function opsFor(state: State, status: number): BodyOps {
  const ops = state.json!;
  const w = state.when;
  if (w === null) return ops;
  return {
    allow: w.allow(status) ? ops.allow : null, remove: w.remove(status) ? ops.remove : [], rename: w.rename(status) ? ops.rename : [],
    replace: w.replace(status) ? ops.replace : [], add: w.add(status) ? ops.add : [], append: w.append(status) ? ops.append : [],
  };
}

function transformJson(status: number, body: JsonBody, state: State): boolean {
  if (state.replaceBody !== null && (state.when === null || state.when.replace(status))) { body.raw = state.replaceBody; return true; }
  if (state.json === null || !isObject(body.value)) return false;
  const r = applyBodyOps(body.value, opsFor(state, status), state.values);
  body.value = r.root;
  return r.changed;
}

function handlerFor(def: PluginDefinition): PluginHandler<ResponseTransformerConfig, State> {
  return {
    name: def.name,
    priority: def.priority,
    init: compile,
    response: function responseTransformerResponse(ctx: ProxyContext, status, h, _config, state) {
      const w = state.when;
      if (w === null || w.remove(status)) for (const name of state.remove) { delete h[name]; delete ctx.responseHeaders[name]; }
      if (w === null || w.rename(status)) {
        for (const { name, value: to } of state.rename) {
          const v = h[name];
          if (v === undefined) continue;
          delete h[name];
          h[to] = v;
        }
      }
      if (w === null || w.replace(status)) for (const { name, value } of state.replace) if (h[name] !== undefined) h[name] = value;
      if (w === null || w.add(status)) for (const { name, value } of state.add) if (h[name] === undefined) h[name] = value;
      if (w === null || w.append(status)) {
        for (const { name, value } of state.append) {
          const v = h[name];
          h[name] = v === undefined ? value : typeof v === 'string' ? [v, value] : [...v, value];
        }
      }
    },
    body: {
      needs: (_config, state) => state.bodyNeeds,
      response: (_ctx, status, _headers, body, _config, state) => transformJson(status, body, state),
    },
  };
}

export const responseTransformerHandler = handlerFor(responseTransformer);
/** One engine, two schemas: the advanced plugin is this handler reading its extra fields. */
export const responseTransformerAdvancedHandler = handlerFor(responseTransformerAdvanced);
