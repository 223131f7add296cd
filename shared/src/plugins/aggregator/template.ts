// Leg templates: request-transformer's variables (headers, query_params, uri_captures, consumer,
// jwt, shared, request_id) plus `$(legs.<name>.<path>)`, a field of an earlier leg's JSON answer,
// and `$(item)` / `$(item.<path>)`, the element of a fan-out's list this call is for. Paths are
// dotted keys (`a.b.c`, no `[*]`: a template takes one value). Compiled once per snapshot.
//
// Values are typed: a string is sent as is, a number or boolean as its JSON text, an object or
// array as JSON; a leg field that is null or missing is no value at all, and the leg is skipped
// (`dependency_null`) rather than sent with an empty or `<nil>` value.
import { parseDotted, valuesAt, type JsonPath } from '../json-paths.ts';
import { lookup, parseLookup, splitTemplate, type Lookup } from '../request-transformer/template.ts';
import type { ProxyContext } from '../types.ts';

/** A field of an earlier leg (`leg` set) or of the fan-out item (`leg` null). */
export interface LegLookup { leg: string | null; path: JsonPath }
type Part = string | Lookup | LegLookup;
export type LegTemplate = ReadonlyArray<Part>;

const isLeg = (p: Lookup | LegLookup): p is LegLookup => 'path' in p;
const LEGS = /^legs\.([A-Za-z0-9_-]+)(?:\.(.+))?$/;

function parseLegLookup(expr: string): Lookup | LegLookup | string {
  const e = expr.trim();
  if (e === 'item') return { leg: null, path: [] };
  if (e.startsWith('item.') || e.startsWith('legs.')) {
    const item = e.startsWith('item.');
    const m = item ? null : LEGS.exec(e);
    if (!item && m === null) return `unsupported template expression '${e}': write legs.<leg>.<field>`;
    const leg = item ? null : m![1];
    const rest = item ? e.slice(5) : m![2];
    if (rest === undefined) return { leg, path: [] };
    const path = parseDotted(rest, false);
    if (typeof path === 'string') return `'${e}': ${path}`;
    if (path.some((s) => typeof s !== 'string')) return `'${e}': [*] is not allowed in a template (use for_each)`;
    return { leg, path };
  }
  const r = parseLookup(e);
  return typeof r === 'string' && r.startsWith('unknown template variable') ? r.replace(/\)$/, ', legs, item)') : r;
}

/** The compiled template, or an error message. */
export function compileLegTemplate(value: string): LegTemplate | string {
  return splitTemplate<Lookup | LegLookup>(value, parseLegLookup);
}

/** The legs a template reads (`legs.x`), and whether it reads the fan-out item. */
export function templateRefs(t: LegTemplate): { legs: string[]; item: boolean } {
  const legs: string[] = [];
  let item = false;
  for (const p of t) {
    if (typeof p === 'string' || !isLeg(p)) continue;
    if (p.leg === null) item = true; else legs.push(p.leg);
  }
  return { legs, item };
}

/** A JSON value as template text; null when there is no value (null, missing). */
export function valueText(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** Where leg and item values come from while rendering. */
export interface LegValues { bodies: ReadonlyMap<string, unknown>; item: unknown }

/**
 * Renders a template, each value passed through `encode` (a path segment is percent-encoded so a
 * value cannot add segments or a query); null when a leg or item value is missing.
 */
export function renderLeg(t: LegTemplate, ctx: ProxyContext, values: LegValues, encode: (s: string) => string): string | null {
  let out = t[0] as string;
  for (let i = 1; i < t.length; i += 2) {
    const p = t[i] as Lookup | LegLookup;
    let v: string | null;
    if (isLeg(p)) {
      const root = p.leg === null ? values.item : values.bodies.get(p.leg);
      v = valueText(p.path.length === 0 ? root : valuesAt(root, p.path)[0]);
      if (v === null) return null;
    } else v = lookup(p, ctx);
    out += encode(v) + (t[i + 1] as string);
  }
  return out;
}
