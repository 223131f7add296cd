// JSON paths for the body transforms, compiled once per snapshot: a path is a list of object keys
// and `[*]` (every element of an array). Two spellings compile to it:
//   - Kong's transformer lists: `a.b[*].c` when `dots_in_keys` is false (the advanced plugins),
//     else the whole string is one top-level key (Kong OSS: `a.b` is the key "a.b");
//   - json-transform's `$.a.b[*].c` (also `$["odd key"]`, and `$` for the root).
// Navigation never creates through arrays and never follows `__proto__`-like keys into prototypes:
// every container is a plain object or an array read by own keys.

export const EACH: unique symbol = Symbol('[*]');
export type Segment = string | typeof EACH;
export type JsonPath = readonly Segment[];
export type JsonObject = Record<string, unknown>;

export const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);
const own = (o: JsonObject, k: string) => Object.prototype.hasOwnProperty.call(o, k);
/** Keys that would reach an object's prototype if assigned: never a path segment. */
const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype']);

const KEY = /^[^.[\]]+/;

/** A Kong list entry's key (`dots_in_keys` false: nested); an error message when malformed. */
export function parseDotted(s: string, dotsInKeys: boolean): JsonPath | string {
  if (s === '') return 'empty key';
  if (dotsInKeys) return FORBIDDEN.has(s) ? `'${s}' is not allowed as a key` : [s];
  return parseSegments(s, 0, false);
}

/** json-transform's `$.a.b[*].c`; `$` alone is the root (an empty path). */
export function parseJsonPath(s: string): JsonPath | string {
  if (!s.startsWith('$')) return `'${s}' must start with $`;
  if (s === '$') return [];
  if (s[1] !== '.' && s[1] !== '[') return `'${s}': expected . or [ after $`;
  return parseSegments(s, s[1] === '.' ? 2 : 1, true);
}

function parseSegments(s: string, start: number, quoted: boolean): JsonPath | string {
  const out: Segment[] = [];
  let i = start;
  for (;;) {
    if (s.startsWith('[*]', i)) { out.push(EACH); i += 3; }
    else if (quoted && s[i] === '[' && (s[i + 1] === '"' || s[i + 1] === "'")) {
      const close = s.indexOf(`${s[i + 1]}]`, i + 2);
      if (close < 0) return `'${s}': unterminated [" at ${i}`;
      out.push(s.slice(i + 2, close));
      i = close + 2;
    } else {
      const m = KEY.exec(s.slice(i));
      if (m === null) return `'${s}': expected a key at ${i}`;
      out.push(m[0]);
      i += m[0].length;
    }
    const last = out[out.length - 1];
    if (typeof last === 'string' && FORBIDDEN.has(last)) return `'${s}': '${last}' is not allowed as a key`;
    if (i === s.length) return out;
    if (s[i] === '.') { i++; if (i === s.length) return `'${s}': ends with .`; continue; }
    if (s[i] !== '[') return `'${s}': unexpected '${s[i]}' at ${i}`;
  }
}

export function pathString(p: JsonPath): string {
  return p.map((seg) => (seg === EACH ? '[*]' : seg)).join('.').replace(/\.\[\*\]/g, '[*]');
}

/**
 * The objects that hold the path's last key (and that key): one per array element the `[*]`s
 * cover. `create` makes missing intermediate objects (add, append, set); arrays are never made.
 */
export function holders(root: unknown, path: JsonPath, create: boolean): Array<[JsonObject, string]> {
  const out: Array<[JsonObject, string]> = [];
  const last = path[path.length - 1];
  if (typeof last !== 'string') return out;
  const walk = (v: unknown, i: number): void => {
    if (i === path.length - 1) { if (isObject(v)) out.push([v, last]); return; }
    const seg = path[i];
    if (seg === EACH) { if (Array.isArray(v)) for (const e of v) walk(e, i + 1); return; }
    if (!isObject(v)) return;
    if (!own(v, seg) || v[seg] === null || typeof v[seg] !== 'object') {
      if (!create || (own(v, seg) && v[seg] !== null)) return;
      if (path[i + 1] === EACH) return;
      v[seg] = {};
    }
    walk(v[seg], i + 1);
  };
  walk(root, 0);
  return out;
}

export const has = (o: JsonObject, k: string): boolean => own(o, k) && o[k] !== undefined;

/** The values at a path (one per `[*]` element that has it). */
export function valuesAt(root: unknown, path: JsonPath): unknown[] {
  if (path.length === 0) return [root];
  return holders(root, path, false).filter(([o, k]) => has(o, k)).map(([o, k]) => o[k]);
}

/** Removes the path's key wherever it is; true when something was removed. */
export function removeAt(root: unknown, path: JsonPath): boolean {
  let changed = false;
  for (const [o, k] of holders(root, path, false)) if (own(o, k)) { delete o[k]; changed = true; }
  return changed;
}

/** Sets the value at the path (making missing objects), or only where the key exists. */
export function setAt(root: unknown, path: JsonPath, value: unknown, onlyIfPresent = false): boolean {
  let changed = false;
  for (const [o, k] of holders(root, path, !onlyIfPresent)) {
    if (onlyIfPresent && !has(o, k)) continue;
    o[k] = value;
    changed = true;
  }
  return changed;
}

/**
 * Renames the path's key to `to`. A `to` with the same parent path (or one segment: a new key in
 * the same object) renames in place in every holder; any other `to` moves the value there.
 */
export function renameAt(root: unknown, from: JsonPath, to: JsonPath): boolean {
  const sameParent = to.length === 1 || (to.length === from.length && from.slice(0, -1).every((s, i) => s === to[i]));
  const key = to[to.length - 1];
  if (sameParent && typeof key === 'string') {
    let changed = false;
    for (const [o, k] of holders(root, from, false)) {
      if (!has(o, k) || k === key) continue;
      o[key] = o[k];
      delete o[k];
      changed = true;
    }
    return changed;
  }
  const found = valuesAt(root, from);
  if (found.length === 0) return false;
  removeAt(root, from);
  setAt(root, to, found.length === 1 ? found[0] : found);
  return true;
}

/** A copy of `value` holding only what the paths reach (the `allow` lists). */
export function pick(value: unknown, paths: readonly JsonPath[]): unknown {
  if (paths.some((p) => p.length === 0)) return value;
  if (Array.isArray(value)) {
    const rest = paths.filter((p) => p[0] === EACH).map((p) => p.slice(1));
    return rest.length === 0 ? [] : value.map((e) => pick(e, rest));
  }
  if (!isObject(value)) return value;
  const out: JsonObject = {};
  const byKey = new Map<string, JsonPath[]>();
  for (const p of paths) {
    const k = p[0];
    if (typeof k !== 'string' || !has(value, k)) continue;
    const list = byKey.get(k);
    if (list) list.push(p.slice(1)); else byKey.set(k, [p.slice(1)]);
  }
  for (const [k, rest] of byKey) out[k] = pick(value[k], rest);
  return out;
}
