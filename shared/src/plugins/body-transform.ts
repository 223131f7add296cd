// The one engine behind the transformers' body lists (request-transformer `body`,
// response-transformer `json`, and their -advanced variants): Kong's order allow → remove → rename →
// replace (only where present) → add (only where absent) → append (an array: a present string
// becomes [old, new], absent becomes [new]), on a JSON object or on form fields (which are a flat
// object of strings). Compiled once per snapshot from the config's lists; values are indexes into
// the rendered values of the request (templates) or literals.
import { splitPair } from './transformer-fields.ts';
import { has, holders, parseDotted, pick, removeAt, renameAt, setAt, type JsonObject, type JsonPath } from './json-paths.ts';

/** Kong's json_types: how a configured value is written into JSON. */
export type ValueType = 'string' | 'number' | 'boolean';
export interface ValueOp { path: JsonPath; slot: number; type: ValueType | null }
export interface BodyOps {
  /** Keep only these (the advanced plugins' `allow`); null: keep everything. */
  allow: JsonPath[] | null;
  remove: JsonPath[];
  rename: Array<{ from: JsonPath; to: JsonPath }>;
  replace: ValueOp[];
  add: ValueOp[];
  append: ValueOp[];
}

export const bodyOpsCount = (o: BodyOps): number =>
  (o.allow === null ? 0 : 1) + o.remove.length + o.rename.length + o.replace.length + o.add.length + o.append.length;

/** A path the schema validated (an error here is a bug). */
function path(s: string, dotsInKeys: boolean): JsonPath {
  const p = parseDotted(s, dotsInKeys);
  if (typeof p === 'string') throw new Error(`body path ${p}`);
  return p;
}

/** The lists as configured (Kong's field shapes). `slotOf` registers a value and returns its index. */
export interface BodyLists {
  allow?: string[] | null;
  remove: string[];
  rename: string[];
  replace: string[];
  add: string[];
  append: string[];
  types?: { replace?: ValueType[]; add?: ValueType[]; append?: ValueType[] };
}

export function compileBodyOps(l: BodyLists, dotsInKeys: boolean, slotOf: (value: string) => number): BodyOps {
  const valueOps = (entries: string[], types: ValueType[] | undefined): ValueOp[] => {
    const ops: ValueOp[] = [];
    entries.forEach((e, i) => {
      const { name, value } = splitPair(e);
      ops.push({ path: path(name, dotsInKeys), slot: slotOf(value), type: types?.[i] ?? null });
    });
    return ops;
  };
  return {
    allow: l.allow && l.allow.length > 0 ? l.allow.map((n) => path(n, dotsInKeys)) : null,
    remove: l.remove.map((n) => path(splitPair(`${n}:`).name, dotsInKeys)),
    rename: l.rename.map(splitPair).map((p) => ({ from: path(p.name, dotsInKeys), to: path(p.value, dotsInKeys) })),
    replace: valueOps(l.replace, l.types?.replace),
    add: valueOps(l.add, l.types?.add),
    append: valueOps(l.append, l.types?.append),
  };
}

/** Kong's cast_value: a number that does not parse is undefined, and left out (Kong's tonumber gives nil). */
export function cast(v: string, type: ValueType | null): unknown {
  if (type === 'number') { const n = Number(v); return v.trim() === '' || Number.isNaN(n) ? undefined : n; }
  if (type === 'boolean') return v === 'true';
  return v;
}

/**
 * Applies the ops to `root` (a JSON object or form fields). Returns the (maybe new, after `allow`)
 * root and whether anything changed.
 */
export function applyBodyOps(root: JsonObject, ops: BodyOps, values: readonly string[]): { root: JsonObject; changed: boolean } {
  let changed = false;
  if (ops.allow !== null) {
    const kept = pick(root, ops.allow) as JsonObject;
    changed = JSON.stringify(kept) !== JSON.stringify(root);
    root = kept;
  }
  for (const p of ops.remove) if (removeAt(root, p)) changed = true;
  for (const { from, to } of ops.rename) if (renameAt(root, from, to)) changed = true;
  for (const op of ops.replace) {
    const v = cast(values[op.slot], op.type);
    if (v !== undefined && setAt(root, op.path, v, true)) changed = true;
  }
  for (const op of ops.add) {
    const v = cast(values[op.slot], op.type);
    if (v === undefined) continue;
    for (const [o, k] of holders(root, op.path, true)) if (!has(o, k)) { o[k] = v; changed = true; }
  }
  for (const op of ops.append) {
    const v = cast(values[op.slot], op.type);
    if (v === undefined) continue;
    for (const [o, k] of holders(root, op.path, true)) {
      const cur = o[k];
      o[k] = Array.isArray(cur) ? [...cur, v] : cur === undefined ? [v] : [cur, v];
      changed = true;
    }
  }
  return { root, changed };
}
