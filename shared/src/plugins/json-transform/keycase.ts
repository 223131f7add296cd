// Deep key case conversion for json-transform. Words are split at `_`, `-`, spaces and lower→upper
// (and ACRONYMWord) boundaries, so every supported case converts to every other. Converted keys are
// cached per operation (reference/edge-design.md §2b: a cached key map makes the walk nearly free);
// the cache is bounded, since keys come from bodies.
import { EACH, isObject, type JsonPath } from '../json-paths.ts';
import type { CASES } from './schema.ts';

export type KeyCase = (typeof CASES)[number];
const MAX_CACHED_KEYS = 10_000;
// Word boundaries: separators, a capital after a lower-case letter or digit (digits stay with the word
// they follow: v2_name ↔ v2Name), and the last capital of an all-caps run before lower case (HTTPStatus).
const BOUNDARY = /[_\-\s]+|(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])/;

function convert(key: string, to: KeyCase): string {
  const lower = key.split(BOUNDARY).filter((w) => w !== '').map((w) => w.toLowerCase());
  if (lower.length === 0) return key;
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
      // A converted key never is `__proto__` (underscores are separators), so plain assignment is safe.
      out[this.key(k)] = this.walk(value[k], next);
    }
    return out;
  }
}
