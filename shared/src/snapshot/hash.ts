import { createHash } from 'node:crypto';
import type { Config } from './schema.ts';

/** Quoted object keys: a config's few hundred distinct names, quoted once each (bounded, so hostile keys cannot grow it). */
const quotedKeys = new Map<string, string>();
const quote = (k: string): string => {
  let q = quotedKeys.get(k);
  if (q === undefined) { q = JSON.stringify(k); if (quotedKeys.size < 10_000) quotedKeys.set(k, q); }
  return q;
};

/**
 * JSON with object keys sorted at every level, so equal content serializes to equal bytes. Keys are
 * sorted only when they are not already, and quoted once: the CP canonicalizes every entity of
 * every snapshot.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return '[' + value.map(canonicalJson).join(',') + ']';
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj);
  for (let i = 1; i < keys.length; i++) if (keys[i - 1] > keys[i]) { keys.sort(); break; }
  const parts: string[] = [];
  for (const k of keys) {
    const v = obj[k];
    if (v !== undefined) parts.push(quote(k) + ':' + canonicalJson(v));
  }
  return '{' + parts.join(',') + '}';
}

/** A config's entities as canonical JSON, list by list in the config's order, and the config hash over them. */
export interface CanonicalConfig {
  hash: string;
  texts: Record<string, string[]>;
}

const byId = (list: { id: string }[]) => (a: number, b: number) => (list[a].id < list[b].id ? -1 : list[a].id > list[b].id ? 1 : 0);

/**
 * The config hash: sha256 over the canonical form, with every entity list sorted by id so the
 * order rows come out of the database does not change it. The canonical text of each entity is
 * kept: a DP's decoder keys entities by it, to reuse what did not change between versions.
 */
export function canonicalConfig(config: Config): CanonicalConfig {
  const texts: Record<string, string[]> = {};
  const cfg = config as unknown as Record<string, unknown[] | undefined>;
  for (const k of Object.keys(cfg)) if (cfg[k] !== undefined) texts[k] = cfg[k]!.map(canonicalJson);
  return { hash: hashOfTexts(config, texts), texts };
}

/** The config hash from each entity's canonical text (texts[list][i] is canonicalJson(config[list][i])). */
export function hashOfTexts(config: Config, texts: CanonicalConfig['texts']): string {
  const digest = createHash('sha256').update('{');
  const cfg = config as unknown as Record<string, { id: string }[] | undefined>;
  Object.keys(cfg).filter((k) => cfg[k] !== undefined).sort().forEach((k, i) => {
    const list = cfg[k]!;
    const own = texts[k];
    const order = list.map((_, j) => j).sort(byId(list));
    digest.update(`${i ? ',' : ''}${JSON.stringify(k)}:[`);
    order.forEach((j, n) => digest.update(n ? `,${own[j]}` : own[j]));
    digest.update(']');
  });
  return digest.update('}').digest('hex');
}

export function configHash(config: Config): string {
  return canonicalConfig(config).hash;
}
