// Deep key case conversion for json-transform. Words are split at `_`, `-`, spaces and lower→upper
// (and ACRONYMWord) boundaries, so every supported case converts to every other. Converted keys are
// cached per operation (reference/edge-design.md §2b: a cached key map makes the walk nearly free);
// the cache is bounded, since keys come from bodies.
import { EACH, isObject, type JsonPath } from '../json-paths.ts';
import type { CASES } from './schema.ts';

export type KeyCase = (typeof CASES)[number];
const MAX_CACHED_KEYS = 10_000;
const WORDS = /[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+/g;

function convert(key: string, to: KeyCase): string {
  const words = key.match(WORDS);
  if (words === null) return key;
  const lower = words.map((w) => w.toLowerCase());
  const cap = (w: string) => w.charAt(0).toUpperCase() + w.slice(1);
  switch (to) {
    case 'snake_case': return lower.join('_');
    case 'kebab-case': return lower.join('-');
    case 'camelCase': return lower[0] + lower.slice(1).map(cap).join('');
    case 'PascalCase': return lower.map(cap).join('');
  }
}

export class KeyCaser {
  private cache = new Map<string, string>();
  constructor(private readonly to: KeyCase, private readonly exclude: readonly JsonPath[]) {}

  key(k: string): string {
    let v = this.cache.get(k);
    if (v === undefined) {
      v = convert(k, this.to);
      if (this.cache.size >= MAX_CACHED_KEYS) this.cache.clear();
      this.cache.set(k, v);
    }
    return v;
  }

  /** A copy of `value` with every key converted, except inside the excluded paths' values. */
  apply(value: unknown): unknown {
    return this.walk(value, this.exclude);
  }

  private walk(value: unknown, active: readonly JsonPath[]): unknown {
    if (active.some((p) => p.length === 0)) return value;
    if (Array.isArray(value)) {
      const next = active.length === 0 ? active : active.filter((p) => p[0] === EACH).map((p) => p.slice(1));
      return value.map((e) => this.walk(e, next));
    }
    if (!isObject(value)) return value;
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value)) {
      const next = active.length === 0 ? active : active.filter((p) => p[0] === k).map((p) => p.slice(1));
      const key = this.key(k);
      const v = this.walk(value[k], next);
      // A body's own `__proto__` key stays a key (plain assignment would set the prototype).
      if (key === '__proto__') Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
      else out[key] = v;
    }
    return out;
  }
}
